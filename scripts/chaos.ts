/**
 * `npm run chaos [-- --jobs 200] [-- --cluster]`: SetKey jobs under crashes, restarts and transient Azure faults.
 * `npm run chaos -- --fleet 300`: one fleet rotation under the same (see fleetChaos below).
 *
 * Starts its own Redis (AOF, on a free port; with `--cluster` a Redis Cluster of three masters, and the
 * service with CMK_REDIS_CLUSTER=true), the sandbox, the API and two worker processes; creates
 * N FHIR services in the sandbox; submits one SetKey for each (retrying 503s with an Idempotency-Key,
 * as a ticketing system would); SIGKILLs and restarts workers at random moments, restarts Redis once (in
 * a cluster, the master that holds the prefix's slot), and makes 20% of ARM requests fail transiently.
 * Then it prints what was accepted, what succeeded or failed, what was lost (a 202 whose job no longer
 * exists) and how many ARM writes were duplicated (applied PUTs beyond one per FHIR service, from the
 * sandbox's request log).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { HealthcareApisManagementClient } from "@azure/arm-healthcareapis";
import { createSandboxContext } from "../src/azure/azure-context.js";
import { sha256Hex } from "../src/plugins/app/authentication.js";
import { startSandbox, type RunningSandbox } from "../src/sandbox/index.js";
import { sandboxAdmin } from "./bench/sandbox-admin.js";
import { startRedisCluster } from "../test/helpers/redis-cluster.js";
import { freePort, startOwnRedis } from "../test/helpers/redis-server.js";

const argument = (name: string, fallback: number) => {
  const index = process.argv.indexOf(name);
  return index >= 0 ? Number(process.argv[index + 1]) : fallback;
};
const JOBS = argument("--jobs", 200);
const FAULT_RATE = argument("--fault-rate", 0.2);
const SEED = argument("--seed", Date.now() % 100_000);
const CLUSTER = process.argv.includes("--cluster");
const FLEET = argument("--fleet", 0);
const SERVER = fileURLToPath(new URL("../src/server.ts", import.meta.url));
const SUBSCRIPTION = "22222222-2222-2222-2222-222222222222";
const RESOURCE_GROUP = "rg-sandbox";
const WORKSPACE = "wssandbox";
const UAMI = `/subscriptions/${SUBSCRIPTION}/resourceGroups/${RESOURCE_GROUP}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uami-sandbox`;
const KEY_URL = "https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048/00000000000000000000000000000002";
const API_KEY = `chaos-${randomUUID()}`;
const FLEET_KEY = "https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048";
const FLEET_KEY_V1 = `${FLEET_KEY}/00000000000000000000000000000001`;

// A small deterministic generator, so a run can be repeated with --seed.
let state = SEED;
const random = () => ((state = (state * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (message: string) => console.log(`[${new Date().toISOString().slice(11, 23)}] ${message}`);

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what} did not come up`);
    await sleep(100);
  }
}

type Started = ChildProcess & { ready: Promise<void> };

/** A server process; `ready` resolves when it says it has started (a worker under load takes seconds to). */
function startProcess(role: "api" | "worker", env: Record<string, string>): Started {
  const child = spawn(process.execPath, ["--import", "tsx", SERVER], { env: { ...process.env, ...env, CMK_ROLE: role }, stdio: ["ignore", "pipe", "pipe"] });
  child.stderr?.on("data", () => undefined);
  const ready = new Promise<void>((resolve) => {
    child.stdout?.on("data", (chunk: Buffer) => {
      if (/started|listening/.test(chunk.toString())) resolve();
    });
    child.on("exit", () => resolve());
  });
  return Object.assign(child, { ready });
}

/**
 * SIGKILLs one of the workers every 0.8-3 s and starts it again 0.3-1.3 s later, until stopped. A
 * worker is killed only once it has started (and, with `minUpMs`, run that long): on a loaded machine a
 * worker takes seconds to start, and killing it before it takes a job tests nothing.
 */
