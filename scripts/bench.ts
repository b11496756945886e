/**
 * `npm run bench [-- --seconds 10 --warmup 3 --connections 32 --rounds 30 --rtt 40 --jobs 1000 --worker-concurrency 100 --log-level info]`
 * `npm run bench -- --only p1,p2 --seconds 5 [--cpu-prof .tmp/prof]`: some phases only (p1, p2, p4, p5), printed but not
 * written to bench/results.json; `--cpu-prof <dir>` runs the measured API under `node --cpu-prof` (the profile is
 * written to <dir> when the benchmark stops it).
 *
 * The cost of the service next to bare baselines, measured in one run on this machine (not a test:
 * timings belong here, never in `npm test`). It builds `dist/` and starts, each in its own process:
 * one dedicated redis-server on a free port; the baselines on the project's own Fastify, ioredis and
 * BullMQ (B1: a bare Fastify route with one HGETALL of a job-sized record; B2: raw `queue.add` with a job
 * id and deduplication); the Azure sandbox (in this process) behind a TCP proxy that can add network
 * latency; the API (`CMK_ROLE=api`, compiled, `NODE_ENV=production`); a second API process whose Redis
 * traffic goes through a proxy that counts round trips; and a worker where a phase needs one. Then:
 *
 *   P1  GET /v1/jobs/{id} of a finished SetKey vs B1 (autocannon): req/s and p99 ratios
 *   P2  POST /v1/change-requests accepted (API only, unique FHIR services) vs B2: ratio of rates
 *   P4  POST /v1/validations with a simulated round trip to Azure vs its slowest single lookup
 *   P5  API RSS idle and under P1; worker RSS with 1,000 jobs in flight
 *   and Redis commands (INFO commandstats) and round trips per status read and per accepted change.
 *
 * Prints the tables and writes bench/results.json. Every process it started is stopped however it ends.
 */
import { spawnSync } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, platform, release, tmpdir, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import ts from "typescript";
import { startSandbox, type RunningSandbox } from "../src/sandbox/index.js";
import { sandboxRequests, setFaults } from "../test/helpers/sandbox-admin.js";
import { freePort, startOwnRedis } from "../test/helpers/redis-server.js";
import { runLoad, type LoadResult } from "./bench/load.js";
import { ProcessGroup, rssMb, sampleRss, type BenchProcess } from "./bench/processes.js";
import { commandDelta, perRequest, snapshot, type CommandDelta } from "./bench/redis-counters.js";
import { judgeGoals, renderReport, type AddsResult, type BenchResults, type NodeMemory, type PerRequestCommands } from "./bench/report.js";
import { startTcpProxy, type TcpProxy } from "./bench/tcp-proxy.js";
import { measureValidations } from "./bench/validations.js";

const argument = (name: string, fallback: number) => {
  const index = process.argv.indexOf(name);
  return index >= 0 ? Number(process.argv[index + 1]) : fallback;
};
const stringArgument = (name: string, fallback: string) => {
  const index = process.argv.indexOf(name);
  return index >= 0 ? process.argv[index + 1]! : fallback;
};
const SECONDS = argument("--seconds", 10);
const WARMUP = argument("--warmup", 3);
const CONNECTIONS = argument("--connections", 32);
const ROUNDS = argument("--rounds", 30);
const RTT_MS = argument("--rtt", 40);
const JOBS = argument("--jobs", 1000);
const WORKER_CONCURRENCY = argument("--worker-concurrency", 100);
const LOG_LEVEL = stringArgument("--log-level", "info");
const PHASES = ["p1", "p2", "p4", "p5"] as const;
const ONLY = new Set(stringArgument("--only", PHASES.join(",")).split(",").map((phase) => phase.trim().toLowerCase()));
for (const phase of ONLY) if (!(PHASES as readonly string[]).includes(phase)) throw new Error(`--only: unknown phase ${phase} (phases: ${PHASES.join(", ")})`);
const ALL_PHASES = PHASES.every((phase) => ONLY.has(phase));
const CPU_PROFILE_DIR = stringArgument("--cpu-prof", "");
/** The rate-limit counters' flush (job-store/rate-counters.ts): periodic, not any request's. */
const RATE_COUNTER_COMMANDS = ["incrby", "pexpire", "pttl"];
/** Requests made one at a time to count round trips and commands exactly. */
const SEQUENTIAL = 20;

