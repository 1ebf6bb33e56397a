/**
 * `FerryClient`: the platform calls (instances, events, deliveries, settings) under the User
 * and Organization secrets, `client.instance(token)` for an instance's hub calls, and
 * `waitForEvent`, which polls the events API until an asynchronous request has run.
 */
import { FerryError } from './errors.js';
import { call, callJson, type Transport } from './http.js';
import { HubClient } from './hub.js';
import type { ConfigurationEntry, Delivery, Element, FerryEvent, Instance, InstanceInput, Page, Settings } from './types.js';

export interface FerryClientOptions {
  /** Ferry's address, e.g. http://localhost:8080 (without /elements/api-v2). */
  baseUrl: string;
  /** FERRY_USER_SECRET (the User secret). */
  userSecret: string;
  /** FERRY_ORG_SECRET (the Organization secret); needed for platform calls. */
  organizationSecret?: string;
  /** A fetch to use instead of the global one. */
  fetch?: typeof fetch;
}

export interface WaitOptions {
  /** Give up after this long (a FerryError with status 0); default 60 s. */
  timeoutMs?: number;
  /** Time between polls; default 250 ms. */
  intervalMs?: number;
  /** 'executed' (default): the request ran; 'notified': its notification was also delivered. */
  until?: 'executed' | 'notified';
  signal?: AbortSignal;
}

export interface PageOptions {
  pageSize?: number;
  nextPage?: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class FerryClient {
  private readonly transport: Transport;
  private readonly userSecret: string;
  private readonly organizationSecret: string | undefined;

  constructor(options: FerryClientOptions) {
    if (!options?.baseUrl) throw new TypeError('FerryClient needs a baseUrl, e.g. http://localhost:8080');
    if (!options.userSecret) throw new TypeError('FerryClient needs a userSecret (FERRY_USER_SECRET)');
    this.transport = { baseUrl: options.baseUrl, fetch: options.fetch ?? globalThis.fetch.bind(globalThis) };
    this.userSecret = options.userSecret;
    this.organizationSecret = options.organizationSecret;
  }

  /** The hub calls of the instance whose token this is. */
  instance(token: string): HubClient {
    if (!token) throw new TypeError('instance() needs the instance token (the "token" of POST /instances)');
    return new HubClient(this.transport, `User ${this.userSecret}, Element ${token}`);
  }

  private get platformAuth(): string {
    if (!this.organizationSecret) throw new TypeError('Platform calls need organizationSecret (FERRY_ORG_SECRET) in the FerryClient options');
    return `User ${this.userSecret}, Organization ${this.organizationSecret}`;
  }

  private json<T>(method: string, path: string, options: Parameters<typeof callJson>[4] = {}): Promise<T> {
    return callJson<T>(this.transport, this.platformAuth, method, path, options);
  }

  private async page<T>(path: string, query: Record<string, string | number | undefined>): Promise<Page<T>> {
    const res = await call(this.transport, this.platformAuth, 'GET', path, { query });
    const total = res.headers.get('elements-total-count');
    return { items: (await res.json()) as T[], nextPage: res.headers.get('elements-next-page-token'), total: total === null ? null : Number(total) };
  }

  readonly elements = {
    list: (): Promise<Element[]> => this.json('GET', '/elements'),
    get: (keyOrId: string | number): Promise<Element> => this.json('GET', `/elements/${encodeURIComponent(String(keyOrId))}`),
  };

  readonly instances = {
    /** Creates an instance; the answer's `token` is what `client.instance(token)` takes. */
    create: (input: InstanceInput & { element: { key?: string; id?: number }; name: string }): Promise<Instance> =>
      this.json('POST', '/instances', { json: input }),
    list: (options: { tags?: string[] } = {}): Promise<Instance[]> => this.json('GET', '/instances', { query: { tags: options.tags } }),
    get: (id: number): Promise<Instance> => this.json('GET', `/instances/${id}`),
    update: (id: number, change: InstanceInput): Promise<Instance> => this.json('PATCH', `/instances/${id}`, { json: change }),
    replace: (id: number, input: InstanceInput & { name: string }): Promise<Instance> => this.json('PUT', `/instances/${id}`, { json: input }),
    delete: async (id: number): Promise<void> => {
      await call(this.transport, this.platformAuth, 'DELETE', `/instances/${id}`);
    },
    enable: (id: number): Promise<Instance> => this.json('PUT', `/instances/${id}/enabled`),
    disable: (id: number): Promise<Instance> => this.json('DELETE', `/instances/${id}/enabled`),
    configuration: (id: number): Promise<ConfigurationEntry[]> => this.json('GET', `/instances/${id}/configuration`),
    setConfiguration: (id: number, key: string, value: string | null): Promise<ConfigurationEntry> =>
      this.json('PATCH', `/instances/${id}/configuration/${encodeURIComponent(key)}`, { json: { propertyValue: value } }),
  };

  readonly events = {
    /** Events, newest first; `instanceId` limits them to one instance. */
    list: (options: PageOptions & { instanceId?: number } = {}): Promise<Page<FerryEvent>> =>
      this.page(options.instanceId ? `/instances/${options.instanceId}/events` : '/instances/events', {
        pageSize: options.pageSize,
        nextPage: options.nextPage,
      }),
    get: (eventId: number): Promise<FerryEvent> => this.json('GET', `/instances/events/${eventId}`),
    /** The stored result of an asynchronous download, as a stream. */
    result: async (eventId: number): Promise<ReadableStream<Uint8Array>> => {
      const res = await call(this.transport, this.platformAuth, 'GET', `/instances/events/${eventId}/result`);
      return res.body ?? new ReadableStream({ start: (c) => c.close() });
    },
  };

  readonly deliveries = {
    /** Webhook deliveries; `where` e.g. `status = 'queued'`. */
    list: (options: PageOptions & { where?: string } = {}): Promise<Page<Delivery>> =>
      this.page('/notifications/subscriptions/deliveries', { where: options.where, pageSize: options.pageSize, nextPage: options.nextPage }),
    /** Sends the queued deliveries `where` selects again; answers how many. */
    redeliver: (where?: string): Promise<{ redelivered: number }> =>
      this.json('PUT', '/notifications/subscriptions/deliveries', { query: { where } }),
  };

  readonly settings = {
    get: (): Promise<Settings> => this.json('GET', '/accounts/settings'),
    update: (change: Partial<Settings>): Promise<Settings> => this.json('PATCH', '/accounts/settings', { json: change }),
  };

  /**
   * Polls the event until its request has run (or, with `until: 'notified'`, until its
   * notification was delivered); resolves with the event. Throws FerryError (status 0) on timeout.
   */
  async waitForEvent(eventId: number, options: WaitOptions = {}): Promise<FerryEvent> {
    const timeoutMs = options.timeoutMs ?? 60_000;
    const interval = options.intervalMs ?? 250;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      options.signal?.throwIfAborted();
      const event = await this.events.get(eventId);
      const state = event.execution.state;
      const executed = state === 'completed' || state === 'failed';
      if (options.until === 'notified' ? event.status === 'NOTIFIED' : executed) return event;
      if (Date.now() + interval > deadline) {
        throw new FerryError(0, `Event ${eventId} is still ${options.until === 'notified' ? event.status : state} after ${timeoutMs} ms`);
      }
      await sleep(interval);
    }
  }
}
