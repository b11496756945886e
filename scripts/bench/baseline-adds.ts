/**
 * Baseline B2 of `npm run bench` (its own process): raw BullMQ `queue.add` with a job id and a
 * deduplication id (the service's exclusivity per FHIR service), with `CONNECTIONS` adds in flight at once
 * on one ioredis connection, on the project's own BullMQ and ioredis. Job data and options have the
 * shape and size of a change job. Prints one JSON line: adds, seconds, latency, Redis commands per add.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 CONNECTIONS=32 SECONDS=10 WARMUP_SECONDS=2 node --import tsx scripts/bench/baseline-adds.ts
 */
import { createHash, randomUUID } from "node:crypto";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { percentile } from "./load.js";
import { commandDelta, snapshot } from "./redis-counters.js";

const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const connections = Number(process.env.CONNECTIONS ?? 32);
const seconds = Number(process.env.SECONDS ?? 10);
const warmupSeconds = Number(process.env.WARMUP_SECONDS ?? 2);
const SUBSCRIPTION = "22222222-2222-2222-2222-222222222222";
const KEY_URL = "https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048/00000000000000000000000000000002";
const AGE = 168 * 3600;

const connection = new Redis(url, { maxRetriesPerRequest: null });
const counters = new Redis(url);
const queue = new Queue("changes", {
  connection,
  prefix: "bench-b2",
  defaultJobOptions: { attempts: 6, backoff: { type: "exponential", delay: 2000, jitter: 0.5 }, removeOnComplete: { age: AGE }, removeOnFail: { age: AGE } },
});

let next = 0;
async function add(): Promise<void> {
  const fhirServiceId = `/subscriptions/${SUBSCRIPTION}/resourceGroups/rg-bench/providers/Microsoft.HealthcareApis/workspaces/wsbench/fhirservices/b2-${(next += 1)}`;
  const data = {
    request: { operation: "SetKey", fhirServiceId, keyEncryptionKeyUrl: KEY_URL, identity: { type: "SystemAssigned" }, ticket: { system: "bench", id: `B2-${next}` } },
    createdBy: "bench",
    createdDateTime: new Date().toISOString(),
  };
  const deduplicationId = createHash("sha256").update(fhirServiceId.toLowerCase()).digest("hex").slice(0, 40);
  const jobId = randomUUID();
  const job = await queue.add("SetKey", data, { jobId, deduplication: { id: deduplicationId } });
  if (job.id !== jobId) throw new Error(`deduplicated: ${fhirServiceId}`);
}

async function run(forSeconds: number, latencies?: number[]): Promise<number> {
  const end = Date.now() + forSeconds * 1000;
  let adds = 0;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (Date.now() < end) {
        const started = performance.now();
        await add();
        latencies?.push(performance.now() - started);
        adds += 1;
      }
    }),
  );
  return adds;
}

await run(warmupSeconds);
const latencies: number[] = [];
const before = await snapshot(counters);
const started = performance.now();
const adds = await run(seconds, latencies);
const elapsed = (performance.now() - started) / 1000;
const after = await snapshot(counters);
console.log(
  JSON.stringify({
    adds,
    seconds: elapsed,
    perSecond: adds / elapsed,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    commands: commandDelta(before, after),
  }),
);
await queue.close();
connection.disconnect();
counters.disconnect();
