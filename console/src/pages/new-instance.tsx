/**
 * New instance: pick an element, then fill a form built from that element's configuration
 * metadata (GET /elements/{key}): required keys marked, secret keys as password inputs, on/off
 * keys (default "true"/"false") as checkboxes. The new instance's token is shown once and kept
 * in this tab so its files can be browsed.
 */
import { useState } from 'preact/hooks';
import { api } from '../api';
import { href, navigate, useLocation } from '../router';
import { saveInstanceToken } from '../session';
import type { ConfigKey, Element, Instance } from '../types';
import { ErrorAlert, Field, Layout, Link, useAction, useLoad } from '../ui';

const isSwitch = (key: ConfigKey) => key.defaultValue === 'true' || key.defaultValue === 'false';

export function NewInstance() {
  const { query } = useLocation();
  const elementKey = query.get('element') ?? '';
  const elements = useLoad(async () => (await api<Element[]>('/elements')).data, 'elements');
  const element = useLoad(
    async () => (elementKey ? (await api<Element>(`/elements/${encodeURIComponent(elementKey)}`)).data : null),
    `element:${elementKey}`,
  );
  const [name, setName] = useState('');
  const [values, setValues] = useState<Record<string, string>>({});
  const [created, setCreated] = useState<Instance | null>(null);
  const action = useAction();

  const set = (key: string, value: string) => setValues((v) => ({ ...v, [key]: value }));
  const valueOf = (key: ConfigKey) => values[key.key] ?? key.defaultValue ?? '';

  const submit = (event: Event) => {
    event.preventDefault();
    const def = element.data;
    if (!def) return;
    void action.run(async () => {
      const configuration: Record<string, string> = {};
      for (const key of def.configuration) {
        const value = valueOf(key);
        if (value !== '') configuration[key.key] = value;
      }
      const { data } = await api<Instance>('/instances', { method: 'POST', json: { element: { key: def.key }, name, configuration } });
      if (data.token) saveInstanceToken(data.id, data.token);
      setCreated(data);
    });
  };

  if (created) {
    return (
      <Layout title="Instance created">
        <p role="status">
          Instance “{created.name}” (id {created.id}) is ready.
        </p>
        <p>
          Its token is shown only once; this tab keeps it so you can browse its files. Keep a copy to use it elsewhere:
        </p>
        <p>
          <code class="token">{created.token ?? ''}</code>
        </p>
        <p class="toolbar">
          <Link to={href(`/instances/${created.id}/files`)} class="button">
            Browse files
          </Link>
          <Link to={href('/instances')}>Back to instances</Link>
        </p>
      </Layout>
    );
  }

  return (
    <Layout title="New instance">
      <ErrorAlert error={elements.error ?? element.error} />
      <form onSubmit={submit}>
        <div class="field">
          <label for="element">Element</label>
          <select
            id="element"
            value={elementKey}
            onChange={(e) => {
              setValues({});
              navigate(href('/instances/new', { element: (e.currentTarget as HTMLSelectElement).value }), { replace: true });
            }}
          >
            <option value="">Choose an element…</option>
            {(elements.data ?? []).map((e) => (
              <option key={e.key} value={e.key}>
                {e.name} ({e.key})
              </option>
            ))}
          </select>
        </div>
        {element.data ? (
          <fieldset>
            <legend>{element.data.name} configuration</legend>
            {element.data.description ? <p class="hint">{element.data.description}</p> : null}
            <p class="hint">
              Fields marked <span aria-hidden="true">*</span> are required.
            </p>
            <Field label="Instance name" id="instance-name" required value={name} onInput={setName} />
            {element.data.configuration.map((key) =>
              isSwitch(key) ? (
                <div class="field check" key={key.key}>
                  <input
                    type="checkbox"
                    id={`cfg-${key.key}`}
                    checked={valueOf(key) === 'true'}
                    onChange={(e) => set(key.key, (e.currentTarget as HTMLInputElement).checked ? 'true' : 'false')}
                  />
                  <label for={`cfg-${key.key}`}>{key.name}</label>
                </div>
              ) : (
                <Field
                  key={key.key}
                  id={`cfg-${key.key}`}
                  label={key.name}
                  type={key.secret ? 'password' : 'text'}
                  autoComplete={key.secret ? 'new-password' : 'off'}
                  required={key.required}
                  hint={[key.key, key.description].filter(Boolean).join(' — ')}
                  value={valueOf(key)}
                  onInput={(v) => set(key.key, v)}
                />
              ),
            )}
          </fieldset>
        ) : null}
        <ErrorAlert error={action.error} />
        <button type="submit" disabled={!element.data || action.busy}>
          Create instance
        </button>
      </form>
    </Layout>
  );
}
