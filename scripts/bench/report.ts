import type { LoadResult } from "./load.js";
import { describeCommands, type CommandCounts } from "./redis-counters.js";
import type { ValidationTimings } from "./validations.js";

export interface PerRequestCommands {
  total: number;
  byCommand: CommandCounts;
}

/** The rate-limit counters' periodic flushes during a one-at-a-time probe: not counted per request. */
export interface RateLimitFlushes {
  flushes: number;
  commands: number;
}

export interface AddsResult {
  adds: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
}

export interface NodeMemory {
  heapTotalMb: number;
  heapUsedMb: number;
  externalMb: number;
}

/** What `npm run bench` writes to bench/results.json. */
export interface BenchResults {
  date: string;
  /** The last commit that changed src/ (the code measured). */
  commit: string;
  machine: { cpuModel: string; cpus: number; totalMemoryGb: number; node: string; platform: string; redis: string };
  settings: Record<string, string | number>;
  p1: { baseline: LoadResult; service: LoadResult; ratio: number; p99Ratio: number; monitorBytes: number };
  p2: { baseline: AddsResult; service: LoadResult; ratio: number };
  p4: { withoutLatency: ValidationTimings; withLatency: ValidationTimings; ratio: number };
  p5: {
    /** The B1 server (bare Fastify and ioredis on node): what any such process costs. */
    baselineProcess: { idleMb: number | undefined; underB1Mb: number | undefined };
    api: {
      idleMb: number | undefined;
      underP1Mb: number | undefined;
      underP2Mb: number | undefined;
      /** V8's share, from the API's /metrics: idle, and just after P1. */
      idleHeap: NodeMemory | undefined;
      heapAfterP1: NodeMemory | undefined;
    };
    worker: { idleMb: number | undefined; inFlightMb: number | undefined; jobs: number; active: number; waiting: number; failed: number; armWritesStarted: number; concurrency: number };
  };
  redis: {
    statusRead: { baseline: PerRequestCommands; service: PerRequestCommands; sequential: PerRequestCommands; roundTrips: number; rateLimitFlushes?: RateLimitFlushes };
    accept: {
      baseline: PerRequestCommands;
      service: PerRequestCommands;
      sequential: PerRequestCommands;
      roundTrips: number;
      rateLimitFlushes?: RateLimitFlushes;
      withoutIdempotencyKey: { sequential: PerRequestCommands; roundTrips: number };
    };
  };
  goals: Array<{ id: string; measured: string; goal: string; met: boolean }>;
}

const integer = (value: number) => Math.round(value).toLocaleString("en-US");
const ms = (value: number) => `${value < 10 ? value.toFixed(1) : Math.round(value)} ms`;
const mb = (value: number | undefined) => (value === undefined ? "n/a" : `${Math.round(value)} MB`);
const times = (value: number) => `${value < 0.1 ? value.toFixed(3) : value.toFixed(2)}×`;
const count = (value: number) => (Math.abs(value - Math.round(value)) < 0.05 ? String(Math.round(value)) : value.toFixed(1));
const met = (ok: boolean) => (ok ? "met" : "**not met**");

/** The goals of issue 13, judged on one run. */
export function judgeGoals(results: Omit<BenchResults, "goals">): BenchResults["goals"] {
  const { p1, p2, p4, p5, redis } = results;
  // Commands: the one-at-a-time probe's counts, as the cost tests count them (the rate-limit flushes apart).
  return [
    { id: "P1", measured: `${times(p1.ratio)}, p99 ${times(p1.p99Ratio)}`, goal: "≥ 0.7×, p99 ≤ 1.5×", met: p1.ratio >= 0.7 && p1.p99Ratio <= 1.5 },
    { id: "P2", measured: times(p2.ratio), goal: "≥ 0.5×", met: p2.ratio >= 0.5 },
    { id: "P4", measured: times(p4.ratio), goal: "≤ 1.2×", met: p4.ratio <= 1.2 },
    { id: "P5 API", measured: mb(p5.api.underP1Mb), goal: "≤ 120 MB under P1", met: (p5.api.underP1Mb ?? Infinity) <= 120 },
    { id: "P5 worker", measured: mb(p5.worker.inFlightMb), goal: "≤ 250 MB with 1,000 jobs in flight", met: (p5.worker.inFlightMb ?? Infinity) <= 250 && p5.worker.active + p5.worker.waiting >= 1000 },
    {
      id: "Redis status read",
      measured: `${count(redis.statusRead.sequential.total)} commands, ${count(redis.statusRead.roundTrips)} round trips`,
      goal: "≤ 2 commands in 1 round trip",
      met: redis.statusRead.sequential.total <= 2.05 && redis.statusRead.roundTrips <= 1.05,
    },
    {
      id: "Redis accept",
      measured: `${count(redis.accept.sequential.total)} commands, ${count(redis.accept.roundTrips)} round trips`,
      goal: "≤ 16 commands in ≤ 2 round trips",
      met: redis.accept.sequential.total <= 16.05 && redis.accept.roundTrips <= 2.05,
    },
  ];
}