function killWorkersRepeatedly(workers: Started[], env: Record<string, string>, minUpMs = 0) {
  let running = true;
  let kills = 0;
  const loop = (async () => {
    while (running) {
      await sleep(800 + random() * 2200);
      if (!running) break;
      const index = Math.floor(random() * workers.length);
      const victim = workers[index]!;
      await victim.ready;
      if (minUpMs > 0) await sleep(minUpMs * (0.5 + random()));
      if (!running) break;
      victim.kill("SIGKILL");
      kills += 1;
      await sleep(300 + random() * 1000);
      workers[index] = startProcess("worker", env);
    }
  })();
  return {
    get kills() {
      return kills;
    },
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

/**
 * The API and two workers against `redisUrl` and the sandbox, each run's settings on top of the shared ones,
 * and once the API answers, the sandbox's transient ARM faults (FAULT_RATE, half 503, half 429).
 */
async function startServiceUnderFaults(sandbox: RunningSandbox, options: { redisUrl: string; dir: string; prefix: string; env?: Record<string, string>; readyTimeoutMs?: number }) {
  const apiPort = await freePort();
  const env: Record<string, string> = {
    REDIS_URL: options.redisUrl,
    CMK_QUEUE_PREFIX: options.prefix,
    CMK_SANDBOX_URL: sandbox.url,
    CMK_SANDBOX_CA_FILE: join(options.dir, "ca.pem"),
    CMK_API_KEYS: JSON.stringify([{ name: "chaos", sha256: sha256Hex(API_KEY), roles: ["operator"] }]),
    CMK_WORKER_LOCK_MS: "2000",
    CMK_WORKER_CONCURRENCY: "25",
    CMK_ARM_POLL_INTERVAL_MS: "300",
    ...options.env,
    PORT: String(apiPort),
    HOST: "127.0.0.1",
    LOG_LEVEL: "error",
  };
  const api = startProcess("api", env);
  const workers: Started[] = [startProcess("worker", env), startProcess("worker", env)];
  const base = `http://127.0.0.1:${apiPort}`;
  await waitFor("api", async () => (await fetch(`${base}/healthz`)).ok, options.readyTimeoutMs);
  await sandboxAdmin(sandbox, "PUT", "/_sandbox/faults", {
    rules: [
      { service: "arm", status: 503, probability: FAULT_RATE / 2, retryAfterSeconds: 0 },
      { service: "arm", status: 429, probability: FAULT_RATE / 2, retryAfterSeconds: 1 },
    ],
    lroDurationMs: 1000,
  });
  return { env, api, workers, base };
}

async function setKeyChaos() {
  const dir = await mkdtemp(join(tmpdir(), "cmk-chaos-"));
  const cleanups: Array<() => unknown> = [];
  // AOF with fsync on every write, so the restart below loses nothing BullMQ was told was stored.
  const durable = ["--appendonly", "yes", "--appendfsync", "always", "--maxmemory-policy", "noeviction"];
  const teardown = { teardown: (cleanup: () => unknown) => cleanups.push(cleanup) };
  const cluster = CLUSTER ? await startRedisCluster(teardown, { args: durable }) : undefined;
  // In a cluster every key of the deployment is in the slot of the prefix's hash tag: that master is the one to restart.
  const redis = cluster ? await cluster.nodeOf("{chaos}") : await startOwnRedis(teardown, durable);
  const redisUrl = cluster?.url ?? redis.url;
  // ARM's real limits would make setup take minutes; the faults, not throttling, are the point here.
  const sandbox = await startSandbox({
    port: 0,
    caFile: join(dir, "ca.pem"),
    lroMs: 1000,
    throttle: { reads: { capacity: 5000, refillPerSecond: 2000 }, writes: { capacity: 2000, refillPerSecond: 500 } },
  });
  log(`redis ${cluster ? `cluster of ${cluster.nodes.length} masters at ${redisUrl}, {chaos} on ${redis.url}` : redis.url} (AOF), sandbox ${sandbox.url}, ${JOBS} jobs, ${FAULT_RATE * 100}% transient ARM faults, seed ${SEED}`);

  // 1. N FHIR services with the seed's user-assigned identity (which holds the key role).
  await sandboxAdmin(sandbox, "PUT", "/_sandbox/faults", { rules: [], lroDurationMs: 20 });
  const context = createSandboxContext({ url: sandbox.url, caPem: sandbox.caPem });
  const arm = new HealthcareApisManagementClient(context.credential, SUBSCRIPTION, { ...context.clientOptions });
  const names = Array.from({ length: JOBS }, (_, index) => `fhir-chaos-${String(index).padStart(3, "0")}`);
  for (let start = 0; start < names.length; start += 25) {
    await Promise.all(
      names.slice(start, start + 25).map((name) =>
        arm.fhirServices.beginCreateOrUpdateAndWait(RESOURCE_GROUP, WORKSPACE, name, {
          location: "westus3",
          kind: "fhir-R4",
          identity: { type: "UserAssigned", userAssignedIdentities: { [UAMI]: {} } },
          authenticationConfiguration: { authority: "https://login.microsoftonline.com/11111111-1111-1111-1111-111111111111", audience: `https://${WORKSPACE}-${name}.fhir.azurehealthcareapis.com` },
        }, { updateIntervalInMs: 50 }),
      ),
    );
  }
  const since = ((await sandboxAdmin(sandbox, "GET", "/_sandbox/requests")) as Array<{ seq: number }>).at(-1)?.seq ?? 0;
  log(`created ${names.length} FHIR services`);

  // 2. API and two workers, against our Redis and the sandbox.
  const { env, api, workers, base } = await startServiceUnderFaults(sandbox, { redisUrl, dir, prefix: "chaos", env: cluster ? { CMK_REDIS_CLUSTER: "true" } : {} });

  // 3. Chaos: kill and restart workers at random moments; restart Redis once.
  const killer = killWorkersRepeatedly(workers, env);
  // Redis goes down while submissions are still coming in: a quarter of them in.
  let submitted = 0;
  const redisRestart = (async () => {
    while (submitted < JOBS / 4) await sleep(20);
    log("restarting redis");
    await redis.stop();
    await sleep(1000);
    await redis.start();
    log("redis is back");
  })();

  // 4. Submit, as a ticketing system would: retry what was not answered with a 202, same Idempotency-Key.
  const accepted = new Map<string, string>();
  let refusals = 0;
  const refusalStatuses = new Map<string, number>();
  await Promise.all(
    names.map(async (name, index) => {
      await sleep(index * 20);
      submitted += 1;
      const idempotencyKey = `chaos-${name}`;
      for (;;) {
        try {
          const response = await fetch(`${base}/v1/change-requests`, {
            method: "POST",
            headers: { "content-type": "application/json", "x-api-key": API_KEY, "idempotency-key": idempotencyKey },
            body: JSON.stringify({
              operation: "SetKey",
              fhirServiceId: `/subscriptions/${SUBSCRIPTION}/resourceGroups/${RESOURCE_GROUP}/providers/Microsoft.HealthcareApis/workspaces/${WORKSPACE}/fhirservices/${name}`,
              keyEncryptionKeyUrl: KEY_URL,
              identity: { type: "UserAssigned", userAssignedIdentityId: UAMI },
              ticket: { system: "chaos", id: name },
            }),
          });
          if (response.status === 202) {
            accepted.set(name, ((await response.json()) as { id: string }).id);
            return;
          }
          refusals += 1;
          refusalStatuses.set(String(response.status), (refusalStatuses.get(String(response.status)) ?? 0) + 1);
        } catch (error) {
          refusals += 1;
          const reason = (error as Error).message;
          refusalStatuses.set(reason, (refusalStatuses.get(reason) ?? 0) + 1);
        }
        await sleep(500);
      }
    }),
  );
  log(`${accepted.size} accepted (${refusals} refusals retried: ${[...refusalStatuses].map(([status, n]) => `${n}× ${status}`).join(", ") || "none"})`);

  // 5. Wait for every job to end.
  const outcomes = new Map<string, string>();
  const deadline = Date.now() + 10 * 60_000;
  while (outcomes.size < accepted.size && Date.now() < deadline) {
    for (const [name, jobId] of accepted) {
      if (outcomes.has(name)) continue;
      const response = await fetch(`${base}/v1/jobs/${jobId}`, { headers: { "x-api-key": API_KEY } }).catch(() => undefined);
      if (!response) continue;
      if (response.status === 404) outcomes.set(name, "Lost");
      else if (response.ok) {
        const monitor = (await response.json()) as { status: string };
        if (["Succeeded", "Failed", "Canceled"].includes(monitor.status)) outcomes.set(name, monitor.status);
      }
    }
    if (outcomes.size >= accepted.size * 0.9) killer.stop();
    await sleep(500);
  }
  await Promise.all([killer.stop(), redisRestart]);

  const requests = (await sandboxAdmin(sandbox, "GET", `/_sandbox/requests?since=${since}`)) as Array<{ method: string; path: string; status: number }>;
  const appliedPuts = new Map<string, number>();
  for (const request of requests) {
    const match = /\/fhirservices\/(fhir-chaos-\d+)$/i.exec(request.path);
    if (request.method === "PUT" && match && request.status < 300) appliedPuts.set(match[1]!, (appliedPuts.get(match[1]!) ?? 0) + 1);
  }
  const duplicates = [...appliedPuts.values()].reduce((sum, count) => sum + Math.max(0, count - 1), 0);
  const count = (status: string) => [...outcomes.values()].filter((value) => value === status).length;
  const unfinished = accepted.size - outcomes.size;

  console.log("");
  const restarted = cluster ? `Redis Cluster of ${cluster.nodes.length} masters, the master holding {chaos} restarted once` : "Redis restarted once";
  console.log(`chaos run: ${JOBS} SetKey jobs, 2 workers killed ${killer.kills} times in all, ${restarted}, ${FAULT_RATE * 100}% transient ARM faults`);
  console.log(`  accepted:                 ${accepted.size}`);
  console.log(`  succeeded:                ${count("Succeeded")}`);
  console.log(`  failed:                   ${count("Failed")}`);
  console.log(`  lost:                     ${count("Lost")}`);
  console.log(`  unfinished after 10 min:  ${unfinished}`);
  console.log(`  duplicate ARM writes:     ${duplicates} (applied PUTs: ${[...appliedPuts.values()].reduce((a, b) => a + b, 0)} for ${appliedPuts.size} services)`);

  for (const child of [api, ...workers]) child.kill("SIGKILL");
  for (const cleanup of cleanups) await cleanup();
  await sandbox.close();
  await rm(dir, { recursive: true, force: true });
  const clean = accepted.size === JOBS && count("Succeeded") === JOBS && count("Lost") === 0 && duplicates === 0;
  process.exit(clean ? 0 : 1);
}

/**
 * `--fleet N`: N FHIR services made at once (`createFleet`, over two subscriptions, all on one key
 * version), one `POST /v1/key-rotations` with createNewVersion, workers SIGKILLed and restarted at random
 * moments from the request to the parent's end, Redis (AOF) restarted once while the children run, and
 * the same transient ARM faults. ARM's write budget is emulated (and told to the service), so the
 * children's writes spread over tens of seconds and the kills land in every step. Then it checks against
 * the emulator: every service on the target version, exactly one accepted PUT per service, and the
 * parent Succeeded with counts equal to what the emulator holds; and that every child the parent names
 * exists (none lost) and no service has two children.
 */
async function fleetChaos(services: number) {
  const dir = await mkdtemp(join(tmpdir(), "cmk-chaos-fleet-"));
  const cleanups: Array<() => unknown> = [];
  const redis = await startOwnRedis({ teardown: (cleanup) => cleanups.push(cleanup) }, ["--appendonly", "yes", "--appendfsync", "always", "--maxmemory-policy", "noeviction"]);
  const subscriptions = [SUBSCRIPTION, "33333333-3333-3333-3333-333333333333"];
  const writes = { capacity: 20, refillPerSecond: 10 };
  const sandbox = await startSandbox({ port: 0, caFile: join(dir, "ca.pem"), lroMs: 1000, throttle: { reads: { capacity: 5000, refillPerSecond: 2000 }, writes } });
  const created = (await sandboxAdmin(sandbox, "POST", "/_sandbox/scenarios", { action: "createFleet", count: services, keyUrl: FLEET_KEY_V1, subscriptions })) as { created: number };
  const since = ((await sandboxAdmin(sandbox, "GET", "/_sandbox/requests")) as Array<{ seq: number }>).at(-1)?.seq ?? 0;
  const versionsBefore = await keyVersions(sandbox);
  log(`redis ${redis.url} (AOF), sandbox ${sandbox.url}: ${created.created} FHIR services over ${subscriptions.length} subscriptions, write budget ${writes.capacity} + ${writes.refillPerSecond}/s per subscription, ${FAULT_RATE * 100}% transient ARM faults, seed ${SEED}`);

  const { env, api, workers, base } = await startServiceUnderFaults(sandbox, {
    redisUrl: redis.url,
    dir,
    prefix: "chaosfleet",
    env: {
      CMK_ARM_WRITES_PER_SECOND: String(writes.refillPerSecond),
      CMK_ARM_WRITE_BURST: String(writes.capacity),
      CMK_RATE_LIMIT_PER_MINUTE: "1000000",
      // The fleet's role assignments are minutes old on the emulator's clock.
      CMK_ROLE_PROPAGATION_WINDOW_MS: "0",
    },
    readyTimeoutMs: 60_000,
  });
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${base}${path}`, { method, headers: { "x-api-key": API_KEY, ...(body ? { "content-type": "application/json", "idempotency-key": "chaos-fleet" } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
    return { status: response.status, json: (await response.json().catch(() => ({}))) as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
  };

  // The kills start with the request: the parent's steps (discovery, the new version, fan-out) are hit too.
  // Each worker runs 2-6 s between kills: long enough to take jobs and write, short enough to die mid-step.
  const killer = killWorkersRepeatedly(workers, env, 4000);
  let accepted: { status: number; json: Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
  for (;;) {
    accepted = await call("POST", "/v1/key-rotations", { keyUrl: FLEET_KEY, createNewVersion: true }).catch(() => ({ status: 0, json: {} }));
    if (accepted.status === 202) break;
    await sleep(500);
  }
  const parentId = accepted.json.id as string;
  log(`fleet rotation ${parentId} accepted`);

  // Redis goes down once, while the children run: when a quarter of the services are on the new version.
  const moved = async () => {
    const state = (await sandboxAdmin(sandbox, "GET", "/_sandbox/state")) as { fhirServices: FhirServiceState[] };
    return state.fhirServices.filter((service) => /\/fhirservices\/fleet-\d+$/.test(service.id)).filter((service) => keyOf(service) !== FLEET_KEY_V1).length;
  };
  let parent: Record<string, any> = {}; // eslint-disable-line @typescript-eslint/no-explicit-any
  let restarted = false;
  const deadline = Date.now() + 15 * 60_000;
  for (let shown = ""; Date.now() < deadline; ) {
    const answer = await call("GET", `/v1/jobs/${parentId}`).catch(() => undefined);
    if (answer?.status === 200) {
      parent = answer.json;
      const line = `parent ${parent.status} ${parent.percentComplete}% ${parent.currentStep ?? ""}`;
      if (line !== shown) log((shown = line));
      if (["Succeeded", "Failed", "Canceled"].includes(parent.status)) break;
    } else if (answer?.status === 404) {
      parent = { status: "Lost" };
      break;
    }
    if (!restarted && (await moved()) >= services / 4) {
      restarted = true;
      log("restarting redis");
      await redis.stop();
      await sleep(1000);
      await redis.start();
      log("redis is back");
    }
    await sleep(1000);
  }
  await killer.stop();

  // What the emulator holds and what ARM accepted.
  const state = (await sandboxAdmin(sandbox, "GET", "/_sandbox/state")) as { fhirServices: FhirServiceState[] };
  const target = parent.result?.targetKeyEncryptionKeyUrl as string | undefined;
  const fleet = state.fhirServices.filter((service) => /\/fhirservices\/fleet-\d+$/.test(service.id));
  const onTarget = fleet.filter((service) => target !== undefined && keyOf(service) === target).length;
  const onKey = state.fhirServices.filter((service) => keyOf(service)?.startsWith(`${FLEET_KEY}/`));
  const requests = (await sandboxAdmin(sandbox, "GET", `/_sandbox/requests?since=${since}`)) as Array<{ method: string; path: string; status: number }>;
  const appliedPuts = new Map<string, number>();
  for (const request of requests) {
    const match = /\/fhirservices\/([^/]+)$/i.exec(request.path);
    if (request.method === "PUT" && match && request.status < 300) appliedPuts.set(match[1]!.toLowerCase(), (appliedPuts.get(match[1]!.toLowerCase()) ?? 0) + 1);
  }
  const duplicates = [...appliedPuts.values()].reduce((sum, count) => sum + Math.max(0, count - 1), 0);
  const onePutEach = fleet.every((service) => appliedPuts.get(service.id.split("/").pop()!.toLowerCase()) === 1);
  const versionsMade = (await keyVersions(sandbox)) - versionsBefore;

  // The children as the API lists them: one per service, each ended Succeeded (none lost, none twice).
  const children: Array<{ id: string; status: string; fhirServiceId?: string }> = [];
  for (let page: string | undefined = `/v1/jobs?parentJobId=${parentId}&top=100`; page; ) {
    const answer = await call("GET", page);
    if (answer.status !== 200) throw new Error(`children list: HTTP ${answer.status} ${JSON.stringify(answer.json)}`);
    children.push(...(answer.json.value as typeof children));
    page = answer.json.nextLink ? new URL(answer.json.nextLink as string, base).pathname + new URL(answer.json.nextLink as string, base).search : undefined;
  }
  const perService = new Map<string, number>();
  for (const child of children) perService.set(String(child.fhirServiceId).toLowerCase(), (perService.get(String(child.fhirServiceId).toLowerCase()) ?? 0) + 1);
  const twice = [...perService.values()].filter((count) => count > 1).length;
  const childrenSucceeded = children.filter((child) => child.status === "Succeeded").length;
  const childErrors = new Map<string, number>();
  for (const child of children as Array<{ status: string; error?: { code: string; message: string } }>) {
    if (child.status === "Succeeded") continue;
    const reason = `${child.status}${child.error ? ` ${child.error.code}: ${child.error.message.slice(0, 120)}` : ""}`;
    childErrors.set(reason, (childErrors.get(reason) ?? 0) + 1);
  }
  const counts = (parent.result?.services ?? {}) as { total?: number; succeeded?: number; failed?: number; skipped?: number; canceled?: number };
  const lost = Math.max(0, fleet.length - children.length) + (parent.status === "Lost" ? 1 : 0);
  const countsMatch = counts.total === onKey.length && counts.succeeded === onKey.filter((service) => keyOf(service) === target).length && counts.failed === 0;

  console.log("");
  console.log(`chaos fleet run: ${services} services over ${subscriptions.length} subscriptions, one rotation, 2 workers killed ${killer.kills} times in all, Redis restarted ${restarted ? "once" : "never (the fleet was done first)"}, ${FAULT_RATE * 100}% transient ARM faults`);
  console.log(`  parent:                       ${parent.status} (${JSON.stringify(counts)})${parent.error ? `: ${JSON.stringify(parent.error)}` : ""}`);
  console.log(`  target version:               ${target ?? "none"} (${versionsMade} new version(s) made)`);
  console.log(`  fleet services on the target: ${onTarget} of ${fleet.length} (emulator state)`);
  console.log(`  services on the key:          ${onKey.length}; parent counts equal the emulator's: ${countsMatch}`);
  console.log(`  children:                     ${children.length} listed, ${childrenSucceeded} succeeded, ${twice} service(s) with two`);
  for (const [reason, count] of childErrors) console.log(`    ${count}× ${reason}`);
  for (const [reason, count] of childErrors) console.log(`    ${count}× ${reason}`);
  console.log(`  lost:                         ${lost}`);
  console.log(`  accepted PUTs:                ${[...appliedPuts.values()].reduce((a, b) => a + b, 0)} for ${appliedPuts.size} services; exactly one per fleet service: ${onePutEach}`);
  console.log(`  duplicate ARM writes:         ${duplicates}`);

  for (const child of [api, ...workers]) child.kill("SIGKILL");
  for (const cleanup of cleanups) await cleanup();
  await sandbox.close();
  await rm(dir, { recursive: true, force: true });
  const clean = parent.status === "Succeeded" && onTarget === fleet.length && onePutEach && duplicates === 0 && lost === 0 && twice === 0 && countsMatch && versionsMade === 1;
  process.exit(clean ? 0 : 1);
}

interface FhirServiceState {
  id: string;
  properties?: { encryption?: { customerManagedKeyEncryption?: { keyEncryptionKeyUrl?: string } } };
}
/** How many versions the fleet's key has in the emulator. */
async function keyVersions(sandbox: RunningSandbox): Promise<number> {
  const state = (await sandboxAdmin(sandbox, "GET", "/_sandbox/state")) as { vaults: Array<{ name: string; keys: Array<{ name: string; versions: unknown[] }> }> };
  return state.vaults.find((vault) => vault.name === "kvsandbox")?.keys.find((key) => key.name === "cmk-rsa-2048")?.versions.length ?? 0;
}
const keyOf = (service: FhirServiceState) => service.properties?.encryption?.customerManagedKeyEncryption?.keyEncryptionKeyUrl;

if (FLEET > 0) await fleetChaos(FLEET);
else await setKeyChaos();
