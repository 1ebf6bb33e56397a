/**
 * One event: the request, its execution (with progress when the API reports it), the webhook
 * body as formatted JSON, and every delivery attempt. Refreshes itself every 1.5 s, so the user
 * watches a job complete and its notification delivered. "Redeliver" (for a failed — `retry` —
 * or `queued` notification) sends that one notification again now, through
 * PUT /notifications/subscriptions/deliveries/{notificationId}.
 */
import type { ComponentChildren } from 'preact';
import { api } from '../api';
import { href } from '../router';
import type { FerryEvent } from '../types';
import { ErrorAlert, Layout, Link, formatDate, formatDuration, useAction, useLoad } from '../ui';
import { routeOf } from './events';

const SECRET_HEADER = /authorization|secret|token|key|cookie|signature|password/i;

function Row(props: { label: string; children: ComponentChildren }) {
  return (
    <>
      <dt>{props.label}</dt>
      <dd>{props.children}</dd>
    </>
  );
}

export function EventPage(props: { id: string }) {
  const event = useLoad(async () => (await api<FerryEvent>(`/instances/events/${encodeURIComponent(props.id)}`)).data, `event:${props.id}`, 1500);
  const action = useAction();
  const e = event.data;

  const redeliver = () =>
    action.run(async () => {
      if (!e) return;
      if (!e.notification) return;
      await api(`/notifications/subscriptions/deliveries/${e.notification.id}`, { method: 'PUT' });
      await event.reload();
    });

  return (
    <Layout title={`Event ${props.id}`}>
      <p>
        <Link to={href('/events')}>All events</Link>
      </p>
      <ErrorAlert error={event.error} />
      {event.loading && !e ? <p role="status">Loading…</p> : null}
      {e ? (
        <>
          <section aria-labelledby="summary-h">
            <h2 id="summary-h">Summary</h2>
            <dl>
              <Row label="Status">
                <span class={`badge s-${e.status.toLowerCase()}`} data-testid="event-status">
                  {e.status}
                </span>
              </Row>
              <Row label="Instance">
                <Link to={href(`/instances/${e.instanceId}/files`)}>{`#${e.instanceId}`}</Link>
              </Row>
              <Row label="Created">{formatDate(e.eventDate)}</Row>
              <Row label="Callback URL">{e.callbackUrl}</Row>
            </dl>
          </section>
          <section aria-labelledby="request-h">
            <h2 id="request-h">Request</h2>
            <dl>
              <Row label="Method and route">
                <code>{routeOf(e)}</code>
              </Row>
              <Row label="URL">
                <code>{e.providerData.url}</code>
              </Row>
              {e.providerData.headers
                ? Object.entries(e.providerData.headers).map(([name, value]) => (
                    <Row key={name} label={name}>
                      <code>{SECRET_HEADER.test(name) ? '********' : String(value)}</code>
                    </Row>
                  ))
                : null}
            </dl>
          </section>
          <section aria-labelledby="execution-h">
            <h2 id="execution-h">Execution</h2>
            <dl>
              <Row label="State">
                <span data-testid="execution-state">{e.execution.state}</span>
              </Row>
              <Row label="Status code">{e.execution.statusCode ?? '—'}</Row>
              <Row label="Started">{formatDate(e.execution.startedDate)}</Row>
              <Row label="Finished">{formatDate(e.execution.finishedDate)}</Row>
              <Row label="Duration">{formatDuration(e.execution.durationMs)}</Row>
              {e.execution.progress
                ? Object.entries(e.execution.progress).map(([name, value]) => (
                    <Row key={name} label={`Progress: ${name}`}>
                      {typeof value === 'object' ? JSON.stringify(value) : String(value)}
                    </Row>
                  ))
                : null}
            </dl>
          </section>
          <section aria-labelledby="webhook-h">
            <h2 id="webhook-h">Webhook body</h2>
            {e.notifiedData === null || e.notifiedData === undefined ? (
              <p>Not written yet: the job has not finished.</p>
            ) : (
              <pre tabIndex={0} aria-label="Webhook body (JSON)">
                {JSON.stringify(e.notifiedData, null, 2)}
              </pre>
            )}
          </section>
          <section aria-labelledby="deliveries-h">
            <h2 id="deliveries-h">Delivery attempts</h2>
            {e.notification ? (
              <p>
                Notification {e.notification.id}: <strong data-testid="notification-status">{e.notification.status}</strong>,{' '}
                {e.notification.attempts} attempt{e.notification.attempts === 1 ? '' : 's'}
                {e.notification.nextAttemptDate ? `, next attempt ${formatDate(e.notification.nextAttemptDate)}` : ''}.
              </p>
            ) : (
              <p>No notification yet.</p>
            )}
            {e.notification?.status === 'queued' || e.notification?.status === 'retry' ? (
              <p class="toolbar">
                <button type="button" onClick={redeliver} disabled={action.busy}>
                  Redeliver
                </button>
                <span class="hint">Sends this notification again now (and reactivates {e.callbackUrl} if it was stopped).</span>
              </p>
            ) : null}
            <ErrorAlert error={action.error} />
            {e.deliveries.length > 0 ? (
              <table>
                <caption class="visually-hidden">Delivery attempts</caption>
                <thead>
                  <tr>
                    <th scope="col">Time</th>
                    <th scope="col">URL</th>
                    <th scope="col">Status code</th>
                    <th scope="col">Duration</th>
                    <th scope="col">Error</th>
                  </tr>
                </thead>
                <tbody>
                  {e.deliveries.map((d, i) => (
                    <tr key={i} class={d.statusCode !== null && d.statusCode >= 200 && d.statusCode < 300 ? 'ok' : 'failed'}>
                      <td>{formatDate(d.date)}</td>
                      <td>{d.url}</td>
                      <td>{d.statusCode ?? '—'}</td>
                      <td>{formatDuration(d.durationMs)}</td>
                      <td>{d.error ?? ''}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            ) : (
              <p>No delivery attempt yet.</p>
            )}
          </section>
        </>
      ) : null}
    </Layout>
  );
}