/** The machine line and the two tables, in Markdown (the README's Performance section carries them as printed). */
export function renderReport(results: BenchResults): string {
  const { machine, settings, p1, p2, p4, p5, redis, goals } = results;
  const goal = (id: string) => goals.find((entry) => entry.id === id)!;
  const rtt = p4.withLatency.roundTripMs;
  const lines = [
    `${results.date.slice(0, 10)}, src/ at ${results.commit}: ${machine.cpus} × ${machine.cpuModel}, ${machine.totalMemoryGb} GB, ${machine.platform}, Node ${machine.node}, Redis ${machine.redis}.`,
    `One dedicated redis-server (${settings.redis}); the service as \`${settings.service}\`; autocannon at ${settings.connections} connections, ${settings.seconds} s per run after ${settings.warmupSeconds} s of warm-up.`,
    "",
    "| | baseline in the same run | cmk-service | ratio | goal | |",
    "|---|---|---|---|---|---|",
    `| P1 \`GET /v1/jobs/{id}\` (finished SetKey, ${integer(p1.monitorBytes)} B) | bare Fastify route + one \`HGETALL\`: ${integer(p1.baseline.perSecond)} req/s, p99 ${ms(p1.baseline.p99Ms)} | ${integer(p1.service.perSecond)} req/s, p99 ${ms(p1.service.p99Ms)} | ${times(p1.ratio)} (p99 ${times(p1.p99Ratio)}) | ≥ 0.7×, p99 ≤ 1.5× | ${met(goal("P1").met)} |`,
    `| P2 \`POST /v1/change-requests\` accepted (API only, unique services, Idempotency-Key) | raw BullMQ \`queue.add\` with jobId and deduplication: ${integer(p2.baseline.perSecond)} adds/s, p99 ${ms(p2.baseline.p99Ms)} | ${integer(p2.service.perSecond)} req/s, p50 ${ms(p2.service.p50Ms)}, p99 ${ms(p2.service.p99Ms)} | ${times(p2.ratio)} | ≥ 0.5× | ${met(goal("P2").met)} |`,
    `| P4 \`POST /v1/validations\`, ${rtt} ms simulated round trip (median of ${p4.withLatency.rounds}) | slowest single lookup: ${ms(p4.withLatency.slowestLookupMs)} (all ${Object.keys(p4.withLatency.lookups).length}: ${ms(p4.withLatency.sumOfLookupsMs)}) | ${ms(p4.withLatency.validation.medianMs)}, p95 ${ms(p4.withLatency.validation.p95Ms)} | ${times(p4.ratio)} | ≤ 1.2× | ${met(goal("P4").met)} |`,
    `| P5 API process RSS (\`CMK_ROLE=api\`) | B1's process (bare Fastify and ioredis): idle ${mb(p5.baselineProcess.idleMb)}, under B1 ${mb(p5.baselineProcess.underB1Mb)} | idle ${mb(p5.api.idleMb)}, under P1 ${mb(p5.api.underP1Mb)} (under P2 ${mb(p5.api.underP2Mb)}) | | ≤ 120 MB under P1 | ${met(goal("P5 API").met)} |`,
    `| P5 worker process RSS, ${integer(p5.worker.jobs)} jobs in flight (${p5.worker.active} running, ${p5.worker.waiting} waiting) | | idle ${mb(p5.worker.idleMb)}, in flight ${mb(p5.worker.inFlightMb)} | | ≤ 250 MB | ${met(goal("P5 worker").met)} |`,
    "",
    "Redis commands per request (`INFO commandstats` deltas on the dedicated Redis, calls inside Lua scripts included: one request at a time through a counting proxy, as test/services/redis-cost.test.ts counts them, and in brackets under load, divided by answers). The rate-limit counters' flush, a timer of every API process (every 250 ms while a caller has requests: INCRBY, PEXPIRE, PTTL per caller, one round trip), belongs to no request and is counted apart:",
    "",
    "| | baseline | cmk-service | round trips | goal | |",
    "|---|---|---|---|---|---|",
    `| status read (P1) | ${count(redis.statusRead.baseline.total)} (${describeCommands(redis.statusRead.baseline.byCommand)}) | ${count(redis.statusRead.sequential.total)}: ${describeCommands(redis.statusRead.sequential.byCommand)} (under load ${count(redis.statusRead.service.total)}) | ${count(redis.statusRead.roundTrips)} | ≤ 2 in 1 | ${met(goal("Redis status read").met)} |`,
    `| accepted change (P2) | ${count(redis.accept.baseline.total)} (${describeCommands(redis.accept.baseline.byCommand)}) | ${count(redis.accept.sequential.total)}: ${describeCommands(redis.accept.sequential.byCommand)} (under load ${count(redis.accept.service.total)}) | ${count(redis.accept.roundTrips)} (without Idempotency-Key: ${count(redis.accept.withoutIdempotencyKey.roundTrips)}, ${count(redis.accept.withoutIdempotencyKey.sequential.total)} commands) | ≤ 16 in ≤ 2 | ${met(goal("Redis accept").met)} |`,
    "",
    `Rate-limit flushes beside the one-at-a-time probes: ${redis.statusRead.rateLimitFlushes?.flushes ?? "n/a"} during the 20 status reads (${redis.statusRead.rateLimitFlushes?.commands ?? "n/a"} commands), ${redis.accept.rateLimitFlushes?.flushes ?? "n/a"} during the 20 accepts (${redis.accept.rateLimitFlushes?.commands ?? "n/a"} commands); under load they are also in the bracketed figures (a few per second against thousands of requests).`,
  ];
  return lines.join("\n");
}
