/**
 * The wake/claim cycle shared by the runner (jobs), the sender (notifications) and the change
 * poller (due polls).
 *
 * Contract: `wake()` asks for a claim soon. Wake-ups of one event-loop turn (a batch of accepts
 * or completions) share one claim; claims never overlap; a wake during a claim makes it go
 * round once more; a claim that filled every free slot goes round again at once. When a round
 * ends the loop sleeps for `delayAfter()` ms (a poll: NOTIFY and in-process wake-ups are only
 * latency hints, polling is what guarantees progress), unless woken sooner; `null` sleeps
 * until woken (the change poller, when nothing is scheduled).
 */
export class ClaimLoop {
  private running = false;
  private again = false;
  private scheduled = false;
  private stopped = false;
  private paused = false;
  private timer: NodeJS.Timeout | null = null;
  private current: Promise<void> = Promise.resolve();

  constructor(
    /** Claims once; returns true when it filled every free slot (more may be waiting). */
    private readonly claimOnce: () => Promise<boolean>,
    /** Milliseconds to sleep after a round; null: no timer, sleep until woken. */
    private readonly delayAfter: () => Promise<number | null>,
    private readonly onError: (error: unknown) => void,
  ) {}

  wake(): void {
    if (this.stopped) return;
    if (this.running || this.paused) {
      this.again = true;
      return;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.running || this.paused) this.again = true;
      else if (!this.stopped) this.current = this.round();
    });
  }

  /**
   * While paused no claim starts (one in progress finishes); wake-ups are kept and the loop
   * claims once it resumes.
   */
  pause(value: boolean): void {
    if (value === this.paused) return;
    this.paused = value;
    if (!value && this.again) {
      this.again = false;
      this.wake();
    }
  }

  /** No more claims; resolves when a claim in progress has finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.current;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  private async round(): Promise<void> {
    this.running = true;
    try {
      do {
        this.again = false;
        if (await this.claimOnce()) this.again = true;
      } while (this.again && !this.stopped && !this.paused);
    } catch (e) {
      this.onError(e);
    } finally {
      this.running = false;
    }
    if (this.stopped) return;
    let delay: number | null;
    try {
      delay = await this.delayAfter();
    } catch {
      delay = 500;
    }
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (delay === null) return;
    this.timer = setTimeout(() => this.wake(), Math.min(Math.max(delay, 5), 2 ** 31 - 1));
    this.timer.unref();
  }
}
