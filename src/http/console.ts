/**
 * Serves Ferry Console (the web app built from console/ into dist/console/) at /console/.
 * The built files are read into memory once at start — three small files — so no request path
 * ever reaches the file system. Any other path below /console/ without a file extension is a
 * page of the app (deep link) and gets index.html, so reload and shared links work.
 * Every answer carries a strict Content-Security-Policy: scripts and styles only from Ferry's
 * own origin, no inline script, no eval, no framing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { notFound } from '../errors.js';

export const CONSOLE_PATH = '/console';

/** Where `npm run build` writes the console: dist/console, beside dist/src. */
const BUILT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'console');

export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

interface Asset {
  type: string;
  body: Buffer;
  etag: string;
}

function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return assets;
  }
  for (const name of names) {
    const type = TYPES[path.extname(name)];
    if (!type) continue;
    const body = fs.readFileSync(path.join(dir, name));
    const etag = `"${body.length.toString(16)}-${fs.statSync(path.join(dir, name)).mtimeMs.toString(16)}"`;
    assets.set(name, { type, body, etag });
  }
  return assets;
}

/** Registers /console and /console/* (`dir` overrides where the built files are read from). */
export async function consoleRoutes(app: FastifyInstance, options: { dir?: string } = {}): Promise<void> {
  const assets = loadAssets(options.dir ?? BUILT_DIR);

  function send(request: FastifyRequest, reply: FastifyReply, asset: Asset) {
    reply
      .header('Content-Security-Policy', CONSOLE_CSP)
      .header('X-Frame-Options', 'DENY')
      .header('X-Content-Type-Options', 'nosniff')
      .header('Referrer-Policy', 'no-referrer')
      .header('Cache-Control', 'no-cache')
      .header('ETag', asset.etag)
      .type(asset.type);
    if (request.headers['if-none-match'] === asset.etag) return reply.status(304).send();
    return reply.send(asset.body);
  }

  function page(request: FastifyRequest, reply: FastifyReply) {
    const index = assets.get('index.html');
    if (!index) throw notFound('Ferry Console is not built; run `npm run build` (it writes dist/console/)');
    return send(request, reply, index);
  }

  // Not part of the API: kept out of the OpenAPI document.
  const routeOptions = { schema: { hide: true } };
  app.get(CONSOLE_PATH, routeOptions, page);
  app.get<{ Params: { '*': string } }>(`${CONSOLE_PATH}/*`, routeOptions, async (request, reply) => {
    const rest = request.params['*'];
    if (!/\.[a-z0-9]+$/i.test(rest)) return page(request, reply);
    const asset = rest.includes('/') ? undefined : assets.get(rest);
    if (!asset) throw notFound(`No console file ${rest}; the console's pages start at ${CONSOLE_PATH}/`);
    return send(request, reply, asset);
  });
}
