import type { AddressInfo } from "node:net";
import t, { type Test } from "tap";
import type { FastifyInstance } from "fastify";
import { callbackUrlPolicy } from "../../src/security/callback-url.js";
import { fhirServiceId, FHIR_SYS, keyUrl, KV_SANDBOX, KEY_RSA_2048, VERSION_2 } from "../../src/sandbox/seed.js";
import { buildTestApp, KEYS, testConfig } from "../helpers/app.js";

const dryRun = { operation: "SetKey", fhirServiceId: fhirServiceId(FHIR_SYS), keyEncryptionKeyUrl: keyUrl(KV_SANDBOX, KEY_RSA_2048, VERSION_2), identity: { type: "SystemAssigned" }, dryRun: true };

const submit = (app: FastifyInstance, callbackUrl: string) =>
  app.inject({ method: "POST", url: "/v1/change-requests", payload: { ...dryRun, callbackUrl }, headers: { "x-api-key": KEYS.operator } });

async function expectRefused(t: Test, app: FastifyInstance, url: string) {
  const response = await submit(app, url);
  t.equal(response.statusCode, 400, url);
  t.match(response.json(), { code: "ValidationFailed", errors: [{ path: "/body/callbackUrl" }] }, url);
  t.notOk(response.body.includes("secret"), "credentials in the URL are not repeated");
  return response.json().errors[0].message as string;
}

t.test("azure mode: https on a listed host, on port 443 unless the entry names another", async (t) => {
  const app = await buildTestApp(t, testConfig(t, { CMK_MODE: "azure", CMK_CALLBACK_ALLOWED_HOSTS: "hooks.contoso.com, *.example.org, ops.contoso.com:8443" }));
  for (const url of [
    "https://hooks.contoso.com/cmk",
    "https://hooks.contoso.com:443/cmk",
    "https://HOOKS.contoso.com/cmk?x=1",
    "https://team.example.org/hook",
    "https://ops.contoso.com:8443/hook",
  ]) {
    t.equal((await submit(app, url)).statusCode, 202, url);
  }
  for (const url of [
    "https://hooks.contoso.com:8609/cmk",
    "https://hooks.contoso.com:8443/cmk",
    "https://team.example.org:8443/hook",
    "https://ops.contoso.com/hook",
    "https://ops.contoso.com:8444/hook",
    "http://hooks.contoso.com/cmk",
    "http://hooks.contoso.com:443/cmk",
    "https://hooks.contoso.com.evil.com/cmk",
    "https://hooks.contoso.com@169.254.169.254/latest/meta-data",
    "https://user:secret@hooks.contoso.com/cmk",
    "https://a.b.example.org/hook",
    "https://example.org/hook",
    "https://169.254.169.254/metadata",
    "http://localhost:3000/cb",
    "https://127.0.0.1/cb",
  ]) {
    await expectRefused(t, app, url);
  }
  t.match(await expectRefused(t, app, "https://hooks.contoso.com:8609/cmk"), /port 443 unless the entry names one.*hooks\.contoso\.com:8609 is not/);
});

t.test("sandbox mode: no loopback port by default, not even the API's own", async (t) => {
  const app = await buildTestApp(t, testConfig(t));
  await app.listen({ port: 0, host: "127.0.0.1" });
  const own = (app.server.address() as AddressInfo).port;
  for (const url of [`http://127.0.0.1:${own}/v1/change-requests`, `http://localhost:${own}/v1/jobs`, "http://localhost:8080/cb", "http://127.0.0.1:9/cb", "https://localhost/cb", "http://10.0.0.1/cb"]) {
    t.match(await expectRefused(t, app, url), /CMK_CALLBACK_ALLOWED_HOSTS/, url);
  }
});

t.test("sandbox mode: http on a loopback port the operator names, and only that port", async (t) => {
  const app = await buildTestApp(t, testConfig(t, { CMK_CALLBACK_ALLOWED_HOSTS: "127.0.0.1:9000, localhost:9001" }));
  for (const url of ["http://127.0.0.1:9000/cb", "https://127.0.0.1:9000/cb", "http://localhost:9001/cb"]) {
    t.equal((await submit(app, url)).statusCode, 202, url);
  }
  for (const url of ["http://127.0.0.1:9001/cb", "http://localhost:9000/cb", "http://127.0.0.1/cb", "https://127.0.0.1/cb", "http://127.0.0.1:3000/cb"]) {
    t.match(await expectRefused(t, app, url), /http only on localhost, 127\.0\.0\.1 at a listed port/, url);
  }
  const azure = await buildTestApp(t, testConfig(t, { CMK_MODE: "azure", CMK_CALLBACK_ALLOWED_HOSTS: "127.0.0.1:9000" }));
  await expectRefused(t, azure, "http://127.0.0.1:9000/cb");
  t.equal((await submit(azure, "https://127.0.0.1:9000/cb")).statusCode, 202, "azure mode: https only, even on a listed loopback port");
});

t.test("azure mode without hosts: no callbacks", async (t) => {
  const app = await buildTestApp(t, testConfig(t, { CMK_MODE: "azure" }));
  t.match(await expectRefused(t, app, "https://hooks.contoso.com/cmk"), /no callback hosts are configured \(CMK_CALLBACK_ALLOWED_HOSTS\)/);
});

t.test("entries are host[:port]; a loopback entry must name its port", async (t) => {
  const policy = (hosts: string) => callbackUrlPolicy({ CMK_MODE: "sandbox", CMK_CALLBACK_ALLOWED_HOSTS: hosts });
  t.same(policy(" Hooks.Contoso.com , *.example.org:8443,127.0.0.1:9000").targets, [
    { host: "hooks.contoso.com", port: 443 },
    { host: "*.example.org", port: 8443 },
    { host: "127.0.0.1", port: 9000 },
  ]);
  for (const [hosts, message] of [
    ["localhost", /CMK_CALLBACK_ALLOWED_HOSTS: "localhost" must name its port \(e\.g\. localhost:9000\)/],
    ["127.0.0.1", /must name its port/],
    ["hooks.contoso.com:0", /is not host\[:port\]/],
    ["hooks.contoso.com:70000", /is not host\[:port\]/],
    ["https://hooks.contoso.com", /is not host\[:port\]/],
    ["hooks.contoso.com/path", /is not host\[:port\]/],
  ] as const) {
    t.throws(() => policy(hosts), { name: "ConfigError", message }, hosts);
  }
});
