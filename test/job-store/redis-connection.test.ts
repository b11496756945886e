import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rootCertificates } from "node:tls";
import t from "tap";
import { loadConfig } from "../../src/config.js";
import { redactRedisUrl, redisTarget } from "../../src/job-store/redis-connection.js";
import { createCertificateAuthority } from "../helpers/tls-certificates.js";

t.test("rediss:// verifies the server's certificate against the URL's host; CMK_REDIS_CA_FILE adds CAs to the system's", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "cmk-redis-target-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const ca = await createCertificateAuthority("cmk test CA");
  const caFile = join(dir, "ca.pem");
  await writeFile(caFile, ca.certPem);

  t.same(redisTarget(loadConfig({ REDIS_URL: "redis://cache:6379" })), { url: "redis://cache:6379", cluster: false }, "plain redis://: no TLS");
  t.same(redisTarget(loadConfig({ REDIS_URL: "rediss://cache.example.net:10000" })).tls, { rejectUnauthorized: true, servername: "cache.example.net" }, "system CAs, the host as SNI and identity");
  t.same(redisTarget(loadConfig({ REDIS_URL: "rediss://10.0.0.4:6380" })).tls, { rejectUnauthorized: true }, "an address: no SNI (RFC 6066); the certificate must name the address");
  const withCa = redisTarget(loadConfig({ REDIS_URL: "rediss://cache.example.net:10000", CMK_REDIS_CA_FILE: caFile })).tls;
  t.equal(withCa?.rejectUnauthorized, true);
  t.same(withCa?.ca, [...rootCertificates, ca.certPem], "the system's CAs and the file's");

  t.throws(() => redisTarget(loadConfig({ REDIS_URL: "rediss://cache:6380", CMK_REDIS_CA_FILE: join(dir, "missing.pem") })), { variable: "CMK_REDIS_CA_FILE", message: /cannot read/ });
  await writeFile(join(dir, "empty.pem"), "not a certificate");
  t.throws(() => redisTarget(loadConfig({ REDIS_URL: "rediss://cache:6380", CMK_REDIS_CA_FILE: join(dir, "empty.pem") })), { variable: "CMK_REDIS_CA_FILE", message: /no PEM certificate/ });
  t.equal(redisTarget(loadConfig({ REDIS_URL: "redis://cache:6379", CMK_REDIS_CLUSTER: "true" })).cluster, true);
});

t.test("a URL is shown without its password", async (t) => {
  t.equal(redactRedisUrl("rediss://user:secret@cache:6380"), "rediss://***@cache:6380");
  t.equal(redactRedisUrl("redis://cache:6379"), "redis://cache:6379");
});
