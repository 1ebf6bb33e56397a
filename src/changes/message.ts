/**
 * The webhook body of change notifications, as Open Connectors' polling events look:
 *
 *   {"message": {"eventId", "instanceId", "elementKey", "events": [ … at most 10 … ], "raw": {…}}}
 *
 * each event `{objectType: "file"|"folder", objectId: <hub id>, eventType:
 * "CREATED"|"UPDATED"|"DELETED", elementKey, path, date}`. `eventId` is the Ferry event that
 * carries the notification (unique per notification; the store assigns it). `raw` holds what
 * the rescan saw of each object (size, modification time, version), Ferry's counterpart of the
 * vendor payload the platform passes on.
 *
 * Owns: the body's shape and the chunking. May import: documents/paths.ts (objectId),
 * changes/diff.ts, store/changes.ts (types).
 */
import { objectId } from '../documents/paths.js';
import type { ChangeNotificationInput } from '../store/changes.js';
import type { Change } from './diff.js';
import type { Watch } from './settings.js';

/** At most this many changes per notification (the platform's polling limit). */
export const MAX_EVENTS_PER_NOTIFICATION = 10;

export interface ChangeEvent {
  objectType: 'file' | 'folder';
  objectId: string;
  eventType: Change['eventType'];
  elementKey: string;
  path: string;
  date: string;
}

/** Splits `changes` into notifications of at most MAX_EVENTS_PER_NOTIFICATION, in order. */
export function notificationsFor(
  changes: Change[],
  context: { instanceId: number; elementKey: string; watch: Watch; polledAt: Date },
): ChangeNotificationInput[] {
  const out: ChangeNotificationInput[] = [];
  for (let i = 0; i < changes.length; i += MAX_EVENTS_PER_NOTIFICATION) {
    const chunk = changes.slice(i, i + MAX_EVENTS_PER_NOTIFICATION);
    const date = context.polledAt.toISOString();
    const events: ChangeEvent[] = chunk.map((c) => ({
      objectType: c.directory ? 'folder' : 'file',
      objectId: objectId(c.path),
      eventType: c.eventType,
      elementKey: context.elementKey,
      path: c.path,
      // When the change was seen; a creation or update dated by the object itself when it says.
      date: c.eventType !== 'DELETED' && c.entry?.modifiedDate ? c.entry.modifiedDate.toISOString() : date,
    }));
    const raw = {
      polledDate: date,
      watch: context.watch,
      objects: chunk.map((c) => ({
        path: c.path,
        eventType: c.eventType,
        directory: c.directory,
        ...(c.entry
          ? { size: c.entry.size, modifiedDate: c.entry.modifiedDate?.toISOString() ?? null, version: c.entry.version ?? null }
          : {}),
      })),
    };
    out.push({
      response: { events },
      body: (eventId) =>
        JSON.stringify({ message: { eventId, instanceId: context.instanceId, elementKey: context.elementKey, events, raw } }),
    });
  }
  return out;
}
