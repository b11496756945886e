import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { SCHEDULES_QUEUE } from "./keys.js";

/** The one scheduler of compliance scans: a fixed id, so every worker that registers it registers the same one. */
export const COMPLIANCE_SCHEDULER_ID = "compliance-scan";
/** The name of a tick's job (it carries no data: the tick adds a ComplianceScan). */
export const COMPLIANCE_TICK = "ComplianceScanTick";

export interface ScheduleTickData {
  kind: typeof COMPLIANCE_TICK;
}

export type SchedulesQueue = Queue<ScheduleTickData>;

export function createSchedulesQueue(connection: Redis, prefix: string): SchedulesQueue {
  // Ticks are kept only briefly: the scan each adds is the record.
  return new Queue<ScheduleTickData>(SCHEDULES_QUEUE, { connection, prefix, defaultJobOptions: { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } } });
}

/**
 * CMK_COMPLIANCE_SCAN_CRON as BullMQ's job scheduler (`upsertJobScheduler`): one scheduler under a fixed
 * id, whose every tick is one job with an id of the scheduler and the tick's time, so however many workers
 * register it and run ticks, each tick adds one scan. `off` removes it. UTC, as the variable documents.
 */
export async function applyComplianceSchedule(queue: SchedulesQueue, cron: string): Promise<"scheduled" | "removed"> {
  if (cron === "off") {
    await queue.removeJobScheduler(COMPLIANCE_SCHEDULER_ID);
    return "removed";
  }
  await queue.upsertJobScheduler(COMPLIANCE_SCHEDULER_ID, { pattern: cron, tz: "UTC" }, { name: COMPLIANCE_TICK, data: { kind: COMPLIANCE_TICK } });
  return "scheduled";
}
