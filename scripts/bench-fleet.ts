/**
 * `npm run bench:fleet [-- --services 1000] [-- --writes-per-second 5] [-- --burst 20] [-- --lro-ms 3000]`:
 * one fleet rotation at the speed ARM allows, next to the same fleet done as individual SetKey requests.
 *
 * Starts its own Redis (AOF off, noeviction) on a free port, the sandbox in this process with an emulated
 * ARM write budget per subscription (`--burst` tokens refilling `--writes-per-second`), the API and two
 * worker processes told the same budget (CMK_ARM_WRITES_PER_SECOND, CMK_ARM_WRITE_BURST), and creates the
 * fleet over two subscriptions (`createFleet`). Then:
 *  1. one `POST /v1/key-rotations` with createNewVersion, followed to its end;
 *  2. one SetKey per service back to the version it had, all submitted at once, followed to their end.
 * For each it prints wall time, ARM writes per second achieved against the budget (first to last
 * accepted PUT, from the emulator's request log as it is polled), 429s, jobs failed, ARM reads per
 * service, and Redis memory per 1,000 jobs; results go to bench/fleet-results.json.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { sha256Hex } from "../src/plugins/app/authentication.js";
import { startSandbox, type RunningSandbox } from "../src/sandbox/index.js";
import { sandboxAdmin } from "./bench/sandbox-admin.js";
import { freePort, startOwnRedis } from "../test/helpers/redis-server.js";
import { ProcessGroup } from "./bench/processes.js";

const argument = (name: string, fallback: number) => {
  const index = process.argv.indexOf(name);
  return index >= 0 ? Number(process.argv[index + 1]) : fallback;
};
const SERVICES = argument("--services", 1000);
const RATE = argument("--writes-per-second", 5);
const BURST = argument("--burst", 20);
const LRO_MS = argument("--lro-ms", 3000);
const CONCURRENCY = argument("--concurrency", 50);
const SERVER = fileURLToPath(new URL("../src/server.ts", import.meta.url));
const SUBSCRIPTIONS = ["22222222-2222-2222-2222-222222222222", "33333333-3333-3333-3333-333333333333"];
const KEY = "https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048";
const V1 = `${KEY}/00000000000000000000000000000001`;
const API_KEY = `bench-${randomUUID()}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (message: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${message}`);

interface Logged {
  seq: number;
  method: string;
  host: string;
  path: string;
  status: number;
  seenAt: number;
}

/** Polls the emulator's request log every 200 ms and stamps each entry when first seen (the log has no times). */
function followRequestLog(sandbox: RunningSandbox, since: number) {
  const entries: Logged[] = [];
  let last = since;
  let running = true;
  const loop = (async () => {
    while (running) {
      const fresh = (await sandboxAdmin(sandbox, "GET", `/_sandbox/requests?since=${last}`)) as Array<Omit<Logged, "seenAt">>;
      const now = Date.now();
      for (const entry of fresh) entries.push({ ...entry, seenAt: now });
      last = fresh.at(-1)?.seq ?? last;
      await sleep(200);
    }
  })();
  return {
    entries,
    async stop() {
      running = false;
      await loop;
      const fresh = (await sandboxAdmin(sandbox, "GET", `/_sandbox/requests?since=${last}`)) as Array<Omit<Logged, "seenAt">>;
      for (const entry of fresh) entries.push({ ...entry, seenAt: Date.now() });
      return entries;
    },
  };
}

function armFigures(entries: Logged[], services: number) {
  const arm = entries.filter((entry) => entry.host === "management.azure.com");
  const puts = arm.filter((entry) => entry.method === "PUT" && /\/fhirservices\/[^/]+$/.test(entry.path) && entry.status < 300);
  const span = puts.length > 1 ? (puts.at(-1)!.seenAt - puts[0]!.seenAt) / 1000 : 0;
  const budgetPerSecond = RATE * SUBSCRIPTIONS.length;
  const writesPerSecond = span > 0 ? (puts.length - 1) / span : 0;
  return {
    acceptedPuts: puts.length,
    writeSeconds: Number(span.toFixed(1)),
    writesPerSecond: Number(writesPerSecond.toFixed(2)),
    budgetWritesPerSecond: budgetPerSecond,
    ofBudget: Number((writesPerSecond / budgetPerSecond).toFixed(2)),
    throttled429: arm.filter((entry) => entry.status === 429).length,
    armReadsPerService: Number((arm.filter((entry) => entry.method === "GET").length / services).toFixed(2)),
  };
}

async function usedMemory(redisUrl: string): Promise<number> {
  const redis = new Redis(redisUrl);
  try {
    return Number(/used_memory:(\d+)/.exec(await redis.info("memory"))?.[1] ?? 0);
  } finally {
    redis.disconnect();
  }
}

