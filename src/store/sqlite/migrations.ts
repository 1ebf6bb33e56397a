/**
 * Numbered SQLite migrations. A migration is never edited once released: add the next number.
 * Applied in order inside one transaction each; `PRAGMA user_version` records the last.
 * Times are integers: milliseconds since the epoch (UTC).
 */
export const MIGRATIONS: { version: number; sql: string }[] = [
  {
    version: 1,
    sql: `
CREATE TABLE organizations (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  secret_hash TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
);
CREATE TABLE users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  organization_id INTEGER NOT NULL REFERENCES organizations(id),
  email TEXT NOT NULL,
  first_name TEXT NOT NULL,
  last_name TEXT NOT NULL,
  secret_hash TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
);
CREATE TABLE instances (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  organization_id INTEGER NOT NULL REFERENCES organizations(id),
  user_id INTEGER NOT NULL REFERENCES users(id),
  element_key TEXT NOT NULL,
  name TEXT NOT NULL,
  tags TEXT NOT NULL,
  configuration TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  disabled INTEGER NOT NULL DEFAULT 0,
  valid INTEGER NOT NULL DEFAULT 1,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX instances_org ON instances(organization_id, id);
CREATE TABLE document_tags (
  instance_id INTEGER NOT NULL,
  path TEXT NOT NULL,
  tags TEXT NOT NULL,
  PRIMARY KEY (instance_id, path)
) WITHOUT ROWID;
CREATE TABLE account_settings (
  organization_id INTEGER NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (organization_id, key)
) WITHOUT ROWID;

CREATE TABLE events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  organization_id INTEGER NOT NULL,
  instance_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  status TEXT NOT NULL,
  execution TEXT NOT NULL,
  status_code INTEGER,
  method TEXT NOT NULL,
  url TEXT NOT NULL,
  callback_url TEXT NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  response TEXT
);
CREATE INDEX events_org ON events(organization_id, id);
CREATE INDEX events_instance ON events(instance_id, id);
CREATE TABLE jobs (
  event_id INTEGER PRIMARY KEY,
  instance_id INTEGER NOT NULL,
  request TEXT NOT NULL,
  body BLOB,
  lease_owner TEXT,
  lease_until INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_lease ON jobs(lease_until, event_id);
CREATE TABLE idempotency_keys (
  instance_id INTEGER NOT NULL,
  key TEXT NOT NULL,
  event_id INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (instance_id, key)
) WITHOUT ROWID;
CREATE TABLE subscriptions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  organization_id INTEGER NOT NULL,
  url TEXT NOT NULL,
  active INTEGER NOT NULL DEFAULT 1,
  UNIQUE (organization_id, url)
);
CREATE TABLE notifications (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id INTEGER NOT NULL UNIQUE,
  organization_id INTEGER NOT NULL,
  subscription_id INTEGER NOT NULL,
  body TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  due_at INTEGER,
  lease_until INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX notifications_due ON notifications(due_at) WHERE due_at IS NOT NULL;
CREATE INDEX notifications_org ON notifications(organization_id, id);
CREATE TABLE deliveries (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  notification_id INTEGER NOT NULL,
  at INTEGER NOT NULL,
  url TEXT NOT NULL,
  status_code INTEGER,
  error TEXT,
  duration_ms INTEGER NOT NULL
);
CREATE INDEX deliveries_notification ON deliveries(notification_id, id);
CREATE TABLE results (
  event_id INTEGER PRIMARY KEY,
  organization_id INTEGER NOT NULL,
  content_type TEXT NOT NULL,
  data BLOB NOT NULL,
  expires_at INTEGER NOT NULL
);
`,
  },
  {
    version: 2,
    // Per-instance job lookups: fair claims when one instance's backlog fills the claim window.
    sql: `CREATE INDEX jobs_instance ON jobs(instance_id, event_id);`,
  },
  {
    version: 3,
    // Leased jobs only (few): the per-instance running counts of every claim read this, not the
    // whole backlog.
    sql: `CREATE INDEX jobs_leased ON jobs(instance_id) WHERE lease_until > 0;`,
  },
  {
    version: 4,
    // Since claims read jobs in id order and count leases through jobs_leased, jobs_lease only
    // served the release of all leases at start-up (which jobs_leased serves as well), while
    // every accept, lease, renewal and completion paid for keeping it.
    sql: `DROP INDEX IF EXISTS jobs_lease;`,
  },
  {
    version: 6,
    // Trace context (W3C traceparent, tracestate) of the event, continued on its webhook; and
    // the queued notifications, counted by every metrics scrape (few rows: a partial index).
    sql: `
ALTER TABLE notifications ADD COLUMN traceparent TEXT;
ALTER TABLE notifications ADD COLUMN tracestate TEXT;
CREATE INDEX notifications_queued ON notifications(organization_id) WHERE status = 'queued';
`,
  },
  {
    version: 7,
    // The per-event journal of documents-hub jobs (issue 25): what a job is about to write, so a
    // re-run after a crash recognises it as its own. Rows of finished jobs are purged.
    sql: `CREATE TABLE job_journal (
  event_id INTEGER NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (event_id, key)
) WITHOUT ROWID;`,
  },
  {
    version: 8,
    // Signature key rotation (issue 24): previous keys still sent until their overlap ends,
    // JSON [{key (encrypted), until (ms)}].
    sql: `ALTER TABLE instances ADD COLUMN retired_signature_keys TEXT NOT NULL DEFAULT '[]';`,
  },
  {
    version: 11,
    // Change polling (src/changes/, store/changes.ts): one schedule per watched instance with
    // the lease of the node polling it, and the snapshot of the last poll.
    sql: `
CREATE TABLE change_schedules (
  instance_id INTEGER PRIMARY KEY,
  organization_id INTEGER NOT NULL,
  interval_ms INTEGER NOT NULL,
  watch TEXT NOT NULL,
  baselined INTEGER NOT NULL DEFAULT 0,
  snapshot_version INTEGER NOT NULL DEFAULT 0,
  next_poll_at INTEGER NOT NULL,
  lease_owner TEXT,
  lease_until INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX change_schedules_due ON change_schedules(next_poll_at);
CREATE TABLE change_snapshots (
  instance_id INTEGER NOT NULL,
  path TEXT NOT NULL,
  directory INTEGER NOT NULL,
  fingerprint TEXT NOT NULL,
  PRIMARY KEY (instance_id, path)
) WITHOUT ROWID;
`,
  },
  {
    version: 12,
    // Progress of running jobs (issue 16): JSON figures written at most every 500 ms per running
    // job, and with the outcome. (Cancellation needs no column: `cancelling` and `cancelled` are
    // values of events.execution.)
    sql: `ALTER TABLE events ADD COLUMN progress TEXT;`,
  },
];
