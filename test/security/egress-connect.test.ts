/**
 * The connect-time egress check itself (src/async/egress-connect.ts), against a TCP listener of
 * the test's own on every loopback address:
 * - a property test: generated spellings of refused addresses (decimal, hex and octal integers,
 *   dotted hex/octal parts, short forms, IPv4-mapped/compatible/NAT64 IPv6, zone ids, brackets)
 *   never reach the listener — each connection fails with the `forbidden` error instead;
 * - the same spellings DO reach the listener when the policy allows loopback (so the property
 *   is not vacuous);
 * - TLS runs over the guarded socket (certificate and host name checked as usual);
 * - no code under src/ opens an outbound socket except through the guarded primitive.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import https from 'node:https';
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { request } from 'undici';
import { createEgressPolicy, type EgressPolicy } from '../../src/async/egress.js';
import { guardedAgents } from '../../src/async/egress-connect.js';
import { isFerryError } from '../../src/errors.js';
import { startTcpCounter, type TcpCounter } from '../helpers/tcp-counter.js';

/** Connects through the policy; resolves 'connected' or the error. */
function attempt(policy: EgressPolicy, host: string, port: number): Promise<'connected' | Error> {
  return new Promise((resolve) => {
    const socket = policy.connect({ host, port });
    socket.once('connect', () => {
      // The connect-time re-check may have destroyed it; its error follows.
      if (!socket.destroyed) {
        socket.destroy();
        resolve('connected');
      }
    });
    socket.once('error', (e) => resolve(e));
  });
}

const byte = fc.integer({ min: 0, max: 255 });
const hex = (n: number, width = 0) => n.toString(16).padStart(width, '0');

/** 127.x.y.z (all of 127/8 is loopback, so every one reaches the listener when allowed). */
const loopbackV4 = fc.tuple(byte, byte, byte).map(([b, c, d]) => [127, b, c, d] as const);

/** The many ways to write one IPv4 address. */
function spellV4([a, b, c, d]: readonly number[], how: number): string {
  const value = ((a << 24) >>> 0) + (b << 16) + (c << 8) + d;
  switch (how) {
    case 0: return `${a}.${b}.${c}.${d}`;
    case 1: return String(value); // 2130706433
    case 2: return `0x${hex(value)}`; // 0x7f000001
    case 3: return `0${value.toString(8)}`; // 017700000001
    case 4: return [a, b, c, d].map((p) => `0x${hex(p)}`).join('.'); // 0x7f.0x0.0x0.0x1
    case 5: return [a, b, c, d].map((p) => `0${p.toString(8)}`).join('.'); // 0177.00.00.01
    case 6: return `${a}.${(b << 16) + (c << 8) + d}`; // 127.1
    case 7: return `${a}.${b}.${(c << 8) + d}`; // 127.0.1
    case 8: return `::ffff:${a}.${b}.${c}.${d}`; // mapped, dotted
    case 9: return `[::ffff:${hex((a << 8) + b)}:${hex((c << 8) + d)}]`; // mapped, hex, bracketed
    case 10: return `0:0:0:0:0:FFFF:${hex((a << 8) + b, 4)}:${hex((c << 8) + d, 4)}`; // mapped, long form
    default: return `::ffff:${a}.${b}.${c}.${d}%lo`; // mapped with a zone id
  }
}

/** Spellings of ::1. */
const loopbackV6 = fc.constantFrom(
  '::1', '[::1]', '0:0:0:0:0:0:0:1', '0000:0000:0000:0000:0000:0000:0000:0001', '::0:0:1', '0::1', '::1%lo', '::1%1', '[::1%25lo]',
);

/** Refused addresses that no listener here can answer: refused all the same, and at once. */
const unreachableRefused = fc.oneof(
  fc.tuple(byte, byte, byte).map(([b, c, d]) => spellV4([10, b, c, d], (b + c) % 8)),
  fc.tuple(byte, byte).map(([c, d]) => spellV4([192, 168, c, d], c % 12)),
  fc.tuple(byte, byte).map(([c, d]) => spellV4([169, 254, c, d], d % 12)),
  fc.tuple(byte, byte, byte).map(([b, c, d]) => spellV4([0, b, c, d], c % 8)),
  fc.tuple(fc.integer({ min: 16, max: 31 }), byte, byte).map(([b, c, d]) => spellV4([172, b, c, d], d % 12)),
  fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.constantFrom('', '%lo', '%1', '%eth0')).map(([g, zone]) => `fe80::${hex(g)}${zone}`),
  fc.integer({ min: 0, max: 0xffff }).map((g) => `fd00::${hex(g)}`),
  fc.tuple(byte, byte).map(([c, d]) => `::127.0.${c}.${d}`), // IPv4-compatible
  fc.tuple(byte, byte).map(([c, d]) => `64:ff9b::7f00:${hex((c << 8) + d)}`), // NAT64 of loopback
  fc.tuple(byte, byte).map(([c, d]) => `2002:7f00:${hex((c << 8) + d)}::1`), // 6to4 of loopback
);

const loopbackSpelling = fc.oneof(
  fc.tuple(loopbackV4, fc.integer({ min: 0, max: 11 })).map(([addr, how]) => spellV4(addr, how)),
  loopbackV6,
);

