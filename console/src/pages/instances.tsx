/**
 * Instances: the organization's connected accounts, enable/disable, delete (confirmed), and the
 * way to their files and events.
 */
import { api } from '../api';
import { href } from '../router';
import { forgetInstanceToken } from '../session';
import type { Instance } from '../types';
import { ErrorAlert, Layout, Link, formatDate, useAction, useLoad } from '../ui';

export function Instances() {
  const list = useLoad(async () => (await api<Instance[]>('/instances')).data, 'instances');
  const action = useAction();

  const setEnabled = (instance: Instance, enabled: boolean) =>
    action.run(async () => {
      await api(`/instances/${instance.id}/enabled`, { method: enabled ? 'PUT' : 'DELETE' });
      await list.reload();
    });

  const remove = (instance: Instance) => {
    if (!window.confirm(`Delete instance "${instance.name}" (id ${instance.id})? Its token stops working at once.`)) return;
    void action.run(async () => {
      await api(`/instances/${instance.id}`, { method: 'DELETE' });
      forgetInstanceToken(instance.id);
      await list.reload();
    });
  };

  return (
    <Layout title="Instances">
      <p class="toolbar">
        <Link to={href('/instances/new')} class="button">
          New instance
        </Link>
      </p>
      <ErrorAlert error={list.error ?? action.error} />
      {list.data && list.data.length === 0 ? <p>No instances yet. Create one with “New instance”.</p> : null}
      {list.data && list.data.length > 0 ? (
        <table>
          <caption class="visually-hidden">Instances</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Element</th>
              <th scope="col">Id</th>
              <th scope="col">Enabled</th>
              <th scope="col">Events</th>
              <th scope="col">Created</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {list.data.map((instance) => (
              <tr key={instance.id}>
                <th scope="row">{instance.name}</th>
                <td>{instance.element.name}</td>
                <td>{instance.id}</td>
                <td>{instance.disabled ? 'No' : 'Yes'}</td>
                <td>{instance.eventsEnabled ? 'On' : 'Off'}</td>
                <td>{formatDate(instance.createdDate)}</td>
                <td class="actions">
                  <Link to={href(`/instances/${instance.id}/files`)} aria-label={`Files of ${instance.name}`}>
                    Files
                  </Link>
                  <Link to={href('/events', { instance: instance.id })} aria-label={`Events of ${instance.name}`}>
                    Events
                  </Link>
                  <button
                    type="button"
                    class="secondary"
                    disabled={action.busy}
                    aria-label={`${instance.disabled ? 'Enable' : 'Disable'} ${instance.name}`}
                    onClick={() => setEnabled(instance, instance.disabled)}
                  >
                    {instance.disabled ? 'Enable' : 'Disable'}
                  </button>
                  <button
                    type="button"
                    class="danger"
                    disabled={action.busy}
                    aria-label={`Delete ${instance.name}`}
                    onClick={() => remove(instance)}
                  >
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {list.loading && !list.data ? <p role="status">Loading…</p> : null}
    </Layout>
  );
}
