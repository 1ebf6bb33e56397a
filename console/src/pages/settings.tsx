/**
 * Settings: the account's webhook failure policy (retry, or queue at the first failure) and the
 * notifications queued for delivery, with "Reactivate" per callback URL (the deliveries API's
 * PUT: reactivates the URL's subscription and redelivers what is queued for it).
 */
import { useEffect, useState } from 'preact/hooks';
import { api, ceqlString } from '../api';
import { href } from '../router';
import type { DeliveryListing } from '../types';
import { ErrorAlert, Layout, Link, formatDate, useAction, useLoad } from '../ui';

const POLICY = 'notification.webhook.failure.policy';

export function Settings() {
  const settings = useLoad(async () => (await api<Record<string, string>>('/accounts/settings')).data, 'settings');
  const queued = useLoad(
    async () => (await api<DeliveryListing[]>('/notifications/subscriptions/deliveries', { query: { where: "status = 'queued'", pageSize: 200 } })).data,
    'queued',
    3000,
  );
  const [policy, setPolicy] = useState('retry');
  const [saved, setSaved] = useState('');
  const save = useAction();
  const reactivate = useAction();
  useEffect(() => {
    if (settings.data?.[POLICY]) setPolicy(settings.data[POLICY]);
  }, [settings.data]);

  const submit = (e: Event) => {
    e.preventDefault();
    setSaved('');
    void save.run(async () => {
      await api('/accounts/settings', { method: 'PATCH', json: { [POLICY]: policy } });
      await settings.reload();
      setSaved(`Failure policy saved: ${policy}`);
    });
  };

  const urls = [...new Set((queued.data ?? []).map((d) => d.config.url))];

  return (
    <Layout title="Settings">
      <ErrorAlert error={settings.error} />
      <form onSubmit={submit}>
        <fieldset>
          <legend>Webhook failure policy</legend>
          <div class="field check">
            <input type="radio" id="policy-retry" name="policy" value="retry" checked={policy === 'retry'} onChange={() => setPolicy('retry')} />
            <label for="policy-retry">Retry: retry a failed webhook on the backoff schedule, then queue it</label>
          </div>
          <div class="field check">
            <input type="radio" id="policy-queue" name="policy" value="queue" checked={policy === 'queue'} onChange={() => setPolicy('queue')} />
            <label for="policy-queue">Queue: keep a failed webhook queued until it is reactivated</label>
          </div>
        </fieldset>
        <ErrorAlert error={save.error} />
        <button type="submit" disabled={save.busy}>
          Save policy
        </button>
        {saved ? (
          <p role="status" class="notice">
            {saved}
          </p>
        ) : null}
      </form>

      <section aria-labelledby="queued-h">
        <h2 id="queued-h">Queued deliveries</h2>
        <ErrorAlert error={queued.error ?? reactivate.error} />
        {queued.data && queued.data.length === 0 ? <p>Nothing is queued.</p> : null}
        {urls.map((url) => (
          <p class="toolbar" key={url}>
            <button
              type="button"
              disabled={reactivate.busy}
              aria-label={`Reactivate ${url}`}
              onClick={() =>
                reactivate.run(async () => {
                  await api('/notifications/subscriptions/deliveries', { method: 'PUT', query: { where: `config.url = ${ceqlString(url)}` } });
                  await queued.reload();
                })
              }
            >
              Reactivate
            </button>
            <span>{url}</span>
          </p>
        ))}
        {queued.data && queued.data.length > 0 ? (
          <table>
            <caption class="visually-hidden">Queued deliveries</caption>
            <thead>
              <tr>
                <th scope="col">Notification</th>
                <th scope="col">Event</th>
                <th scope="col">Callback URL</th>
                <th scope="col">Queued since</th>
              </tr>
            </thead>
            <tbody>
              {queued.data.map((d) => (
                <tr key={d.notificationId}>
                  <th scope="row">{d.notificationId}</th>
                  <td>
                    <Link to={href(`/events/${d.eventId}`)}>{`Event ${d.eventId}`}</Link>
                  </td>
                  <td>{d.config.url}</td>
                  <td>{formatDate(d.updatedDate)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
      </section>
    </Layout>
  );
}
