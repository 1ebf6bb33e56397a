/**
 * The documents hub's objects as the platform's discovery routes describe them
 * (`/hubs/documents/objects`, `/objects/{name}/metadata`, `/elements/{keyOrId}/metadata`):
 * the names clients may use and the fields of each, exactly the object model the service
 * returns (service.ts `DocumentObject`). Pure data; every element shows the same objects.
 */

/** One field of an object, in the platform's metadata vocabulary. */
export interface ObjectField {
  /** Dotted path of the field in the JSON object. */
  path: string;
  vendorPath: string;
  type: 'string' | 'boolean' | 'number' | 'date' | 'array' | 'object';
  vendorNativeType: string;
  displayName: string;
  vendorReadOnly: boolean;
  vendorRequired: boolean;
}

function field(path: string, type: ObjectField['type'], displayName: string, readOnly = true): ObjectField {
  const nativeType = type === 'date' ? 'string (ISO-8601 date-time)' : type === 'array' ? 'array of string' : type;
  return { path, vendorPath: path, type, vendorNativeType: nativeType, displayName, vendorReadOnly: readOnly, vendorRequired: false };
}

/** Fields of a file or folder object (DESIGN §1.4 object model). */
const DOCUMENT_FIELDS: ObjectField[] = [
  field('id', 'string', 'Id (the path, URI-encoded twice)'),
  field('name', 'string', 'Name', false),
  field('path', 'string', 'Path', false),
  field('directory', 'boolean', 'Is a folder'),
  field('size', 'number', 'Size in bytes'),
  field('createdDate', 'date', 'Created'),
  field('modifiedDate', 'date', 'Modified'),
  field('tags', 'array', 'Tags', false),
  field('parentFolderId', 'string', 'Parent folder id'),
  field('properties', 'object', 'Properties'),
  field('properties.mimeType', 'string', 'MIME type'),
];

export interface HubObject {
  name: string;
  description: string;
  fields: ObjectField[];
}

export const DOCUMENT_OBJECTS: readonly HubObject[] = [
  { name: 'files', description: 'A file: upload, download, metadata, copy, links, revisions', fields: DOCUMENT_FIELDS },
  { name: 'folders', description: 'A folder: create, list contents, metadata, copy, links', fields: DOCUMENT_FIELDS },
];

/** The objects of a hub, by hub key (only `documents` today). */
export function hubObjects(hub: string): readonly HubObject[] | undefined {
  return hub === 'documents' ? DOCUMENT_OBJECTS : undefined;
}
