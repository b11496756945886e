/**
 * Run inside a fresh network namespace (see test/server.test.ts), where nothing answers on
 * 127.0.0.1:6379: starts the service as `npm start` does, with no REDIS_URL, submits a SetKey with
 * the printed admin key, follows it to its end, stops the service with SIGINT, and prints one JSON line
 * with what happened.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { setKey } from "./requests.js";
import { startServerProcess } from "./server-process.js";

const dataDir = process.argv[2];
if (!dataDir) throw new Error("usage: fresh-network-start.ts <data dir>");
const port = 3000;
const server = startServerProcess({
  REDIS_URL: undefined,
  PORT: String(port),
  CMK_SANDBOX_CA_FILE: join(dataDir, "ca.pem"),
  CMK_SANDBOX_LRO_MS: "500",
  CMK_QUEUE_PREFIX: undefined,
  LOG_LEVEL: "warn",
});
const report: Record<string, unknown> = {};
try {
  const [, startedLine] = await server.waitFor(/^(Redis: .*)$/m);
  report.redisLine = startedLine;
  const [, key] = await server.waitFor(/Admin API key \(sandbox, generated at start\): (\S+)/);
  const owner = JSON.parse(await readFile(join(dataDir, "redis", "owner.json"), "utf8")) as { redisPid: number; port: number };
  report.redisPort = owner.port;
  const headers = { "x-api-key": key!, "content-type": "application/json" };
  const accepted = await fetch(`http://127.0.0.1:${port}/v1/change-requests`, { method: "POST", headers, body: JSON.stringify(setKey("fhir-sys")) });
  report.submitStatus = accepted.status;
  const { id } = (await accepted.json()) as { id: string };
  const deadline = Date.now() + 60_000;
  let monitor: { status: string; result?: unknown; error?: unknown } = { status: "NotStarted" };
  while (Date.now() < deadline && !["Succeeded", "Failed", "Canceled"].includes(monitor.status)) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    monitor = (await (await fetch(`http://127.0.0.1:${port}/v1/jobs/${id}`, { headers })).json()) as typeof monitor;
  }
  report.jobStatus = monitor.status;
  report.jobResult = monitor.result ?? monitor.error;
  const stopped = await server.stop("SIGINT");
  report.exitCode = stopped.code;
  report.exitMs = stopped.ms;
  let redisAlive = true;
  try {
    process.kill(owner.redisPid, 0);
  } catch {
    redisAlive = false;
  }
  report.redisStillRunning = redisAlive;
} catch (error) {
  report.error = (error as Error).message;
  server.child.kill("SIGKILL");
}
report.output = server.output();
console.log(JSON.stringify(report));
