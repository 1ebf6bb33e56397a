/**
 * Files of one instance: a folder browser over the documents hub (breadcrumbs, paging by the
 * API's next-page token), upload by file input or drag and drop, download, new folder, delete
 * (confirmed), and "Copy folder…", an asynchronous copy whose event the user can follow.
 * Hub calls need the instance's token, which Ferry shows only once: the console keeps the
 * tokens of instances created in this tab and asks for the others.
 */
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, request } from '../api';
import { href, useLocation } from '../router';
import { instanceToken, saveInstanceToken } from '../session';
import type { DocObject, Instance } from '../types';
import { ErrorAlert, Field, Layout, Link, formatBytes, formatDate, useAction, useLoad } from '../ui';

/** Rows per page; `?pageSize=` in the console URL overrides it (kept by the paging links). */
const PAGE_SIZE = 100;

function join(folder: string, name: string): string {
  return `${folder.replace(/\/+$/, '')}/${name}`;
}

function parentOf(path: string): string {
  const cut = path.replace(/\/+$/, '').lastIndexOf('/');
  return cut <= 0 ? '/' : path.slice(0, cut);
}

function Breadcrumbs(props: { instanceId: number; path: string }) {
  const segments = props.path.split('/').filter(Boolean);
  return (
    <nav aria-label="Breadcrumb" class="breadcrumbs">
      <ol>
        <li>
          {segments.length === 0 ? (
            <span aria-current="page">Root</span>
          ) : (
            <Link to={href(`/instances/${props.instanceId}/files`, { path: '/' })}>Root</Link>
          )}
        </li>
        {segments.map((segment, i) => {
          const path = `/${segments.slice(0, i + 1).join('/')}`;
          return (
            <li key={path}>
              {i === segments.length - 1 ? (
                <span aria-current="page">{segment}</span>
              ) : (
                <Link to={href(`/instances/${props.instanceId}/files`, { path })}>{segment}</Link>
              )}
            </li>
          );
        })}
      </ol>
    </nav>
  );
}

/** Asks for the token of an instance this tab did not create. */
function TokenForm(props: { instanceId: number; onSaved: () => void }) {
  const [token, setToken] = useState('');
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        if (!token.trim()) return;
        saveInstanceToken(props.instanceId, token.trim());
        props.onSaved();
      }}
    >
      <p>
        Browsing files needs this instance's token. Ferry shows it only once, when the instance is created; the console
        remembers the tokens of instances created in this tab.
      </p>
      <Field label="Instance token" id="instance-token" type="password" autoComplete="off" required value={token} onInput={setToken} />
      <button type="submit">Use token</button>
    </form>
  );
}

function CopyFolderForm(props: { instance: Instance | undefined; source: DocObject; onDone: () => void }) {
  const [destination, setDestination] = useState(`${props.source.path}-copy`);
  const [callback, setCallback] = useState(props.instance?.configuration?.['event.notification.callback.url'] ?? '');
  const [eventId, setEventId] = useState<number | null>(null);
  const action = useAction();
  const instanceId = props.instance?.id ?? 0;
  const submit = (e: Event) => {
    e.preventDefault();
    void action.run(async () => {
      const headers: Record<string, string> = { 'Elements-Async-Request': 'true' };
      if (callback.trim()) headers['Elements-Async-Callback-Url'] = callback.trim();
      const { data } = await api<{ eventId: number }>('/hubs/documents/folders/copy', {
        method: 'POST',
        auth: { kind: 'hub', instanceId },
        query: { path: props.source.path },
        json: { path: destination },
        headers,
      });
      setEventId(data.eventId);
    });
  };
  return (
    <section class="panel" aria-labelledby="copy-h">
      <h2 id="copy-h">Copy folder “{props.source.name}”</h2>
      {eventId !== null ? (
        <p role="status">
          Copy accepted as{' '}
          <Link to={href(`/events/${eventId}`)}>{`event ${eventId}`}</Link>. Follow it there until it completes.
        </p>
      ) : (
        <form onSubmit={submit}>
          <Field label="Destination path" id="copy-destination" required value={destination} onInput={setDestination} />
          <Field
            label="Callback URL"
            id="copy-callback"
            type="url"
            value={callback}
            onInput={setCallback}
            hint="Where Ferry posts the signed webhook when the copy ends. Empty: the instance's own callback URL."
          />
          <ErrorAlert error={action.error} />
          <p class="toolbar">
            <button type="submit" disabled={action.busy}>
              Start copy
            </button>
            <button type="button" class="secondary" onClick={props.onDone}>
              Cancel
            </button>
          </p>
        </form>
      )}
    </section>
  );
}

