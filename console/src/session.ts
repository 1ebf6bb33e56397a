/**
 * What the console remembers for this browser tab, in sessionStorage only (never cookies or
 * localStorage): the platform secrets, and the tokens of instances the user created here or
 * entered (Ferry shows an instance's token once, when it is created, and stores only its hash).
 * Signing out removes all of it.
 */
const SECRETS_KEY = 'ferry.console.secrets';
const TOKENS_KEY = 'ferry.console.tokens';

export interface Secrets {
  user: string;
  organization: string;
}

export function loadSecrets(): Secrets | null {
  try {
    const value = JSON.parse(sessionStorage.getItem(SECRETS_KEY) ?? 'null');
    return value && typeof value.user === 'string' && typeof value.organization === 'string' ? value : null;
  } catch {
    return null;
  }
}

export function saveSecrets(secrets: Secrets): void {
  sessionStorage.setItem(SECRETS_KEY, JSON.stringify(secrets));
}

/** The instance tokens known to this tab, by instance id. */
function tokens(): Record<string, string> {
  try {
    const value = JSON.parse(sessionStorage.getItem(TOKENS_KEY) ?? '{}');
    return value && typeof value === 'object' ? value : {};
  } catch {
    return {};
  }
}

export function instanceToken(id: number): string | null {
  return tokens()[String(id)] ?? null;
}

export function saveInstanceToken(id: number, token: string): void {
  sessionStorage.setItem(TOKENS_KEY, JSON.stringify({ ...tokens(), [String(id)]: token }));
}

export function forgetInstanceToken(id: number): void {
  const all = tokens();
  delete all[String(id)];
  sessionStorage.setItem(TOKENS_KEY, JSON.stringify(all));
}

export function signOut(): void {
  sessionStorage.removeItem(SECRETS_KEY);
  sessionStorage.removeItem(TOKENS_KEY);
}
