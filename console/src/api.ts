/**
 * The console's only way out: fetch against Ferry's public /elements/api-v2 API, with the same
 * Authorization header any client sends. Platform calls carry User + Organization; hub calls
 * (files) carry User + Element. A non-2xx answer becomes an ApiError holding the API's message.
 */
import { instanceToken, loadSecrets } from './session';

export const API_BASE = '/elements/api-v2';

/** An answer other than 2xx, with the API's own message and which credentials were sent. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly auth: Auth['kind'],
  ) {
    super(message);
  }
}

/** Raised before any request when the needed credentials are not in this tab. */
export class MissingCredentials extends Error {
  constructor(
    message: string,
    readonly auth: Auth['kind'],
  ) {
    super(message);
  }
}

export type Auth = { kind: 'platform' } | { kind: 'hub'; instanceId: number };

export interface RequestOptions {
  method?: string;
  query?: Record<string, string | number | undefined>;
  json?: unknown;
  body?: BodyInit;
  headers?: Record<string, string>;
  auth?: Auth;
  /** Platform secrets to try instead of the stored ones (sign-in). */
  secrets?: { user: string; organization: string };
}

export interface Answer<T> {
  data: T;
  headers: Headers;
}

function authorization(options: RequestOptions): string {
  const secrets = options.secrets ?? loadSecrets();
  if (!secrets) throw new MissingCredentials('Sign in first', 'platform');
  const auth = options.auth ?? { kind: 'platform' };
  if (auth.kind === 'platform') return `User ${secrets.user}, Organization ${secrets.organization}`;
  const token = instanceToken(auth.instanceId);
  if (!token) throw new MissingCredentials(`No token for instance ${auth.instanceId} in this tab`, 'hub');
  return `User ${secrets.user}, Element ${token}`;
}

export function apiUrl(path: string, query: RequestOptions['query'] = {}): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined && value !== '') params.set(key, String(value));
  const search = params.toString();
  return API_BASE + path + (search ? `?${search}` : '');
}

/** Sends one request and parses its JSON answer (or returns the raw Response for downloads). */
export async function request(path: string, options: RequestOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { authorization: authorization(options), ...options.headers };
  let body = options.body;
  if (options.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(options.json);
  }
  const response = await fetch(apiUrl(path, options.query), { method: options.method ?? 'GET', headers, body });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const error = await response.json();
      if (error && typeof error.message === 'string') {
        message = error.message + (typeof error.providerMessage === 'string' ? ` (${error.providerMessage})` : '');
      }
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(response.status, message, options.auth?.kind ?? 'platform');
  }
  return response;
}

export async function api<T>(path: string, options: RequestOptions = {}): Promise<Answer<T>> {
  const response = await request(path, options);
  const text = await response.text();
  return { data: (text ? JSON.parse(text) : null) as T, headers: response.headers };
}

/** A CEQL string literal: single quotes doubled. */
export function ceqlString(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}
