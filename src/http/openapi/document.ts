/**
 * The OpenAPI document without a running server: builds the Fastify app over stand-in services
 * (routes only read them per request), never listens, and returns `app.swagger()`.
 *
 *   node dist/src/http/openapi/document.js out.json   writes the document (the client's build)
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { loadConfig } from '../../config.js';
import { buildApp, type Services } from '../app.js';

/** `extend` may register more routes before the document is built (tests). */
export async function openApiDocument(extend?: (app: FastifyInstance) => void): Promise<Record<string, any>> {
  const config = loadConfig({ FERRY_DATA_DIR: path.join(process.cwd(), '.openapi-unused'), FERRY_LOG_LEVEL: 'silent' });
  const services = { config, jobChanges: new Map() } as unknown as Services;
  const app = await buildApp(services, pino({ level: 'silent' }));
  extend?.(app);
  await app.ready();
  const document = app.swagger() as Record<string, any>;
  await app.close();
  return JSON.parse(JSON.stringify(document));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = process.argv[2];
  const text = `${JSON.stringify(await openApiDocument(), null, 2)}\n`;
  if (out) fs.writeFileSync(out, text);
  else process.stdout.write(text);
}
