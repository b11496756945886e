import { Redis } from "ioredis";
import type { IssuedToken } from "../../src/sandbox/index.js";
import { REDIS_ENTRA_SCOPE } from "../../src/job-store/redis-entra-auth.js";
import type { OwnCluster } from "./redis-cluster.js";
import { startOwnRedis, type OwnRedis } from "./redis-server.js";

/**
 * A Redis (one redis-server, or every node of a cluster) that takes Microsoft Entra ID tokens the way
 * Azure Managed Redis does, for tests. Azure checks a token's signature and lifetime itself; here the
 * sandbox's Entra ID tells this stand-in of every Redis token it issues (before the client gets it), and
 * Redis' own ACL does the refusing:
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

export interface Connection {
  /** `<node>/<client id>`. */
  id: string;
  name: string;
  addr: string;
}

export interface ExpiryCheck {
  /** The generation whose token expired (1 = the first token). */
  generation: number;
  /** Connections signed in as the principal at that moment, on every node. */
  connections: Connection[];
  /** Those that had not sent the next token: Azure would drop them (here they are killed). */
  violations: Connection[];
}

interface Generation {
  token: string;
  expiresAt: number;
  /** `<node>/<address>` of connections that sent AUTH since this token was made the only one accepted. */
  signedIn: Set<string>;
}

interface Node {
  admin: Redis;
  markers: Map<string, () => void>;
}

export class EntraRedisStandIn {
  readonly checks: ExpiryCheck[] = [];
  readonly generations: Generation[] = [];
  private accepting = true;
  private readonly timers = new Set<NodeJS.Timeout>();

  private constructor(
    /** REDIS_URL for the service: the server, or the cluster's first node. */
    readonly url: string,
    readonly principalId: string,
    private readonly nodes: Node[],
  ) {}

  /** A new redis-server (or every node of `cluster`) playing Azure for `principalId`; torn down with the test. */
  static async start(t: { teardown(fn: () => unknown): void }, principalId: string, cluster?: OwnCluster): Promise<EntraRedisStandIn> {
    const servers: OwnRedis[] = cluster ? cluster.nodes : [await startOwnRedis(t)];
    const nodes: Node[] = [];
    const monitors: Redis[] = [];
    for (const server of servers) {
      const setup = new Redis(server.url);
      await setup.call("ACL", "SETUSER", ADMIN.username, "on", `>${ADMIN.password}`, "~*", "&*", "+@all");
      await setup.call("ACL", "SETUSER", principalId, "off", "resetpass", "~*", "&*", "+@all");
      await setup.call("ACL", "SETUSER", "default", "off");
      setup.disconnect();
      const admin = new Redis(server.url, { ...ADMIN, connectionName: "stand-in-admin" });
      // monitor() opens a connection of its own.
      const monitorBase = new Redis(server.url, { ...ADMIN, connectionName: "stand-in-monitor", lazyConnect: true });
      const monitor = await monitorBase.monitor();
      monitorBase.disconnect();
      // The server stops with the test, maybe before these close.
      for (const connection of [admin, monitor]) connection.on("error", () => undefined);
      monitors.push(monitor);
      nodes.push({ admin, markers: new Map() });
    }
    const standIn = new EntraRedisStandIn(servers[0]!.url, principalId, nodes);
    monitors.forEach((monitor, index) => monitor.on("monitor", (_time: string, args: string[], source: string) => standIn.observe(index, args, source)));
    t.teardown(() => {
      for (const timer of standIn.timers) clearTimeout(timer);
      for (const connection of [...monitors, ...nodes.map((node) => node.admin)]) connection.disconnect();
    });
    return standIn;
  }

  /** The sandbox's `entra.onTokenIssued`: a Redis token of the principal becomes the only one accepted. */
  readonly onTokenIssued = async ({ token, claims }: IssuedToken): Promise<void> => {
    if (`${String(claims.aud)}/.default` !== REDIS_ENTRA_SCOPE || claims.oid !== this.principalId) return;
    const previous = this.generations.at(-1);
    const generation: Generation = { token, expiresAt: Number(claims.exp) * 1000, signedIn: new Set() };
    if (this.accepting) await this.onEveryNode((node) => node.admin.call("ACL", "SETUSER", this.principalId, "on", "resetpass", `>${token}`));
    this.generations.push(generation);
    await this.markers(`generation-${this.generations.length}`);
    if (previous) this.checkAt(previous, this.generations.length - 1);
  };

  /** Stops accepting the principal's tokens (its access policy removed) and drops its connections. */
  async revoke(): Promise<void> {
    this.accepting = false;
    await this.onEveryNode(async (node) => {
      await node.admin.call("ACL", "SETUSER", this.principalId, "resetpass");
      await node.admin.call("CLIENT", "KILL", "USER", this.principalId);
    });
  }

  /** Accepts the newest token issued again. */
  async restore(): Promise<void> {
    this.accepting = true;
    const newest = this.generations.at(-1);
    if (newest) await this.onEveryNode((node) => node.admin.call("ACL", "SETUSER", this.principalId, "on", "resetpass", `>${newest.token}`));
  }

  /** Failed sign-ins Redis logged (ACL LOG, reason auth), on every node. */
  async failedSignIns(): Promise<number> {
    const logs = await this.onEveryNode((node) => node.admin.call("ACL", "LOG") as Promise<unknown[][]>);
    return logs.flat().filter((entry) => entry[entry.indexOf("reason") + 1] === "auth").length;
  }

  /** The principal's connections now, on every node. */
  async connections(): Promise<Connection[]> {
    const lists = await this.onEveryNode(async (node, index) => {
      const text = (await node.admin.call("CLIENT", "LIST")) as string;
      return text
        .split("\n")
        .filter(Boolean)
        .map((line) => Object.fromEntries(line.split(" ").map((field) => [field.slice(0, field.indexOf("=")), field.slice(field.indexOf("=") + 1)])) as Record<string, string>)
        .filter((fields) => fields.user === this.principalId)
        .map((fields) => ({ id: `${index}/${fields.id}`, name: fields.name ?? "", addr: `${index}/${fields.addr}` }));
    });
    return lists.flat();
  }

  private onEveryNode<T>(work: (node: Node, index: number) => Promise<T>): Promise<T[]> {
    return Promise.all(this.nodes.map(work));
  }

  private observe(node: number, args: string[], source: string): void {
    const command = args[0]?.toLowerCase();
    if (command === "auth") this.generations.at(-1)?.signedIn.add(`${node}/${source}`);
    if (command === "echo" && args[1]) this.nodes[node]!.markers.get(args[1])?.();
  }

  /** Resolves once every node's MONITOR has shown an ECHO sent after everything before it. */
  private async markers(name: string): Promise<void> {
    await this.onEveryNode(async (node) => {
      const seen = new Promise<void>((resolve) => node.markers.set(name, resolve));
      await node.admin.echo(name);
      await seen;
      node.markers.delete(name);
    });
  }

  /** Just before `expired`'s exp: whoever did not sign in with the token after it is dropped. */
  private checkAt(expired: Generation, number: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void (async () => {
        const next = this.generations[number]!;
        const connections = await this.connections();
        await this.markers(`check-${number}`);
        const violations = connections.filter((connection) => !next.signedIn.has(connection.addr));
        for (const violation of violations) {
          const [node, id] = violation.id.split("/");
          await this.nodes[Number(node)]!.admin.call("CLIENT", "KILL", "ID", id!);
        }
        this.checks.push({ generation: number, connections, violations });
      })();
    }, Math.max(0, expired.expiresAt - Date.now() - 500));
    this.timers.add(timer);
  }
}
