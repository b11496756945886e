import t, { type Test } from "tap";
import { createAzureAdapters } from "../../src/azure/adapters.js";
import { createAzureContext } from "../../src/azure/azure-context.js";
import { AZURE_PUBLIC_CLOUD } from "../../src/azure/cloud.js";
import type { AzureCredentialSettings } from "../../src/azure/credential-config.js";
import { seed } from "../../src/sandbox/index.js";
import { buildTestApp, REDIS_URL, testConfig } from "../helpers/app.js";
import { sandboxRequests } from "../helpers/sandbox-admin.js";
import { sandboxHttpClient, startTestSandbox } from "../helpers/sandbox.js";
import { startServerProcess } from "../helpers/server-process.js";

/**
 * ManagedIdentityCredential as App Service and Container Apps run it: IDENTITY_ENDPOINT and IDENTITY_HEADER
 * name the sandbox's managed identity endpoint, and the real @azure/identity (MSAL's AppService source)
 * asks it for tokens over HTTP. MSAL picks its managed identity source once per process, so this file sets
 * the variables before any credential exists, and every test here shares one sandbox.
 */

const sandbox = await startTestSandbox(t, { managedIdentityEndpoint: true });
const endpoint = sandbox.managedIdentity!;
process.env.IDENTITY_ENDPOINT = endpoint.url;
process.env.IDENTITY_HEADER = endpoint.header;
t.teardown(() => {
  delete process.env.IDENTITY_ENDPOINT;
  delete process.env.IDENTITY_HEADER;
});

const ARM_SCOPE = "https://management.azure.com/.default";

function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString("utf8")) as Record<string, unknown>;
}

function contextFor(settings: AzureCredentialSettings, logged: Array<{ obj: object; message: string }> = []) {
  return createAzureContext(AZURE_PUBLIC_CLOUD, settings, { httpClient: sandboxHttpClient(sandbox), logger: { info: (obj, message) => logged.push({ obj, message }) } });
}

async function readiness(t: Test, settings: AzureCredentialSettings) {
  const context = contextFor(settings);
  const app = await buildTestApp(t, testConfig(t, { CMK_MODE: "azure" }), createAzureAdapters(context, { pollIntervalMs: 100 }));
  const response = await app.inject({ method: "GET", url: "/readyz" });
  return { context, response, body: response.json() as { status: string; checks: Record<string, string> } };
}

t.test("system-assigned: the endpoint's token is the host's own principal; readiness names ManagedIdentityCredential", async (t) => {
  const { context, response, body } = await readiness(t, { kind: "managed-identity", clientId: undefined });
  t.equal(response.statusCode, 200, response.body);
  t.same(body.checks, { redis: "ok", azureToken: "ok", azureCredential: "ManagedIdentityCredential" });
  const token = await context.credential.getToken(ARM_SCOPE);
  const claims = claimsOf(token!.token);
  t.equal(claims.oid, seed.SERVICE_APP.objectId, "the system-assigned identity");
  t.equal(claims.aud, "https://management.azure.com");
  // The token is good for ARM as that principal: the seed's role assignments apply.
  const adapters = createAzureAdapters(context, { pollIntervalMs: 100 });
  const service = await adapters.fhirServices.get({ subscriptionId: seed.SUBSCRIPTION_ID, resourceGroup: seed.RESOURCE_GROUP, workspace: seed.WORKSPACE, fhirService: seed.FHIR_SYS, id: seed.fhirServiceId(seed.FHIR_SYS) });
  t.equal(service?.name, `${seed.WORKSPACE}/${seed.FHIR_SYS}`);
  const calls = (await sandboxRequests(sandbox)).filter((entry) => entry.host === "managed-identity");
  t.ok(calls.length >= 1 && calls.every((entry) => entry.method === "GET" && entry.path === "/msi/token" && entry.status === 200), "GET /msi/token, answered 200");
});

t.test("user-assigned: client_id picks the identity; the token carries its principal", async (t) => {
  const { context, response, body } = await readiness(t, { kind: "managed-identity", clientId: seed.UAMI_SANDBOX_CLIENT_ID });
  t.equal(response.statusCode, 200, response.body);
  t.equal(body.checks.azureCredential, "ManagedIdentityCredential");
  const claims = claimsOf((await context.credential.getToken(ARM_SCOPE))!.token);
  t.equal(claims.oid, seed.UAMI_SANDBOX_PRINCIPAL_ID);
  t.equal(claims.appid, seed.UAMI_SANDBOX_CLIENT_ID);
});

