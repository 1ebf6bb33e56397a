/**
 * Per-request loggers built on first use (issue 19). Fastify gives every request a pino child
 * logger carrying its request id, and a request with a trace context gets a second one carrying
 * its trace id (request-log.ts). With Ferry's redaction two children cost 34–41 µs a request on
 * this machine — on every accept, sync call and replayed job — though most requests never log a
 * line of their own (the request log line is written from the node's logger).
 *
 * A lazy child answers level checks from its parent, and builds the real child, with all the
 * bindings gathered so far, only when a line at an enabled level is written. A child of a lazy
 * child stays lazy: its bindings are merged, which is what pino's nested children print.
 * Options (a route's own log level, serializers) make the child at once, as before.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Bindings, ChildLoggerOptions, Logger } from 'pino';

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

export class LazyChildLogger {
  private built: Logger | null = null;

  constructor(
    private readonly parent: Logger,
    private readonly own: Bindings,
  ) {}

  private get log(): Logger {
    return (this.built ??= this.parent.child(this.own));
  }

  get level(): string {
    return (this.built ?? this.parent).level;
  }

  set level(value: string) {
    this.log.level = value;
  }

  isLevelEnabled(level: string): boolean {
    return (this.built ?? this.parent).isLevelEnabled(level);
  }

  bindings(): Bindings {
    return this.built ? this.built.bindings() : { ...this.parent.bindings(), ...this.own };
  }

  child(bindings: Bindings, options?: ChildLoggerOptions): Logger | LazyChildLogger {
    if (this.built || hasOptions(options)) return this.log.child(bindings, options);
    return new LazyChildLogger(this.parent, { ...this.own, ...bindings });
  }

  private write(level: Level, args: unknown[]): void {
    if (this.isLevelEnabled(level)) (this.log[level] as (...a: unknown[]) => void)(...args);
  }

  fatal(...args: unknown[]): void {
    this.write('fatal', args);
  }
  error(...args: unknown[]): void {
    this.write('error', args);
  }
  warn(...args: unknown[]): void {
    this.write('warn', args);
  }
  info(...args: unknown[]): void {
    this.write('info', args);
  }
  debug(...args: unknown[]): void {
    this.write('debug', args);
  }
  trace(...args: unknown[]): void {
    this.write('trace', args);
  }
  silent(): void {}
}

function hasOptions(options: ChildLoggerOptions | undefined): boolean {
  return options !== undefined && Object.keys(options).length > 0;
}

/** Fastify's `childLoggerFactory`: a lazy child, unless options ask for more than bindings. */
export function lazyChildLoggerFactory(logger: FastifyBaseLogger, bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
  if (hasOptions(options)) return logger.child(bindings, options);
  return new LazyChildLogger(logger as Logger, bindings) as unknown as FastifyBaseLogger;
}
