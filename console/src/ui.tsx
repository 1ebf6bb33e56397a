/**
 * Building blocks every page shares: links, the page frame (navigation, sign-out, a focused
 * heading after each navigation), alerts, and data loading with optional polling. Everything a
 * user typed or the API returned is rendered as a text node by Preact, never as markup.
 */
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, MissingCredentials } from './api';
import { href, navigate, onLinkClick, useLocation } from './router';
import { signOut } from './session';

export function Link(props: { to: string; children: ComponentChildren; 'aria-label'?: string; class?: string }) {
  return (
    <a href={props.to} onClick={onLinkClick} aria-label={props['aria-label']} class={props.class}>
      {props.children}
    </a>
  );
}

const SECTIONS = [
  { path: '/instances', label: 'Instances' },
  { path: '/events', label: 'Events' },
  { path: '/settings', label: 'Settings' },
];

/** The frame of every signed-in page. */
export function Layout(props: { title: string; children: ComponentChildren }) {
  const { path } = useLocation();
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${props.title} · Ferry Console`;
  }, [props.title]);
  // After each navigation, focus the new page's heading (screen readers announce it; Tab starts
  // from the top of the page) — but not when data arriving later changes the title.
  useEffect(() => {
    heading.current?.focus();
  }, [path]);
  return (
    <>
      <header class="top">
        <span class="brand">Ferry Console</span>
        <nav aria-label="Sections">
          <ul>
            {SECTIONS.map((s) => (
              <li key={s.path}>
                <a
                  href={href(s.path)}
                  onClick={onLinkClick}
                  aria-current={path === s.path || path.startsWith(`${s.path}/`) ? 'page' : undefined}
                >
                  {s.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <button
          type="button"
          class="secondary"
          onClick={() => {
            signOut();
            navigate(href('/signin'), { replace: true });
          }}
        >
          Sign out
        </button>
      </header>
      <main>
        <h1 ref={heading} tabIndex={-1}>
          {props.title}
        </h1>
        {props.children}
      </main>
    </>
  );
}

export function ErrorAlert(props: { error: unknown }) {
  if (!props.error) return null;
  return (
    <p role="alert" class="alert">
      {messageOf(props.error)}
    </p>
  );
}

export function messageOf(error: unknown): string {
  if (error instanceof ApiError || error instanceof MissingCredentials) return error.message;
  if (error instanceof Error) return `Could not reach Ferry: ${error.message}`;
  return String(error);
}

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => Promise<void>;
}

/**
 * Loads data when `key` changes and, with `pollMs`, again every pollMs while the page is open
 * (live updates without a reload). A sign-in error (401) sends the user to the sign-in page.
 */
export function useLoad<T>(load: () => Promise<T>, key: string, pollMs?: number): Loaded<T> {
  const [state, setState] = useState<{ key: string; data?: T; error?: unknown; loading: boolean }>({ key, loading: true });
  const latest = useRef(load);
  latest.current = load;
  // The key of what is on screen now: an answer for an older key (a slow request overtaken by
  // a navigation) is dropped.
  const currentKey = useRef(key);
  currentKey.current = key;
  const run = useCallback(async () => {
    try {
      const data = await latest.current();
      if (currentKey.current !== key) return;
      setState({ key, data, loading: false });
    } catch (error) {
      const platformRefused =
        (error instanceof MissingCredentials && error.auth === 'platform') ||
        (error instanceof ApiError && error.status === 401 && error.auth === 'platform');
      if (platformRefused) {
        navigate(href('/signin', { next: location.pathname + location.search }), { replace: true });
        return;
      }
      if (currentKey.current !== key) return;
      setState((s) => ({ key, data: s.key === key ? s.data : undefined, error, loading: false }));
    }
  }, [key]);
  useEffect(() => {
    setState((s) => (s.key === key ? s : { key, loading: true }));
    void run();
    if (!pollMs) return;
    const timer = setInterval(() => {
      if (document.visibilityState !== 'hidden') void run();
    }, pollMs);
    return () => clearInterval(timer);
  }, [key, pollMs, run]);
  const current = state.key === key ? state : { loading: true, data: undefined, error: undefined };
  return { data: current.data, error: current.error, loading: current.loading, reload: run };
}

/** Runs an action, tracking busy state and its error for an alert. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = useCallback(async (action: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, error, run, setError };
}

export function formatDate(iso: string | null | undefined): string {
  if (!iso) return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

export function formatBytes(size: number | null | undefined): string {
  if (size === null || size === undefined) return '—';
  if (size < 1024) return `${size} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = size / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** A labelled text input. */
export function Field(props: {
  label: string;
  value: string;
  onInput: (value: string) => void;
  id?: string;
  type?: 'text' | 'password' | 'url';
  autoComplete?: string;
  required?: boolean;
  hint?: string | null;
}) {
  const { label, value, onInput, required, hint, id, type, autoComplete } = props;
  const inputId = id ?? `f-${label.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  return (
    <div class="field">
      <span class="label-row">
        <label for={inputId}>{label}</label>
        {/* Outside the label, so the control's name is exactly the label; aria-required tells
            assistive technology. */}
        {required ? (
          <span class="required" aria-hidden="true">
            *
          </span>
        ) : null}
      </span>
      <input
        id={inputId}
        // Preact's input typing is a union per `type`; a variable type needs this widening.
        type={(type ?? 'text') as 'text'}
        autoComplete={autoComplete}
        value={value}
        required={required}
        aria-required={required ? 'true' : undefined}
        aria-describedby={hint ? `${inputId}-hint` : undefined}
        onInput={(e) => onInput((e.currentTarget as HTMLInputElement).value)}
      />
      {hint ? (
        <p class="hint" id={`${inputId}-hint`}>
          {hint}
        </p>
      ) : null}
    </div>
  );
}
