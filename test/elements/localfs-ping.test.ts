/**
 * The localfs ping re-checks the instance's root cheaply between full checks (confine.ts,
 * ROOT_CHECK_TTL_MS). What a user relies on must hold all the same: a root deleted behind
 * Ferry's back is re-created by the next ping, a root replaced by a symbolic link fails the
 * next ping with the same error as a fresh check, and a link swapped in above the root fails
 * a ping at the latest once the memo has expired.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT_CHECK_TTL_MS } from '../../src/elements/localfs/confine.js';
import { localfs } from '../../src/elements/localfs/index.js';
import { isFerryError } from '../../src/errors.js';

const context = (base: string) => ({ localfsBase: base, backendTimeoutMs: 5000 });

/** The error `p` rejects with; fails when it resolves. */
async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  assert.fail('expected a rejection');
}

describe('localfs ping re-checks the root', () => {
  let base: string;
  let outside: string;
  before(async () => {
    base = await mkdtemp(path.join(os.tmpdir(), 'ferry-localfs-ping-'));
    outside = await mkdtemp(path.join(os.tmpdir(), 'ferry-outside-'));
  });
  after(async () => {
    await rm(base, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });

  it('a root replaced by a symbolic link fails the very next ping, with the error of a fresh check', async () => {
    const element = localfs.create({ root: 'swapped' }, context(base));
    await element.ping();
    await element.ping(); // inside the memo window
    await rm(path.join(base, 'swapped'), { recursive: true });
    await symlink(outside, path.join(base, 'swapped'));
    const error = await failure(element.ping());
    assert.ok(isFerryError(error, 'backend'), String(error));
    const fresh = await failure(localfs.create({ root: 'swapped' }, context(base)).ping());
    assert.equal(error.message, fresh.message);
    // It keeps failing: a failed check is not remembered as a good one.
    assert.ok(isFerryError(await failure(element.ping()), 'backend'));
    await rm(path.join(base, 'swapped'));
  });

  it('a root deleted behind its back is re-created by the next ping', async () => {
    const element = localfs.create({ root: 'team/gone' }, context(base));
    await element.ping();
    await rm(path.join(base, 'team'), { recursive: true });
    await element.ping();
    assert.equal(existsSync(path.join(base, 'team', 'gone')), true);
    // And the instance works on the new folder.
    await element.mkdir('/inside');
    assert.equal(existsSync(path.join(base, 'team', 'gone', 'inside')), true);
  });

  it('a symbolic link swapped in above the root fails a ping once the memo has expired', async () => {
    const element = localfs.create({ root: 'upper/docs' }, context(base));
    await element.ping();
    // The same root folder, now reached through a link out of the base.
    await mkdir(path.join(outside, 'moved'));
    await rename(path.join(base, 'upper'), path.join(outside, 'moved', 'upper'));
    await symlink(path.join(outside, 'moved', 'upper'), path.join(base, 'upper'));
    await sleep(ROOT_CHECK_TTL_MS + 50);
    const error = await failure(element.ping());
    assert.ok(isFerryError(error, 'backend'), String(error));
    assert.match(error.message, /symbolic link/);
  });
});
