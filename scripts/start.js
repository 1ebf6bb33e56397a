#!/usr/bin/env node
/**
 * `npm start`: serves from the current build, building first only when an input changed
 * (scripts/build.js). The check and the server share one process, so a start on a current
 * build costs one Node start-up, as `node dist/src/cli.js serve` does. Arguments after
 * `npm start --` go to `ferry serve` (e.g. `npm start -- --role worker`).
 */
import { ensureBuilt } from './build.js';

ensureBuilt();
process.argv = [process.argv[0], new URL('../dist/src/cli.js', import.meta.url).pathname, 'serve', ...process.argv.slice(2)];
await import('../dist/src/cli.js');
