/**
 * @ferry/client: a typed, fetch-based client for Ferry (Node ≥ 20 and browsers) and the webhook
 * verifier (also importable alone as `@ferry/client/verify`).
 */
export { FerryClient, type FerryClientOptions, type WaitOptions, type PageOptions } from './client.js';
export { HubClient, AsyncHubClient, type AsyncOptions, type CopyOptions, type ListOptions, type UploadOptions, type NodeWritableLike } from './hub.js';
export {
  BulkClient,
  BULK_FINAL_STATUSES,
  type BatchOptions,
  type BatchStarted,
  type BulkErrorRow,
  type BulkRecord,
  type BulkRow,
  type BulkStartOptions,
  type BulkStarted,
  type BulkStatus,
  type BulkWaitOptions,
} from './bulk.js';
export { FerryError } from './errors.js';
export type { UploadSource } from './upload.js';
export * from './types.js';
export {
  verifyWebhook,
  checkWebhookSignatures,
  WebhookVerificationError,
  DEFAULT_TOLERANCE_SECONDS,
  type FerryNotification,
  type SignatureCheck,
  type VerifyWebhookOptions,
  type WebhookFailure,
  type WebhookHeaders,
} from './verify.js';
