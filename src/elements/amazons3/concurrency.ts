/**
 * Bounded concurrency over a lazily pulled sequence: at most `limit` calls in flight, and the
 * source (e.g. a paged S3 listing) is read only as fast as the work drains, so memory stays
 * flat however many objects a folder holds.
 */

/**
 * Calls `fn` for every item of `items` with at most `limit` calls running at once. Stops pulling
 * new items after the first failure, waits for the running calls, and throws that failure.
 */
export async function forEachBounded<T>(
  items: AsyncIterable<T> | Iterable<T>,
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  const iterator: AsyncIterator<T> | Iterator<T> =
    Symbol.asyncIterator in items
      ? (items as AsyncIterable<T>)[Symbol.asyncIterator]()
      : (items as Iterable<T>)[Symbol.iterator]();
  let failure: { error: unknown } | null = null;
  let exhausted = false;

  // Async generators queue concurrent next() calls, so workers can share one iterator.
  const worker = async (): Promise<void> => {
    while (failure === null && !exhausted) {
      let next: IteratorResult<T>;
      try {
        next = await iterator.next();
      } catch (error) {
        failure ??= { error };
        return;
      }
      if (next.done) {
        exhausted = true;
        return;
      }
      try {
        await fn(next.value);
      } catch (error) {
        failure ??= { error };
        return;
      }
    }
  };

  await Promise.all(Array.from({ length: Math.max(1, limit) }, worker));
  if (failure !== null) {
    await iterator.return?.();
    throw (failure as { error: unknown }).error;
  }
}
