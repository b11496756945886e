import { Worker, type Job } from "bullmq";
import type { FastifyBaseLogger } from "fastify";
import { derivedJobId } from "../domain/fleet-plan.js";
import type { JobStore } from "../job-store/job-store.js";
import { SCHEDULES_QUEUE } from "../job-store/keys.js";
import { applyComplianceSchedule, createSchedulesQueue, type ScheduleTickData } from "../job-store/schedules.js";
import { redisOutageLog } from "../job-store/outage-log.js";

/** Who a scheduled scan is created by (its monitor's createdBy). */
export const SCHEDULE_PRINCIPAL = "schedule:CMK_COMPLIANCE_SCAN_CRON";

export interface RunningSchedule {
  /** Settles once the scheduler is registered (or removed), or could not be. */
  ready: Promise<void>;
  close(): Promise<void>;
}

/**
 * Scheduled compliance scans: registers (or, with `off`, removes) the one job scheduler, and runs its
 * ticks. A tick adds a ComplianceScan as any scan is added (one unfinished scan at a time: a tick while a
 * scan runs adds nothing), with a job id derived from the tick's, so a tick retried or run by two workers
 * adds one scan.
 */
export function startComplianceSchedule(store: JobStore, cron: string, logger: FastifyBaseLogger): RunningSchedule {
  const queue = createSchedulesQueue(store.redis, store.keys.prefix);
  // Redis trouble is the outage log's to tell (one line, then reminders), never an unhandled error event.
  queue.on("error", (error) => redisOutageLog.error(logger, error, "schedule queue error"));
  const tick = async (job: Job<ScheduleTickData>) => {
    const added = await store.addChange(
      { request: { operation: "ComplianceScan" }, createdBy: SCHEDULE_PRINCIPAL, createdById: SCHEDULE_PRINCIPAL, createdDateTime: new Date().toISOString() },
      { jobId: derivedJobId(`${store.keys.prefix}\nschedule\n${job.id}`) },
    );
    if (added.accepted) logger.info({ jobId: added.jobId, tick: job.id }, "scheduled compliance scan added");
    else logger.info({ tick: job.id, activeJobId: "activeJobId" in added ? added.activeJobId : undefined }, "scheduled compliance scan not added: a scan is unfinished");
  };
  let worker: Worker<ScheduleTickData> | undefined;
  let closed = false;
  // Registered in the background: a Redis that does not answer yet delays the schedule, never the worker's start or its shutdown.
  const applied = applyComplianceSchedule(queue, cron).then(
    (outcome) => {
      logger.info({ cron, schedule: outcome }, outcome === "scheduled" ? "compliance scans scheduled (CMK_COMPLIANCE_SCAN_CRON, UTC)" : "no scheduled compliance scans (CMK_COMPLIANCE_SCAN_CRON=off)");
      if (outcome !== "scheduled" || closed) return;
      worker = new Worker<ScheduleTickData>(SCHEDULES_QUEUE, tick, { connection: store.redis, prefix: store.keys.prefix, concurrency: 1 });
      worker.on("error", (error) => redisOutageLog.error(logger, error, "schedule worker error"));
    },
    (error: Error) => logger.warn({ err: error.message }, "compliance scan schedule not registered; the next worker start tries again"),
  );
  return {
    ready: applied,
    close: async () => {
      closed = true;
      await worker?.close();
      await queue.close().catch(() => undefined);
    },
  };
}
