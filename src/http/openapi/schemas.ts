/**
 * The named schemas of the OpenAPI document (`components.schemas`): the error body every failure
 * carries and the objects routes answer with. They document what the routes send; they are not
 * used to serialise responses (Fastify keeps JSON.stringify for every route), so a field added
 * to a route's answer and missing here is never silently dropped — but the client's types will
 * not know it until it is added here.
 */

const nullableString = { type: 'string', nullable: true } as const;
const nullableInteger = { type: 'integer', nullable: true } as const;
const isoDate = { type: 'string', format: 'date-time' } as const;

export const COMPONENT_SCHEMAS: Record<string, object> = {
  ErrorBody: {
    type: 'object',
    description: 'The body of every error response; requestId equals the Elements-Request-Id header.',
    required: ['requestId', 'message'],
    properties: {
      requestId: { type: 'string' },
      message: { type: 'string', description: 'What went wrong and how to fix it' },
      providerMessage: { type: 'string', description: "The backend's own message, when the backend refused" },
    },
  },
  AsyncAccepted: {
    type: 'object',
    description: 'The answer to a hub request sent with Elements-Async-Request: true (its Location header names the event).',
    required: ['eventId', 'eventStatus'],
    properties: { eventId: { type: 'integer' }, eventStatus: { type: 'string', enum: ['dispatched'] } },
  },
  DocumentObject: {
    type: 'object',
    required: ['id', 'name', 'path', 'directory', 'size', 'createdDate', 'modifiedDate', 'tags', 'parentFolderId', 'properties'],
    properties: {
      id: { type: 'string', description: 'The path, encoded twice; use it in /files/{id} and /folders/{id}' },
      name: { type: 'string' },
      path: { type: 'string' },
      directory: { type: 'boolean' },
      size: { type: 'integer' },
      createdDate: nullableString,
      modifiedDate: nullableString,
      tags: { type: 'array', items: { type: 'string' } },
      parentFolderId: nullableString,
      properties: { type: 'object', required: ['mimeType'], properties: { mimeType: nullableString } },
      raw: { type: 'object', additionalProperties: true, description: "The backend's own object (metadata with ?raw=true)" },
    },
  },
  Link: {
    type: 'object',
    required: ['expires', 'cloudElementsLink', 'providerViewLink', 'providerLink'],
    properties: {
      expires: isoDate,
      cloudElementsLink: { type: 'string', description: 'A Ferry-signed URL that needs no credentials' },
      providerViewLink: { type: 'string' },
      providerLink: nullableString,
    },
  },
  Storage: {
    type: 'object',
    required: ['total', 'used', 'shared'],
    properties: { total: nullableInteger, used: nullableInteger, shared: nullableInteger },
  },
  Ping: { type: 'object', required: ['dateTime'], properties: { dateTime: isoDate, endpoint: { type: 'string' } } },
  Revision: {
    type: 'object',
    required: ['id', 'fileId', 'fileName', 'path', 'size', 'createdDate', 'modifiedDate', 'current', 'mimeType'],
    properties: {
      id: { type: 'string' },
      fileId: { type: 'string' },
      fileName: { type: 'string' },
      path: { type: 'string' },
      size: { type: 'integer' },
      createdDate: nullableString,
      modifiedDate: nullableString,
      current: { type: 'boolean' },
      mimeType: nullableString,
    },
  },
  BulkRecord: {
    type: 'object',
    description: "One object of an export's result (GET /hubs/documents/bulk/{id}/files): a line of NDJSON, or a CSV row with these columns in this order (tags as a JSON array)",
    required: ['id', 'path', 'name', 'directory', 'size', 'createdDate', 'modifiedDate', 'tags', 'mimeType', 'parentFolderId'],
    properties: {
      id: { type: 'string' },
      path: { type: 'string' },
      name: { type: 'string' },
      directory: { type: 'boolean' },
      size: { type: 'integer' },
      createdDate: nullableString,
      modifiedDate: nullableString,
      tags: { type: 'array', items: { type: 'string' } },
      mimeType: nullableString,
      parentFolderId: nullableString,
    },
  },
  Account: {
    type: 'object',
    required: ['id', 'name', 'emailAddress', 'source'],
    properties: { id: nullableString, name: nullableString, emailAddress: nullableString, source: { type: 'string', enum: ['backend', 'ferry'] } },
  },
  ElementConfigurationKey: {
    type: 'object',
    required: ['id', 'key', 'name', 'required', 'secret'],
    properties: {
      id: { type: 'integer' },
      key: { type: 'string' },
      name: { type: 'string' },
      description: nullableString,
      defaultValue: nullableString,
      type: { type: 'string' },
      required: { type: 'boolean' },
      secret: { type: 'boolean' },
    },
    additionalProperties: true,
  },
  Element: {
    type: 'object',
    required: ['id', 'key', 'name', 'hub'],
    properties: {
      id: { type: 'integer' },
      key: { type: 'string' },
      name: { type: 'string' },
      hub: { type: 'string' },
      description: { type: 'string' },
      active: { type: 'boolean' },
      configuration: { type: 'array', items: { $ref: '#/components/schemas/ElementConfigurationKey' } },
    },
    additionalProperties: true,
  },
  ElementMetadata: {
    type: 'object',
    required: ['id', 'key', 'name', 'hub', 'configuration', 'objects'],
    properties: {
      id: { type: 'integer' },
      key: { type: 'string' },
      name: { type: 'string' },
      hub: { type: 'string' },
      configuration: { type: 'array', items: { $ref: '#/components/schemas/ElementConfigurationKey' } },
      objects: { type: 'object', additionalProperties: true },
    },
    additionalProperties: true,
  },
  Hub: {
    type: 'object',
    required: ['key', 'elements'],
    properties: { key: { type: 'string' }, name: { type: 'string' }, active: { type: 'boolean' }, elements: { type: 'array', items: { type: 'string' } } },
    additionalProperties: true,
  },
  HubObjectMetadata: {
    type: 'object',
    required: ['name', 'fields'],
    properties: { name: { type: 'string' }, description: { type: 'string' }, fields: { type: 'array', items: { type: 'object', additionalProperties: true } } },
  },
  Instance: {
    type: 'object',
    required: ['id', 'name', 'element', 'configuration', 'tags', 'valid', 'disabled', 'createdDate', 'updatedDate'],
    properties: {
      id: { type: 'integer' },
      name: { type: 'string' },
      token: { type: 'string', description: 'The instance token (Element secret); present only in the answer that created it' },
      element: { $ref: '#/components/schemas/Element' },
      configuration: { type: 'object', additionalProperties: { type: 'string', nullable: true }, description: 'Secrets are masked' },
      tags: { type: 'array', items: { type: 'string' } },
      valid: { type: 'boolean' },
      disabled: { type: 'boolean' },
      eventsEnabled: { type: 'boolean' },
      createdDate: isoDate,
      updatedDate: isoDate,
      user: { type: 'object', nullable: true, additionalProperties: true },
    },
    additionalProperties: true,
  },
  InstanceInput: {
    type: 'object',
    properties: {
      element: { type: 'object', properties: { key: { type: 'string' }, id: { type: 'integer' } } },
      name: { type: 'string' },
      tags: { type: 'array', items: { type: 'string' } },
      configuration: { type: 'object', additionalProperties: true },
      disabled: { type: 'boolean' },
    },
  },
  ConfigurationEntry: {
    type: 'object',
    required: ['id', 'key', 'name', 'propertyValue', 'secret', 'required'],
    properties: {
      id: { type: 'integer' },
      key: { type: 'string' },
      name: { type: 'string' },
      propertyValue: nullableString,
      secret: { type: 'boolean' },
      required: { type: 'boolean' },
    },
  },
  Event: {
    type: 'object',
    required: ['id', 'eventDate', 'status', 'instanceId', 'callbackUrl', 'execution', 'notification', 'deliveries'],
    properties: {
      id: { type: 'integer' },
      eventDate: isoDate,
      status: { type: 'string', enum: ['DISPATCHED', 'CONSUMED', 'NOTIFIED'] },
      instanceId: { type: 'integer' },
      callbackUrl: { type: 'string' },
      providerData: { type: 'object', properties: { method: { type: 'string' }, url: { type: 'string' } } },
      notifiedData: { nullable: true, description: 'The notification body sent (or to be sent) to the callback URL' },
      execution: {
        type: 'object',
        required: ['state', 'statusCode'],
        properties: {
          state: { type: 'string', enum: ['dispatched', 'running', 'completed', 'failed'] },
          statusCode: nullableInteger,
          startedDate: nullableString,
          finishedDate: nullableString,
          durationMs: nullableInteger,
        },
      },
      notification: {
        type: 'object',
        nullable: true,
        required: ['id', 'status', 'attempts'],
        properties: {
          id: { type: 'integer' },
          status: { type: 'string', enum: ['created', 'delivered', 'retry', 'queued'] },
          attempts: { type: 'integer' },
          nextAttemptDate: nullableString,
        },
      },
      deliveries: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            date: isoDate,
            url: { type: 'string' },
            statusCode: nullableInteger,
            error: nullableString,
            durationMs: nullableInteger,
          },
        },
      },
    },
  },
  Delivery: {
    type: 'object',
    required: ['notificationId', 'eventId', 'status', 'channel', 'config', 'createdDate', 'updatedDate'],
    properties: {
      notificationId: { type: 'integer' },
      subscriptionId: { nullable: true },
      eventId: { type: 'integer' },
      status: { type: 'string', enum: ['created', 'delivered', 'retry', 'queued'] },
      channel: { type: 'string', enum: ['webhook'] },
      config: { type: 'object', required: ['url'], properties: { url: { type: 'string' } } },
      createdDate: isoDate,
      updatedDate: isoDate,
    },
  },
  Redelivered: { type: 'object', required: ['redelivered'], properties: { redelivered: { type: 'integer' } } },
  Settings: {
    type: 'object',
    required: ['notification.webhook.failure.policy'],
    properties: { 'notification.webhook.failure.policy': { type: 'string', enum: ['retry', 'queue'] } },
    additionalProperties: { type: 'string' },
  },
  Notification: {
    type: 'object',
    description: 'The body POSTed to a callback URL when an asynchronous request has run.',
    required: ['eventId', 'instanceId', 'notificationId', 'eventStatus', 'statusCode'],
    properties: {
      eventId: { type: 'integer' },
      instanceId: { type: 'integer' },
      notificationId: { type: 'integer' },
      eventStatus: { type: 'string', enum: ['completed', 'failed'] },
      statusCode: { type: 'integer' },
      response: { description: "The replayed request's answer: its JSON body, or a download's result reference" },
    },
  },
};

/** A `$ref` to one of the schemas above. */
export function ref(name: keyof typeof COMPONENT_SCHEMAS & string): { $ref: string } {
  if (!(name in COMPONENT_SCHEMAS)) throw new Error(`no OpenAPI schema ${name}`);
  return { $ref: `#/components/schemas/${name}` };
}
