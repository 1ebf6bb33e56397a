/**
 * Where the API lives: the path prefix of every Open Connectors-compatible route. A leaf module
 * (it imports nothing) so that both the HTTP layer and the async runner, which writes result
 * URLs into callbacks, can use it without importing the application (`app.ts`) — which imports
 * every route, and through them the async modules: importing it from below made an import circle.
 */

/** The prefix of every API route, e.g. `/elements/api-v2/instances`. */
export const API_BASE = '/elements/api-v2';