t.test("a client id of no identity on the host: the endpoint's error in readiness, 503, no secret in the body", async (t) => {
  const { response, body } = await readiness(t, { kind: "managed-identity", clientId: "99999999-9999-4999-8999-999999999999" });
  t.equal(response.statusCode, 503);
  t.equal(body.checks.azureToken, "unavailable");
  t.equal(body.checks.azureCredential, "ManagedIdentityCredential", "the credential that was tried");
  t.match(body.checks.azureTokenError, /Unable to load the proper Managed Identity/, "the endpoint's own words");
  t.notOk(response.body.includes(endpoint.header), "IDENTITY_HEADER is not in the body");
  t.notMatch(response.body, /eyJ[\w-]+\.[\w-]+\./, "no token in the body");
});

t.test("the default chain: environment and workload identity are not configured, so managed identity answers; the log says so once", async (t) => {
  const logged: Array<{ obj: object; message: string }> = [];
  const context = contextFor({ kind: "default", managedIdentityClientId: undefined, workload: undefined }, logged);
  t.match(logged, [{ message: "Azure credential configured (CMK_AZURE_CREDENTIAL)", obj: { credential: /^DefaultAzureCredential chain \(managed identity: system-assigned\)$/ } }]);
  t.ok(await context.credential.getToken(ARM_SCOPE));
  t.ok(await context.credential.getToken("https://vault.azure.net/.default"));
  t.same(context.credentialStatus?.(), { configured: "DefaultAzureCredential", answered: "ManagedIdentityCredential", lastError: undefined });
  t.same(
    logged.filter((entry) => entry.message === "first Azure token"),
    [{ obj: { credential: "ManagedIdentityCredential" }, message: "first Azure token" }],
    "logged at the first token only",
  );
  t.notMatch(JSON.stringify(logged), /eyJ|IDENTITY_HEADER|[0-9a-f]{32}/, "no token and no identity header in the log");
});

t.test("the default chain: EnvironmentCredential comes first when its variables are set", async (t) => {
  // EnvironmentCredential reads process.env when it is made: the seed's service app and its secret.
  const variables = { AZURE_TENANT_ID: seed.TENANT_ID, AZURE_CLIENT_ID: seed.SERVICE_APP.clientId, AZURE_CLIENT_SECRET: seed.SERVICE_APP.clientSecret };
  Object.assign(process.env, variables);
  const logged: Array<{ obj: object; message: string }> = [];
  let context;
  try {
    context = contextFor({ kind: "default", managedIdentityClientId: undefined, workload: undefined }, logged);
  } finally {
    for (const name of Object.keys(variables)) delete process.env[name];
  }
  const claims = claimsOf((await context.credential.getToken(ARM_SCOPE))!.token);
  t.equal(claims.appid, seed.SERVICE_APP.clientId);
  t.equal(context.credentialStatus?.().answered, "EnvironmentCredential");
  t.notMatch(JSON.stringify(logged), new RegExp(seed.SERVICE_APP.clientSecret), "the secret is not logged");
});

t.test("npm start in azure mode on App Service / Container Apps: the log names the credential, /readyz the one that answered", async (t) => {
  const server = startServerProcess({
    CMK_MODE: "azure",
    CMK_ROLE: "api",
    CMK_AZURE_CREDENTIAL: "managed-identity",
    CMK_MANAGED_IDENTITY: "user-assigned",
    AZURE_CLIENT_ID: seed.UAMI_SANDBOX_CLIENT_ID,
    IDENTITY_ENDPOINT: endpoint.url,
    IDENTITY_HEADER: endpoint.header,
    REDIS_URL: REDIS_URL,
    CMK_QUEUE_PREFIX: `credential-test-${process.pid}`,
    HOST: "127.0.0.1",
    PORT: "0",
    LOG_LEVEL: "info",
  });
  t.teardown(() => server.stop());
  const [, base] = await server.waitFor(/listening on (http:\/\/\S+)/);
  const ready = await fetch(`${base}/readyz`);
  t.equal(ready.status, 200);
  t.same(((await ready.json()) as { checks: Record<string, string> }).checks, { redis: "ok", azureToken: "ok", azureCredential: "ManagedIdentityCredential" });
  await server.waitFor(/first Azure token/);
  const lines = server
    .output()
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as { msg: string; credential?: string });
  t.match(
    lines.filter((line) => /Azure (credential|token)/.test(line.msg)),
    [
      { msg: "Azure credential configured (CMK_AZURE_CREDENTIAL)", credential: `ManagedIdentityCredential (user-assigned, client id ${seed.UAMI_SANDBOX_CLIENT_ID})` },
      { msg: "first Azure token", credential: "ManagedIdentityCredential" },
    ],
  );
  t.notOk(server.output().includes(endpoint.header), "IDENTITY_HEADER is never logged");
  t.notMatch(server.output(), /eyJ[\w-]+\.[\w-]+\./, "no token is logged");
});