const REPOSITORY = fileURLToPath(new URL("..", import.meta.url));
const SERVER = join(REPOSITORY, "dist", "src", "server.js");
const SUBSCRIPTION = "22222222-2222-2222-2222-222222222222";
const FHIR_BASE = `/subscriptions/${SUBSCRIPTION}/resourceGroups/rg-sandbox/providers/Microsoft.HealthcareApis/workspaces/wssandbox/fhirservices`;
const KEY_URL = "https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048/00000000000000000000000000000002";
const UAMI = `/subscriptions/${SUBSCRIPTION}/resourceGroups/rg-sandbox/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uami-sandbox`;
const SET_KEY_FHIR_SYS = { operation: "SetKey", fhirServiceId: `${FHIR_BASE}/fhir-sys`, keyEncryptionKeyUrl: KEY_URL, identity: { type: "SystemAssigned" } };
const B1_PREFIX = "bench-b1:jobs";
const REDIS_SETTINGS = ["--appendonly", "no", "--maxmemory-policy", "noeviction"];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const started = Date.now();
const log = (message: string) => console.log(`[bench +${((Date.now() - started) / 1000).toFixed(0).padStart(3)} s] ${message}`);

/** V8 heap and external memory of a service process, from its /metrics (prom-client's Node metrics), in MB. */
async function nodeMemory(base: string): Promise<NodeMemory | undefined> {
  const text = await fetch(`${base}/metrics`).then((response) => response.text(), () => "");
  const gauge = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text)?.[1] ?? Number.NaN) / 2 ** 20;
  const memory = { heapTotalMb: gauge("cmk_nodejs_heap_size_total_bytes"), heapUsedMb: gauge("cmk_nodejs_heap_size_used_bytes"), externalMb: gauge("cmk_nodejs_external_memory_bytes") };
  return Object.values(memory).some(Number.isNaN) ? undefined : memory;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await sleep(100);
  }
}

function expectAllAnswered(what: string, result: LoadResult, process?: BenchProcess): void {
  if (result.non2xx > 0 || result.errors > 0 || result.requests === 0) {
    throw new Error(`${what}: ${result.requests} answers, ${result.non2xx} not 2xx, ${result.errors} errors${process ? `\n${process.name} log:\n${process.logTail()}` : ""}`);
  }
}

/** How many jobs have each status, paging through `GET /v1/jobs` (the public contract, whatever the store's layout). */
async function jobStatuses(base: string, headers: Record<string, string>): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  let next: string | undefined = "/v1/jobs?top=100";
  while (next) {
    const response = await fetch(`${base}${next}`, { headers });
    if (!response.ok) throw new Error(`GET ${next}: ${response.status} ${await response.text()}`);
    const page = (await response.json()) as { value: Array<{ status: string }>; nextLink?: string };
    for (const job of page.value) counts[job.status] = (counts[job.status] ?? 0) + 1;
    next = page.nextLink;
  }
  return counts;
}

/** A short FHIR service name (3-24 characters) unique within the run. */
function serviceName(tag: string, index: number): string {
  return `${tag}-${index.toString(36)}`;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "cmk-bench-"));
  const processes = new ProcessGroup(dir);
  const cleanups: Array<() => unknown> = [];
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= (async () => {
      await processes.stopAll();
      for (const step of cleanups.reverse()) await Promise.resolve(step()).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    })());
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      console.error(`${signal}: stopping everything the benchmark started`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  // A failure outside the awaited path (a stray rejection) must not leave redis-server and the services running.
  for (const event of ["uncaughtException", "unhandledRejection"] as const) {
    process.once(event, (error: unknown) => {
      console.error(error);
      void cleanup().finally(() => process.exit(1));
    });
  }
  try {
    await run(dir, processes, cleanups);
  } finally {
    await cleanup();
  }
}

