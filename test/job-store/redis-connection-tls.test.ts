import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { loadConfig } from "../../src/config.js";
import { redisOutageLog } from "../../src/job-store/outage-log.js";
import { redisTarget } from "../../src/job-store/redis-connection.js";
import { warnAboutRedisDurability } from "../../src/runtime.js";
import { buildTestApp, KEYS, testConfig, waitForJob } from "../helpers/app.js";
import { capturingLogger } from "../helpers/log-capture.js";
import { startOwnRedis } from "../helpers/redis-server.js";
import { setKey } from "../helpers/requests.js";
import { startStack } from "../helpers/stack.js";
import { createCertificateAuthority, writeServerCertificate } from "../helpers/tls-certificates.js";

/**
 * rediss:// as production runs it: a redis-server that listens only for TLS (`--port 0`), with a
 * certificate from a CA of the test's own. The service trusts that CA through CMK_REDIS_CA_FILE and checks
 * the certificate names REDIS_URL's host; a certificate for another host, or from a CA it does not trust,
 * is refused, and start-up, the log and /readyz say why, instead of hanging.
 */

const dir = await mkdtemp(join(tmpdir(), "cmk-redis-tls-"));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const [trusted, stranger] = await Promise.all([createCertificateAuthority("cmk test Redis CA"), createCertificateAuthority("someone else's CA")]);
const good = await writeServerCertificate(dir, "good", trusted, { dnsNames: ["localhost"] });
const otherHost = await writeServerCertificate(dir, "other-host", trusted, { dnsNames: ["redis.example.test"] });
const untrusted = await writeServerCertificate(dir, "untrusted", stranger, { dnsNames: ["localhost"] });
/** The CA file the service is given: the trusted CA only. */
const caFile = good.caFile;


t.test("over rediss:// with the certificate verified, the API accepts a change and a worker completes it", async (t) => {
  const redis = await startOwnRedis(t, [], { tls: good });
  t.match(redis.url, /^rediss:\/\/localhost:\d+$/);
  const { app } = await startStack(t, { env: { REDIS_URL: redis.url, CMK_REDIS_CA_FILE: caFile } });

  const ready = await app.inject({ method: "GET", url: "/readyz" });
  t.equal(ready.statusCode, 200, ready.body);
  const accepted = await app.inject({ method: "POST", url: "/v1/change-requests", payload: setKey("fhir-sys"), headers: { "x-api-key": KEYS.operator } });
  t.equal(accepted.statusCode, 202, accepted.body);
  const { monitor } = await waitForJob(app, accepted.json().id);
  t.equal(monitor.status, "Succeeded", JSON.stringify(monitor.error ?? monitor.status));
  // The server has no plain port, so every command above went over TLS.
});

const refusals = [
  { name: "a certificate for another host", files: otherHost, trustCa: true, code: /ERR_TLS_CERT_ALTNAME_INVALID/ },
  { name: "a certificate from a CA the service does not trust", files: untrusted, trustCa: true, code: /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED/ },
  { name: "a private CA's certificate without CMK_REDIS_CA_FILE", files: good, trustCa: false, code: /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED/ },
];

for (const refusal of refusals) {
  t.test(`${refusal.name} is refused, and start-up, the log and /readyz say why`, async (t) => {
    // Each case is an outage story of its own in the process's one outage log.
    redisOutageLog.ready({ info: () => undefined, warn: () => undefined });
    const redis = await startOwnRedis(t, [], { tls: refusal.files });
    const env = { REDIS_URL: redis.url, ...(refusal.trustCa ? { CMK_REDIS_CA_FILE: caFile } : {}) };

    const { lines, logger } = capturingLogger();
    const warnings = await warnAboutRedisDurability(redisTarget(loadConfig(env)), logger);
    t.same(warnings, [`Redis at ${redis.url} fails the TLS handshake yet.`], "start-up says it in one line");
    const first = lines.find((line) => /TLS handshake failed/.test(line.msg));
    t.ok(first, "the log line names the TLS handshake");
    t.match(first?.msg, refusal.code, "and Node's reason");
    t.match(first?.msg, /CMK_REDIS_CA_FILE/, "and what to check");

    const config = testConfig(t, env);
    const app = await buildTestApp(t, config, undefined, { logger });
    const ready = await app.inject({ method: "GET", url: "/readyz" });
    t.equal(ready.statusCode, 503);
    t.same(ready.json().checks, { redis: "tls handshake failed" });
    const refused = await app.inject({ method: "POST", url: "/v1/change-requests", payload: setKey("fhir-sys"), headers: { "x-api-key": KEYS.operator } });
    t.equal(refused.statusCode, 503);
    t.equal(refused.json().code, "QueueUnavailable");
  });
}
