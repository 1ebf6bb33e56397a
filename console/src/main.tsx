/**
 * Ferry Console: a web dashboard over Ferry's public /elements/api-v2 API (instances, events
 * and their deliveries, files, account settings). This module mounts the app and maps each
 * URL under /console/ to its page; pages own their data loading (pages/), shared pieces live in
 * ui.tsx, the API client in api.ts, what the tab remembers in session.ts.
 * It may import preact and its own modules only — no server code.
 */
import { render } from 'preact';
import { useEffect } from 'preact/hooks';
import { EventPage } from './pages/event';
import { Events } from './pages/events';
import { Files } from './pages/files';
import { Instances } from './pages/instances';
import { NewInstance } from './pages/new-instance';
import { Settings } from './pages/settings';
import { SignIn } from './pages/signin';
import { href, navigate, useLocation } from './router';
import { loadSecrets } from './session';
import { Layout, Link } from './ui';

function Redirect(props: { to: string }) {
  useEffect(() => navigate(props.to, { replace: true }), [props.to]);
  return null;
}

function App() {
  const { path, query } = useLocation();
  if (path === '/signin') return <SignIn next={query.get('next')} />;
  if (!loadSecrets()) return <Redirect to={href('/signin', { next: path === '/' ? null : location.pathname + location.search })} />;
  let m: RegExpMatchArray | null;
  if (path === '/') return <Redirect to={href('/instances')} />;
  if (path === '/instances') return <Instances />;
  if (path === '/instances/new') return <NewInstance />;
  if ((m = /^\/instances\/(\d+)\/files$/.exec(path))) return <Files key={m[1]} id={m[1]} />;
  if (path === '/events') return <Events />;
  if ((m = /^\/events\/(\d+)$/.exec(path))) return <EventPage key={m[1]} id={m[1]} />;
  if (path === '/settings') return <Settings />;
  return (
    <Layout title="Page not found">
      <p>
        Nothing lives at this address. <Link to={href('/instances')}>Go to instances</Link>.
      </p>
    </Layout>
  );
}

render(<App />, document.getElementById('app')!);
