import type { AccessToken, TokenCredential } from "@azure/core-auth";
import type { Cluster, Redis } from "ioredis";

/**
 * Microsoft Entra ID authentication for Azure Managed Redis and Azure Cache for Redis
 * (CMK_REDIS_AUTH=entra): the password is an access token of the service's own credential for
 * `https://redis.azure.com/.default`, the user the principal's object id (the token's `oid`, or
 * CMK_REDIS_USERNAME). Azure drops a connection whose token expires, so a new token is fetched at 75% of
 * the current one's lifetime and sent with AUTH on every open connection, and set on each connection's
 * options, so reconnects and duplicates (BullMQ duplicates a Worker's connection for its blocking reads)
 * sign in with it. A connection in subscriber mode may not send AUTH (RESP2): it reconnects instead, and
 * ioredis subscribes again.
 */

export const REDIS_ENTRA_SCOPE = "https://redis.azure.com/.default";

/** Share of a token's lifetime after which the next one is fetched. */
const REFRESH_AT = 0.75;
/** Attempts at the first token before start-up gives up (1 + 2 + 4 + 8 s apart). */
const START_ATTEMPTS = 5;

type Logger = { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };

export interface RedisCredentials {
  username: string;
  password: string;
}

/** Start-up could not get a token for Redis: the message says why, for the operator. */
export class RedisSignInError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RedisSignInError";
  }
}

interface Tracked {
  connection: Redis | Cluster;
  subscriber: boolean;
}

interface CurrentToken extends RedisCredentials {
  expiresOnTimestamp: number;
}

export interface RedisEntraAuthOptions {
  /** CMK_REDIS_USERNAME; unset: the token's `oid`. */
  username?: string | undefined;
  logger: Logger;
  now?: () => number;
  /** Wait between attempts at the first token (tests shorten it). */
  startRetryMs?: number;
}

export class RedisEntraAuth {
  private current: CurrentToken | undefined;
  private readonly tracked = new Set<Tracked>();
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private closed = false;
  private readonly now: () => number;