describe('connect-time egress check', () => {
  let counter: TcpCounter;
  before(async () => {
    counter = await startTcpCounter();
  });
  after(async () => {
    await counter.close();
  });

  it('property: no spelling of a refused address reaches it (decimal, hex, octal, short, mapped, zone ids)', async () => {
    const strict = createEgressPolicy([]);
    counter.reset();
    await fc.assert(
      fc.asyncProperty(fc.oneof(loopbackSpelling, unreachableRefused), async (host) => {
        const outcome = await attempt(strict, host, counter.port);
        assert.notEqual(outcome, 'connected', `${host} connected`);
        assert.ok(isFerryError(outcome, 'forbidden'), `${host}: ${String(outcome)}`);
        assert.match((outcome as Error).message, /FERRY_EGRESS_ALLOW/);
        assert.equal(counter.connections, 0, `${host} reached the listener`);
      }),
      { numRuns: 300 },
    );
    assert.equal(counter.connections, 0);
  });

  it('the same spellings reach the listener when loopback is allowed (the property is not vacuous)', async () => {
    const open = createEgressPolicy(['127.0.0.0/8', '::1/128']);
    counter.reset();
    let expected = 0;
    await fc.assert(
      fc.asyncProperty(loopbackSpelling, async (host) => {
        const outcome = await attempt(open, host, counter.port);
        assert.equal(outcome, 'connected', `${host}: ${String(outcome)}`);
        expected++;
      }),
      { numRuns: 60 },
    );
    // Connections are counted when the listener accepts them, a moment after the client side.
    for (let i = 0; i < 100 && counter.connections < expected; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(counter.connections, expected);
  });

  it('a name allowed by FERRY_EGRESS_ALLOW connects; the same name is refused when not listed', async () => {
    counter.reset();
    assert.equal(await attempt(createEgressPolicy(['localhost']), 'localhost', counter.port), 'connected');
    const refused = await attempt(createEgressPolicy([]), 'localhost', counter.port);
    assert.ok(isFerryError(refused, 'forbidden'), String(refused));
    for (let i = 0; i < 100 && counter.connections < 1; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(counter.connections, 1);
  });

  it('no code under src/ opens an outbound connection except through the guarded primitive', () => {
    // Where sockets may be created: the primitive, the policy that builds undici's Agent on it,
    // and the webhook request, which is always given that Agent as its dispatcher.
    const allowed = new Set(['src/async/egress-connect.ts', 'src/async/egress.ts', 'src/async/deliver.ts']);
    const forbiddenUses = [
      /\bnet\.(connect|createConnection)\s*\(/,
      /\btls\.connect\s*\(/,
      /\bnew\s+(net\.)?Socket\s*\(/,
      /\bnew\s+https?\.Agent\s*\(/,
      /\bhttps?\.(request|get)\s*\(/,
      /^import\s+(?!type\b)[^;]*from\s+'(undici|node:http2|http2|node:dgram|dgram)'/m,
      /\bfetch\s*\(/,
    ];
    const root = path.resolve(import.meta.dirname, '../../..');
    const offenders: string[] = [];
    const walk = (dir: string) => {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(full);
        else if (entry.name.endsWith('.ts')) {
          const rel = path.relative(root, full).split(path.sep).join('/');
          if (allowed.has(rel)) continue;
          const text = fs.readFileSync(full, 'utf8');
          for (const pattern of forbiddenUses) if (pattern.test(text)) offenders.push(`${rel}: ${pattern}`);
        }
      }
    };
    walk(path.join(root, 'src'));
    assert.deepEqual(offenders, [], 'open outbound connections through EgressPolicy.connect (src/async/egress-connect.ts)');
  });

  it('TLS over the guarded socket: HTTPS through the agents verifies the certificate; undici speaks TLS; refused when not allowed', async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-egress-tls-'));
    try {
      try {
        execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', path.join(dir, 'key.pem'),
          '-out', path.join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'], { stdio: 'ignore' });
      } catch {
        t.skip('openssl is not available to make a test certificate');
        return;
      }
      const cert = fs.readFileSync(path.join(dir, 'cert.pem'));
      const server = https.createServer({ key: fs.readFileSync(path.join(dir, 'key.pem')), cert }, (_req, res) => res.end('tls ok'));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as import('node:net').AddressInfo).port;
      const get = (agent: https.Agent) =>
        new Promise<string>((resolve, reject) => {
          https.get({ host: 'localhost', port, path: '/', agent, ca: cert }, (res) => {
            let text = '';
            res.on('data', (c) => (text += c)).on('end', () => resolve(text));
          }).on('error', reject);
        });
      try {
        const { httpsAgent } = guardedAgents(createEgressPolicy(['localhost']).connect, { keepAlive: false });
        assert.equal(await get(httpsAgent), 'tls ok');
        const refused = guardedAgents(createEgressPolicy([]).connect, { keepAlive: false }).httpsAgent;
        await assert.rejects(get(refused), (e: unknown) => isFerryError(e, 'forbidden'));
        // undici: the handshake happens over the guarded socket (the self-signed certificate is refused by default).
        await assert.rejects(request(`https://localhost:${port}/`, { dispatcher: createEgressPolicy(['localhost']).dispatcher() }), (e: any) =>
          /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(String(e?.code ?? e?.cause?.code)),
        );
        await assert.rejects(request(`https://localhost:${port}/`, { dispatcher: createEgressPolicy([]).dispatcher() }), (e: unknown) => isFerryError(e, 'forbidden'));
      } finally {
        server.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
