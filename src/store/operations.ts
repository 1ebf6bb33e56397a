/**
 * What operating a node needs from the store (part of the `Store` interface): the readiness
 * probe's schema check, the scrape-time gauges, and the lease release of a draining node.
 * Both backends implement it beside their other methods (sqlite/operations.ts,
 * postgres/operations.ts).
 */

/** The schema version the store has, and the one this Ferry needs. */
export interface SchemaStatus {
  applied: number;
  required: number;
}

/** Event counts for the metrics scrape; store-wide (cluster-wide on PostgreSQL). */
export interface OperationalCounts {
  /** Events whose job waits to run (not leased, or its lease expired). */
  pending: number;
  /** Events whose job is leased to a runner. */
  running: number;
  /** Events whose webhook waits for its next attempt (status retry). */
  retryWait: number;
  /** Acceptance time of the oldest pending event, or null when none is pending. */
  oldestPendingDate: Date | null;
  /** Notifications held as `queued` (failure policy `queue`, or an inactive subscription). */
  notificationsQueued: number;
}

export interface OperationsStore {
  /** One query: answers whether the store responds and whether its migrations are current. */
  schemaStatus(): Promise<SchemaStatus>;
  operationalCounts(): Promise<OperationalCounts>;
  /**
   * Gives back what a draining node could not finish: the jobs `owner` holds among `jobIds`
   * and the leased notifications `notificationIds` become claimable at once (not after their
   * lease), and other nodes are woken to take them.
   */
  releaseLeases(owner: string, jobIds: number[], notificationIds: number[]): Promise<void>;
}
