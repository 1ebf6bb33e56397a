/**
 * Names the calling thread for the operating system (Linux: /proc/thread-self/comm, at most 15
 * bytes), so `top -H`, `ps -L` and /proc/<pid>/task/<tid>/comm tell Ferry's threads apart: the
 * runner thread (`ferry-runner`) and the SQLite checkpointer (`ferry-checkpoint`) instead of
 * one more `node`. Best effort: elsewhere, or when not permitted, the name stays as it was.
 */
import fs from 'node:fs';

export function nameThisThread(name: string): void {
  try {
    // A synchronous write runs on the calling thread, so thread-self is this thread.
    fs.writeFileSync('/proc/thread-self/comm', name.slice(0, 15));
  } catch {
    // Not Linux, or /proc not mounted: nothing to name.
  }
}