  constructor(
    private readonly credential: TokenCredential,
    private readonly options: RedisEntraAuthOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** Gets the first token (connections are made with it) and keeps it fresh; throws RedisSignInError when none can be had. */
  async start(): Promise<void> {
    let lastError: Error | undefined;
    for (let attempt = 0; attempt < START_ATTEMPTS; attempt += 1) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, (this.options.startRetryMs ?? 1000) * 2 ** (attempt - 1)));
      try {
        const token = await this.fetch();
        this.use(token);
        this.schedule(this.refreshDelay(token));
        return;
      } catch (error) {
        lastError = error as Error;
        if (error instanceof RedisSignInError) break;
      }
    }
    throw lastError instanceof RedisSignInError
      ? lastError
      : new RedisSignInError(`Redis sign-in (CMK_REDIS_AUTH=entra): no token for ${REDIS_ENTRA_SCOPE} after ${START_ATTEMPTS} attempts: ${lastError?.message}`);
  }

  /** The user and token to sign in with now. */
  credentials(): RedisCredentials {
    if (!this.current) throw new Error("RedisEntraAuth.start() has not got a token yet");
    return { username: this.current.username, password: this.current.password };
  }

  /** Who the service is to Redis, for log lines (never the token). */
  describe(): string {
    const user = this.current?.username ?? this.options.username ?? "(not signed in yet)";
    const expires = this.current ? `, token expires ${new Date(this.current.expiresOnTimestamp).toISOString()}` : "";
    return `a Microsoft Entra ID token (CMK_REDIS_AUTH=entra) as user ${user}${expires}; the principal needs a data access policy on the cache`;
  }

  /** Connections kept current (made by the factory, and their duplicates), for tests and logs. */
  get connectionCount(): number {
    return this.tracked.size;
  }

  /**
   * Keeps `connection` signed in with the current token until it ends, and every duplicate made of it.
   * Returns it.
   */
  track<T extends Redis | Cluster>(connection: T, options: { subscriber: boolean }): T {
    const entry: Tracked = { connection, subscriber: options.subscriber };
    this.tracked.add(entry);
    connection.once("end", () => this.tracked.delete(entry));
    if (isCluster(connection)) {
      // Nodes the cluster connects to later start from its options; those caught mid-handshake by a refresh catch up.
      connection.on("+node", (node: Redis) => node.on("ready", () => this.catchUp(node, false)));
    } else {
      connection.on("ready", () => this.catchUp(connection, options.subscriber));
    }
    const duplicate = connection.duplicate.bind(connection) as (...args: unknown[]) => T;
    // A duplicate copies the options as they are now (the current token) and is kept current from then on.
    (connection as unknown as { duplicate: (...args: unknown[]) => T }).duplicate = (...args: unknown[]) => this.track(duplicate(...args), { subscriber: false });
    return connection;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  private async fetch(): Promise<CurrentToken> {
    let token: AccessToken | null;
    try {
      token = await this.credential.getToken(REDIS_ENTRA_SCOPE);
    } catch (error) {
      throw new Error(`the service's credential could not get a token for ${REDIS_ENTRA_SCOPE}: ${(error as Error).message}`);
    }
    if (!token) throw new Error(`the service's credential returned no token for ${REDIS_ENTRA_SCOPE}`);
    const username = this.options.username ?? objectIdOf(token.token);
    if (!username) throw new RedisSignInError("Redis sign-in (CMK_REDIS_AUTH=entra): the token has no oid claim; set CMK_REDIS_USERNAME to the principal's object id");
    return { username, password: token.token, expiresOnTimestamp: token.expiresOnTimestamp };
  }

  private refreshDelay(token: CurrentToken): number {
    return Math.max(1000, (token.expiresOnTimestamp - this.now()) * REFRESH_AT);
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    if (this.closed) return;
    this.timer = setTimeout(() => void this.refresh(), delayMs);
    this.timer.unref();
  }

  private async refresh(): Promise<void> {
    const remaining = (this.current?.expiresOnTimestamp ?? 0) - this.now();
    let token: CurrentToken;
    try {
      token = await this.fetch();
    } catch (error) {
      this.failures += 1;
      const retryMs = Math.min(30_000, 1000 * 2 ** Math.min(this.failures, 5));
      this.options.logger.warn(
        { err: (error as Error).message, expiresInSeconds: Math.round(remaining / 1000), retryInSeconds: retryMs / 1000 },
        remaining > 0
          ? "Redis token (CMK_REDIS_AUTH=entra) not refreshed; the current one still works until it expires; retrying"
          : "Redis token (CMK_REDIS_AUTH=entra) expired and no new one can be had: Redis will drop the service's connections; retrying",
      );
      this.schedule(retryMs);
      return;
    }
    this.failures = 0;
    if (token.password === this.current?.password) {
      // The credential's cache gave the same token back (it renews shortly before expiry): ask again soon.
      this.schedule(Math.min(30_000, Math.max(1000, (token.expiresOnTimestamp - this.now()) / 10)));
      return;
    }
    const count = this.use(token);
    this.options.logger.info({ connections: count, expiresOn: new Date(token.expiresOnTimestamp).toISOString() }, "Redis token (CMK_REDIS_AUTH=entra) refreshed on every connection");
    this.schedule(this.refreshDelay(token));
  }

  /** Makes `token` current on every tracked connection; returns how many. */
  private use(token: CurrentToken): number {
    this.current = token;
    for (const { connection, subscriber } of this.tracked) {
      if (isCluster(connection)) this.applyToCluster(connection);
      else this.apply(connection, subscriber);
    }
    return this.tracked.size;
  }

  private applyToCluster(cluster: Cluster): void {
    // The node pool makes new node connections from these options (the same object).
    Object.assign(cluster.options.redisOptions ?? (cluster.options.redisOptions = {}), this.credentials());
    for (const node of cluster.nodes("all")) this.apply(node, false);
    // The cluster's pub/sub connection is its own; a new one is picked (from the updated nodes) and subscribed again.
    const subscriber = (cluster as unknown as { subscriber?: { getInstance(): Redis | null } }).subscriber?.getInstance();
    if (subscriber) {
      Object.assign(subscriber.options, this.credentials());
      if (subscriber.status === "ready") subscriber.disconnect();
    }
  }

  /** Sets the token on `connection`'s options and, when it is signed in already, sends AUTH (or reconnects a subscriber). */
  private apply(connection: Redis, subscriber: boolean): void {
    const { username, password } = this.credentials();
    Object.assign(connection.options, { username, password });
    if (connection.status !== "ready") return;
    if (subscriber || connection.condition?.subscriber) {
      connection.disconnect(true);
      return;
    }
    connection.auth(username, password).catch((error: Error) => connection.emit("error", error));
  }

  /** A connection that became ready signed in with the token of its connect: an older one if a refresh came meanwhile. */
  private catchUp(connection: Redis, subscriber: boolean): void {
    const auth = connection.condition?.auth;
    const used = Array.isArray(auth) ? auth[1] : auth;
    if (this.current && used !== this.current.password) this.apply(connection, subscriber);
  }
}

function isCluster(connection: Redis | Cluster): connection is Cluster {
  return (connection as Cluster).isCluster === true;
}

/** The `oid` claim of a JWT (not verified: the token is the service's own, straight from Entra ID). */
function objectIdOf(token: string): string | undefined {
  try {
    const claims = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as { oid?: unknown };
    return typeof claims.oid === "string" && claims.oid !== "" ? claims.oid : undefined;
  } catch {
    return undefined;
  }
}
