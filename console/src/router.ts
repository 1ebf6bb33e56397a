/**
 * A tiny history-API router: every page has its own URL under /console/, so reload and
 * back/forward keep the user where they were. Links are real <a href> elements (open in a new
 * tab works); a plain left click navigates in place.
 */
import { useEffect, useState } from 'preact/hooks';

export const BASE = '/console';

export interface Location {
  /** The path below /console, starting with "/". */
  path: string;
  query: URLSearchParams;
}

const listeners = new Set<() => void>();

function current(): Location {
  const raw = window.location.pathname;
  const path = raw.startsWith(BASE) ? raw.slice(BASE.length) || '/' : '/';
  return { path: path.replace(/\/+$/, '') || '/', query: new URLSearchParams(window.location.search) };
}

window.addEventListener('popstate', () => listeners.forEach((l) => l()));

/** The console URL of a page: href('/events', {status: 'NOTIFIED'}). */
export function href(path: string, query: Record<string, string | number | undefined | null> = {}): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined && value !== null && value !== '') params.set(key, String(value));
  const search = params.toString();
  return BASE + path + (search ? `?${search}` : '');
}

export function navigate(to: string, options: { replace?: boolean } = {}): void {
  if (options.replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  listeners.forEach((l) => l());
}

export function useLocation(): Location {
  const [location, setLocation] = useState(current);
  useEffect(() => {
    const update = () =>
      setLocation((before) => {
        const now = current();
        return now.path === before.path && now.query.toString() === before.query.toString() ? before : now;
      });
    listeners.add(update);
    // A child's effect (a redirect) may have navigated before this effect subscribed.
    update();
    return () => void listeners.delete(update);
  }, []);
  return location;
}

/** Click handler for in-app links: plain left clicks navigate without a reload. */
export function onLinkClick(event: MouseEvent): void {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const anchor = event.currentTarget as HTMLAnchorElement;
  event.preventDefault();
  navigate(anchor.getAttribute('href') ?? BASE);
}
