import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { connect } from "node:net";
import { join } from "node:path";
import { freePort, waitForPing } from "../../src/redis/local-redis.js";

export { freePort };

export interface OwnRedis {
  url: string;
  port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
}

/** PEM files of a TLS listener: its certificate and key, and the CA it names to clients. */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  caFile: string;
}

/**
 * A redis-server of the test's own, on a free port with its own data directory, for tests that need
 * persistence, other settings or a restart (the shared one on 6379 must not be touched). With `tls` it
 * listens only for TLS (`--port 0`), at `rediss://localhost:<port>`.
 */
export async function startOwnRedis(t: { teardown(fn: () => unknown): void }, args: string[] = [], options: { tls?: TlsFiles; port?: () => Promise<number> } = {}): Promise<OwnRedis> {
  const port = await (options.port ?? freePort)();
  const dir = await mkdtemp(join(tmpdir(), "cmk-redis-"));
  let child: ChildProcess | undefined;
  const { tls } = options;
  const url = tls ? `rediss://localhost:${port}` : `redis://127.0.0.1:${port}`;
  const listen = tls
    ? ["--port", "0", "--tls-port", String(port), "--tls-cert-file", tls.certFile, "--tls-key-file", tls.keyFile, "--tls-ca-cert-file", tls.caFile, "--tls-auth-clients", "no"]
    : ["--port", String(port)];

  const start = async () => {
    child = spawn("redis-server", [...listen, "--bind", "127.0.0.1", "--dir", dir, "--save", "", ...args], { stdio: "ignore" });
    const up = tls ? await waitForListener(port, 10_000) : await waitForPing(port, 10_000);
    if (!up) throw new Error(`redis-server on ${port} did not start`);
  };
  const stop = async () => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      running.once("exit", () => resolve());
      running.kill("SIGTERM");
    });
  };
  await start();
  t.teardown(async () => {
    await stop();
    await rm(dir, { recursive: true, force: true });
  });
  return { url, port, stop, start };
}

/** Polls until something accepts TCP connections on 127.0.0.1:`port` (a TLS listener answers no plain PING). */
async function waitForListener(port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const accepted = await new Promise<boolean>((done) => {
      const socket = connect(port, "127.0.0.1", () => {
        socket.destroy();
        done(true);
      });
      socket.once("error", () => done(false));
    });
    if (accepted) return true;
    await new Promise((done) => setTimeout(done, 50));
  }
  return false;
}
