import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t, { type Test } from "tap";
import { createAzureAdapters } from "../../src/azure/adapters.js";
import { createAzureContext } from "../../src/azure/azure-context.js";
import { AZURE_PUBLIC_CLOUD } from "../../src/azure/cloud.js";
import { azureCredentialSettings, type AzureCredentialSettings } from "../../src/azure/credential-config.js";
import { seed } from "../../src/sandbox/index.js";
import { buildTestApp, testConfig } from "../helpers/app.js";
import { sandboxHttpClient, sandboxRequest, startTestSandbox } from "../helpers/sandbox.js";

/**
 * WorkloadIdentityCredential as AKS runs it: the pod's projected service account token (minted by the
 * sandbox, which plays the cluster's OIDC issuer) is exchanged at the token endpoint as a client assertion,
 * and the sandbox accepts it when a federated identity credential of the app or identity matches.
 */

const sandbox = await startTestSandbox(t);
const ARM_SCOPE = "https://management.azure.com/.default";

function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString("utf8")) as Record<string, unknown>;
}

/** The token file the AKS webhook mounts, holding a service account token for `subject`. */
async function tokenFile(t: Test, subject = seed.WORKLOAD_SUBJECT): Promise<string> {
  const response = await sandboxRequest(sandbox, { method: "POST", path: "/_sandbox/service-account-tokens", body: { subject } });
  t.equal(response.status, 200, "POST /_sandbox/service-account-tokens");
  const directory = await mkdtemp(join(tmpdir(), "cmk-workload-"));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const file = join(directory, "azure-identity-token");
  await writeFile(file, (response.json as { token: string }).token);
  return file;
}

/** The settings the service reads from the variables the webhook injects. */
function settingsFrom(env: Record<string, string>, credential: "workload-identity" | "default"): AzureCredentialSettings {
  const result = azureCredentialSettings({ credential, managedIdentity: undefined }, env);
  if ("problem" in result) throw new Error(`${result.problem.variable}: ${result.problem.message}`);
  return result.settings;
}

async function readiness(t: Test, settings: AzureCredentialSettings) {
  const context = createAzureContext(AZURE_PUBLIC_CLOUD, settings, { httpClient: sandboxHttpClient(sandbox) });
  const app = await buildTestApp(t, testConfig(t, { CMK_MODE: "azure" }), createAzureAdapters(context, { pollIntervalMs: 100 }));
  const response = await app.inject({ method: "GET", url: "/readyz" });
  return { context, response, checks: (response.json() as { checks: Record<string, string> }).checks };
}

t.test("the service app's federated credential: readiness names WorkloadIdentityCredential; the token is the app's", async (t) => {
  const env = { AZURE_CLIENT_ID: seed.SERVICE_APP.clientId, AZURE_TENANT_ID: seed.TENANT_ID, AZURE_FEDERATED_TOKEN_FILE: await tokenFile(t) };
  const { context, response, checks } = await readiness(t, settingsFrom(env, "workload-identity"));
  t.equal(response.statusCode, 200, response.body);
  t.same(checks, { redis: "ok", azureToken: "ok", azureCredential: "WorkloadIdentityCredential" });
  const claims = claimsOf((await context.credential.getToken(ARM_SCOPE))!.token);
  t.equal(claims.oid, seed.SERVICE_APP.objectId);
  // A real ARM read with it: the seed's role assignments of the service app apply.
  const adapters = createAzureAdapters(context, { pollIntervalMs: 100 });
  const service = await adapters.fhirServices.get({ subscriptionId: seed.SUBSCRIPTION_ID, resourceGroup: seed.RESOURCE_GROUP, workspace: seed.WORKSPACE, fhirService: seed.FHIR_SYS, id: seed.fhirServiceId(seed.FHIR_SYS) });
  t.equal(service?.name, `${seed.WORKSPACE}/${seed.FHIR_SYS}`);
});

t.test("a user-assigned identity's federated credential: its principal", async (t) => {
  const env = { AZURE_CLIENT_ID: seed.UAMI_SANDBOX_CLIENT_ID, AZURE_TENANT_ID: seed.TENANT_ID, AZURE_FEDERATED_TOKEN_FILE: await tokenFile(t) };
  const { context, response } = await readiness(t, settingsFrom(env, "workload-identity"));
  t.equal(response.statusCode, 200, response.body);
  t.equal(claimsOf((await context.credential.getToken(ARM_SCOPE))!.token).oid, seed.UAMI_SANDBOX_PRINCIPAL_ID);
});

t.test("a service account no federated credential trusts: Entra's AADSTS70021 in readiness, 503", async (t) => {
  const env = { AZURE_CLIENT_ID: seed.SERVICE_APP.clientId, AZURE_TENANT_ID: seed.TENANT_ID, AZURE_FEDERATED_TOKEN_FILE: await tokenFile(t, "system:serviceaccount:default:default") };
  const { response, checks } = await readiness(t, settingsFrom(env, "workload-identity"));
  t.equal(response.statusCode, 503);
  t.equal(checks.azureToken, "unavailable");
  t.equal(checks.azureCredential, "WorkloadIdentityCredential");
  t.match(checks.azureTokenError, /AADSTS70021: No matching federated identity record found for presented assertion\. Assertion Issuer: '[^']+'\. Assertion Subject: 'system:serviceaccount:default:default'/);
  t.notMatch(response.body, /eyJ[\w-]+\.[\w-]+\./, "the service account token is not in the body");
});

t.test("the default chain on AKS: WorkloadIdentityCredential answers before managed identity is tried", async (t) => {
  const env = { AZURE_CLIENT_ID: seed.SERVICE_APP.clientId, AZURE_TENANT_ID: seed.TENANT_ID, AZURE_FEDERATED_TOKEN_FILE: await tokenFile(t) };
  const settings = settingsFrom(env, "default");
  t.match(settings, { kind: "default", workload: { clientId: seed.SERVICE_APP.clientId } });
  const { response, checks } = await readiness(t, settings);
  t.equal(response.statusCode, 200, response.body);
  t.equal(checks.azureCredential, "WorkloadIdentityCredential");
});
