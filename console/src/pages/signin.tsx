/**
 * Sign-in: the platform's User and Organization secrets, checked with one API call and then
 * kept in sessionStorage for this tab. A refusal shows the API's own message.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../api';
import { href, navigate } from '../router';
import { saveSecrets } from '../session';
import { ErrorAlert, Field, useAction } from '../ui';

export function SignIn(props: { next: string | null }) {
  const [user, setUser] = useState('');
  const [organization, setOrganization] = useState('');
  const { busy, error, run } = useAction();
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = 'Sign in · Ferry Console';
  }, []);

  const submit = (event: Event) => {
    event.preventDefault();
    void run(async () => {
      const secrets = { user: user.trim(), organization: organization.trim() };
      await api('/accounts/settings', { secrets });
      saveSecrets(secrets);
      const next = props.next && props.next.startsWith('/console/') && !props.next.startsWith('/console/signin') ? props.next : href('/instances');
      navigate(next, { replace: true });
    });
  };

  return (
    <main class="signin">
      <h1 ref={heading}>Ferry Console</h1>
      <p>Sign in with your platform secrets. They stay in this browser tab (sessionStorage) until you sign out or close it.</p>
      <form onSubmit={submit}>
        <Field label="User secret" id="user-secret" type="password" autoComplete="off" required value={user} onInput={setUser} />
        <Field
          label="Organization secret"
          id="org-secret"
          type="password"
          autoComplete="off"
          required
          value={organization}
          onInput={setOrganization}
        />
        <ErrorAlert error={error} />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
    </main>
  );
}
