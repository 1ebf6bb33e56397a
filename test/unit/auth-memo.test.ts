/**
 * The authenticator's lookup memo (http/auth.ts, issue 19): concurrent requests whose entry is
 * missing or expired share one store lookup instead of each querying the store, and a change
 * made through this node (which clears the memo) is never undone by a lookup that was already
 * running when it happened. Against a real SQLite store, counting its calls.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Authenticator } from '../../src/http/auth.js';
import type { Store } from '../../src/store/store.js';
import { ORG_SECRET, USER_SECRET, startTestServer, type TestServer } from '../helpers/server.js';

/** The store, with `calls[method]` counting calls of the lookups the authenticator makes. */
function counting(store: Store): { store: Store; calls: Record<string, number>; gate: { hold: boolean; release(): void } } {
  const calls: Record<string, number> = {};
  const waiting: (() => void)[] = [];
  const gate = {
    hold: false,
    release() {
      this.hold = false;
      for (const w of waiting.splice(0)) w();
    },
  };
  const wrapped = new Proxy(store, {
    get(target, name) {
      const value = (target as any)[name];
      if (typeof value !== 'function') return value;
      if (typeof name === 'string' && name.startsWith('find')) {
        return async (...args: unknown[]) => {
          calls[name] = (calls[name] ?? 0) + 1;
          if (gate.hold) await new Promise<void>((r) => waiting.push(r));
          return value.apply(target, args);
        };
      }
      return value.bind(target);
    },
  });
  return { store: wrapped, calls, gate };
}

describe('authenticator memo', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer();
  });
  after(async () => {
    await srv?.close();
  });

  it('concurrent lookups of one secret share one store query', async () => {
    const { store, calls } = counting(srv.ferry.store);
    const auth = new Authenticator(store);
    const header = `User ${USER_SECRET}, Organization ${ORG_SECRET}`;
    const identities = await Promise.all(Array.from({ length: 50 }, () => auth.platform(header)));
    assert.equal(new Set(identities.map((i) => i.user.id)).size, 1);
    assert.equal(calls.findUserBySecretHash, 1);
    assert.equal(calls.findOrganizationBySecretHash, 1);
  });

  it('a lookup running when the memo is cleared serves neither later callers nor the memo', async () => {
    const i = await srv.instance('localfs', { root: 'memo' });
    const { store, calls, gate } = counting(srv.ferry.store);
    const auth = new Authenticator(store);
    const header = `User ${USER_SECRET}, Element ${i.token}`;
    await auth.hub(header); // user cached; the instance too
    auth.forgetInstances();
    gate.hold = true;
    const early = auth.hub(header); // a lookup in flight …
    await new Promise((r) => setImmediate(r));
    auth.forgetInstances(); // … when a change clears the memo
    const late = auth.hub(header); // must query again, not join the earlier lookup
    await new Promise((r) => setImmediate(r));
    gate.release();
    await Promise.all([early, late]);
    assert.equal(calls.findInstanceByTokenHash, 3, 'one lookup before, one in flight at the clear, one after it');
    await auth.hub(header);
    assert.equal(calls.findInstanceByTokenHash, 3, 'the lookup started after the clear is cached');
  });
});
