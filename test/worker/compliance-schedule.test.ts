import t from "tap";
import { Redis } from "ioredis";
import { createJobStore } from "../../src/job-store/job-store.js";
import { COMPLIANCE_SCHEDULER_ID, COMPLIANCE_TICK, createSchedulesQueue } from "../../src/job-store/schedules.js";
import { SCHEDULE_PRINCIPAL, startComplianceSchedule } from "../../src/worker/compliance-schedule.js";
import { REDIS_URL, testConfig } from "../helpers/app.js";
import { capturingLogger } from "../helpers/log-capture.js";
import { until } from "../helpers/until.js";

/**
 * CMK_COMPLIANCE_SCAN_CRON through BullMQ's job scheduler, with real Redis: two workers (two connections,
 * one prefix) register one scheduler; each tick is one job, and a tick adds a scan only when none is
 * unfinished; `off` removes the scheduler.
 */
t.test("two workers register one scheduler; every tick runs once and adds at most one scan; off removes it", async (t) => {
  const config = testConfig(t);
  const connections = [new Redis(REDIS_URL, { maxRetriesPerRequest: null }), new Redis(REDIS_URL, { maxRetriesPerRequest: null })];
  t.teardown(() => connections.forEach((redis) => redis.disconnect()));
  const stores = connections.map((redis) => createJobStore({ redis, prefix: config.CMK_QUEUE_PREFIX, retentionHours: 24 }));
  t.teardown(() => Promise.all(stores.map((store) => store.close())));
  const { logger } = capturingLogger();

  // Every second (six fields: seconds first), registered by both workers.
  const schedules = stores.map((store) => startComplianceSchedule(store, "* * * * * *", logger as never));
  t.teardown(() => Promise.all(schedules.map((schedule) => schedule.close())));
  await Promise.all(schedules.map((schedule) => schedule.ready));
  const queue = createSchedulesQueue(connections[0]!, config.CMK_QUEUE_PREFIX);
  t.teardown(() => queue.close());
  const schedulers = await queue.getJobSchedulers();
  t.equal(schedulers.length, 1, "one scheduler, however many workers registered it");
  t.match(schedulers[0], { key: COMPLIANCE_SCHEDULER_ID, pattern: "* * * * * *", tz: "UTC" });

  // Three ticks run (by either worker): no changes worker runs, so the first scan stays unfinished and later ticks add none.
  await until("three ticks", async () => (await queue.getJobCounts("completed")).completed! >= 3, 15_000);
  const ticks = await queue.getJobs(["completed"]);
  t.ok(ticks.every((tick) => tick?.name === COMPLIANCE_TICK));
  const times = ticks.map((tick) => tick!.id!.split(":").at(-1));
  t.equal(new Set(times).size, times.length, "one job per tick time, whichever worker ran it");
  const scans = await stores[0]!.changes.getJobs(["wait", "active", "delayed", "completed", "failed"]);
  t.equal(scans.length, 1, "one scan: a tick while it is unfinished adds none");
  t.match(scans[0]!.data, { request: { operation: "ComplianceScan" }, createdBy: SCHEDULE_PRINCIPAL });

  // off: the scheduler is gone (a worker started with it removes it for all).
  const off = startComplianceSchedule(stores[1]!, "off", logger as never);
  await off.ready;
  await off.close();
  t.equal((await queue.getJobSchedulers()).length, 0, "off removes the scheduler");
});
