/**
 * Folders created for uploads still in flight, shared by the uploads of one process. A write
 * creates the missing folders above its file and, when it fails, removes them again — but
 * another upload may be writing into the same new folder at that moment. Removing it then made
 * that other upload fail (its folder vanished under it); keeping it because the other one was
 * using it left an orphan when the other failed too (neither had created it "itself").
 *
 * So the folders are held, not owned: an upload holds the chain of folders above its file for
 * as long as it runs; folders created for any upload are marked; and when an upload fails, the
 * marked folders of its chain that no other upload holds any more are removed, deepest first,
 * each only while empty. The last upload to leave a new folder decides: if anything succeeded
 * in it the folder is not empty and stays, else it goes. Keys are host (or remote) paths.
 */
import { removeEmptyFolders } from './element.js';

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

  /** Holds `chain` (the folders above a file, deepest first) while an upload runs. */
  hold(chain: string[]): UploadLease {
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
    return {
      created: (folders) => {
        for (const f of folders) this.fresh.add(f);
      },
      succeeded: () => {
        if (!release()) return;
        for (const f of chain) this.fresh.delete(f);
      },
      failed: async (rmdir) => {
        if (!release()) return;
        const removable: string[] = [];
        for (const f of chain) {
          if (!this.fresh.has(f) || this.holders.has(f)) break;
          removable.push(f);
        }
        await removeEmptyFolders(removable, async (f) => {
          await rmdir(f);
          this.fresh.delete(f);
        });
        // What is not empty any more holds something that stays: forget it.
        for (const f of chain) if (!this.holders.has(f)) this.fresh.delete(f);
      },
    };
  }
}
