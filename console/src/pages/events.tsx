/**
 * Events: asynchronous requests of the organization, newest first, filtered by status and
 * instance on the server and paged by the API's next-page token. The first page refreshes
 * itself every two seconds, so new events and status changes appear without a reload.
 */
import { api } from '../api';
import { href, navigate, useLocation } from '../router';
import type { FerryEvent, Instance } from '../types';
import { ErrorAlert, Layout, Link, formatDate, formatDuration, useLoad } from '../ui';

export const EVENT_STATUSES = ['DISPATCHED', 'CONSUMED', 'NOTIFIED'] as const;
/** Rows per page; `?pageSize=` in the console URL overrides it (kept by filters and paging). */
const PAGE_SIZE = 25;

/** "GET /hubs/documents/files" from a stored URL, without its query. */
export function routeOf(event: FerryEvent): string {
  const url = event.providerData?.url ?? '';
  return `${event.providerData?.method ?? ''} ${url.split('?')[0]}`;
}

export function Events() {
  const { query } = useLocation();
  const status = query.get('status') ?? '';
  const instance = query.get('instance') ?? '';
  const nextPage = query.get('nextPage') ?? '';
  const pageSize = query.get('pageSize') ?? '';
  const instances = useLoad(async () => (await api<Instance[]>('/instances')).data, 'instances');
  const page = useLoad(
    async () => {
      const path = instance ? `/instances/${encodeURIComponent(instance)}/events` : '/instances/events';
      const { data, headers } = await api<FerryEvent[]>(path, { query: { status, pageSize: pageSize || PAGE_SIZE, nextPage } });
      return { events: data, next: headers.get('Elements-Next-Page-Token') };
    },
    `events:${status}:${instance}:${pageSize}:${nextPage}`,
    2000,
  );
  const names = new Map((instances.data ?? []).map((i) => [i.id, i.name]));
  const filter = (change: Record<string, string>) => navigate(href('/events', { status, instance, pageSize, ...change }));

  return (
    <Layout title="Events">
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <div class="field">
          <label for="filter-status">Status</label>
          <select id="filter-status" value={status} onChange={(e) => filter({ status: (e.currentTarget as HTMLSelectElement).value })}>
            <option value="">All statuses</option>
            {EVENT_STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="filter-instance">Instance</label>
          <select
            id="filter-instance"
            value={instance}
            onChange={(e) => filter({ instance: (e.currentTarget as HTMLSelectElement).value })}
          >
            <option value="">All instances</option>
            {(instances.data ?? []).map((i) => (
              <option key={i.id} value={String(i.id)}>
                {i.name} (id {i.id})
              </option>
            ))}
          </select>
        </div>
      </form>
      <ErrorAlert error={page.error} />
      {page.data && page.data.events.length === 0 ? <p>No events{status || instance ? ' match these filters' : ' yet'}.</p> : null}
      {page.data && page.data.events.length > 0 ? (
        <table>
          <caption class="visually-hidden">Events</caption>
          <thead>
            <tr>
              <th scope="col">Id</th>
              <th scope="col">Instance</th>
              <th scope="col">Request</th>
              <th scope="col">Status</th>
              <th scope="col">Created</th>
              <th scope="col">Duration</th>
              <th scope="col">Notification</th>
            </tr>
          </thead>
          <tbody>
            {page.data.events.map((event) => (
              <tr key={event.id}>
                <th scope="row">
                  <Link to={href(`/events/${event.id}`)} aria-label={`Event ${event.id}`}>
                    {event.id}
                  </Link>
                </th>
                <td>{names.get(event.instanceId) ?? `#${event.instanceId}`}</td>
                <td>
                  <code>{routeOf(event)}</code>
                </td>
                <td>
                  <span class={`badge s-${event.status.toLowerCase()}`}>{event.status}</span>
                </td>
                <td>{formatDate(event.eventDate)}</td>
                <td>{formatDuration(event.execution?.durationMs)}</td>
                <td>{event.notification?.status ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {page.loading && !page.data ? <p role="status">Loading…</p> : null}
      <nav class="pager" aria-label="Pages">
        {nextPage ? <Link to={href('/events', { status, instance, pageSize })}>First page</Link> : null}
        {page.data?.next ? <Link to={href('/events', { status, instance, pageSize, nextPage: page.data.next })}>Next page</Link> : null}
      </nav>
    </Layout>
  );
}