async function run(dir: string, processes: ProcessGroup, cleanups: Array<() => unknown>): Promise<void> {
  // 0. The service as production runs it: compiled.
  log("building dist/ (npm run build)");
  const build = spawnSync("npm", ["run", "build", "--silent"], { cwd: REPOSITORY, stdio: "inherit" });
  if (build.status !== 0) throw new Error("npm run build failed");
  // B1 runs as plain JavaScript on node too, so its memory is comparable with the service's (no tsx loader thread).
  const baselineServer = join(REPOSITORY, ".tmp", "bench", "baseline-status-server.mjs");
  await mkdir(dirname(baselineServer), { recursive: true });
  const baselineSource = await readFile(join(REPOSITORY, "scripts", "bench", "baseline-status-server.ts"), "utf8");
  await writeFile(baselineServer, ts.transpileModule(baselineSource, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText);

  // 1. Redis, the sandbox, the proxies.
  const redis = await startOwnRedis({ teardown: (step) => cleanups.push(step) }, REDIS_SETTINGS);
  const admin = new Redis(redis.url);
  cleanups.push(() => admin.disconnect());
  const redisVersion = /redis_version:(\S+)/.exec(await admin.info("server"))?.[1] ?? "unknown";
  const caFile = join(dir, "ca.pem");
  const sandbox: RunningSandbox = await startSandbox({
    port: 0,
    caFile,
    lroMs: 300,
    keyCacheDir: join(tmpdir(), "cmk-sandbox-seed-keys"),
    // ARM's own limits would throttle the 1,000 jobs of P5; throttling is not what is measured.
    throttle: { reads: { capacity: 100_000, refillPerSecond: 10_000 }, writes: { capacity: 10_000, refillPerSecond: 1_000 } },
  });
  cleanups.push(() => sandbox.close());
  const azureProxy: TcpProxy = await startTcpProxy(sandbox.port);
  cleanups.push(() => azureProxy.close());
  const redisProxy: TcpProxy = await startTcpProxy(redis.port);
  cleanups.push(() => redisProxy.close());
  log(`redis ${redisVersion} on ${redis.url} (${REDIS_SETTINGS.join(" ")}), sandbox ${sandbox.url}`);

  // 2. The processes: API, API behind the counting proxy, baseline B1.
  const apiKey = `bench-${randomUUID()}`;
  const serviceEnv = {
    NODE_ENV: "production",
    CMK_MODE: "sandbox",
    CMK_QUEUE_PREFIX: "cmk",
    CMK_SANDBOX_CA_FILE: caFile,
    CMK_API_KEYS: JSON.stringify([{ name: "bench", sha256: createHash("sha256").update(apiKey).digest("hex"), roles: ["operator"] }]),
    CMK_RATE_LIMIT_PER_MINUTE: "1000000",
    CMK_AZURE_READ_RATE_LIMIT_PER_MINUTE: "1000000",
    CMK_READ_CACHE_MS: "0",
    LOG_LEVEL,
    HOST: "127.0.0.1",
  };
  const [apiPort, probePort, baselinePort] = await Promise.all([freePort(), freePort(), freePort()]);
  const profileArgs = CPU_PROFILE_DIR ? ["--cpu-prof", `--cpu-prof-dir=${CPU_PROFILE_DIR}`] : [];
  const api = processes.start("api", [...profileArgs, SERVER], {
    ...serviceEnv,
    CMK_ROLE: "api",
    REDIS_URL: redis.url,
    CMK_SANDBOX_URL: `https://127.0.0.1:${azureProxy.port}`,
    PORT: String(apiPort),
  }, { cwd: REPOSITORY });
  const probe = processes.start("api-probe", [SERVER], {
    ...serviceEnv,
    CMK_ROLE: "api",
    REDIS_URL: `redis://127.0.0.1:${redisProxy.port}`,
    CMK_SANDBOX_URL: sandbox.url,
    PORT: String(probePort),
  }, { cwd: REPOSITORY });
  const baseline = processes.start("baseline-status", [baselineServer], {
    REDIS_URL: redis.url,
    PORT: String(baselinePort),
    KEY_PREFIX: B1_PREFIX,
  }, { cwd: REPOSITORY });
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const probeUrl = `http://127.0.0.1:${probePort}`;
  const baselineUrl = `http://127.0.0.1:${baselinePort}`;
  await Promise.all([
    waitFor("api", async () => (await fetch(`${apiUrl}/readyz`)).ok),
    waitFor("api-probe", async () => (await fetch(`${probeUrl}/readyz`)).ok),
    waitFor("baseline", async () => (await fetch(`${baselineUrl}/jobs/none`)).status === 404),
  ]).catch((error: Error) => {
    throw new Error(`${error.message}\napi log:\n${api.logTail()}\napi-probe log:\n${probe.logTail()}\nbaseline log:\n${baseline.logTail()}`);
  });
  await sleep(1000);
  const apiIdleMb = rssMb(api.pid);
  const baselineIdleMb = rssMb(baseline.pid);
  const apiIdleHeap = await nodeMemory(`http://127.0.0.1:${apiPort}`);
  log(`api, api-probe and baseline B1 up; api idle RSS ${apiIdleMb?.toFixed(0)} MB (${JSON.stringify(apiIdleHeap)})`);
  const auth = { "x-api-key": apiKey };
  const post = (base: string, path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, { method: "POST", headers: { "content-type": "application/json", ...auth, ...headers }, body: JSON.stringify(body) });

  const workerEnv = (concurrency: number, pollMs: number) => ({
    ...serviceEnv,
    CMK_ROLE: "worker",
    REDIS_URL: redis.url,
    CMK_SANDBOX_URL: sandbox.url,
    CMK_WORKER_CONCURRENCY: String(concurrency),
    CMK_ARM_POLL_INTERVAL_MS: String(pollMs),
  });

  // 4. The background: Redis commands while nothing is asked of anyone.
  const idleBefore = await snapshot(admin);
  await sleep(2000);
  const idle = commandDelta(idleBefore, await snapshot(admin));
  log(`background: ${idle.total} Redis commands in ${idle.ms} ms`);

  /** One autocannon run with Redis counters around it (and after a pause: the audit is written after the answer). */
  const measured = async (what: string, load: () => Promise<LoadResult>, target?: BenchProcess) => {
    const before = await snapshot(admin);
    const result = await load();
    await sleep(500);
    const delta: CommandDelta = commandDelta(before, await snapshot(admin));
    expectAllAnswered(what, result, target);
    const commands = perRequest(delta, result.requests, idle);
    log(`${what}: ${result.perSecond.toFixed(0)}/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, ${commands.total.toFixed(1)} Redis commands each`);
    return { result, commands };
  };
  /**
   * `count` requests one at a time through the API behind the counting proxy: commands and round trips
   * each, as test/services/redis-cost.test.ts counts them. The rate-limit counters' flushes (a timer,
   * every 250 ms while a caller has requests: INCRBY, PEXPIRE, PTTL per caller in one round trip) are not
   * any request's: counted apart (one PTTL per flush, one caller here) and reported beside.
   */
  const sequential = async (what: string, request: (index: number) => Promise<Response>, expected: number) => {
    const before = await snapshot(admin);
    const turnsBefore = redisProxy.turns();
    for (let index = 0; index < SEQUENTIAL; index += 1) {
      const response = await request(index);
      if (response.status !== expected) throw new Error(`${what}: ${response.status} ${await response.text()}`);
      await response.arrayBuffer();
      // The audit entry of a change is written after its answer: let it land before the next request.
      await sleep(50);
    }
    await sleep(300);
    const delta = commandDelta(before, await snapshot(admin));
    const flushes = delta.byCommand.pttl ?? 0;
    const flushCommands = RATE_COUNTER_COMMANDS.reduce((sum, name) => sum + (delta.byCommand[name] ?? 0), 0);
    for (const name of RATE_COUNTER_COMMANDS) delete delta.byCommand[name];
    delta.total -= flushCommands;
    const turns = (redisProxy.turns() - turnsBefore - flushes) / SEQUENTIAL;
    const commands = perRequest(delta, SEQUENTIAL, idle);
    log(`${what}, one at a time: ${commands.total.toFixed(1)} Redis commands, ${turns.toFixed(1)} round trips each; besides, ${flushes} rate-limit flushes (${flushCommands} commands, ${flushes} round trips) in the run`);
    return { commands: { total: commands.total, byCommand: commands.byCommand } satisfies PerRequestCommands, roundTrips: turns, rateLimitFlushes: { flushes, commands: flushCommands } };
  };

  // 5. P1: status read vs B1; API RSS under load.
  const p1Phase = !ONLY.has("p1") ? undefined : await (async () => {
    // A finished SetKey to read (one worker, then stopped: P1 and P2 run with no worker).
    const setupWorker = processes.start("worker-setup", [SERVER], workerEnv(5, 250), { cwd: REPOSITORY });
    await setupWorker.waitForLog(/worker \(sandbox mode\) started/);
    const submitted = await post(apiUrl, "/v1/change-requests", { ...SET_KEY_FHIR_SYS, ticket: { system: "bench", id: "P1" } });
    if (submitted.status !== 202) throw new Error(`SetKey for P1: ${submitted.status} ${await submitted.text()}`);
    const jobId = ((await submitted.json()) as { id: string }).id;
    let monitor = "";
    await waitFor("the SetKey job of P1 to succeed", async () => {
      const response = await fetch(`${apiUrl}/v1/jobs/${jobId}`, { headers: auth });
      monitor = await response.text();
      const status = (JSON.parse(monitor) as { status: string }).status;
      if (status === "Failed" || status === "Canceled") throw new Error(`the SetKey job of P1 ended ${status}: ${monitor}`);
      return status === "Succeeded";
    }).catch((error: Error) => {
      throw new Error(`${error.message}\nworker log:\n${setupWorker.logTail()}`);
    });
    await setupWorker.stop();
    const monitorBytes = Buffer.byteLength(monitor);
    await admin.hset(`${B1_PREFIX}:${jobId}`, { monitor });
    log(`finished SetKey ${jobId}: status monitor ${monitorBytes} B; worker stopped`);

    const statusLoad = (url: string, headers: Record<string, string> = {}) => () => runLoad({ url, connections: CONNECTIONS, seconds: SECONDS, headers });
    await runLoad({ url: `${baselineUrl}/jobs/${jobId}`, connections: CONNECTIONS, seconds: WARMUP });
    const baselineUnderB1 = sampleRss(baseline.pid);
    const b1 = await measured("B1 bare HGETALL route", statusLoad(`${baselineUrl}/jobs/${jobId}`), baseline);
    const baselineUnderB1Mb = baselineUnderB1.stop().maxMb;
    await runLoad({ url: `${apiUrl}/v1/jobs/${jobId}`, connections: CONNECTIONS, seconds: WARMUP, headers: auth });
    const apiUnderP1 = sampleRss(api.pid);
    const p1 = await measured("P1 GET /v1/jobs/{id}", statusLoad(`${apiUrl}/v1/jobs/${jobId}`, auth), api);
    const apiUnderP1Mb = apiUnderP1.stop().maxMb;
    const apiHeapAfterP1 = await nodeMemory(apiUrl);
    log(`api RSS under P1 ${apiUnderP1Mb?.toFixed(0)} MB at most; just after it ${JSON.stringify(apiHeapAfterP1)}`);
    const statusProbe = await sequential("P1 status read", () => fetch(`${probeUrl}/v1/jobs/${jobId}`, { headers: auth }), 200);
    return { b1, p1, monitorBytes, baselineUnderB1Mb, apiUnderP1Mb, apiHeapAfterP1, statusProbe };
  })();

  // 6. P2: accepted changes vs B2 (each on an empty Redis).
  let accepted = 0;
  const runTag = randomUUID().slice(0, 4);
  const p2Phase = !ONLY.has("p2") ? undefined : await (async () => {
    await admin.flushall();
    log("B2 raw queue.add: running");
    const b2Process = processes.start("baseline-adds", ["--import", "tsx", join(REPOSITORY, "scripts", "bench", "baseline-adds.ts")], {
      REDIS_URL: redis.url,
      CONNECTIONS: String(CONNECTIONS),
      SECONDS: String(SECONDS),
      WARMUP_SECONDS: String(WARMUP),
    }, { cwd: REPOSITORY });
    await b2Process.exited;
    const b2Line = b2Process.logTail(1);
    let b2: AddsResult & { commands: CommandDelta };
    try {
      b2 = JSON.parse(b2Line) as AddsResult & { commands: CommandDelta };
    } catch {
      throw new Error(`baseline B2 failed:\n${b2Process.logTail()}`);
    }
    const b2Commands = perRequest(b2.commands, b2.adds, idle);
    log(`B2 raw queue.add: ${b2.perSecond.toFixed(0)}/s, p99 ${b2.p99Ms.toFixed(1)} ms, ${b2Commands.total.toFixed(1)} Redis commands each`);
    await admin.flushall();

    const changeRequest = (tag: string) => {
      accepted += 1;
      const name = serviceName(`${tag}${runTag}`, accepted);
      return {
      body: JSON.stringify({ ...SET_KEY_FHIR_SYS, fhirServiceId: `${FHIR_BASE}/${name}`, ticket: { system: "bench", id: name } }),
      headers: { "idempotency-key": `bench-${name}` },
      };
    };
    const acceptLoad = (seconds: number) => () =>
      runLoad({ url: `${apiUrl}/v1/change-requests`, connections: CONNECTIONS, seconds, method: "POST", headers: { "content-type": "application/json", ...auth }, next: () => changeRequest("a") });
    await acceptLoad(WARMUP)();
    const apiUnderP2 = sampleRss(api.pid);
    const p2 = await measured("P2 POST /v1/change-requests", acceptLoad(SECONDS), api);
    const apiUnderP2Mb = apiUnderP2.stop().maxMb;
    const acceptProbe = await sequential("P2 accepted change", () => {
      const { body, headers } = changeRequest("s");
      return post(probeUrl, "/v1/change-requests", JSON.parse(body), headers);
    }, 202);
    const acceptProbeWithoutKey = await sequential("P2 accepted change without Idempotency-Key", () => {
      const { body } = changeRequest("n");
      return post(probeUrl, "/v1/change-requests", JSON.parse(body));
    }, 202);
    await admin.flushall();
    return { b2, b2Commands, p2, apiUnderP2Mb, acceptProbe, acceptProbeWithoutKey };
  })();

  // 7. P4: validations against the slowest single lookup, without and with simulated latency.
  const p4Phase = !ONLY.has("p4") ? undefined : await (async () => {
    const validationBody = { ...SET_KEY_FHIR_SYS };
    const sandboxViaProxy = { url: `https://127.0.0.1:${azureProxy.port}`, caPem: sandbox.caPem };
    const validationsAt = async (roundTripMs: number) => {
      azureProxy.roundTripMs = roundTripMs;
      const timings = await measureValidations({ apiUrl, apiKey, sandbox: sandboxViaProxy, body: validationBody, rounds: ROUNDS, roundTripMs });
      log(`P4 validations at ${roundTripMs} ms round trip: median ${timings.validation.medianMs.toFixed(1)} ms, slowest single lookup ${timings.slowestLookupMs.toFixed(1)} ms`);
      return timings;
    };
    const p4Local = await validationsAt(0);
    const p4 = await validationsAt(RTT_MS);
    azureProxy.roundTripMs = 0;
    return { p4Local, p4 };
  })();

  const p5Phase = !ONLY.has("p5") ? undefined : await (async () => {
    // 8. P5: a worker with JOBS unfinished jobs. CreateService jobs of new services need nothing made first;
    // a long emulated ARM operation keeps the running ones in FollowOperation (polled every 5 s, ARM's default).
    await setFaults(sandbox, { rules: [], lroDurationMs: 600_000 });
    const since = (await sandboxRequests(sandbox)).at(-1)?.seq ?? 0;
    const worker = processes.start("worker", [SERVER], workerEnv(WORKER_CONCURRENCY, 5000), { cwd: REPOSITORY });
    await worker.waitForLog(/worker \(sandbox mode\) started/);
    await sleep(1000);
    const workerIdleMb = rssMb(worker.pid);
    const workerInFlight = sampleRss(worker.pid);
    let created = 0;
    await Promise.all(
      Array.from({ length: CONNECTIONS }, async () => {
      while (created < JOBS) {
        created += 1;
        const name = serviceName(`p5${runTag}`, created);
        const response = await post(apiUrl, "/v1/change-requests", {
          operation: "CreateService",
          fhirServiceId: `${FHIR_BASE}/${name}`,
          location: "westus3",
          keyEncryptionKeyUrl: KEY_URL,
          identity: { type: "UserAssigned", userAssignedIdentityId: UAMI },
          ticket: { system: "bench", id: name },
        });
        if (response.status !== 202) throw new Error(`CreateService ${name}: ${response.status} ${await response.text()}`);
        await response.arrayBuffer();
      }
      }),
    );
    log(`P5: ${JOBS} CreateService jobs accepted; waiting for the worker to hold ${Math.min(JOBS, WORKER_CONCURRENCY)} in FollowOperation`);
    const armWritesStarted = async () =>
      (await sandboxRequests(sandbox, since)).filter((request) => request.method === "PUT" && /\/fhirservices\/p5/i.test(request.path) && request.status < 300).length;
    await waitFor(
      "the worker's jobs to reach FollowOperation",
      async () => (await armWritesStarted()) >= Math.min(JOBS, WORKER_CONCURRENCY),
      120_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message}\nworker log:\n${worker.logTail()}`);
    });
    await sleep(10_000);
    const counts = await jobStatuses(apiUrl, auth);
    const workerInFlightMb = workerInFlight.stop().maxMb;
    const writes = await armWritesStarted();
    await worker.stop("SIGKILL");
    log(`P5 worker: idle ${workerIdleMb?.toFixed(0)} MB, ${JOBS} in flight ${workerInFlightMb?.toFixed(0)} MB (${JSON.stringify(counts)})`);
    return { workerIdleMb, workerInFlightMb, counts, writes };
  })();
  if (CPU_PROFILE_DIR) {
    await api.stop("SIGTERM", 40_000);
    log(`api CPU profile written to ${CPU_PROFILE_DIR}`);
  }

  if (!ALL_PHASES || !p1Phase || !p2Phase || !p4Phase || !p5Phase) {
    log(`--only ${[...ONLY].join(",")}: not written to bench/results.json`);
    return;
  }
  const { b1, p1, monitorBytes, baselineUnderB1Mb, apiUnderP1Mb, apiHeapAfterP1, statusProbe } = p1Phase;
  const { b2, b2Commands, p2, apiUnderP2Mb, acceptProbe, acceptProbeWithoutKey } = p2Phase;
  const { p4Local, p4 } = p4Phase;
  const { workerIdleMb, workerInFlightMb, counts, writes } = p5Phase;

  // 9. The report.
  const cpu = cpus();
  const git = (...args: string[]) => spawnSync("git", args, { cwd: REPOSITORY, encoding: "utf8" }).stdout?.trim() ?? "";
  // The service measured is src/: name the commit that last changed it (HEAD may only add bench results).
  const commit = git("log", "-1", "--format=%h", "--", "src") || "unknown";
  const dirty = git("status", "--porcelain", "--", "src") !== "";
  const partial: Omit<BenchResults, "goals"> = {
    date: new Date().toISOString(),
    commit: dirty ? `${commit} with uncommitted changes in src/` : commit,
    machine: {
      cpuModel: cpu[0]?.model.trim() ?? "unknown",
      cpus: cpu.length,
      totalMemoryGb: Math.round((totalmem() / 2 ** 30) * 10) / 10,
      node: process.version,
      platform: `${platform()} ${release()}`,
      redis: redisVersion,
    },
    settings: {
      connections: CONNECTIONS,
      seconds: SECONDS,
      warmupSeconds: WARMUP,
      rounds: ROUNDS,
      roundTripMs: RTT_MS,
      jobsInFlight: JOBS,
      workerConcurrency: WORKER_CONCURRENCY,
      logLevel: LOG_LEVEL,
      redis: `redis-server ${REDIS_SETTINGS.join(" ")}`,
      service: `NODE_ENV=production CMK_ROLE=api node dist/src/server.js, LOG_LEVEL=${LOG_LEVEL}, CMK_READ_CACHE_MS=0, rate limits 1,000,000/min`,
    },
    p1: { baseline: b1.result, service: p1.result, ratio: p1.result.perSecond / b1.result.perSecond, p99Ratio: p1.result.p99Ms / b1.result.p99Ms, monitorBytes },
    p2: { baseline: { adds: b2.adds, seconds: b2.seconds, perSecond: b2.perSecond, p50Ms: b2.p50Ms, p99Ms: b2.p99Ms }, service: p2.result, ratio: p2.result.perSecond / b2.perSecond },
    p4: { withoutLatency: p4Local, withLatency: p4, ratio: p4.validation.medianMs / p4.slowestLookupMs },
    p5: {
      baselineProcess: { idleMb: baselineIdleMb, underB1Mb: baselineUnderB1Mb },
      api: { idleMb: apiIdleMb, underP1Mb: apiUnderP1Mb, underP2Mb: apiUnderP2Mb, idleHeap: apiIdleHeap, heapAfterP1: apiHeapAfterP1 },
      worker: {
        idleMb: workerIdleMb,
        inFlightMb: workerInFlightMb,
        jobs: JOBS,
        active: counts.Running ?? 0,
        waiting: counts.NotStarted ?? 0,
        failed: counts.Failed ?? 0,
        armWritesStarted: writes,
        concurrency: WORKER_CONCURRENCY,
      },
    },
    redis: {
      statusRead: { baseline: b1.commands, service: p1.commands, sequential: statusProbe.commands, roundTrips: statusProbe.roundTrips, rateLimitFlushes: statusProbe.rateLimitFlushes },
      accept: {
        baseline: b2Commands,
        service: p2.commands,
        sequential: acceptProbe.commands,
        roundTrips: acceptProbe.roundTrips,
        rateLimitFlushes: acceptProbe.rateLimitFlushes,
        withoutIdempotencyKey: { sequential: acceptProbeWithoutKey.commands, roundTrips: acceptProbeWithoutKey.roundTrips },
      },
    },
  };
  const results: BenchResults = { ...partial, goals: judgeGoals(partial) };
  await mkdir(join(REPOSITORY, "bench"), { recursive: true });
  await writeFile(join(REPOSITORY, "bench", "results.json"), `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\n${renderReport(results)}\n`);
  log("wrote bench/results.json");
}

await main();
