import { spawn } from "node:child_process";
import { constants } from "node:fs";
import { access, mkdir, readFile, writeFile } from "node:fs/promises";
import { createServer, Socket, type AddressInfo } from "node:net";
import { delimiter, join, resolve } from "node:path";
import { ConfigError } from "../config.js";

/**
 * Redis on demand for a local `npm start`: with REDIS_URL unset and nothing answering on the default
 * address, a private `redis-server` from the PATH is started (AOF on, noeviction, data under
 * `.sandbox/redis/`, a free port) and stopped on exit. Never in production, where a missing Redis is a
 * configuration error, and never when REDIS_URL is given.
 */

export interface RedisEndpoint {
  url: string;
  /** Set when this process started (or took over) a private redis-server; the line to print. */
  started?: string;
  /** Stops a private redis-server this process owns; nothing otherwise. */
  close(): Promise<void>;
}

export interface LocalRedisOptions {
  /** REDIS_URL as configured (its default when unset). */
  url: string;
  /** Whether REDIS_URL was given. */
  urlSet: boolean;
  production: boolean;
  /** Where the private server keeps its data and its owner record. */
  dataDir: string;
  /** PATH to look for redis-server on (default: the process's). */
  path?: string;
}

/** The one message for a machine with no Redis at all: how to get one. */
export const NO_REDIS_HINT = [
  "No Redis: REDIS_URL is unset, nothing answers on 127.0.0.1:6379 and redis-server is not on the PATH. Install Redis 7, then run npm start again:",
  "  Debian/Ubuntu: sudo apt-get install redis-server",
  "  macOS:         brew install redis",
  "  Docker:        docker run -d --name cmk-redis -p 6379:6379 redis:7 redis-server --appendonly yes --maxmemory-policy noeviction",
  "Or set REDIS_URL to a Redis you already have.",
].join("\n");

export class RedisNotInstalledError extends Error {
  constructor() {
    super(NO_REDIS_HINT);
    this.name = "RedisNotInstalledError";
  }
}

/** Who runs the private server, so a second `npm start` in the same folder shares it and a crashed one's is taken over. */
interface OwnerRecord {
  redisPid: number;
  port: number;
  ownerPid: number;
}

const OWNER_FILE = "owner.json";

export async function resolveRedis(options: LocalRedisOptions): Promise<RedisEndpoint> {
  const given: RedisEndpoint = { url: options.url, close: async () => undefined };
  if (options.urlSet) return given;
  const { hostname, port } = new URL(options.url);
  if (await answersPing(hostname, Number(port || 6379))) return given;
  if (options.production) {
    throw new ConfigError("REDIS_URL", `is not set and nothing answers on ${options.url}; in production set it to a Redis with AOF persistence and maxmemory-policy noeviction`);
  }
  return startOrShare(options);
}

async function startOrShare(options: LocalRedisOptions): Promise<RedisEndpoint> {
  const dataDir = resolve(options.dataDir);
  const ownerFile = join(dataDir, OWNER_FILE);
  const previous = await readOwner(ownerFile);
  if (previous && alive(previous.redisPid) && (await answersPing("127.0.0.1", previous.port))) {
    const url = `redis://127.0.0.1:${previous.port}`;
    if (alive(previous.ownerPid)) {
      return { url, started: `Redis: sharing the private redis-server on 127.0.0.1:${previous.port} that process ${previous.ownerPid} started (data in ${options.dataDir}).`, close: async () => undefined };
    }
    // Its owner died without stopping it: take it over, and stop it on exit.
    await writeOwner(ownerFile, { ...previous, ownerPid: process.pid });
    return { url, started: `Redis: took over the private redis-server left on 127.0.0.1:${previous.port} (data in ${options.dataDir}); it stops with this process.`, close: () => stop(previous.redisPid, ownerFile) };
  }

  const binary = await findOnPath("redis-server", options.path ?? process.env.PATH ?? "");
  if (!binary) throw new RedisNotInstalledError();
  await mkdir(dataDir, { recursive: true });
  const port = await freePort();
  const child = spawn(
    binary,
    // AOF on and noeviction: what BullMQ needs to keep jobs across restarts of this Redis.
    ["--port", String(port), "--bind", "127.0.0.1", "--dir", dataDir, "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--maxmemory-policy", "noeviction", "--logfile", "redis.log"],
    // Its own process group: a Ctrl-C in the terminal reaches this process, which stops Redis last.
    { detached: true, stdio: "ignore" },
  );
  child.unref();
  const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
  const ready = await Promise.race([waitForPing(port, 10_000), exited.then(() => false)]);
  if (!ready || child.pid === undefined) {
    child.kill("SIGKILL");
    const log = await readFile(join(dataDir, "redis.log"), "utf8").catch(() => "");
    throw new Error(`redis-server (${binary}) did not start on 127.0.0.1:${port}: ${log.trim().split("\n").slice(-3).join(" | ") || "no log"}`);
  }
  await writeOwner(ownerFile, { redisPid: child.pid, port, ownerPid: process.pid });
  return {
    url: `redis://127.0.0.1:${port}`,
    started: `Redis: nothing answers on 127.0.0.1:6379, so a private redis-server runs on 127.0.0.1:${port} (AOF on, noeviction, data in ${options.dataDir}); it stops with this process.`,
    close: () => stop(child.pid!, ownerFile),
  };
}

/** SIGTERM makes Redis flush its AOF and exit; wait for that (bounded). */
async function stop(pid: number, ownerFile: string): Promise<void> {
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  const deadline = Date.now() + 5000;
  while (alive(pid) && Date.now() < deadline) await new Promise((done) => setTimeout(done, 50));
  if (alive(pid)) process.kill(pid, "SIGKILL");
  await writeFile(ownerFile, "{}").catch(() => undefined);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function readOwner(file: string): Promise<OwnerRecord | undefined> {
  try {
    const record = JSON.parse(await readFile(file, "utf8")) as Partial<OwnerRecord>;
    return Number.isInteger(record.redisPid) && Number.isInteger(record.port) && Number.isInteger(record.ownerPid) ? (record as OwnerRecord) : undefined;
  } catch {
    return undefined;
  }
}

async function writeOwner(file: string, record: OwnerRecord): Promise<void> {
  await writeFile(file, `${JSON.stringify(record)}\n`);
}

export async function findOnPath(command: string, path: string): Promise<string | undefined> {
  for (const directory of path.split(delimiter).filter(Boolean)) {
    const candidate = join(directory, command);
    if (await access(candidate, constants.X_OK).then(() => true, () => false)) return candidate;
  }
  return undefined;
}

/** One PING over a plain socket: true only for a +PONG within the timeout. */
export function answersPing(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((done) => {
    const socket = new Socket();
    let reply = "";
    const finish = (answer: boolean) => {
      socket.destroy();
      done(answer);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once("error", () => finish(false));
    socket.on("data", (chunk) => {
      reply += chunk.toString("latin1");
      // "-NOAUTH …" also means a Redis answers; only its use needs REDIS_URL with a password.
      if (reply.includes("\r\n")) finish(reply.startsWith("+PONG") || reply.startsWith("-NOAUTH"));
    });
    socket.connect(port, host, () => socket.write("PING\r\n"));
  });
}

/** Polls 127.0.0.1:`port` with PING until a Redis answers (true) or `timeoutMs` has passed (false). */
export async function waitForPing(port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await answersPing("127.0.0.1", port)) return true;
    await new Promise((done) => setTimeout(done, 50));
  }
  return false;
}

/** A port nothing listens on now (on 127.0.0.1). */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => done(port));
    });
  });
}
