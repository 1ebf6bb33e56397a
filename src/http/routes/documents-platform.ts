/**
 * Documents-hub routes the platform documents beyond the core file and folder operations:
 * file revisions (`/files/revisions`, `/files/{id}/revisions[/{revisionId}]`) and the backend
 * account (`/me`). Registered inside the documents plugin, so they share its authentication
 * (User + Element) and its asynchronous intake.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { DocumentsService } from '../../documents/service.js';
import { accountOf, revisionOf, revisionsOf } from '../../documents/provider.js';
import type { Services } from '../app.js';
import { identityOf } from './common.js';

/** What the documents plugin lends its sub-plugins. */
export interface HubTools {
  /** The documents service of the request's instance. */
  docs(request: FastifyRequest): DocumentsService;
  /** The canonical path a request names, by id or `?path=` (`fallback` when neither). */
  target(request: FastifyRequest, fallback?: string): string;
}

type Req = FastifyRequest<{ Params: { id?: string; revisionId?: string } }>;

export async function documentPlatformRoutes(
  app: FastifyInstance,
  { services, hub }: { services: Services; hub: HubTools },
): Promise<void> {
  const schema = { tags: ['documents'] };
  const elementOf = (request: FastifyRequest) => services.instances.element(identityOf(request).instance!);

  const list = async (request: Req) => revisionsOf(elementOf(request), hub.target(request));
  const one = async (request: Req) => revisionOf(elementOf(request), hub.target(request), request.params.revisionId as string);

  app.get('/hubs/documents/files/revisions', { schema }, list);
  app.get('/hubs/documents/files/:id/revisions', { schema }, list);
  app.get('/hubs/documents/files/revisions/:revisionId', { schema }, one);
  app.get('/hubs/documents/files/:id/revisions/:revisionId', { schema }, one);

  app.get('/hubs/documents/me', { schema }, async (request) => {
    await hub.docs(request).ping();
    return accountOf(elementOf(request), identityOf(request).user);
  });
}
