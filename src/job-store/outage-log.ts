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

/** Node's TLS verification and handshake error codes (certificate not trusted, wrong host, not TLS at all). */
const TLS_CODES = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|HOSTNAME_MISMATCH|EPROTO)/;
/** Redis refusing who the service says it is (a wrong or expired password or token, or none given). */
const AUTH_MESSAGES = /^(WRONGPASS|NOAUTH)|invalid (username-)?password/i;

/**
 * Why Redis cannot be used: not reached at all, a TLS handshake that failed (its certificate is not
 * trusted or names another host), or credentials it refuses. Undefined: an error of one command.
 */
export type RedisProblem = "unreachable" | "tls" | "credentials";

export function redisProblemOf(error: Error): RedisProblem | undefined {
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== undefined && TLS_CODES.test(code)) return "tls";
  if (AUTH_MESSAGES.test(error.message)) return "credentials";
  return isConnectionError(error) ? "unreachable" : undefined;
}

/** Where the error says it tried to connect ("127.0.0.1:6379"), or undefined. */
function target(error: Error): string | undefined {
  const { address, port } = error as { address?: string; port?: number };
  return address ? `${address}${port ? `:${port}` : ""}` : undefined;
}

/** What a connection's errors are about: its server (when the error does not say) and who it signs in as. */
export interface RedisErrorContext {
  where?: string;
  /** How the service authenticates now, for the line about refused credentials (never a secret). */
  auth?: () => string;
}

const CONSEQUENCE = "the API answers 503 and no job runs until it does; retrying";

function firstLine(problem: RedisProblem, error: Error, where: string, auth: (() => string) | undefined): string {
  const code = (error as NodeJS.ErrnoException).code;
  switch (problem) {
    case "unreachable":
      return `Redis at ${where} does not answer (${code ?? error.message}): ${CONSEQUENCE}`;
    case "tls":
      return `Redis at ${where}: the TLS handshake failed (${code}: ${error.message}); its certificate must chain to a trusted CA (the system's, or one in CMK_REDIS_CA_FILE) and name REDIS_URL's host: ${CONSEQUENCE}`;
    case "credentials":
      return `Redis at ${where} refuses the service's credentials (${error.message.trim()}); the service signs in with ${auth?.() ?? "what REDIS_URL and CMK_REDIS_AUTH say"}: ${CONSEQUENCE}`;
  }
}

const STILL: Record<RedisProblem, string> = {
  unreachable: "still does not answer",
  tls: "still fails the TLS handshake",
  credentials: "still refuses the service's credentials",
};

export class RedisOutageLog {
  private outageSince: number | undefined;
  private lastLineAt = 0;
  private failures = 0;
  private current: RedisProblem | undefined;
  /**
   * The process's Redis, as the last connection watched or error reported with it said, for errors that
   * come without it (BullMQ's own connections report through their queue or worker).
   */
  private known: RedisErrorContext = {};

  constructor(
    private readonly intervalMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** True while an outage is being reported. */
  get inOutage(): boolean {
    return this.outageSince !== undefined;
  }

  /** What keeps Redis from being used now (readiness says it), or undefined. */
  get problem(): RedisProblem | undefined {
    return this.current;
  }

  /**
   * A Redis error from any connection. Connection failures, failed TLS handshakes and refused credentials
   * become one line when the outage starts (or its cause changes) and at most one per interval after;
   * anything else is logged as it comes, as `what` (no stack: the message says what failed).
   */
  error(logger: Logger, error: Error, what = "redis error", context: RedisErrorContext = {}): void {
    const found = redisProblemOf(error);
    if (!found) {
      logger.warn({ err: error.message }, what);
      return;
    }
    // A failed handshake or refused sign-in also closes the connection: that is not news.
    const problem = found === "unreachable" && this.current ? this.current : found;
    // The server a caller names, else the one the error names (a cluster node), else the process's.
    this.known = { ...this.known, ...context };
    const where = context.where ?? target(error) ?? this.known.where ?? "REDIS_URL";
    const { auth } = this.known;
    const now = this.now();
    this.failures += 1;
    if (this.outageSince === undefined || this.current !== problem) {
      this.outageSince ??= now;
      this.current = problem;
      this.lastLineAt = now;
      logger.warn({ err: error.message }, firstLine(problem, error, where, auth));
      return;
    }
    if (now - this.lastLineAt < this.intervalMs) return;
    this.lastLineAt = now;
    const seconds = Math.round((now - this.outageSince) / 1000);
    logger.warn({ err: error.message, failedAttempts: this.failures }, `Redis at ${where} ${STILL[problem]} after ${seconds} s; retrying`);
  }

  /** A connection is ready: ends an outage with one line. */
  ready(logger: Logger): void {
    if (this.outageSince === undefined) return;
    const seconds = Math.round((this.now() - this.outageSince) / 1000);
    this.outageSince = undefined;
    this.current = undefined;
    this.failures = 0;
    logger.info({}, `Redis answers again after ${seconds} s`);
  }

  /** Routes an ioredis connection's errors and reconnects through this log. */
  watch(connection: Redis, logger: Logger, what: string, context: RedisErrorContext = {}): void {
    this.known = { ...this.known, ...context };
    connection.on("error", (error: Error) => this.error(logger, error, what));
    connection.on("ready", () => this.ready(logger));
  }
}

/** The process's one outage log: every connection reports through it, so an outage is one story. */
export const redisOutageLog = new RedisOutageLog();