async function main() {
  const dir = await mkdtemp(join(tmpdir(), "cmk-bench-fleet-"));
  const cleanups: Array<() => unknown> = [];
  const group = new ProcessGroup(dir);
  const redis = await startOwnRedis({ teardown: (cleanup) => cleanups.push(cleanup) }, ["--appendonly", "no", "--save", "", "--maxmemory-policy", "noeviction"]);
  // Reads are generous (the point is the write budget); writes as ARM's bucket, scaled down so a run takes minutes.
  const sandbox = await startSandbox({
    port: 0,
    caFile: join(dir, "ca.pem"),
    lroMs: LRO_MS,
    throttle: { reads: { capacity: 250, refillPerSecond: 25 }, writes: { capacity: BURST, refillPerSecond: RATE } },
  });
  const created = (await sandboxAdmin(sandbox, "POST", "/_sandbox/scenarios", { action: "createFleet", count: SERVICES, keyUrl: V1, subscriptions: SUBSCRIPTIONS })) as { created: number };
  log(`redis ${redis.url}, sandbox ${sandbox.url}: ${created.created} FHIR services over ${SUBSCRIPTIONS.length} subscriptions; ARM write budget ${BURST} + ${RATE}/s per subscription, operations ${LRO_MS} ms`);

  const apiPort = await freePort();
  const env = {
    REDIS_URL: redis.url,
    CMK_QUEUE_PREFIX: "benchfleet",
    CMK_SANDBOX_URL: sandbox.url,
    CMK_SANDBOX_CA_FILE: join(dir, "ca.pem"),
    CMK_API_KEYS: JSON.stringify([{ name: "bench", sha256: sha256Hex(API_KEY), roles: ["operator"] }]),
    CMK_WORKER_CONCURRENCY: String(CONCURRENCY),
    CMK_ARM_WRITES_PER_SECOND: String(RATE),
    CMK_ARM_WRITE_BURST: String(BURST),
    CMK_RATE_LIMIT_PER_MINUTE: "1000000",
    // The fleet's role assignments are minutes old on the emulator's clock.
    CMK_ROLE_PROPAGATION_WINDOW_MS: "0",
    CMK_ARM_POLL_INTERVAL_MS: "500",
    PORT: String(apiPort),
    HOST: "127.0.0.1",
    LOG_LEVEL: "warn",
  };
  group.start("api", ["--import", "tsx", SERVER], { ...env, CMK_ROLE: "api" });
  group.start("worker-1", ["--import", "tsx", SERVER], { ...env, CMK_ROLE: "worker" });
  group.start("worker-2", ["--import", "tsx", SERVER], { ...env, CMK_ROLE: "worker" });
  const base = `http://127.0.0.1:${apiPort}`;
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${base}${path}`, { method, headers: { "x-api-key": API_KEY, ...(body ? { "content-type": "application/json" } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  };
  for (const deadline = Date.now() + 60_000; ; ) {
    if (await fetch(`${base}/healthz`).then((response) => response.ok, () => false)) break;
    if (Date.now() > deadline) throw new Error("the API did not start");
    await sleep(200);
  }

  // 1. One fleet rotation.
  const memoryBefore = await usedMemory(redis.url);
  let requests = followRequestLog(sandbox, ((await sandboxAdmin(sandbox, "GET", "/_sandbox/requests")) as Array<{ seq: number }>).at(-1)?.seq ?? 0);
  const started = Date.now();
  // On a loaded machine the API may answer 503 (Redis slow to answer): a client retries.
  let accepted = await call("POST", "/v1/key-rotations", { keyUrl: KEY, createNewVersion: true });
  for (let tries = 1; accepted.status === 503 && tries < 10; tries += 1) {
    await sleep(1000);
    accepted = await call("POST", "/v1/key-rotations", { keyUrl: KEY, createNewVersion: true });
  }
  if (accepted.status !== 202) throw new Error(`rotation not accepted: ${JSON.stringify(accepted.json)}`);
  const parentId = accepted.json.id as string;
  let parent: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  for (let shown = ""; ; ) {
    parent = (await call("GET", `/v1/jobs/${parentId}`)).json;
    const line = `${parent.status} ${parent.percentComplete}% ${parent.currentStep ?? ""}: ${parent.steps?.find((step: { name: string }) => step.name === parent.currentStep)?.message ?? ""}`;
    if (line !== shown) log((shown = line));
    if (["Succeeded", "Failed", "Canceled"].includes(parent.status)) break;
    await sleep(1000);
  }
  const fleetWall = (Date.now() - started) / 1000;
  const fleetEntries = await requests.stop();
  const moved = Number(parent.result?.services?.total ?? SERVICES) - Number(parent.result?.services?.skipped ?? 0);
  const memoryAfter = await usedMemory(redis.url);
  const fleet = {
    status: parent.status,
    services: parent.result?.services,
    wallSeconds: Number(fleetWall.toFixed(1)),
    ...armFigures(fleetEntries, Number(parent.result?.services?.total ?? SERVICES)),
    redisBytesPer1000Jobs: Math.round(((memoryAfter - memoryBefore) / (moved + 1)) * 1000),
  };
  log(`fleet: ${JSON.stringify(fleet)}`);

  // 2. The same services, one SetKey each (back to the version they had), all submitted at once.
  const ids = ((await sandboxAdmin(sandbox, "GET", "/_sandbox/state")) as { fhirServices: Record<string, { id: string }> }).fhirServices;
  const fleetIds = Object.values(ids).map((service) => service.id).filter((id) => /\/fhirservices\/fleet-\d+$/.test(id));
  requests = followRequestLog(sandbox, ((await sandboxAdmin(sandbox, "GET", "/_sandbox/requests")) as Array<{ seq: number }>).at(-1)?.seq ?? 0);
  const memoryBeforeSingles = await usedMemory(redis.url);
  const singlesStarted = Date.now();
  const jobIds: string[] = [];
  for (let i = 0; i < fleetIds.length; i += 50) {
    const answers = await Promise.all(
      fleetIds.slice(i, i + 50).map((fhirServiceId) => call("POST", "/v1/change-requests", { operation: "SetKey", fhirServiceId, keyEncryptionKeyUrl: V1, identity: { type: "SystemAssigned" } })),
    );
    for (const answer of answers) if (answer.status === 202) jobIds.push(answer.json.id as string);
  }
  log(`${jobIds.length} SetKey requests accepted`);
  const ended = new Map<string, string>();
  while (ended.size < jobIds.length) {
    for (const jobId of jobIds.filter((id) => !ended.has(id)).slice(0, 200)) {
      const status = (await call("GET", `/v1/jobs/${jobId}`)).json.status as string;
      if (["Succeeded", "Failed", "Canceled"].includes(status)) ended.set(jobId, status);
    }
    log(`SetKey: ${ended.size} of ${jobIds.length} ended`);
    await sleep(2000);
  }
  const singlesWall = (Date.now() - singlesStarted) / 1000;
  const singlesEntries = await requests.stop();
  const memoryAfterSingles = await usedMemory(redis.url);
  const failedSingles = [...ended.values()].filter((status) => status !== "Succeeded").length;
  const singles = {
    jobs: jobIds.length,
    failed: failedSingles,
    wallSeconds: Number(singlesWall.toFixed(1)),
    ...armFigures(singlesEntries, fleetIds.length),
    redisBytesPer1000Jobs: Math.round(((memoryAfterSingles - memoryBeforeSingles) / jobIds.length) * 1000),
  };
  log(`individual SetKey: ${JSON.stringify(singles)}`);

  const results = {
    dateTime: new Date().toISOString(),
    services: SERVICES,
    subscriptions: SUBSCRIPTIONS.length,
    budget: { writesPerSecondPerSubscription: RATE, burstPerSubscription: BURST, lroMs: LRO_MS, workers: 2, concurrencyPerWorker: CONCURRENCY },
    fleet,
    individualSetKey: singles,
  };
  await writeFile(new URL("../bench/fleet-results.json", import.meta.url), `${JSON.stringify(results, null, 2)}\n`);
  const row = (name: string, r: typeof fleet | typeof singles, failed: number) =>
    `| ${name} | ${r.wallSeconds} s | ${r.writesPerSecond}/s (${r.ofBudget}× of ${r.budgetWritesPerSecond}/s) | ${r.throttled429} | ${failed} | ${r.armReadsPerService} | ${(r.redisBytesPer1000Jobs / 1024 / 1024).toFixed(2)} MB |`;
  console.log("");
  console.log(`${SERVICES} FHIR services over ${SUBSCRIPTIONS.length} subscriptions, ARM write budget ${BURST} + ${RATE}/s per subscription, operations ${LRO_MS} ms, 2 workers × ${CONCURRENCY}`);
  console.log("| | wall time | ARM writes/s (first to last PUT) | 429s | failed | ARM reads per service | Redis per 1,000 jobs |");
  console.log("|---|---|---|---|---|---|---|");
  console.log(row("fleet rotation (1 request)", fleet, Number(parent.result?.services?.failed ?? 0)));
  console.log(row("individual SetKey requests", singles, failedSingles));

  await group.stopAll();
  for (const cleanup of cleanups) await cleanup();
  await sandbox.close();
  await rm(dir, { recursive: true, force: true });
  process.exit(parent.status === "Succeeded" && Number(parent.result?.services?.failed ?? 1) === 0 ? 0 : 1);
}

await main();
