import { Redis } from "ioredis";
import type { IssuedToken } from "../../src/sandbox/index.js";
import { REDIS_ENTRA_SCOPE } from "../../src/job-store/redis-entra-auth.js";
import { startOwnRedis, type OwnRedis } from "./redis-server.js";

/**
 * A redis-server that takes Microsoft Entra ID tokens the way Azure Managed Redis does, for tests. Azure
 * checks a token's signature and lifetime itself; here the sandbox's Entra ID tells this stand-in of every
 * Redis token it issues (before the client gets it), and Redis' own ACL does the refusing:
 *
 * - the principal's user (`oid`) accepts exactly the newest token (`ACL SETUSER <oid> on resetpass >token`;
 *   stricter than Azure, which takes any unexpired one, so an older token is refused with WRONGPASS, and
 *   a connection opened after a refresh must bring the new one). The default user is off (NOAUTH).
 * - Azure drops a connection whose token expires: just before each token's `exp`, every connection
 *   signed in as the principal must have sent AUTH since the next token was issued (MONITOR shows each
 *   AUTH, redacted, with the connection's address; an ECHO marker after each ACL change orders them).
 *   One that did not is a violation: it is recorded and killed, as Azure would cut it.
 */

const ADMIN = { username: "stand-in-admin", password: "stand-in-admin-password" };

export interface ExpiryCheck {
  /** The generation whose token expired (1 = the first token). */
  generation: number;
  /** Connections signed in as the principal at that moment: name (CLIENT SETNAME) and address. */
  connections: Array<{ id: string; name: string; addr: string }>;
  /** Those that had not sent the next token: Azure would drop them (here they are killed). */
  violations: Array<{ id: string; name: string; addr: string }>;
}

interface Generation {
  token: string;
  expiresAt: number;
  /** Addresses that sent AUTH since this token was made the only one accepted. */
  signedIn: Set<string>;
}

export class EntraRedisStandIn {
  readonly checks: ExpiryCheck[] = [];
  readonly generations: Generation[] = [];
  private accepting = true;
  private markers = new Map<string, () => void>();
  private timers = new Set<NodeJS.Timeout>();

  private constructor(
    readonly redis: OwnRedis,
    readonly principalId: string,
    private readonly admin: Redis,
  ) {}

  /** A new redis-server playing Azure for `principalId`; torn down with the test. */
  static async start(t: { teardown(fn: () => unknown): void }, principalId: string): Promise<EntraRedisStandIn> {
    const redis = await startOwnRedis(t);
    const setup = new Redis(redis.url);
    await setup.call("ACL", "SETUSER", ADMIN.username, "on", `>${ADMIN.password}`, "~*", "&*", "+@all");
    await setup.call("ACL", "SETUSER", principalId, "off", "resetpass", "~*", "&*", "+@all");
    await setup.call("ACL", "SETUSER", "default", "off");
    setup.disconnect();
    const admin = new Redis(redis.url, { ...ADMIN, connectionName: "stand-in-admin" });
    // monitor() opens a connection of its own.
    const monitorBase = new Redis(redis.url, { ...ADMIN, connectionName: "stand-in-monitor", lazyConnect: true });
    const monitor = await monitorBase.monitor();
    monitorBase.disconnect();
    // The server stops with the test, maybe before these close.
    for (const connection of [admin, monitor]) connection.on("error", () => undefined);
    const standIn = new EntraRedisStandIn(redis, principalId, admin);
    monitor.on("monitor", (_time: string, args: string[], source: string) => standIn.observe(args, source));
    t.teardown(() => {
      for (const timer of standIn.timers) clearTimeout(timer);
      monitor.disconnect();
      admin.disconnect();
    });
    return standIn;
  }

  /** The sandbox's `entra.onTokenIssued`: a Redis token of the principal becomes the only one accepted. */
  readonly onTokenIssued = async ({ token, claims }: IssuedToken): Promise<void> => {
    if (`${String(claims.aud)}/.default` !== REDIS_ENTRA_SCOPE || claims.oid !== this.principalId) return;
    const previous = this.generations.at(-1);
    const generation: Generation = { token, expiresAt: Number(claims.exp) * 1000, signedIn: new Set() };
    if (this.accepting) await this.admin.call("ACL", "SETUSER", this.principalId, "on", "resetpass", `>${token}`);
    this.generations.push(generation);
    await this.marker(`generation-${this.generations.length}`);
    if (previous) this.checkAt(previous, this.generations.length - 1);
  };

  /** Stops accepting the principal's tokens (its access policy removed) and drops its connections. */
  async revoke(): Promise<void> {
    this.accepting = false;
    await this.admin.call("ACL", "SETUSER", this.principalId, "resetpass");
    await this.admin.call("CLIENT", "KILL", "USER", this.principalId);
  }

  /** Accepts the newest token issued again. */
  async restore(): Promise<void> {
    this.accepting = true;
    const newest = this.generations.at(-1);
    if (newest) await this.admin.call("ACL", "SETUSER", this.principalId, "on", "resetpass", `>${newest.token}`);
  }

  /** Failed sign-ins Redis logged (ACL LOG, reason auth) since the last reset. */
  async failedSignIns(): Promise<number> {
    const entries = (await this.admin.call("ACL", "LOG")) as unknown[][];
    return entries.filter((entry) => entry[entry.indexOf("reason") + 1] === "auth").length;
  }

  async resetLog(): Promise<void> {
    await this.admin.call("ACL", "LOG", "RESET");
  }

  /** The principal's connections now. */
  async connections(): Promise<Array<{ id: string; name: string; addr: string; user: string }>> {
    const text = (await this.admin.call("CLIENT", "LIST")) as string;
    return text
      .split("\n")
      .filter(Boolean)
      .map((line) => Object.fromEntries(line.split(" ").map((field) => [field.slice(0, field.indexOf("=")), field.slice(field.indexOf("=") + 1)])) as Record<string, string>)
      .map((fields) => ({ id: fields.id!, name: fields.name ?? "", addr: fields.addr!, user: fields.user! }))
      .filter((client) => client.user === this.principalId);
  }

  private observe(args: string[], source: string): void {
    const command = args[0]?.toLowerCase();
    if (command === "auth") this.generations.at(-1)?.signedIn.add(source);
    if (command === "echo" && args[1]) this.markers.get(args[1])?.();
  }

  /** Resolves once MONITOR has shown an ECHO sent after everything before it. */
  private async marker(name: string): Promise<void> {
    const seen = new Promise<void>((resolve) => this.markers.set(name, resolve));
    await this.admin.echo(name);
    await seen;
    this.markers.delete(name);
  }

  /** Just before `expired`'s exp: whoever did not sign in with the token after it is dropped. */
  private checkAt(expired: Generation, number: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void (async () => {
        const next = this.generations[number]!;
        const connections = (await this.connections()).map(({ id, name, addr }) => ({ id, name, addr }));
        await this.marker(`check-${number}`);
        const violations = connections.filter((connection) => !next.signedIn.has(connection.addr));
        for (const violation of violations) await this.admin.call("CLIENT", "KILL", "ID", violation.id);
        this.checks.push({ generation: number, connections, violations });
      })();
    }, Math.max(0, expired.expiresAt - Date.now() - 500));
    this.timers.add(timer);
  }
}
