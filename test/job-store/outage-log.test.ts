import t from "tap";
import { isConnectionError, RedisOutageLog } from "../../src/job-store/outage-log.js";

function refused(port = 6399): Error {
  return Object.assign(new Error(`connect ECONNREFUSED 127.0.0.1:${port}`), { code: "ECONNREFUSED", address: "127.0.0.1", port });
}

function recordingLogger() {
  const lines: { level: string; msg: string; obj: object }[] = [];
  return {
    lines,
    warn: (obj: object, msg: string) => lines.push({ level: "warn", msg, obj }),
    info: (obj: object, msg: string) => lines.push({ level: "info", msg, obj }),
  };
}

t.test("an outage is one line, then at most one per interval, then one when Redis is back", async (t) => {
  let now = 0;
  const log = new RedisOutageLog(10_000, () => now);
  const logger = recordingLogger();
  // Five connections fail every 100 ms for 25 s: 1,250 errors.
  for (; now < 25_000; now += 100) for (let connection = 0; connection < 5; connection += 1) log.error(logger, refused());
  t.same(
    logger.lines.map((line) => line.msg),
    [
      "Redis at 127.0.0.1:6399 does not answer (ECONNREFUSED): the API answers 503 and no job runs until it does; retrying",
      "Redis at 127.0.0.1:6399 still does not answer after 10 s; retrying",
      "Redis at 127.0.0.1:6399 still does not answer after 20 s; retrying",
    ],
  );
  t.ok(log.inOutage);
  log.ready(logger);
  log.ready(logger);
  t.equal(logger.lines.at(-1)?.msg, "Redis answers again after 25 s", "once, however many connections come back");
  t.equal(logger.lines.length, 4);
  t.notOk(log.inOutage);

  log.error(logger, refused());
  t.match(logger.lines.at(-1)?.msg, /does not answer/, "a new outage starts a new story");
});

t.test("errors that are not about reaching Redis are logged as they come, without a stack", async (t) => {
  const log = new RedisOutageLog();
  const logger = recordingLogger();
  log.error(logger, new Error("ERR Error running script"), "worker error");
  log.error(logger, new Error("ERR Error running script"), "worker error");
  t.same(logger.lines, [
    { level: "warn", msg: "worker error", obj: { err: "ERR Error running script" } },
    { level: "warn", msg: "worker error", obj: { err: "ERR Error running script" } },
  ]);
  t.notOk(log.inOutage);
});

t.test("what counts as not reaching Redis", async (t) => {
  t.ok(isConnectionError(refused()));
  t.ok(isConnectionError(new Error("Connection is closed.")));
  t.ok(isConnectionError(Object.assign(new Error("getaddrinfo ENOTFOUND redis"), { code: "ENOTFOUND" })));
  t.notOk(isConnectionError(new Error("NOSCRIPT No matching script")));
  t.notOk(isConnectionError(new Error("OOM command not allowed when used memory > 'maxmemory'")));
});
