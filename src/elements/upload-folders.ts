/**
 * Folders created for uploads still in flight, shared by the uploads of one process into one
 * file system (localfs: the host; sftp: one server). A write creates the missing folders above
 * its file and, when it fails, removes them again — but another upload may be writing into the
 * same new folder at that moment. Removing it then made that other upload fail (its folder
 * vanished under it); keeping it because the other one was using it left an orphan when the
 * other failed too (neither had created it "itself").
 *
 * So the folders are held, not owned: an upload holds the chain of folders above its file for
 * as long as it runs; folders created for any upload are marked; and when an upload fails, the
 * marked folders of its chain that no other upload holds any more are removed, deepest first,
 * each only while empty. The last upload to leave a new folder decides: if anything succeeded
 * in it the folder is not empty and stays, else it goes.
 *
 * A removal takes a round trip on SFTP, during which a new upload may want the same folder: it
 * is checked again before each folder (a folder held meanwhile stays, with those above it), and
 * an upload that starts while a folder of its chain is being removed waits for that removal
 * before it looks at the folder — so it never sees a folder that is about to vanish.
 *
 * Keys are the file system's absolute paths (host paths, or server paths). Holds live in this
 * process: uploads on other nodes of a cluster, or on another thread, are not seen.
 */

export interface UploadLease {
  /** Marks folders this upload created (they go if every upload into them fails). */
  created(folders: string[]): void;
  /** The upload succeeded: its folders hold a file now. */
  succeeded(): void;
  /** The upload failed: removes the new, empty folders of its chain no other upload holds. */
  failed(rmdir: (folder: string) => Promise<unknown>): Promise<void>;
}

export class UploadFolders {
  private readonly holders = new Map<string, number>();
  private readonly fresh = new Set<string>();
  /** Removals in progress, by folder: an upload into one of them waits for it. */
  private readonly removing = new Map<string, Promise<void>>();

  /**
   * Runs `write` while holding `chain` (the folders above its file, deepest first; see
   * `foldersBetween`). When it fails, the folders created for it that no other upload holds
   * and that are still empty are removed with `rmdir` (which must remove only empty folders),
   * then its error goes up.
   */
  async run<T>(chain: string[], rmdir: (folder: string) => Promise<unknown>, write: (lease: UploadLease) => Promise<T>): Promise<T> {
    const lease = await this.hold(chain);
    let written: T;
    try {
      written = await write(lease);
    } catch (e) {
      await lease.failed(rmdir);
      throw e;
    }
    lease.succeeded();
    return written;
  }

  /** Holds `chain` while an upload runs; resolves once no folder of it is being removed. */
  async hold(chain: string[]): Promise<UploadLease> {
    for (const f of chain) this.holders.set(f, (this.holders.get(f) ?? 0) + 1);
    let done = false;
    const release = () => {
      if (done) return false;
      done = true;
      for (const f of chain) {
        const n = (this.holders.get(f) ?? 1) - 1;
        if (n > 0) this.holders.set(f, n);
        else this.holders.delete(f);
      }
      return true;
    };
    const lease: UploadLease = {
      created: (folders) => {
        for (const f of folders) this.fresh.add(f);
      },
      succeeded: () => {
        if (!release()) return;
        for (const f of chain) this.fresh.delete(f);
      },
      failed: async (rmdir) => {
        if (!release()) return;
        const removal = this.removeFresh(chain, rmdir);
        for (const f of chain) this.removing.set(f, removal);
        await removal;
        for (const f of chain) if (this.removing.get(f) === removal) this.removing.delete(f);
      },
    };
    const pending = new Set(chain.map((f) => this.removing.get(f)).filter((p) => p !== undefined));
    if (pending.size > 0) await Promise.all(pending);
    return lease;
  }

  /** Removes, deepest first, the marked folders of `chain` nobody holds, while each is empty. */
  private async removeFresh(chain: string[], rmdir: (folder: string) => Promise<unknown>): Promise<void> {
    for (const f of chain) {
      // Checked before each folder: another upload may have taken it during the last rmdir.
      if (!this.fresh.has(f) || this.holders.has(f)) break;
      try {
        await rmdir(f);
      } catch {
        break; // not empty: something that stays is in it
      }
      this.fresh.delete(f);
    }
    // What is left and not held any more holds something that stays: forget it.
    for (const f of chain) if (!this.holders.has(f)) this.fresh.delete(f);
  }
}

/**
 * `deepest` and each folder above it whose path is at least as long as `top`, deepest first:
 * with `top` = the root followed by "/", the folders between a file and the root.
 */
export function foldersBetween(deepest: string, top: string): string[] {
  const out: string[] = [];
  for (let dir = deepest; dir.length >= top.length; dir = dir.slice(0, dir.lastIndexOf('/'))) out.push(dir);
  return out;
}
