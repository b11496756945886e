import t from "tap";
import { isConnectionError, RedisOutageLog, redisProblemOf } from "../../src/job-store/outage-log.js";

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

t.test("a failed TLS handshake and refused credentials are outages of their own, said as such", async (t) => {
  let now = 0;
  const log = new RedisOutageLog(10_000, () => now);
  const logger = recordingLogger();
  const untrusted = Object.assign(new Error("Hostname/IP does not match certificate's altnames: Host: localhost. is not in the cert's altnames: DNS:other.test"), { code: "ERR_TLS_CERT_ALTNAME_INVALID" });
  log.error(logger, untrusted, "redis connection error", { where: "rediss://localhost:6380", auth: () => "no password" });
  t.equal(log.problem, "tls");
  t.match(logger.lines.at(-1)?.msg, /^Redis at rediss:\/\/localhost:6380: the TLS handshake failed \(ERR_TLS_CERT_ALTNAME_INVALID: Hostname\/IP does not match/);
  t.match(logger.lines.at(-1)?.msg, /CMK_REDIS_CA_FILE\) and name REDIS_URL's host/);
  // The closed connection that follows is the same story.
  log.error(logger, new Error("Connection is closed."));
  t.equal(logger.lines.length, 1);
  now = 10_000;
  log.error(logger, untrusted);
  t.equal(logger.lines.at(-1)?.msg, "Redis at rediss://localhost:6380 still fails the TLS handshake after 10 s; retrying", "errors without a server take the one named before");

  // Fixed, then the credentials are refused: a new story, whichever connection tells it first.
  log.ready(logger);
  log.error(logger, new Error("WRONGPASS invalid username-password pair or user is disabled."), "worker error");
  t.equal(log.problem, "credentials");
  t.equal(
    logger.lines.at(-1)?.msg,
    "Redis at rediss://localhost:6380 refuses the service's credentials (WRONGPASS invalid username-password pair or user is disabled.); the service signs in with no password: the API answers 503 and no job runs until it does; retrying",
  );
  t.equal(redisProblemOf(new Error("NOAUTH Authentication required.")), "credentials");
  t.equal(redisProblemOf(Object.assign(new Error("self-signed certificate in certificate chain"), { code: "SELF_SIGNED_CERT_IN_CHAIN" })), "tls");
  t.equal(redisProblemOf(new Error("CROSSSLOT Keys in request don't hash to the same slot")), undefined, "a command's own error");
});
