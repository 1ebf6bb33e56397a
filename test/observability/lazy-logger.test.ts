/**
 * Per-request loggers built on first use (observability/lazy-logger.ts): the lines they write
 * are the lines pino's own children write — every binding, in order, redaction kept — and a
 * request that writes nothing at an enabled level builds no child.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import { LazyChildLogger, lazyChildLoggerFactory } from '../../src/observability/lazy-logger.js';

function memoryLogger(level: string) {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  const logger = pino({ level, base: undefined, timestamp: false, redact: { paths: ['authorization'], censor: '[redacted]' } }, sink);
  return { logger, lines };
}

test('a lazy child writes what pino children write', async () => {
  const lazy = memoryLogger('info');
  const eager = memoryLogger('info');
  const a = lazyChildLoggerFactory(lazy.logger, { reqId: 'r1' }).child({ traceId: 't1' });
  const b = eager.logger.child({ reqId: 'r1' }).child({ traceId: 't1' });
  for (const log of [a, b]) {
    log.info({ authorization: 'User secret' }, 'hello');
    log.error({ status: 500 }, 'failed');
    log.debug('not written');
  }
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(lazy.lines, eager.lines);
  assert.equal(lazy.lines.length, 2);
  assert.deepEqual(lazy.lines[0], { level: 30, reqId: 'r1', traceId: 't1', authorization: '[redacted]', msg: 'hello' });
});

test('a lazy child answers level checks from its parent and builds nothing until it writes', () => {
  const { logger } = memoryLogger('warn');
  let children = 0;
  const child = logger.child.bind(logger);
  logger.child = ((bindings: pino.Bindings, options?: pino.ChildLoggerOptions) => {
    children++;
    return child(bindings, options);
  }) as unknown as typeof logger.child;
  const lazy = lazyChildLoggerFactory(logger, { reqId: 'r2' }) as unknown as LazyChildLogger;
  assert.ok(lazy instanceof LazyChildLogger);
  assert.equal(lazy.isLevelEnabled('info'), false);
  assert.equal(lazy.isLevelEnabled('warn'), true);
  assert.equal(lazy.level, 'warn');
  lazy.child({ traceId: 't2' }).info('below the level');
  assert.equal(children, 0);
  assert.deepEqual(lazy.bindings(), { reqId: 'r2' });
  lazy.warn('written');
  assert.equal(children, 1);
  // Options (a route's own level) build the child at once.
  lazyChildLoggerFactory(logger, { reqId: 'r3' }, { level: 'debug' });
  assert.equal(children, 2);
});
