import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t, { type Test } from "tap";
import { azureCredentialSettings, describeCredentialSettings, federatedTokenFileProblem } from "../../src/azure/credential-config.js";
import { ConfigError, loadConfig } from "../../src/config.js";

/** The start-up checks of the azure-mode credential: one ConfigError line naming the variable and the fix. */

const CLIENT_ID = "b0000000-0000-4000-8000-0000000000c1";
const TENANT_ID = "11111111-1111-1111-1111-111111111111";

async function files(t: Test): Promise<{ token: string; empty: string; missing: string; directory: string }> {
  const directory = await mkdtemp(join(tmpdir(), "cmk-credential-"));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const token = join(directory, "azure-identity-token");
  const empty = join(directory, "empty-token");
  await writeFile(token, "eyJhbGciOiJSUzI1NiJ9.e30.c2ln\n");
  await writeFile(empty, "\n");
  return { token, empty, missing: join(directory, "missing"), directory };
}

/** The ConfigError loadConfig throws for `env`, as the one line server.ts prints. */
function errorOf(env: Record<string, string>): string {
  try {
    loadConfig({ CMK_MODE: "azure", ...env });
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  return "no error";
}

t.test("user-assigned managed identity without AZURE_CLIENT_ID: one line with the command that reads it", async (t) => {
  const message = errorOf({ CMK_AZURE_CREDENTIAL: "managed-identity", CMK_MANAGED_IDENTITY: "user-assigned" });
  t.equal(message, "AZURE_CLIENT_ID: must be the client id of the user-assigned identity (CMK_MANAGED_IDENTITY=user-assigned): az identity show -g <resource group> -n <identity> --query clientId -o tsv");
  t.notMatch(message, /\n/);
  t.equal(errorOf({ CMK_MANAGED_IDENTITY: "user-assigned" }), message, "the same with the default chain");
});

t.test("managed-identity needs CMK_MANAGED_IDENTITY: no guess between system and user-assigned", async (t) => {
  t.equal(errorOf({ CMK_AZURE_CREDENTIAL: "managed-identity" }), "CMK_MANAGED_IDENTITY: must be set with CMK_AZURE_CREDENTIAL=managed-identity: system, or user-assigned (with AZURE_CLIENT_ID)");
  t.equal(errorOf({ CMK_AZURE_CREDENTIAL: "managed-identity", CMK_MANAGED_IDENTITY: "both" }), 'CMK_MANAGED_IDENTITY: must be one of system, user-assigned (got "both")');
  t.equal(errorOf({ CMK_AZURE_CREDENTIAL: "msi" }), 'CMK_AZURE_CREDENTIAL: must be one of default, managed-identity, workload-identity, environment (got "msi")');
  t.equal(errorOf({ CMK_AZURE_CREDENTIAL: "workload-identity", CMK_MANAGED_IDENTITY: "system" }), "CMK_MANAGED_IDENTITY: is only used with CMK_AZURE_CREDENTIAL=managed-identity or default (got CMK_AZURE_CREDENTIAL=workload-identity); unset it");
});

t.test("AZURE_CLIENT_ID must be a GUID, whatever the credential", async (t) => {
  for (const credential of ["default", "managed-identity", "workload-identity", "environment"]) {
    t.match(errorOf({ CMK_AZURE_CREDENTIAL: credential, CMK_MANAGED_IDENTITY: credential === "managed-identity" ? "user-assigned" : "", AZURE_CLIENT_ID: "id-cmk-service" }), /^AZURE_CLIENT_ID: must be a client \(application\) id, a GUID .*\(got "id-cmk-service"\); for a managed identity: az identity show/, credential);
  }
});

t.test("workload identity: each variable the AKS webhook injects, and the token file", async (t) => {
  const { token, empty, missing, directory } = await files(t);
  const complete = { CMK_AZURE_CREDENTIAL: "workload-identity", AZURE_CLIENT_ID: CLIENT_ID, AZURE_TENANT_ID: TENANT_ID, AZURE_FEDERATED_TOKEN_FILE: token };
  for (const variable of ["AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE"]) {
    const message = errorOf({ ...complete, [variable]: "" });
    t.equal(
      message,
      `${variable}: must be set with CMK_AZURE_CREDENTIAL=workload-identity: the AKS workload identity webhook injects it into pods labelled azure.workload.identity/use=true whose service account is annotated azure.workload.identity/client-id=<client id>`,
    );
  }
  t.match(errorOf({ ...complete, AZURE_FEDERATED_TOKEN_FILE: missing }), new RegExp(`^AZURE_FEDERATED_TOKEN_FILE: ${missing} does not exist; the AKS workload identity webhook`));
  t.match(errorOf({ ...complete, AZURE_FEDERATED_TOKEN_FILE: empty }), new RegExp(`^AZURE_FEDERATED_TOKEN_FILE: ${empty} is empty; `));
  t.match(errorOf({ ...complete, AZURE_FEDERATED_TOKEN_FILE: directory }), /is not a file; /);
  t.same(loadConfig({ CMK_MODE: "azure", ...complete }).azureCredential, { kind: "workload-identity", tenantId: TENANT_ID, clientId: CLIENT_ID, tokenFilePath: token });
  // The default chain tries workload identity when the file is named; a named file that is missing stops the start too.
  t.match(errorOf({ AZURE_CLIENT_ID: CLIENT_ID, AZURE_TENANT_ID: TENANT_ID, AZURE_FEDERATED_TOKEN_FILE: missing }), /^AZURE_FEDERATED_TOKEN_FILE: .* does not exist/);
  t.match(errorOf({ AZURE_CLIENT_ID: CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE: token }), /^AZURE_TENANT_ID: must be set for workload identity \(AZURE_FEDERATED_TOKEN_FILE is set\)/);
  t.equal(federatedTokenFileProblem(token), undefined);
});

t.test("environment: tenant, client, and a secret or a certificate file", async (t) => {
  const { token, missing } = await files(t);
  const complete = { CMK_AZURE_CREDENTIAL: "environment", AZURE_CLIENT_ID: CLIENT_ID, AZURE_TENANT_ID: TENANT_ID, AZURE_CLIENT_SECRET: "s3cret-value" };
  t.match(errorOf({ ...complete, AZURE_TENANT_ID: "" }), /^AZURE_TENANT_ID: must be set with CMK_AZURE_CREDENTIAL=environment: EnvironmentCredential signs in/);
  t.match(errorOf({ ...complete, AZURE_CLIENT_ID: "" }), /^AZURE_CLIENT_ID: must be set with CMK_AZURE_CREDENTIAL=environment/);
  const neither = errorOf({ ...complete, AZURE_CLIENT_SECRET: "" });
  t.match(neither, /^AZURE_CLIENT_SECRET: or AZURE_CLIENT_CERTIFICATE_PATH must be set with CMK_AZURE_CREDENTIAL=environment/);
  t.match(errorOf({ ...complete, AZURE_CLIENT_CERTIFICATE_PATH: token }), /^AZURE_CLIENT_CERTIFICATE_PATH: and AZURE_CLIENT_SECRET are both set/);
  t.match(errorOf({ ...complete, AZURE_CLIENT_SECRET: "", AZURE_CLIENT_CERTIFICATE_PATH: missing }), /^AZURE_CLIENT_CERTIFICATE_PATH: .* does not exist or cannot be read/);
  t.notMatch(errorOf({ ...complete, AZURE_CLIENT_ID: "not-a-guid" }), /s3cret-value/, "no message repeats the secret");
  t.same(loadConfig({ CMK_MODE: "azure", ...complete }).azureCredential, { kind: "environment" });
  t.same(loadConfig({ CMK_MODE: "azure", ...complete, AZURE_CLIENT_SECRET: "", AZURE_CLIENT_CERTIFICATE_PATH: token }).azureCredential, { kind: "environment" });
});

t.test("what each setting resolves to, and the start-up line that names it", async (t) => {
  const settings = (env: Record<string, string>) => loadConfig({ CMK_MODE: "azure", ...env }).azureCredential!;
  t.same(settings({}), { kind: "default", managedIdentityClientId: undefined, workload: undefined }, "default: the chain, system-assigned managed identity");
  t.same(settings({ AZURE_CLIENT_ID: CLIENT_ID }), { kind: "default", managedIdentityClientId: CLIENT_ID, workload: undefined }, "as DefaultAzureCredential: AZURE_CLIENT_ID names the managed identity");
  t.same(settings({ AZURE_CLIENT_ID: CLIENT_ID, CMK_MANAGED_IDENTITY: "system" }), { kind: "default", managedIdentityClientId: undefined, workload: undefined }, "system: AZURE_CLIENT_ID is left to EnvironmentCredential");
  t.same(settings({ CMK_AZURE_CREDENTIAL: "managed-identity", CMK_MANAGED_IDENTITY: "system" }), { kind: "managed-identity", clientId: undefined });
  const userAssigned = settings({ CMK_AZURE_CREDENTIAL: "managed-identity", CMK_MANAGED_IDENTITY: "user-assigned", AZURE_CLIENT_ID: ` ${CLIENT_ID} ` });
  t.same(userAssigned, { kind: "managed-identity", clientId: CLIENT_ID });
  t.equal(describeCredentialSettings(userAssigned), `ManagedIdentityCredential (user-assigned, client id ${CLIENT_ID})`);
  t.equal(describeCredentialSettings(settings({})), "DefaultAzureCredential chain (managed identity: system-assigned)");
  t.same(azureCredentialSettings({ credential: "default", managedIdentity: undefined }, {}), { settings: { kind: "default", managedIdentityClientId: undefined, workload: undefined } }, "the plain function, without loadConfig");
});

t.test("sandbox mode: the credential variables are refused, the SDK's AZURE_* ignored", async (t) => {
  for (const variable of ["CMK_AZURE_CREDENTIAL", "CMK_MANAGED_IDENTITY"]) {
    const value = variable === "CMK_AZURE_CREDENTIAL" ? "managed-identity" : "system";
    t.throws(() => loadConfig({ [variable]: value }), { variable, message: `${variable}: is only used with CMK_MODE=azure; in sandbox mode the service signs in as the seed's cmk-service app` });
  }
  const config = loadConfig({ AZURE_CLIENT_ID: "not-a-guid", AZURE_FEDERATED_TOKEN_FILE: "/nowhere" });
  t.equal(config.azureCredential, undefined, "a developer's shell may hold AZURE_* for other tools");
});
