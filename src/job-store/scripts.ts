import { readFileSync } from "node:fs";
import type { Redis, Result } from "ioredis";

/**
 * The store's Lua scripts, one `<name>-<number of keys>.lua` file each in ./scripts (BullMQ's naming),
 * registered on a connection with ioredis `defineCommand`: EVALSHA, and EVAL once when Redis does not know
 * the script yet, on the connection and in its pipelines alike. The files are read beside this module,
 * so from src/ under tsx and from dist/ once the build has copied them there (scripts/build.mjs).
 */
const SCRIPTS = {
  cmkClaim: "claim-1.lua",
  cmkCancel: "cancel-9.lua",
  cmkAppendEvent: "append-event-1.lua",
  cmkStartEventLog: "start-event-log-1.lua",
  cmkTakeOverIdempotencyKey: "take-over-idempotency-key-1.lua",
  cmkArmBudget: "arm-budget-1.lua",
} as const;

type Arg = string | number;

declare module "ioredis" {
  interface RedisCommander<Context> {
    cmkClaim(control: string, what: string, keepMs: number): Result<[string, string], Context>;
    cmkCancel(...keysThenArgs: Arg[]): Result<[string, string], Context>;
    cmkAppendEvent(events: string, maxEntries: number, monitor: string, keepMs: number, channel: string, jobId: string): Result<string, Context>;
    cmkStartEventLog(events: string, monitor: string, keepMs: number, channel: string, jobId: string): Result<string | null, Context>;
    cmkTakeOverIdempotencyKey(key: string, seen: string, next: string, keepSeconds: number): Result<number, Context>;
    cmkArmBudget(bucket: string, capacity: number, perSecond: number, op: "take" | "observe", remaining: string, retryAfterMs: string, idleMs: number): Result<[number, number], Context>;
  }
}

const sources = Object.fromEntries(
  Object.entries(SCRIPTS).map(([name, file]) => [
    name,
    { lua: readFileSync(new URL(`./scripts/${file}`, import.meta.url), "utf8"), numberOfKeys: Number(/-(\d+)\.lua$/.exec(file)![1]) },
  ]),
) as Record<keyof typeof SCRIPTS, { lua: string; numberOfKeys: number }>;

/** Registers the store's scripts on `redis` (once per connection) and returns it. */
export function withStoreScripts(redis: Redis): Redis {
  for (const [name, script] of Object.entries(sources)) {
    if (!(name in redis)) redis.defineCommand(name, script);
  }
  return redis;
}
