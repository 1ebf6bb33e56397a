/** The shapes of the API answers the console reads (DESIGN §1.3–1.5). */

export interface Instance {
  id: number;
  name: string;
  token?: string;
  element: { id: number; key: string; name: string; hub: string };
  configuration: Record<string, string>;
  disabled: boolean;
  eventsEnabled: boolean;
  createdDate: string;
}

export interface ConfigKey {
  key: string;
  name: string;
  required: boolean;
  secret: boolean;
  defaultValue: string | null;
  description: string | null;
}

export interface Element {
  id: number;
  key: string;
  name: string;
  description?: string;
  configuration: ConfigKey[];
}

export interface Delivery {
  date: string;
  url: string;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
}

export interface Progress {
  [key: string]: unknown;
}

export interface FerryEvent {
  id: number;
  eventDate: string;
  status: 'DISPATCHED' | 'CONSUMED' | 'NOTIFIED';
  instanceId: number;
  callbackUrl: string;
  providerData: { method: string; url: string; headers?: Record<string, string> };
  notifiedData: unknown;
  execution: {
    state: string;
    statusCode: number | null;
    startedDate: string | null;
    finishedDate: string | null;
    durationMs: number | null;
    progress?: Progress | null;
  };
  notification: { id: number; status: string; attempts: number; nextAttemptDate: string | null } | null;
  deliveries: Delivery[];
}

export interface DocObject {
  id: string;
  name: string;
  path: string;
  directory: boolean;
  size: number | null;
  modifiedDate: string | null;
}

export interface DeliveryListing {
  notificationId: number;
  subscriptionId: number;
  eventId: number;
  status: string;
  config: { url: string };
  createdDate: string;
  updatedDate: string;
}
