/**
 * The bookkeeping of folders created for uploads (src/elements/upload-folders.ts), with a fake
 * file system whose `rmdir` the test holds: on SFTP a removal is a round trip, and an upload
 * that starts during it must neither see the folder vanish under it nor lose its ancestors.
 * The real-server behaviour is in test/elements/*-upload-race.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UploadFolders, foldersBetween } from '../../src/elements/upload-folders.js';

/** Folders that exist, and an rmdir the test can hold at will (only empty folders go). */
function fakeDisk(initial: string[]) {
  const folders = new Set(initial);
  const files = new Set<string>();
  let gate: Promise<void> | null = null;
  const removed: string[] = [];
  return {
    folders,
    files,
    removed,
    hold() {
      let open!: () => void;
      gate = new Promise<void>((r) => (open = r));
      return () => {
        gate = null;
        open();
      };
    },
    async rmdir(f: string) {
      if (gate) await gate;
      if ([...folders, ...files].some((x) => x.startsWith(`${f}/`))) throw new Error('ENOTEMPTY');
      folders.delete(f);
      removed.push(f);
    },
  };
}

describe('upload folders', () => {
  it('foldersBetween lists the folders between a file and the root, deepest first', () => {
    assert.deepEqual(foldersBetween('/r/a/b/c', '/r/'), ['/r/a/b/c', '/r/a/b', '/r/a']);
    assert.deepEqual(foldersBetween('/a/b', '/'), ['/a/b', '/a']);
    assert.deepEqual(foldersBetween('/r/a/b', '/r/a'), ['/r/a/b', '/r/a']);
  });

  it('an upload that starts while a failed one removes its folders waits, and keeps what it needs', async () => {
    const uploads = new UploadFolders();
    const disk = fakeDisk(['/r/a', '/r/a/b']);
    const chain = ['/r/a/b', '/r/a'];
    const first = await uploads.hold(chain);
    first.created(chain);
    const open = disk.hold();
    const failing = first.failed((f) => disk.rmdir(f));
    // The removal of /r/a/b is on its way; a second upload into /r/a/b/ starts now.
    let started = false;
    const second = uploads.hold(chain).then((lease) => {
      started = true;
      return lease;
    });
    await new Promise((r) => setImmediate(r));
    assert.equal(started, false, 'it waits for the removal in progress');
    open();
    await failing;
    const lease = await second;
    assert.deepEqual(disk.removed, ['/r/a/b'], 'the folder it holds above is not removed');
    assert.ok(disk.folders.has('/r/a'));
    // It re-creates what went, then fails too: everything created goes, as with no race.
    disk.folders.add('/r/a/b');
    lease.created(['/r/a/b']);
    await lease.failed((f) => disk.rmdir(f));
    assert.deepEqual(disk.removed, ['/r/a/b', '/r/a/b', '/r/a']);
  });

  it('the last of several failing uploads removes the new folders; a success keeps them', async () => {
    const uploads = new UploadFolders();
    const disk = fakeDisk(['/r/n', '/r/n/m']);
    const chain = ['/r/n/m', '/r/n'];
    const [a, b, c] = await Promise.all([uploads.hold(chain), uploads.hold(chain), uploads.hold(chain)]);
    a.created(chain);
    await a.failed((f) => disk.rmdir(f));
    await b.failed((f) => disk.rmdir(f));
    assert.deepEqual(disk.removed, [], 'held by c');
    await c.failed((f) => disk.rmdir(f));
    assert.deepEqual(disk.removed, ['/r/n/m', '/r/n']);

    const kept = fakeDisk(['/r/k', '/r/k/j']);
    const keptChain = ['/r/k/j', '/r/k'];
    const [d, e] = await Promise.all([uploads.hold(keptChain), uploads.hold(keptChain)]);
    d.created(keptChain);
    kept.files.add('/r/k/j/e.bin');
    e.succeeded();
    await d.failed((f) => kept.rmdir(f));
    assert.deepEqual(kept.removed, []);
  });
});
