import { readFileSync } from "node:fs";
import type { Redis, Result } from "ioredis";
import { addStandardJob } from "bullmq/dist/cjs/scripts/addStandardJob-9.js";

/**
 * The store's Lua scripts, one `<name>-<number of keys>.lua` file each in ./scripts (BullMQ's naming),
 * registered on a connection with ioredis `defineCommand`: EVALSHA, and EVAL once when Redis does not know
 * the script yet, on the connection and in its pipelines alike. The files are read beside this module,
 * so from src/ under tsx and from dist/ once the build has copied them there (scripts/build.mjs).
 *
 * `--@bullmq <script>` in a file stands for the text of BullMQ's own script of that name, as the installed
 * BullMQ loads it (accept-with-key wraps BullMQ's add; test/job-store/bullmq-layout.test.ts pins what it
 * relies on).
 */
const SCRIPTS = {
  cmkClaim: "claim-1.lua",
  cmkCancel: "cancel-9.lua",
  cmkAppendEvent: "append-event-1.lua",
  cmkStartEventLog: "start-event-log-1.lua",
  cmkTakeOverIdempotencyKey: "take-over-idempotency-key-1.lua",
  cmkAcceptWithKey: "accept-with-key-10.lua",
  cmkDecideApproval: "decide-approval-1.lua",
  cmkArmBudget: "arm-budget-1.lua",
} as const;

const BULLMQ_SCRIPTS: Record<string, { content: string }> = { addStandardJob };

type Arg = string | number | Buffer;

declare module "ioredis" {
  interface RedisCommander<Context> {
    cmkClaim(control: string, what: string, keepMs: number): Result<[string, string], Context>;
    cmkCancel(...keysThenArgs: Arg[]): Result<[string, string], Context>;
    cmkAppendEvent(events: string, maxEntries: number, monitor: string, keepMs: number, channel: string, jobId: string): Result<string, Context>;
    cmkStartEventLog(events: string, monitor: string, keepMs: number, channel: string, jobId: string): Result<string | null, Context>;
    cmkTakeOverIdempotencyKey(key: string, seen: string, next: string, keepSeconds: number): Result<number, Context>;
    cmkAcceptWithKey(...keysThenArgs: Arg[]): Result<string | number | [string], Context>;
    cmkDecideApproval(jobKey: string, decision: string): Result<[string, string], Context>;
    cmkArmBudget(bucket: string, capacity: number, perSecond: number, op: "take" | "observe", remaining: string, retryAfterMs: string, idleMs: number): Result<[number, number], Context>;
  }
}

const sources = Object.fromEntries(
  Object.entries(SCRIPTS).map(([name, file]) => [
    name,
    {
      lua: readFileSync(new URL(`./scripts/${file}`, import.meta.url), "utf8").replace(/^--@bullmq (\w+)$/m, (_line, script: string) => {
        const bullmq = BULLMQ_SCRIPTS[script];
        if (!bullmq) throw new Error(`${file}: BullMQ has no script ${script} here`);
        return bullmq.content;
      }),
      numberOfKeys: Number(/-(\d+)\.lua$/.exec(file)![1]) },
  ]),
) as Record<keyof typeof SCRIPTS, { lua: string; numberOfKeys: number }>;

/** Registers the store's scripts on `redis` (once per connection) and returns it. */
export function withStoreScripts(redis: Redis): Redis {
  for (const [name, script] of Object.entries(sources)) {
    if (!(name in redis)) redis.defineCommand(name, script);
  }
  return redis;
}
