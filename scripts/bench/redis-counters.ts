import type { Redis } from "ioredis";

/** Calls per Redis command, as `INFO commandstats` counts them (calls made inside Lua scripts included). */
export type CommandCounts = Record<string, number>;

export interface RedisSnapshot {
  at: number;
  commands: CommandCounts;
  /** `INFO stats` total_commands_processed. */
  totalProcessed: number;
}

export interface CommandDelta {
  /** Commands in the window, the benchmark's own INFO calls left out. */
  total: number;
  /** The same from total_commands_processed (a cross-check: equal unless Redis counts differently). */
  totalProcessed: number;
  byCommand: CommandCounts;
  ms: number;
}

/** `cmdstat_hgetall:calls=3,usec=...` lines of `INFO commandstats`; subcommands keep their `|` name (`client|setname`). */
export function parseCommandStats(info: string): CommandCounts {
  const counts: CommandCounts = {};
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) counts[match[1]!] = Number(match[2]);
  return counts;
}

export function parseTotalCommandsProcessed(info: string): number {
  const match = /^total_commands_processed:(\d+)/m.exec(info);
  if (!match) throw new Error("INFO stats has no total_commands_processed");
  return Number(match[1]);
}

/** The benchmark reads counters with INFO; those calls are not the measured traffic. */
const OWN_COMMANDS = new Set(["info"]);

/** What happened between two snapshots, without INFO. */
export function commandDelta(before: RedisSnapshot, after: RedisSnapshot): CommandDelta {
  const byCommand: CommandCounts = {};
  let total = 0;
  let own = 0;
  for (const [name, calls] of Object.entries(after.commands)) {
    const added = calls - (before.commands[name] ?? 0);
    if (added <= 0) continue;
    if (OWN_COMMANDS.has(name)) {
      own += added;
      continue;
    }
    byCommand[name] = added;
    total += added;
  }
  return { total, totalProcessed: after.totalProcessed - before.totalProcessed - own, byCommand, ms: after.at - before.at };
}

/**
 * Per-request figures: the window's commands less the background rate seen while nothing was sent
 * (`idle`, scaled to the window's length), divided by the requests made.
 */
export function perRequest(delta: CommandDelta, requests: number, idle?: CommandDelta): { total: number; byCommand: CommandCounts; background: number } {
  const scale = idle && idle.ms > 0 ? delta.ms / idle.ms : 0;
  const background = idle ? idle.total * scale : 0;
  const byCommand: CommandCounts = {};
  for (const [name, calls] of Object.entries(delta.byCommand)) {
    const value = (calls - (idle?.byCommand[name] ?? 0) * scale) / requests;
    if (value > 0.005) byCommand[name] = value;
  }
  return { total: Math.max(0, delta.total - background) / requests, byCommand, background };
}

/** Reads both INFO sections in one call. */
export async function snapshot(redis: Redis): Promise<RedisSnapshot> {
  const info = (await redis.call("INFO", "stats", "commandstats")) as string;
  return { at: Date.now(), commands: parseCommandStats(info), totalProcessed: parseTotalCommandsProcessed(info) };
}

/** The commands of a breakdown, most frequent first, then by name: `3 EVALSHA, 1 HGETALL`. */
export function describeCommands(byCommand: CommandCounts, limit = Infinity): string {
  return Object.entries(byCommand)
    .map(([name, calls]) => [name, Number(calls.toFixed(1))] as const)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, limit)
    .map(([name, calls]) => `${calls} ${name.toUpperCase()}`)
    .join(", ");
}