export function Files(props: { id: string }) {
  const instanceId = Number(props.id);
  const { query } = useLocation();
  const path = query.get('path') || '/';
  const nextPage = query.get('nextPage') ?? '';
  const pageSize = query.get('pageSize') ?? '';
  const [tokenVersion, setTokenVersion] = useState(0);
  const [folderName, setFolderName] = useState('');
  const [copying, setCopying] = useState<DocObject | null>(null);
  const [dragging, setDragging] = useState(false);
  const [notice, setNotice] = useState('');
  const [overwrite, setOverwrite] = useState(false);
  const action = useAction();
  // A notice or an open copy form belongs to the folder it was made in.
  useEffect(() => {
    setNotice('');
    setCopying(null);
  }, [path]);
  const hasToken = instanceToken(instanceId) !== null;
  const hub = { kind: 'hub' as const, instanceId };

  const instance = useLoad(async () => (await api<Instance>(`/instances/${instanceId}`)).data, `instance:${instanceId}`);
  const listing = useLoad(
    async () => {
      if (!hasToken) return null;
      const { data, headers } = await api<DocObject[]>('/hubs/documents/folders/contents', {
        auth: hub,
        query: { path, pageSize: pageSize || PAGE_SIZE, nextPage },
      });
      return { items: data, next: headers.get('Elements-Next-Page-Token') };
    },
    `files:${instanceId}:${path}:${pageSize}:${nextPage}:${tokenVersion}:${hasToken}`,
  );

  const upload = (files: FileList | File[] | null) => {
    const list = Array.from(files ?? []);
    if (list.length === 0) return;
    void action.run(async () => {
      for (const file of list) {
        const form = new FormData();
        form.append('file', file, file.name);
        await request('/hubs/documents/files', { method: 'POST', auth: hub, query: { path: join(path, file.name), overwrite: overwrite ? 'true' : undefined }, body: form });
      }
      setNotice(`Uploaded ${list.map((f) => f.name).join(', ')}`);
      await listing.reload();
    });
  };

  const download = (item: DocObject) =>
    action.run(async () => {
      const response = await request('/hubs/documents/files', { auth: hub, query: { path: item.path } });
      const url = URL.createObjectURL(await response.blob());
      const anchor = document.createElement('a');
      anchor.href = url;
      anchor.download = item.name;
      document.body.appendChild(anchor);
      anchor.click();
      anchor.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    });

  const remove = (item: DocObject) => {
    const what = item.directory ? `folder “${item.name}” and everything in it` : `file “${item.name}”`;
    if (!window.confirm(`Delete the ${what}?`)) return;
    void action.run(async () => {
      await api(item.directory ? '/hubs/documents/folders' : '/hubs/documents/files', { method: 'DELETE', auth: hub, query: { path: item.path } });
      setNotice(`Deleted ${item.name}`);
      await listing.reload();
    });
  };

  const createFolder = (e: Event) => {
    e.preventDefault();
    const name = folderName.trim();
    if (!name) return;
    void action.run(async () => {
      await api('/hubs/documents/folders', { method: 'POST', auth: hub, json: { path: join(path, name) } });
      setFolderName('');
      setNotice(`Created folder ${name}`);
      await listing.reload();
    });
  };

  const title = instance.data ? `Files of ${instance.data.name}` : `Files of instance ${instanceId}`;
  const tokenRefused = listing.error instanceof ApiError && listing.error.status === 401 && listing.error.auth === 'hub';
  if (!hasToken || tokenRefused) {
    return (
      <Layout title={title}>
        <ErrorAlert error={instance.error ?? listing.error} />
        <TokenForm instanceId={instanceId} onSaved={() => setTokenVersion((v) => v + 1)} />
      </Layout>
    );
  }

  return (
    <Layout title={title}>
      <Breadcrumbs instanceId={instanceId} path={path} />
      <div
        class={`dropzone${dragging ? ' dragging' : ''}`}
        data-testid="dropzone"
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => {
          e.preventDefault();
          setDragging(false);
          upload(e.dataTransfer?.files ?? null);
        }}
      >
        <div class="field">
          <label for="upload">Upload files</label>
          <input
            id="upload"
            type="file"
            multiple
            onChange={(e) => {
              const input = e.currentTarget as HTMLInputElement;
              upload(input.files);
              input.value = '';
            }}
          />
        </div>
        <p class="hint">…or drop files anywhere in this box to upload them to {path}.</p>
        <div class="field check">
          <input type="checkbox" id="overwrite" checked={overwrite} onChange={(e) => setOverwrite((e.currentTarget as HTMLInputElement).checked)} />
          <label for="overwrite">Replace files that already exist</label>
        </div>
      </div>
      <form class="inline" onSubmit={createFolder}>
        <Field label="New folder name" id="new-folder" value={folderName} onInput={setFolderName} />
        <button type="submit" disabled={action.busy}>
          New folder
        </button>
      </form>
      <ErrorAlert error={listing.error ?? action.error} />
      {notice ? (
        <p role="status" class="notice">
          {notice}
        </p>
      ) : null}
      {copying ? <CopyFolderForm instance={instance.data} source={copying} onDone={() => setCopying(null)} /> : null}
      {listing.data ? (
        <table>
          <caption class="visually-hidden">Contents of {path}</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Size</th>
              <th scope="col">Modified</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {path !== '/' ? (
              <tr>
                <th scope="row">
                  <Link to={href(`/instances/${instanceId}/files`, { path: parentOf(path) })} aria-label="Parent folder">
                    ..
                  </Link>
                </th>
                <td />
                <td />
                <td />
              </tr>
            ) : null}
            {listing.data.items.map((item) => (
              <tr key={item.path}>
                <th scope="row">
                  {item.directory ? (
                    <Link to={href(`/instances/${instanceId}/files`, { path: item.path })}>
                      {item.name}
                    </Link>
                  ) : (
                    <span class="filename">{item.name}</span>
                  )}
                </th>
                <td>{item.directory ? 'folder' : formatBytes(item.size)}</td>
                <td>{formatDate(item.modifiedDate)}</td>
                <td class="actions">
                  {item.directory ? (
                    <>
                      <button type="button" class="secondary" onClick={() => setCopying(item)} aria-label={`Copy folder ${item.name}…`}>
                        Copy folder…
                      </button>
                    </>
                  ) : (
                    <button type="button" class="secondary" onClick={() => download(item)} aria-label={`Download ${item.name}`}>
                      Download
                    </button>
                  )}
                  <button type="button" class="danger" onClick={() => remove(item)} aria-label={`Delete ${item.name}`}>
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {listing.data && listing.data.items.length === 0 ? <p>This folder is empty.</p> : null}
      {listing.loading && !listing.data ? <p role="status">Loading…</p> : null}
      <nav class="pager" aria-label="Pages">
        {nextPage ? <Link to={href(`/instances/${instanceId}/files`, { path, pageSize })}>First page</Link> : null}
        {listing.data?.next ? (
          <Link to={href(`/instances/${instanceId}/files`, { path, pageSize, nextPage: listing.data.next })}>Next page</Link>
        ) : null}
      </nav>
    </Layout>
  );
}
