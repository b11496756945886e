import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { findOnPath } from "../../src/redis/local-redis.js";
import { freePort, startOwnRedis, type OwnRedis, type TlsFiles } from "./redis-server.js";

/**
 * A free port whose cluster bus port (+10000, what `redis-cli --cluster create` assumes) exists too.
 */
async function clusterNodePort(): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (port + 10_000 <= 65_535) return port;
  }
}

const run = promisify(execFile);

/** Why a cluster cannot be made here (redis-cli creates it), or undefined. */
export async function clusterUnavailable(): Promise<string | undefined> {
  return (await findOnPath("redis-cli", process.env.PATH ?? "")) ? undefined : "redis-cli is not on the PATH: it is what creates the Redis Cluster (apt-get install redis-tools)";
}

export interface OwnCluster {
  /** One node's URL: the service's REDIS_URL (the others are discovered). */
  url: string;
  nodes: OwnRedis[];
  /** The node that serves `key`'s slot (a master: the cluster has no replicas). */
  nodeOf(key: string): Promise<OwnRedis>;
  /** Every key on every node, with its slot and node. */
  keys(): Promise<Array<{ key: string; slot: number; node: number }>>;
}

/**
 * A Redis Cluster of the test's own: `masters` redis-servers with `--cluster-enabled yes` (each its own
 * port, data directory and nodes.conf, so a node restarted with `start()` rejoins), joined by
 * `redis-cli --cluster create` with no replicas; ready once every node says cluster_state:ok. With `tls`
 * the nodes speak only TLS, to clients and to each other.
 */
export async function startRedisCluster(t: { teardown(fn: () => unknown): void }, options: { masters?: number; args?: string[]; tls?: TlsFiles } = {}): Promise<OwnCluster> {
  const masters = options.masters ?? 3;
  const { tls } = options;
  const clusterArgs = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000", ...(tls ? ["--tls-cluster", "yes"] : []), ...(options.args ?? [])];
  const nodes = await Promise.all(Array.from({ length: masters }, () => startOwnRedis(t, clusterArgs, { ...(tls ? { tls } : {}), port: clusterNodePort })));
  const cliTls = tls ? ["--tls", "--cacert", tls.caFile] : [];
  // It waits for the nodes to meet; a bus that never connects would keep it waiting.
  await run("redis-cli", [...cliTls, "--cluster", "create", ...nodes.map((node) => `127.0.0.1:${node.port}`), "--cluster-replicas", "0", "--cluster-yes"], { timeout: 30_000 });
  const ca = tls ? readFileSync(tls.caFile, "utf8") : undefined;
  const admin = (node: OwnRedis) => {
    const connection = new Redis(node.url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, ...(ca ? { tls: { ca, servername: "localhost" } } : {}) });
    connection.on("error", () => undefined);
    return connection;
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    const states = await Promise.all(
      nodes.map(async (node) => {
        const connection = admin(node);
        try {
          return /cluster_state:ok/.test(String(await connection.call("CLUSTER", "INFO")));
        } finally {
          connection.disconnect();
        }
      }),
    );
    if (states.every(Boolean)) break;
    if (Date.now() > deadline) throw new Error("the Redis Cluster did not reach cluster_state:ok");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const withAdmin = async <T>(node: OwnRedis, work: (connection: Redis) => Promise<T>): Promise<T> => {
    const connection = admin(node);
    try {
      return await work(connection);
    } finally {
      connection.disconnect();
    }
  };
  return {
    url: nodes[0]!.url,
    nodes,
    async nodeOf(key) {
      const [slot, slots] = await withAdmin(nodes[0]!, async (connection) => [
        Number(await connection.call("CLUSTER", "KEYSLOT", key)),
        (await connection.call("CLUSTER", "SLOTS")) as Array<[number, number, [string, number]]>,
      ] as const);
      const port = slots.find(([from, to]) => slot >= from && slot <= to)?.[2][1];
      const node = nodes.find((candidate) => candidate.port === port);
      if (!node) throw new Error(`no node serves slot ${slot}`);
      return node;
    },
    async keys() {
      const found: Array<{ key: string; slot: number; node: number }> = [];
      for (const [index, node] of nodes.entries()) {
        await withAdmin(node, async (connection) => {
          let cursor = "0";
          do {
            const [next, keys] = await connection.scan(cursor, "COUNT", 1000);
            cursor = next;
            for (const key of keys) found.push({ key, slot: Number(await connection.call("CLUSTER", "KEYSLOT", key)), node: index });
          } while (cursor !== "0");
        });
      }
      return found;
    },
  };
}
