import type { Redis } from "ioredis";

/**
 * While Redis is away every connection (API, worker, webhooks, event subscriber, BullMQ's own) reports
 * each failed reconnect, several times a second. An operator needs one line saying so, a reminder now
 * and then, and one line when it is back: this turns the flood into exactly that, per process.
 */

type Logger = { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };

/** Error codes and messages that mean "Redis is not reachable", as opposed to a failed command. */
const CONNECTION_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "EPIPE"]);
const CONNECTION_MESSAGES = /Connection is closed|connect ETIMEDOUT|Stream isn't writeable|getaddrinfo|socket hang up/i;

export function isConnectionError(error: Error): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return (code !== undefined && CONNECTION_CODES.has(code)) || CONNECTION_MESSAGES.test(error.message);
}

/** Where the error says it tried to connect ("127.0.0.1:6379"), or undefined. */
function target(error: Error): string | undefined {
  const { address, port } = error as { address?: string; port?: number };
  return address ? `${address}${port ? `:${port}` : ""}` : undefined;
}

export class RedisOutageLog {
  private outageSince: number | undefined;
  private lastLineAt = 0;
  private failures = 0;

  constructor(
    private readonly intervalMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** True while an outage is being reported. */
  get inOutage(): boolean {
    return this.outageSince !== undefined;
  }

  /**
   * A Redis error from any connection. Connection failures become one line when the outage starts and at
   * most one per interval after; anything else is logged as it comes, as `what` (no stack: the
   * message says what failed). `where` names the server when the error does not.
   */
  error(logger: Logger, error: Error, what = "redis error", where = target(error) ?? "Redis"): void {
    if (!isConnectionError(error)) {
      logger.warn({ err: error.message }, what);
      return;
    }
    const now = this.now();
    this.failures += 1;
    if (this.outageSince === undefined) {
      this.outageSince = now;
      this.lastLineAt = now;
      logger.warn(
        { err: error.message },
        `Redis at ${where} does not answer (${(error as NodeJS.ErrnoException).code ?? error.message}): the API answers 503 and no job runs until it does; retrying`,
      );
      return;
    }
    if (now - this.lastLineAt < this.intervalMs) return;
    this.lastLineAt = now;
    const seconds = Math.round((now - this.outageSince) / 1000);
    logger.warn({ err: error.message, failedAttempts: this.failures }, `Redis at ${where} still does not answer after ${seconds} s; retrying`);
  }

  /** A connection is ready: ends an outage with one line. */
  ready(logger: Logger): void {
    if (this.outageSince === undefined) return;
    const seconds = Math.round((this.now() - this.outageSince) / 1000);
    this.outageSince = undefined;
    this.failures = 0;
    logger.info({}, `Redis answers again after ${seconds} s`);
  }

  /** Routes an ioredis connection's errors and reconnects through this log. */
  watch(connection: Redis, logger: Logger, what: string): void {
    connection.on("error", (error: Error) => this.error(logger, error, what));
    connection.on("ready", () => this.ready(logger));
  }
}

/** The process's one outage log: every connection reports through it, so an outage is one story. */
export const redisOutageLog = new RedisOutageLog();
