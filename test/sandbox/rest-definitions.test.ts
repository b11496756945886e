import { KeyVaultManagementClient } from "@azure/arm-keyvault";
import { ManagedServiceIdentityClient } from "@azure/arm-msi";
import type { HttpClient } from "@azure/core-rest-pipeline";
import { generateKeyPairSync, randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import t, { type Test } from "tap";
import { GENERIC_TYPES } from "../../src/sandbox/arm/generic-resources.js";
import { Router, type RouteDescription } from "../../src/sandbox/http/router.js";
import { seed } from "../../src/sandbox/index.js";
import { armToken, listAll, parseJsonText, sandboxCredential, sandboxHttpClient, sandboxRequest, startTestSandbox, type RawRequest, type RawResponse } from "../helpers/sandbox.js";
import { advanceClock } from "../helpers/sandbox-admin.js";
import { checkAgainst, shapeOfExample, SwaggerSchemas } from "../helpers/swagger-schema.js";

/**
 * Every emulated response that Microsoft publishes a REST definition for is checked against it:
 * fields, types and enum values, per operation and status (issue 3, "Done when"), the declared
 * headers, and that the request's path is one of the operation's. The definitions are the copies in
 * test/fixtures/azure-rest (SOURCES.md there), read at test time. The last test checks that every
 * route the emulator serves for ARM and the Key Vault / Managed HSM data plane had such a check.
 */

const CONFORMANCE = new URL("../fixtures/azure-rest/", import.meta.url);
const HEALTHCARE = "rest-api-specs-healthcareapis/healthcare-apis.json";
const KEYS = "rest-api-specs-keyvault/keys.json";
const RESOURCES = "rest-api-specs-resources/resources.json";
const SUBSCRIPTIONS = "rest-api-specs-resources/subscriptions.json";
const ROLE_DEFINITIONS = "rest-api-specs-authorization/authorization-RoleDefinitionsCalls.json";
const DEPLOYMENTS = "rest-api-specs-resources/deployments.json";
const KEYVAULT_ARM = "rest-api-specs-keyvault/resource-manager/openapi.json";
const MSI = "rest-api-specs-msi/ManagedIdentity.json";
const HSM_RBAC = "rest-api-specs-keyvault/rbac.json";
const COMMON_V5 = "rest-api-specs-common-types/v5/types.json";
const HSM_RECORDING = "azure-sdk-for-js-keyvault-admin/recording_traces_through_the_various_operations.js";

const specs = await SwaggerSchemas.load(CONFORMANCE);
// One emulator for the file, back to the seed before each test. Operations take a minute of the
// emulator's clock, which a test moves forward when it wants one to end.
const LRO_SECONDS = 60;
const sandbox = await startTestSandbox(t, { lroMs: LRO_SECONDS * 1000 });
t.beforeEach(async () => {
  await sandboxRequest(sandbox, { method: "POST", path: "/_sandbox/reset" });
});

// --- Where real traffic differs from the definitions (test/fixtures/azure-rest/SUMMARY.md), the definitions are widened here, and only here.

// SUMMARY 1: a FHIR service's `name` is the composite "{workspace}/{fhirservice}", not the leaf name
// ResourceCore's pattern describes.
const RESOURCE_NAME = "[a-z0-9][a-z0-9-]{1,21}[a-z0-9]";
specs.amend(HEALTHCARE, "/definitions/FhirService/properties/name", { type: "string", pattern: `^${RESOURCE_NAME}/${RESOURCE_NAME}$` });
// SUMMARY 1: the service fills in `accessPolicies: []` whether sent or not; 2023-11-01 no longer defines it.
specs.amend(HEALTHCARE, "/definitions/FhirServiceProperties/properties/accessPolicies", { type: "array", maxItems: 0 });
// A Failed operation needs `error{code,message}` (ARM RPC async-api-reference; @azure/core-lro reads it), which
// OperationResultsDescription lacks; SUMMARY 1 marks the real Failed body unverified. Typed as the RP's own
// error details; the test below allows it on Failed only.
specs.amend(HEALTHCARE, "/definitions/OperationResultsDescription/properties/error", { $ref: "#/definitions/ErrorDetailsInternal" });
// SUMMARY 2: Key Vault list responses carry `"nextLink": null` explicitly.
for (const list of ["KeyListResult", "DeletedKeyListResult"]) specs.amend(KEYS, `/definitions/${list}/properties/nextLink/x-nullable`, true);
// keys.json types `key_ops` items as plain strings; its own JsonWebKeyOperation enum lists the values.
specs.amend(KEYS, "/definitions/JsonWebKey/properties/key_ops/items", { $ref: "#/definitions/JsonWebKeyOperation" });

// Built-in role definitions have no creator: `createdBy` and `updatedBy` are null (as `az role definition list` shows them).
for (const member of ["createdBy", "updatedBy"]) specs.amend(ROLE_DEFINITIONS, `/definitions/RoleDefinitionProperties/properties/${member}/x-nullable`, true);

// Managed HSM local RBAC. rbac.json 7.5's DataAction enum is narrower than a real HSM's built-in roles: the
// recorded role definitions (test/fixtures/azure-rest/azure-sdk-for-js-keyvault-admin, 2022-11-09) also hold
// keys/rotate/action, keys/derive/action and settings/read|write/action. The enum is widened by every data
// action that recording shows (it is `modelAsString`, so SDKs accept them too).
const recordedDataActions = [...(await readFile(new URL(HSM_RECORDING, CONFORMANCE), "utf8")).matchAll(/"(Microsoft\.KeyVault\/managedHsm\/[^"]+)"/g)].map((match) => match[1]!);
const publishedDataActions = specs.document(HSM_RBAC).definitions as { DataAction: { enum: string[] } };
specs.amend(HSM_RBAC, "/definitions/DataAction/enum", [...new Set([...publishedDataActions.DataAction.enum, ...recordedDataActions])]);
// RoleScope lists `/` and `/keys`; a key's own scope `/keys/{name}` is the third that Managed HSM documents
// ("Managed HSM local RBAC supports two scopes, HSM-wide (/ or /keys) and per key (/keys/<keyname>)",
// MicrosoftDocs azure-docs articles/key-vault/managed-hsm/role-management.md; azure-contracts.md 5.2) and the
// FHIR service's key-level grants rely on. The recording only shows `/`, so this is the documented form.
specs.amend(HSM_RBAC, "/definitions/RoleScope", { type: "string", pattern: "^/(?:keys(?:/[0-9A-Za-z-]{1,127})?)?$" });

// The definitions mark almost nothing required, yet real responses always carry these fields (SUMMARY 1
// and 2, and every saved recording): the emulator must send them too.
const ALWAYS_SENT: [file: string, definition: string, fields: string[]][] = [
  [HEALTHCARE, "/definitions/FhirService", ["id", "name", "type", "etag", "location", "kind", "properties"]],
  [
    HEALTHCARE,
    "/definitions/FhirServiceProperties",
    ["provisioningState", "accessPolicies", "acrConfiguration", "resourceVersionPolicyConfiguration", "eventState", "privateEndpointConnections", "publicNetworkAccess"],
  ],
  [HEALTHCARE, "/definitions/Workspace", ["id", "name", "type", "etag", "location", "properties"]],
  [HEALTHCARE, "/definitions/Workspace/properties/properties", ["provisioningState", "privateEndpointConnections", "publicNetworkAccess"]],
  [HEALTHCARE, "/definitions/OperationResultsDescription", ["id", "name", "status", "startTime"]],
  [HEALTHCARE, "/definitions/ErrorDetails", ["error"]],
  [HEALTHCARE, "/definitions/ErrorDetailsInternal", ["code", "message"]],
  [KEYS, "/definitions/KeyBundle", ["key", "attributes"]],
  [KEYS, "/definitions/DeletedKeyBundle", ["key", "attributes", "recoveryId", "deletedDate", "scheduledPurgeDate"]],
  [KEYS, "/definitions/JsonWebKey", ["kid", "kty", "key_ops"]],
  [KEYS, "/definitions/KeyAttributes", ["enabled", "created", "updated", "recoveryLevel", "recoverableDays"]],
  [KEYS, "/definitions/KeyItem", ["kid", "attributes"]],
  [KEYS, "/definitions/DeletedKeyItem", ["kid", "attributes", "recoveryId", "deletedDate", "scheduledPurgeDate"]],
  [KEYS, "/definitions/KeyListResult", ["value", "nextLink"]],
  [KEYS, "/definitions/DeletedKeyListResult", ["value", "nextLink"]],
  [KEYS, "/definitions/KeyOperationResult", ["kid", "value"]],
  [KEYS, "/definitions/KeyRotationPolicy", ["id", "lifetimeActions", "attributes"]],
  [KEYS, "/definitions/KeyVaultError", ["error"]],
  // Error is also the `innererror`, which real traffic sends as `{"code":"ForbiddenByFirewall"}` alone.
  [KEYS, "/definitions/Error", ["code"]],
  [SUBSCRIPTIONS, "/definitions/Subscription", ["id", "subscriptionId", "tenantId", "displayName", "state", "subscriptionPolicies", "authorizationSource", "managedByTenants"]],
  [SUBSCRIPTIONS, "/definitions/TenantIdDescription", ["id", "tenantId", "tenantCategory"]],
  [RESOURCES, "/definitions/ResourceGroup", ["id", "name", "type", "location", "properties"]],
  [RESOURCES, "/definitions/GenericResourceExpanded", ["id", "name", "type", "location"]],
  [RESOURCES, "/definitions/Provider", ["id", "namespace", "resourceTypes"]],
  [RESOURCES, "/definitions/ProviderResourceType", ["resourceType", "locations", "apiVersions"]],
  [ROLE_DEFINITIONS, "/definitions/RoleDefinition", ["id", "name", "type", "properties"]],
  [ROLE_DEFINITIONS, "/definitions/RoleDefinitionProperties", ["roleName", "type", "permissions", "assignableScopes"]],
  [DEPLOYMENTS, "/definitions/DeploymentExtended", ["id", "name", "type", "properties"]],
  [DEPLOYMENTS, "/definitions/DeploymentPropertiesExtended", ["provisioningState", "correlationId", "timestamp", "duration", "mode", "templateHash", "parameters", "providers", "dependencies"]],
  [DEPLOYMENTS, "/definitions/ErrorResponse", ["code", "message"]],
  // SUMMARY 3 (a vault GET of real traffic).
  [KEYVAULT_ARM, "/definitions/Vault", ["id", "name", "type", "location", "tags", "systemData", "properties"]],
  [
    KEYVAULT_ARM,
    "/definitions/VaultProperties",
    ["tenantId", "sku", "accessPolicies", "enabledForDeployment", "enableSoftDelete", "softDeleteRetentionInDays", "vaultUri", "provisioningState", "publicNetworkAccess"],
  ],
  [KEYVAULT_ARM, "/definitions/CloudError", ["error"]],
  [KEYVAULT_ARM, "/definitions/CloudErrorBody", ["code", "message"]],
  [KEYVAULT_ARM, "/definitions/ManagedHsmError", ["error"]],
  // SUMMARY 4 (an identity PUT and list of real traffic).
  [MSI, "/definitions/Identity", ["id", "name", "type", "location", "tags", "properties"]],
  [MSI, "/definitions/UserAssignedIdentityProperties", ["tenantId", "principalId", "clientId"]],
  [MSI, "/definitions/CloudError", ["error"]],
  [MSI, "/definitions/CloudErrorBody", ["code", "message"]],
  // The recorded Managed HSM traffic (HSM_RECORDING above): every assignment and definition has all of these.
  [HSM_RBAC, "/definitions/RoleAssignment", ["id", "name", "type", "properties"]],
  [HSM_RBAC, "/definitions/RoleAssignmentPropertiesWithScope", ["scope", "roleDefinitionId", "principalId"]],
  [HSM_RBAC, "/definitions/RoleAssignmentListResult", ["value"]],
  [HSM_RBAC, "/definitions/RoleDefinition", ["id", "name", "type", "properties"]],
  [HSM_RBAC, "/definitions/RoleDefinitionProperties", ["roleName", "description", "type", "permissions", "assignableScopes"]],
  [HSM_RBAC, "/definitions/Permission", ["actions", "notActions", "dataActions", "notDataActions"]],
  [HSM_RBAC, "/definitions/RoleDefinitionListResult", ["value"]],
  [HSM_RBAC, "/definitions/KeyVaultError", ["error"]],
  [HSM_RBAC, "/definitions/Error", ["code"]],
];
for (const [file, definition, fields] of ALWAYS_SENT) specs.amend(file, `${definition}/required`, fields);

/** A response and the request it answered (method, host name, path without the query). */
interface Exchange extends RawResponse {
  method: string;
  host: string;
  path: string;
}

/** Every exchange whose answer was checked against a definition, for the route coverage at the end. */
const checked: Exchange[] = [];

/** One raw HTTPS request to the emulator (for what no SDK client covers, or to send what an SDK would not). */
async function send(request: RawRequest & { method: string; host: string }): Promise<Exchange> {
  const response = await sandboxRequest(sandbox, request);
  return { ...response, method: request.method, host: request.host, path: request.path.split("?")[0] ?? "" };
}

/** An SDK `httpClient` (routing to the emulator) that keeps every exchange, so the SDK's own requests can be checked. */
function recordingClient(): { httpClient: HttpClient; exchanges: Exchange[]; last(method?: string): Exchange } {
  const inner = sandboxHttpClient(sandbox);
  const exchanges: Exchange[] = [];
  return {
    exchanges,
    last(method) {
      const found = exchanges.filter((exchange) => !method || exchange.method === method).at(-1);
      if (!found) throw new Error(`no ${method ?? ""} exchange recorded`);
      return found;
    },
    httpClient: {
      async sendRequest(request) {
        const response = await inner.sendRequest(request);
        const url = new URL(request.url);
        const text = response.bodyAsText ?? "";
        exchanges.push({ method: request.method, host: url.hostname, path: url.pathname, status: response.status, headers: response.headers.toJSON(), text, json: parseJsonText(text) });
        return response;
      },
    },
  };
}

/** What the SDK call threw (an error status is what some checks want). */
async function failure(call: Promise<unknown>): Promise<unknown> {
  try {
    await call;
  } catch (error) {
    return error;
  }
  throw new Error("the call succeeded");
}

/**
 * Asserts the status, that the request path is one of the operation's (unless `otherPath` says why
 * not), and that the body matches the definition of `operationId` for that status, and its headers
 * the declared ones.
 */
function conforms(t: Test, file: string, operationId: string, exchange: Exchange, status: number, label = "", otherPath?: string): void {
  const name = `${operationId} ${status}${label ? ` (${label})` : ""}`;
  t.equal(exchange.status, status, `${name}: status`);
  if (otherPath === undefined) {
    const route = specs.route(file, operationId);
    t.ok(exchange.method === route.method && route.matches(exchange.path), `${name}: ${exchange.method} ${exchange.path} is ${route.method} ${route.template}`);
  }
  const body = exchange.text === "" ? undefined : exchange.json;
  t.same(specs.check(file, operationId, status, body), [], `${name}: matches the definition`);
  t.same(specs.checkHeaders(file, operationId, status, exchange.headers), [], `${name}: declared headers`);
  if (body !== undefined) t.match(exchange.headers["content-type"], /^application\/json/, `${name}: JSON`);
  checked.push(exchange);
}

function armClient(authorization: string) {
  return (method: string, path: string, body?: unknown, apiVersion = "2023-11-01") =>
    send({
      method,
      path: path.includes("?") ? path : `${path}?api-version=${apiVersion}`,
      host: "management.azure.com",
      headers: { authorization },
      ...(body === undefined ? {} : { body }),
    });
}

/** Path and query of an absolute URL the emulator returned (e.g. Azure-AsyncOperation). */
function pathOf(url: unknown): string {
  const parsed = new URL(String(url));
  return parsed.pathname + parsed.search;
}

t.test("Microsoft.HealthcareApis responses match healthcare-apis.json (2023-11-01)", async (t) => {
  const arm = armClient(`Bearer ${await armToken(sandbox)}`);
  const check = (operationId: string, response: Exchange, status: number, label?: string) => conforms(t, HEALTHCARE, operationId, response, status, label);
  /** The operation's answer once it has ended: the emulator's clock moves past its duration. */
  const poll = async (asyncOperation: unknown) => {
    await advanceClock(sandbox, LRO_SECONDS);
    return arm("GET", pathOf(asyncOperation));
  };

  for (const name of [seed.FHIR_SYS, seed.FHIR_UAMI, seed.FHIR_NOROLE]) check("FhirServices_Get", await arm("GET", seed.fhirServiceId(name)), 200, name);
  check("FhirServices_ListByWorkspace", await arm("GET", `${seed.workspaceId()}/fhirservices`), 200);
  check("FhirServices_Get", await arm("GET", seed.fhirServiceId("fhir-none")), 404);

  const uamiId = seed.userAssignedIdentityId(seed.UAMI_SANDBOX);
  const created = await arm("PUT", seed.fhirServiceId("fhir-conform"), {
    location: "westus3",
    kind: "fhir-R4",
    tags: { purpose: "conformance" },
    identity: { type: "UserAssigned", userAssignedIdentities: { [uamiId]: {} } },
    properties: {
      authenticationConfiguration: { authority: `https://login.microsoftonline.com/${seed.TENANT_ID}`, audience: "https://wssandbox-fhir-conform.fhir.azurehealthcareapis.com", smartProxyEnabled: false },
      corsConfiguration: { origins: ["https://portal.example.com"], headers: ["*"], methods: ["GET"], maxAge: 600, allowCredentials: false },
      encryption: { customerManagedKeyEncryption: { keyEncryptionKeyUrl: seed.keyUrl(seed.KV_SANDBOX, seed.KEY_RSA_3072, seed.VERSION_1) } },
      // Not a 2023-11-01 property: it must not come back.
      legacySetting: true,
    },
  });
  // Read while the operation runs, before the (slow) first schema compilations.
  const running = await arm("GET", pathOf(created.headers["azure-asyncoperation"]));
  const conflict = await arm("PUT", seed.fhirServiceId("fhir-conform"), created.json);
  check("FhirServices_CreateOrUpdate", created, 201);
  check("OperationResults_Get", running, 200, "Running");
  t.equal((running.json as { status: string }).status, "Running");
  check("FhirServices_CreateOrUpdate", conflict, 409, "another operation runs");
  const succeeded = await poll(created.headers["azure-asyncoperation"]);
  check("OperationResults_Get", succeeded, 200, "Succeeded");
  t.match(succeeded.json, { status: "Succeeded" });
  t.notOk("error" in (succeeded.json as object), "no error unless Failed");
  check("FhirServices_Get", await arm("GET", seed.fhirServiceId("fhir-conform")), 200, "after create");

  const sys = (await arm("GET", seed.fhirServiceId(seed.FHIR_SYS))).json as Record<string, unknown>;
  const updated = await arm("PUT", seed.fhirServiceId(seed.FHIR_SYS), { ...sys, tags: { environment: "conformance" } });
  check("FhirServices_CreateOrUpdate", updated, 200);
  await poll(updated.headers["azure-asyncoperation"]);
  check("FhirServices_Update", await arm("PATCH", seed.fhirServiceId("fhir-conform"), { tags: { patched: "yes" } }), 200);

  const norole = (await arm("GET", seed.fhirServiceId(seed.FHIR_NOROLE))).json as { properties: Record<string, unknown> };
  norole.properties.encryption = { customerManagedKeyEncryption: { keyEncryptionKeyUrl: seed.keyUrl(seed.KV_SANDBOX, seed.KEY_RSA_2048, seed.VERSION_2) } };
  const failing = await arm("PUT", seed.fhirServiceId(seed.FHIR_NOROLE), norole);
  const failed = await poll(failing.headers["azure-asyncoperation"]);
  check("OperationResults_Get", failed, 200, "Failed");
  t.match(failed.json, { status: "Failed", error: { code: "KeyVaultAccessForbidden", message: String } });
  check("FhirServices_Get", await arm("GET", seed.fhirServiceId(seed.FHIR_NOROLE)), 200, "after a failed update");

  const deleted = await arm("DELETE", seed.fhirServiceId("fhir-conform"));
  check("FhirServices_Delete", deleted, 202);
  check("OperationResults_Get", await poll(deleted.headers["azure-asyncoperation"]), 200, "delete Succeeded");

  check("Workspaces_Get", await arm("GET", seed.workspaceId()), 200);
  check("Workspaces_ListByResourceGroup", await arm("GET", `${seed.resourceGroupId()}/providers/Microsoft.HealthcareApis/workspaces`), 200);
  check("Workspaces_CreateOrUpdate", await arm("PUT", seed.workspaceId("wsconform"), { location: "westus3", tags: { purpose: "conformance" } }), 201);
  check("Workspaces_CreateOrUpdate", await arm("PUT", seed.workspaceId("wsconform"), { location: "westus3", properties: { publicNetworkAccess: "Disabled" } }), 200);
  check("Workspaces_Update", await arm("PATCH", seed.workspaceId("wsconform"), { tags: { patched: "yes" } }), 200);
  const workspaceDeleted = await arm("DELETE", seed.workspaceId("wsconform"));
  check("Workspaces_Delete", workspaceDeleted, 202);
  check("OperationResults_Get", await poll(workspaceDeleted.headers["azure-asyncoperation"]), 200, "workspace delete Succeeded");
  check("Workspaces_Get", await arm("GET", seed.workspaceId("wsconform")), 404);
});

t.test("Key Vault keys data plane responses match keys.json (7.5)", async (t) => {
  const token = async (app: seed.SeedApp = seed.SERVICE_APP) => `Bearer ${(await sandboxCredential(sandbox, app).getToken("https://vault.azure.net/.default")).token}`;
  const vaultClient = (vault: string, authorization: string | undefined) => (method: string, path: string, body?: unknown) =>
    send({
      method,
      path: `${path}?api-version=7.5`,
      host: `${vault}.vault.azure.net`,
      headers: authorization ? { authorization } : {},
      ...(body === undefined ? {} : { body }),
    });
  const kv = vaultClient(seed.KV_SANDBOX, await token());
  const check = (operationId: string, response: Exchange, status: number, label?: string, otherPath?: string) => conforms(t, KEYS, operationId, response, status, label, otherPath);

  check("GetKey", await kv("GET", `/keys/${seed.KEY_RSA_2048}/`), 200, "latest");
  check("GetKey", await kv("GET", `/keys/${seed.KEY_RSA_2048}/${seed.VERSION_1}`), 200, "version");
  for (const key of [seed.KEY_EC, seed.KEY_EXPIRED, seed.KEY_NOWRAP, seed.KEY_DISABLED]) check("GetKey", await kv("GET", `/keys/${key}/`), 200, key);
  check("GetKeyVersions", await kv("GET", `/keys/${seed.KEY_RSA_2048}/versions`), 200);
  check("GetKeys", await kv("GET", "/keys"), 200);

  const rsa = await kv("POST", "/keys/conform-rsa/create", { kty: "RSA", key_size: 2048, attributes: { enabled: true }, tags: { purpose: "conformance" } });
  check("CreateKey", rsa, 200, "RSA");
  check("CreateKey", await kv("POST", "/keys/conform-ec/create", { kty: "EC", crv: "P-384" }), 200, "EC");
  check("CreateKey", await kv("POST", "/keys/conform-hsm/create", { kty: "RSA-HSM", key_size: 2048, key_ops: ["wrapKey", "unwrapKey"] }), 200, "RSA-HSM");
  check("GetKeyRotationPolicy", await kv("GET", "/keys/conform-rsa/rotationpolicy"), 200, "default policy");
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const imported = { ...privateKey.export({ format: "jwk" }), key_ops: ["wrapKey", "unwrapKey"] };
  check("ImportKey", await kv("PUT", "/keys/conform-imported", { key: imported, attributes: { enabled: true }, tags: { purpose: "conformance" } }), 200);
  const policy = { lifetimeActions: [{ trigger: { timeAfterCreate: "P15D" }, action: { type: "Rotate" } }, { trigger: { timeBeforeExpiry: "P7D" }, action: { type: "Notify" } }], attributes: { expiryTime: "P30D" } };
  check("UpdateKeyRotationPolicy", await kv("PUT", "/keys/conform-rsa/rotationpolicy", policy), 200);
  check("GetKeyRotationPolicy", await kv("GET", "/keys/conform-rsa/rotationpolicy"), 200);
  const rotated = await kv("POST", "/keys/conform-rsa/rotate");
  check("RotateKey", rotated, 200);
  const version = (rotated.json as { key: { kid: string } }).key.kid.split("/").pop() ?? "";
  check("UpdateKey", await kv("PATCH", `/keys/conform-rsa/${version}`, { attributes: { enabled: false, exp: 1_900_000_000 }, tags: { state: "off" } }), 200);

  const kid = seed.keyUrl(seed.KV_SANDBOX, seed.KEY_RSA_2048, seed.VERSION_1);
  const wrapped = await kv("POST", `/keys/${seed.KEY_RSA_2048}/${seed.VERSION_1}/wrapkey`, { alg: "RSA-OAEP-256", value: Buffer.alloc(32, 7).toString("base64url") });
  check("wrapKey", wrapped, 200);
  t.equal((wrapped.json as { kid: string }).kid, kid);
  check("unwrapKey", await kv("POST", `/keys/${seed.KEY_RSA_2048}/${seed.VERSION_1}/unwrapkey`, { alg: "RSA-OAEP-256", value: (wrapped.json as { value: string }).value }), 200);

  const plain = Buffer.from("conformance").toString("base64url");
  const encrypted = await kv("POST", `/keys/${seed.KEY_RSA_2048}/${seed.VERSION_1}/encrypt`, { alg: "RSA-OAEP-256", value: plain });
  check("encrypt", encrypted, 200);
  check("decrypt", await kv("POST", `/keys/${seed.KEY_RSA_2048}/${seed.VERSION_1}/decrypt`, { alg: "RSA-OAEP-256", value: (encrypted.json as { value: string }).value }), 200);
  const digest = Buffer.alloc(32, 3).toString("base64url");
  const signed = await kv("POST", `/keys/${seed.KEY_RSA_2048}/${seed.VERSION_1}/sign`, { alg: "PS256", value: digest });
  check("sign", signed, 200);
  check("verify", await kv("POST", `/keys/${seed.KEY_RSA_2048}/${seed.VERSION_1}/verify`, { alg: "PS256", digest, value: (signed.json as { value: string }).value }), 200);
  check("encrypt", await kv("POST", `/keys/${seed.KEY_NOWRAP}/${seed.VERSION_1}/encrypt`, { alg: "RSA-OAEP", value: plain }), 400, "not in key_ops");

  // The latest version: an empty version segment, as the SDK sends it.
  const latest = `/keys/${seed.KEY_RSA_3072}/`;
  const latestWrapped = await kv("POST", `${latest}/wrapkey`, { alg: "RSA-OAEP", value: Buffer.alloc(32, 9).toString("base64url") });
  check("wrapKey", latestWrapped, 200, "latest version");
  check("unwrapKey", await kv("POST", `${latest}/unwrapkey`, { alg: "RSA-OAEP", value: (latestWrapped.json as { value: string }).value }), 200, "latest version");
  const latestEncrypted = await kv("POST", `${latest}/encrypt`, { alg: "RSA-OAEP-256", value: plain });
  check("encrypt", latestEncrypted, 200, "latest version");
  check("decrypt", await kv("POST", `${latest}/decrypt`, { alg: "RSA-OAEP-256", value: (latestEncrypted.json as { value: string }).value }), 200, "latest version");
  const latestSigned = await kv("POST", `${latest}/sign`, { alg: "RS256", value: digest });
  check("sign", latestSigned, 200, "latest version");
  check("verify", await kv("POST", `${latest}/verify`, { alg: "RS256", digest, value: (latestSigned.json as { value: string }).value }), 200, "latest version");
  check("UpdateKey", await kv("PATCH", latest, { tags: { state: "latest" } }), 200, "latest version");
  // Key Vault also answers the key's URL without the trailing slash (no version segment at all).
  const noVersionSegment = "the key's URL without a version segment, which Key Vault takes as the latest version";
  check("GetKey", await kv("GET", `/keys/${seed.KEY_RSA_3072}`), 200, "no version segment", noVersionSegment);
  check("UpdateKey", await kv("PATCH", `/keys/${seed.KEY_RSA_3072}`, { attributes: { enabled: true } }), 200, "no version segment", noVersionSegment);

  // A Managed HSM serves the same keys API (azure-contracts.md 3.1), behind its own challenge resource.
  const hsmToken = `Bearer ${(await sandboxCredential(sandbox).getToken("https://managedhsm.azure.net/.default")).token}`;
  const hsm = (method: string, path: string, body?: unknown) =>
    send({ method, path: `${path}?api-version=7.5`, host: `${seed.MANAGED_HSM}.managedhsm.azure.net`, headers: { authorization: hsmToken }, ...(body === undefined ? {} : { body }) });
  check("GetKey", await hsm("GET", `/keys/${seed.KEY_HSM_3072}/`), 200, "Managed HSM");
  check("GetKeys", await hsm("GET", "/keys"), 200, "Managed HSM");
  const hsmWrapped = await hsm("POST", `/keys/${seed.KEY_HSM_3072}/${seed.VERSION_1}/wrapkey`, { alg: "RSA-OAEP-256", value: Buffer.alloc(32, 5).toString("base64url") });
  check("wrapKey", hsmWrapped, 200, "Managed HSM");
  check("unwrapKey", await hsm("POST", `/keys/${seed.KEY_HSM_3072}/${seed.VERSION_1}/unwrapkey`, { alg: "RSA-OAEP-256", value: (hsmWrapped.json as { value: string }).value }), 200, "Managed HSM");

  check("DeleteKey", await kv("DELETE", "/keys/conform-rsa"), 200);
  check("GetDeletedKey", await kv("GET", "/deletedkeys/conform-rsa"), 200);
  check("GetDeletedKeys", await kv("GET", "/deletedkeys"), 200);
  check("RecoverDeletedKey", await kv("POST", "/deletedkeys/conform-rsa/recover"), 200);
  const nopurge = vaultClient(seed.KV_NOPURGE, await token());
  check("DeleteKey", await nopurge("DELETE", `/keys/${seed.KEY_RSA_2048}`), 200, "purgeable vault");
  check("PurgeDeletedKey", await nopurge("DELETE", `/deletedkeys/${seed.KEY_RSA_2048}`), 204);

  // KeyVaultError on the errors the SDK sees.
  check("GetKey", await vaultClient(seed.KV_SANDBOX, undefined)("GET", `/keys/${seed.KEY_RSA_2048}/`), 401, "challenge");
  check("GetKey", await vaultClient(seed.KV_SANDBOX, await token(seed.READER_APP))("GET", `/keys/${seed.KEY_RSA_2048}/`), 403, "ForbiddenByRbac");
  check("GetKey", await vaultClient(seed.KV_FIREWALL, await token())("GET", `/keys/${seed.KEY_RSA_2048}/`), 403, "ForbiddenByFirewall");
  check("unwrapKey", await kv("POST", `/keys/${seed.KEY_DISABLED}/${seed.VERSION_1}/unwrapkey`, { alg: "RSA-OAEP", value: "AAAA" }), 403, "disabled key");
  check("GetKey", await kv("GET", "/keys/cmk-missing/"), 404);
  check("GetDeletedKey", await kv("GET", "/deletedkeys/cmk-missing"), 404);
});

t.test("role assignments have the fields and types of the saved 2022-04-01 examples", async (t) => {
  const example = async (name: string) =>
    JSON.parse(await readFile(new URL(`rest-api-specs-authorization/${name}`, CONFORMANCE), "utf8")) as { responses: Record<string, { body: unknown }> };
  const create = await example("RoleAssignments_CreateForResourceGroup.json");
  const list = await example("RoleAssignments_ListForScope.json");

  /** The example's shape, widened by what SUMMARY 5 says real responses also carry (null or string), and strict on principalType. */
  const assignmentShape = (body: unknown) => {
    const shape = shapeOfExample(body);
    const properties = shape.properties.properties.properties as Record<string, unknown>;
    for (const field of ["condition", "conditionVersion", "createdBy", "updatedBy", "delegatedManagedIdentityResourceId", "description"]) properties[field] = { type: ["string", "null"] };
    for (const field of ["createdOn", "updatedOn"]) properties[field] = { type: "string", pattern: "^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?Z$" };
    // PrincipalType in @azure/arm-authorization 9.0.0 (azure-contracts.md 6.2).
    properties.principalType = { enum: ["User", "Group", "ServicePrincipal", "ForeignGroup", "Device"] };
    return shape;
  };
  const assignmentSchema = (status: string) => assignmentShape(create.responses[status]?.body);
  const listBody = list.responses["200"]?.body as { value: unknown[] };
  const listSchema = { type: "object", properties: { value: { type: "array", items: assignmentShape(listBody.value[0]) } }, required: ["value"], additionalProperties: false };

  await sandboxRequest(sandbox, {
    method: "POST",
    path: "/_sandbox/scenarios",
    body: { action: "addRoleAssignment", principalId: seed.SERVICE_APP.objectId, role: "User Access Administrator", scope: `/subscriptions/${seed.SUBSCRIPTION_ID}` },
  });
  const arm = armClient(`Bearer ${await armToken(sandbox)}`);
  const path = `${seed.resourceGroupId()}/providers/Microsoft.Authorization/roleAssignments/05c5a614-a7d6-4502-b150-c2fb455033ff`;
  const body = { properties: { roleDefinitionId: seed.roleDefinitionId(seed.ROLE.keyVaultCryptoServiceEncryptionUser), principalId: seed.FHIR_NOROLE_PRINCIPAL_ID, principalType: "ServicePrincipal" } };
  /** Status and shape; the exchange counts as checked (the examples are the saved definition here). */
  const likeExample = (name: string, schema: object, exchange: Exchange, status: number) => {
    t.equal(exchange.status, status, `${name} ${status}: status`);
    t.same(checkAgainst(schema, exchange.json), [], `${name} ${status}: the example's fields and types`);
    checked.push(exchange);
  };
  likeExample("RoleAssignments_Create", assignmentSchema("201"), await arm("PUT", path, body, "2022-04-01"), 201);
  likeExample("RoleAssignments_Create", assignmentSchema("200"), await arm("PUT", path, body, "2022-04-01"), 200);
  likeExample("RoleAssignments_Get", assignmentSchema("200"), await arm("GET", path, undefined, "2022-04-01"), 200);
  likeExample("RoleAssignments_ListForScope", listSchema, await arm("GET", `/subscriptions/${seed.SUBSCRIPTION_ID}/providers/Microsoft.Authorization/roleAssignments`, undefined, "2022-04-01"), 200);
  likeExample("RoleAssignments_Delete", assignmentSchema("200"), await arm("DELETE", path, undefined, "2022-04-01"), 200);
});

t.test("ARM's own Microsoft.Resources and the role definitions match resources.json (2025-04-01), subscriptions.json (2022-12-01) and authorization-RoleDefinitionsCalls.json (2022-04-01)", async (t) => {
  const arm = armClient(`Bearer ${await armToken(sandbox)}`);
  const anyone = armClient(`Bearer ${await armToken(sandbox, seed.READER_APP)}`);
  const check = (file: string) => (operationId: string, response: Exchange, status: number, label?: string, otherPath?: string) => conforms(t, file, operationId, response, status, label, otherPath);
  const resources = check(RESOURCES);
  const subscriptions = check(SUBSCRIPTIONS);
  const roleDefinitions = check(ROLE_DEFINITIONS);
  const subscription = `/subscriptions/${seed.SUBSCRIPTION_ID}`;

  subscriptions("Subscriptions_List", await arm("GET", "/subscriptions", undefined, "2022-12-01"), 200);
  subscriptions("Subscriptions_List", await anyone("GET", "/subscriptions", undefined, "2022-12-01"), 200, "a principal without roles: none");
  subscriptions("Subscriptions_Get", await arm("GET", subscription, undefined, "2022-12-01"), 200);
  subscriptions("Tenants_List", await arm("GET", "/tenants", undefined, "2022-12-01"), 200);

  resources("ResourceGroups_List", await arm("GET", `${subscription}/resourcegroups`, undefined, "2025-04-01"), 200);
  resources("ResourceGroups_Get", await arm("GET", seed.resourceGroupId(), undefined, "2025-04-01"), 200);
  resources("ResourceGroups_Get", await arm("GET", seed.resourceGroupId("rg-missing"), undefined, "2025-04-01"), 404);
  resources("ResourceGroups_CheckExistence", await arm("HEAD", seed.resourceGroupId(), undefined, "2025-04-01"), 204);
  resources("ResourceGroups_CheckExistence", await arm("HEAD", seed.resourceGroupId("rg-missing"), undefined, "2025-04-01"), 404);
  resources("ResourceGroups_CreateOrUpdate", await arm("PUT", seed.resourceGroupId("rg-conform"), { location: "westus3", tags: { purpose: "conformance" } }, "2025-04-01"), 201);
  resources("ResourceGroups_CreateOrUpdate", await arm("PUT", seed.resourceGroupId("rg-conform"), { location: "westus3" }, "2025-04-01"), 200);

  const uami = seed.userAssignedIdentityId(seed.UAMI_SANDBOX);
  const fhir = (await arm("GET", seed.fhirServiceId(seed.FHIR_UAMI))).json as { identity: { userAssignedIdentities: Record<string, unknown> } };
  t.ok(fhir.identity.userAssignedIdentities[uami], "fhir-uami has a user-assigned identity, so the list shows one");
  resources("Resources_List", await arm("GET", `${subscription}/resources?api-version=2025-04-01&$expand=createdTime,changedTime,provisioningState`), 200, "everything, expanded");
  const paged = await arm("GET", `${subscription}/resources?api-version=2025-04-01&$top=2`);
  resources("Resources_List", paged, 200, "a page of two");
  t.match(paged.json, { nextLink: /\$skipToken=2|%24skipToken=2/ });
  resources("Resources_List", await arm("GET", `${subscription}/resources?api-version=2025-04-01&$filter=${encodeURIComponent("resourceType eq 'Microsoft.HealthcareApis/workspaces/fhirservices'")}`), 200, "FHIR services");
  resources("Resources_ListByResourceGroup", await arm("GET", `${seed.resourceGroupId()}/resources?api-version=2025-04-01&$filter=${encodeURIComponent("resourceType eq 'Microsoft.KeyVault/vaults'")}`), 200);
  resources("Resources_List", await arm("GET", `${subscription}/resources?api-version=2025-04-01&$filter=${encodeURIComponent("sku eq 'x'")}`), 400, "an unsupported filter");

  resources("Providers_List", await arm("GET", `${subscription}/providers`, undefined, "2025-04-01"), 200);
  resources("Providers_Get", await arm("GET", `${subscription}/providers/Microsoft.HealthcareApis`, undefined, "2025-04-01"), 200);
  resources("Providers_ListAtTenantScope", await anyone("GET", "/providers", undefined, "2025-04-01"), 200);
  resources("Providers_GetAtTenantScope", await anyone("GET", "/providers/Microsoft.KeyVault", undefined, "2025-04-01"), 200);
  resources("Operations_List", await anyone("GET", "/providers/Microsoft.Resources/operations", undefined, "2025-04-01"), 200);
  subscriptions("Operations_List", await anyone("GET", "/providers/Microsoft.Resources/operations", undefined, "2022-12-01"), 200, "Microsoft.Resources");
  conforms(t, HEALTHCARE, "Operations_List", await anyone("GET", "/providers/Microsoft.HealthcareApis/operations"), 200, "any principal");
  conforms(t, KEYVAULT_ARM, "Operations_List", await anyone("GET", "/providers/Microsoft.KeyVault/operations", undefined, "2026-02-01"), 200, "Microsoft.KeyVault");
  conforms(t, MSI, "Operations_List", await anyone("GET", "/providers/Microsoft.ManagedIdentity/operations", undefined, "2024-11-30"), 200, "Microsoft.ManagedIdentity");
  const noAuthorizationOperations = "no Microsoft.Authorization operations definition is saved: the common OperationListResult, as subscriptions.json's, stands in";
  subscriptions("Operations_List", await anyone("GET", "/providers/Microsoft.Authorization/operations", undefined, "2022-04-01"), 200, "Microsoft.Authorization", noAuthorizationOperations);
  conforms(t, HEALTHCARE, "Workspaces_ListBySubscription", await arm("GET", `${subscription}/providers/Microsoft.HealthcareApis/workspaces`), 200);

  const role = seed.ROLE.keyVaultCryptoServiceEncryptionUser;
  roleDefinitions("RoleDefinitions_Get", await anyone("GET", `/providers/Microsoft.Authorization/roleDefinitions/${role}`, undefined, "2022-04-01"), 200, "root scope, any principal");
  roleDefinitions("RoleDefinitions_GetById", await arm("GET", seed.roleDefinitionId(role), undefined, "2022-04-01"), 200, "subscription scope");
  roleDefinitions("RoleDefinitions_List", await anyone("GET", "/providers/Microsoft.Authorization/roleDefinitions", undefined, "2022-04-01"), 200, "root scope");
  roleDefinitions("RoleDefinitions_List", await arm("GET", `${subscription}/providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01&$filter=${encodeURIComponent("roleName eq 'Reader'")}`), 200, "by name");

  // The caller's own permissions (the self-check reads them), at the two scopes the definition documents.
  roleDefinitions("Permissions_ListForResourceGroup", await arm("GET", `${seed.resourceGroupId()}/providers/Microsoft.Authorization/permissions`, undefined, "2022-04-01"), 200);
  roleDefinitions("Permissions_ListForResourceGroup", await anyone("GET", `${seed.resourceGroupId()}/providers/Microsoft.Authorization/permissions`, undefined, "2022-04-01"), 200, "a principal without roles: none");
  const vault = `${seed.resourceGroupId()}/providers/Microsoft.KeyVault/vaults/${seed.KV_SANDBOX}`;
  roleDefinitions("Permissions_ListForResource", await arm("GET", `${vault}/providers/Microsoft.Authorization/permissions`, undefined, "2022-04-01"), 200);

  // A custom role's PUT needs roleDefinitions/write at its assignable scopes: Owner, not the Contributor seed app.
  await sandboxRequest(sandbox, { method: "POST", path: "/_sandbox/scenarios", body: { action: "addRoleAssignment", principalId: seed.ADMIN_APP.objectId, role: "Owner", scope: subscription } });
  const owner = armClient(`Bearer ${await armToken(sandbox, seed.ADMIN_APP)}`);
  const custom = (roleName: string) => ({
    properties: { roleName, description: "conformance", type: "CustomRole", permissions: [{ actions: ["Microsoft.KeyVault/vaults/read"], notActions: [], dataActions: [], notDataActions: [] }], assignableScopes: [subscription] },
  });
  const customId = randomUUID();
  roleDefinitions("RoleDefinitions_CreateOrUpdate", await owner("PUT", `${subscription}/providers/Microsoft.Authorization/roleDefinitions/${customId}`, custom("Conformance Reader"), "2022-04-01"), 201, "a custom role");
  roleDefinitions("RoleDefinitions_CreateOrUpdate", await owner("PUT", `${seed.resourceGroupId()}/providers/Microsoft.Authorization/roleDefinitions/${customId}`, custom("Conformance Reader"), "2022-04-01"), 201, "updated, sent at a resource group");
  // Its errors' schema is common-types v2, which is not saved: their shape is checked directly.
  t.match(await owner("PUT", `${subscription}/providers/Microsoft.Authorization/roleDefinitions/${randomUUID()}`, custom("Conformance Reader"), "2022-04-01"), { status: 409, json: { error: { code: "RoleDefinitionWithSameNameExists" } } }, "a name taken");
  t.match(await arm("PUT", `${subscription}/providers/Microsoft.Authorization/roleDefinitions/${randomUUID()}`, custom("Conformance Writer"), "2022-04-01"), { status: 403, json: { error: { code: "AuthorizationFailed", message: /roleDefinitions\/write/ } } }, "a Contributor");
});

t.test("template deployments match deployments.json (2026-06-01)", async (t) => {
  const arm = armClient(`Bearer ${await armToken(sandbox)}`);
  const check = (operationId: string, response: Exchange, status: number, label?: string) => conforms(t, DEPLOYMENTS, operationId, response, status, label);
  const deployments = `${seed.resourceGroupId()}/providers/Microsoft.Resources/deployments`;
  const template = {
    $schema: "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
    contentVersion: "1.0.0.0",
    parameters: { workspaceName: { type: "string" }, secret: { type: "securestring", defaultValue: "hidden" } },
    resources: [
      { type: "Microsoft.HealthcareApis/workspaces", apiVersion: "2023-11-01", name: "[parameters('workspaceName')]", location: "westus3", properties: {} },
      {
        type: "Microsoft.HealthcareApis/workspaces/fhirservices",
        apiVersion: "2023-11-01",
        name: "[concat(parameters('workspaceName'), '/fhir-conform')]",
        location: "westus3",
        kind: "fhir-R4",
        dependsOn: ["[resourceId('Microsoft.HealthcareApis/workspaces', parameters('workspaceName'))]"],
        identity: { type: "SystemAssigned" },
        properties: {},
      },
    ],
    outputs: { workspaceId: { type: "string", value: "[resourceId('Microsoft.HealthcareApis/workspaces', parameters('workspaceName'))]" } },
  };
  const body = (workspaceName: string, resources = template.resources) => ({ properties: { template: { ...template, resources }, parameters: { workspaceName: { value: workspaceName } }, mode: "Incremental" }, tags: { purpose: "conformance" } });
  const statusOf = (response: Exchange) => () => arm("GET", pathOf(response.headers["azure-asyncoperation"]));
  // The deployment's FHIR service write is an operation of LRO_SECONDS: the clock moves on while the deployment runs.
  // No operation of deployments.json describes the status answer; it is ARM's common OperationStatusResult (real traffic: SUMMARY 3).
  const noStatusOperation = "deployments.json has no operation for a deployment's operationStatuses";
  const settled = async (response: Exchange) => {
    for (let step = 0; step < 5; step++) {
      const answer = await statusOf(response)();
      t.equal(answer.status, 200, "operationStatuses 200");
      t.same(specs.checkDefinition(COMMON_V5, "/definitions/OperationStatusResult", answer.json), [], `operationStatuses matches OperationStatusResult (${noStatusOperation})`);
      checked.push(answer);
      if ((answer.json as { status?: string }).status !== "Running") return answer;
      await advanceClock(sandbox, LRO_SECONDS);
    }
    throw new Error("the deployment still runs after five operations' time");
  };

  check("Deployments_Validate", await arm("POST", `${deployments}/conform/validate`, body("wsconform"), "2026-06-01"), 200);
  check("Deployments_Validate", await arm("POST", `${deployments}/conform/validate`, body("wsconform", [{ ...template.resources[0]!, location: "[tenant().location]" }]), "2026-06-01"), 400, "InvalidTemplate");
  const created = await arm("PUT", `${deployments}/conform`, body("wsconform"), "2026-06-01");
  check("Deployments_CreateOrUpdate", created, 201, "Accepted");
  t.match(created.json, { properties: { provisioningState: "Accepted", parameters: { secret: { type: "SecureString" } } } });
  t.notOk("value" in ((created.json as { properties: { parameters: { secret: object } } }).properties.parameters.secret), "a secure parameter's value is not echoed");
  t.same((await settled(created)).json, { status: "Succeeded" });
  check("Deployments_Get", await arm("GET", `${deployments}/conform`, undefined, "2026-06-01"), 200, "Succeeded");
  check("Deployments_ListByResourceGroup", await arm("GET", deployments, undefined, "2026-06-01"), 200);
  check("Deployments_Get", await arm("GET", `${deployments}/conform-none`, undefined, "2026-06-01"), 404);

  // A FHIR service name the RP refuses fails the deployment.
  const failing = await arm("PUT", `${deployments}/conform-failed`, body("ws_bad"), "2026-06-01");
  check("Deployments_CreateOrUpdate", failing, 201, "the failing one");
  t.match((await settled(failing)).json, { status: "Failed", error: { code: "DeploymentFailed", details: [{ code: "InvalidResourceName" }] } });
  check("Deployments_Get", await arm("GET", `${deployments}/conform-failed`, undefined, "2026-06-01"), 200, "Failed");
  const unserved = { properties: { mode: "Incremental", template: { resources: [{ type: "Microsoft.Storage/storageAccounts", apiVersion: "2023-01-01", name: "x" }] } } };
  check("Deployments_CreateOrUpdate", await arm("PUT", `${deployments}/conform-bad`, unserved, "2026-06-01"), 400, "InvalidTemplateDeployment");
});

t.test("Microsoft.KeyVault through @azure/arm-keyvault matches openapi.json (2026-02-01): vaults, vaults/keys and managedHSMs", async (t) => {
  const { httpClient, last } = recordingClient();
  const client = new KeyVaultManagementClient(sandboxCredential(sandbox), seed.SUBSCRIPTION_ID, { httpClient });
  const check = (operationId: string, exchange: Exchange, status: number, label?: string) => conforms(t, KEYVAULT_ARM, operationId, exchange, status, label);
  const rg = seed.RESOURCE_GROUP;

  await listAll(client.vaults.listBySubscription());
  check("Vaults_ListBySubscription", last(), 200);
  await listAll(client.vaults.listByResourceGroup(rg));
  check("Vaults_ListByResourceGroup", last(), 200);
  for (const vault of [seed.KV_SANDBOX, seed.KV_NOPURGE, seed.KV_EAST, seed.KV_FIREWALL]) {
    await client.vaults.get(rg, vault);
    check("Vaults_Get", last(), 200, vault);
  }
  await failure(client.vaults.get(rg, "kv-missing"));
  check("Vaults_Get", last(), 404);

  const vault = {
    location: "westus3",
    tags: { purpose: "conformance" },
    properties: {
      tenantId: seed.TENANT_ID,
      sku: { family: "A" as const, name: "standard" as const },
      enableRbacAuthorization: true,
      enablePurgeProtection: true,
      softDeleteRetentionInDays: 7,
      networkAcls: { bypass: "AzureServices" as const, defaultAction: "Deny" as const, ipRules: [{ value: "203.0.113.0/24" }], virtualNetworkRules: [] },
    },
  };
  await client.vaults.beginCreateOrUpdateAndWait(rg, "kvconform", vault);
  check("Vaults_CreateOrUpdate", last("PUT"), 201, "new");
  await client.vaults.beginCreateOrUpdateAndWait(rg, "kvconform", { ...vault, properties: { ...vault.properties, publicNetworkAccess: "Disabled" } });
  check("Vaults_CreateOrUpdate", last("PUT"), 200, "update");
  await failure(client.vaults.beginCreateOrUpdateAndWait(rg, "kv--bad", vault));
  check("Vaults_CreateOrUpdate", last("PUT"), 400, "invalid name");
  await failure(client.vaults.beginCreateOrUpdateAndWait(rg, "kvconform", { ...vault, properties: { ...vault.properties, enablePurgeProtection: false } }));
  check("Vaults_CreateOrUpdate", last("PUT"), 400, "purge protection cannot be turned off");

  await client.keys.get(rg, seed.KV_SANDBOX, seed.KEY_RSA_2048);
  check("Keys_Get", last(), 200, "RSA");
  await client.keys.get(rg, seed.KV_SANDBOX, seed.KEY_EC);
  check("Keys_Get", last(), 200, "EC");
  await client.keys.get(rg, seed.KV_SANDBOX, seed.KEY_EXPIRED);
  check("Keys_Get", last(), 200, "expired");
  await failure(client.keys.get(rg, seed.KV_SANDBOX, "cmk-missing"));
  check("Keys_Get", last(), 404, "no such key");
  await failure(client.keys.get(rg, "kv-missing", seed.KEY_RSA_2048));
  check("Keys_Get", last(), 404, "no such vault");
  const key = { tags: { purpose: "conformance" }, properties: { kty: "RSA-HSM" as const, keySize: 3072, keyOps: ["wrapKey" as const, "unwrapKey" as const], attributes: { enabled: true, exp: 1_900_000_000 } } };
  await client.keys.createIfNotExist(rg, "kvconform", "conform-arm", key);
  check("Keys_CreateIfNotExist", last(), 200, "new RSA key");
  await client.keys.createIfNotExist(rg, "kvconform", "conform-arm", key);
  check("Keys_CreateIfNotExist", last(), 200, "exists: answered unchanged");
  await client.keys.createIfNotExist(rg, "kvconform", "conform-ec", { properties: { kty: "EC", curveName: "P-384" } });
  check("Keys_CreateIfNotExist", last(), 200, "new EC key");
  await failure(client.keys.createIfNotExist(rg, "kvconform", "conform-oct", { properties: { kty: "oct" as "RSA" } }));
  check("Keys_CreateIfNotExist", last(), 400, "unsupported key type");

  await listAll(client.managedHsms.listBySubscription());
  check("ManagedHsms_ListBySubscription", last(), 200);
  await listAll(client.managedHsms.listByResourceGroup(rg));
  check("ManagedHsms_ListByResourceGroup", last(), 200);
  await client.managedHsms.get(rg, seed.MANAGED_HSM);
  check("ManagedHsms_Get", last(), 200);
  await failure(client.managedHsms.get(rg, "hsm-missing"));
  check("ManagedHsms_Get", last(), 404);

  await listAll(client.operations.list());
  check("Operations_List", last(), 200);
});

t.test("Microsoft.ManagedIdentity through @azure/arm-msi matches ManagedIdentity.json (2024-11-30)", async (t) => {
  const { httpClient, last } = recordingClient();
  const client = new ManagedServiceIdentityClient(sandboxCredential(sandbox), seed.SUBSCRIPTION_ID, { httpClient });
  const check = (operationId: string, exchange: Exchange, status: number, label?: string) => conforms(t, MSI, operationId, exchange, status, label);
  const rg = seed.RESOURCE_GROUP;

  await listAll(client.userAssignedIdentities.listBySubscription());
  check("UserAssignedIdentities_ListBySubscription", last(), 200);
  await listAll(client.userAssignedIdentities.listByResourceGroup(rg));
  check("UserAssignedIdentities_ListByResourceGroup", last(), 200);
  await client.userAssignedIdentities.get(rg, seed.UAMI_SANDBOX);
  check("UserAssignedIdentities_Get", last(), 200);
  await failure(client.userAssignedIdentities.get(rg, "uami-missing"));
  check("UserAssignedIdentities_Get", last(), 404);

  await client.userAssignedIdentities.createOrUpdate(rg, "uami-conform", { location: "westus3", tags: { purpose: "conformance" } });
  check("UserAssignedIdentities_CreateOrUpdate", last(), 201, "new");
  await client.userAssignedIdentities.createOrUpdate(rg, "uami-conform", { location: "westus3", tags: {} });
  check("UserAssignedIdentities_CreateOrUpdate", last(), 200, "tags replaced");
  await failure(client.userAssignedIdentities.createOrUpdate(rg, "-bad", { location: "westus3" }));
  check("UserAssignedIdentities_CreateOrUpdate", last(), 400, "invalid name");

  await client.systemAssignedIdentities.getByScope(seed.fhirServiceId(seed.FHIR_SYS));
  check("SystemAssignedIdentities_GetByScope", last(), 200);
  await failure(client.systemAssignedIdentities.getByScope(seed.fhirServiceId(seed.FHIR_UAMI)));
  check("SystemAssignedIdentities_GetByScope", last(), 404, "user-assigned only");

  await listAll(client.operations.list());
  check("Operations_List", last(), 200);
});

t.test("Managed HSM local RBAC matches rbac.json (7.5), widened by a real HSM's recorded traffic", async (t) => {
  const hsmToken = async (app: seed.SeedApp = seed.SERVICE_APP) => `Bearer ${(await sandboxCredential(sandbox, app).getToken("https://managedhsm.azure.net/.default")).token}`;
  const client = (authorization: string, host = `${seed.MANAGED_HSM}.managedhsm.azure.net`) => (method: string, path: string, body?: unknown) =>
    send({ method, path: path.includes("?") ? `${path}&api-version=7.5` : `${path}?api-version=7.5`, host, headers: { authorization }, ...(body === undefined ? {} : { body }) });
  const hsm = client(await hsmToken());
  const check = (operationId: string, exchange: Exchange, status: number, label?: string) => conforms(t, HSM_RBAC, operationId, exchange, status, label);
  const assignments = "/providers/Microsoft.Authorization/roleAssignments";
  const definitions = "/providers/Microsoft.Authorization/roleDefinitions";

  const listedDefinitions = await hsm("GET", definitions);
  check("RoleDefinitions_List", listedDefinitions, 200);
  t.notOk("nextLink" in (listedDefinitions.json as object), "no nextLink, as the recorded HSM");
  check("RoleDefinitions_Get", await hsm("GET", `${definitions}/${seed.HSM_ROLE.cryptoServiceEncryptionUser}`), 200);
  check("RoleDefinitions_Get", await hsm("GET", `${definitions}/${randomUUID()}`), 404);

  check("RoleAssignments_ListForScope", await hsm("GET", assignments), 200, "all");
  check("RoleAssignments_ListForScope", await hsm("GET", `/keys/${seed.KEY_HSM_3072}${assignments}?$filter=atScope()`), 200, "atScope() at a key");
  check("RoleAssignments_ListForScope", await hsm("GET", `${assignments}?$filter=${encodeURIComponent(`principalId eq '${seed.FHIR_SYS_PRINCIPAL_ID}'`)}`), 200, "one principal");
  check("RoleAssignments_ListForScope", await hsm("GET", `${assignments}?$filter=${encodeURIComponent("roleName eq 'x'")}`), 400, "an unsupported filter");

  const roleDefinitionId = `Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/${seed.HSM_ROLE.cryptoServiceEncryptionUser}`;
  const assignment = { properties: { roleDefinitionId, principalId: seed.READER_APP.objectId } };
  for (const scope of ["", "/keys", `/keys/${seed.KEY_HSM_3072}`]) {
    const name = randomUUID();
    check("RoleAssignments_Create", await hsm("PUT", `${scope}${assignments}/${name}`, assignment), 201, `scope '${scope || "/"}'`);
    check("RoleAssignments_Get", await hsm("GET", `${scope}${assignments}/${name}`), 200, `scope '${scope || "/"}'`);
    check("RoleAssignments_Delete", await hsm("DELETE", `${scope}${assignments}/${name}`), 200, `scope '${scope || "/"}'`);
  }
  const taken = randomUUID();
  await hsm("PUT", `${assignments}/${taken}`, assignment);
  check("RoleAssignments_Create", await hsm("PUT", `${assignments}/${taken}`, assignment), 409, "name taken");
  check("RoleAssignments_Create", await hsm("PUT", `${assignments}/${randomUUID()}`, { properties: { principalId: seed.READER_APP.objectId } }), 400, "no role");
  check("RoleAssignments_Create", await hsm("PUT", `/secrets${assignments}/${randomUUID()}`, assignment), 400, "a scope an HSM does not have");
  check("RoleAssignments_Get", await hsm("GET", `${assignments}/${randomUUID()}`), 404);
  check("RoleAssignments_Delete", await hsm("DELETE", `${assignments}/${randomUUID()}`), 404);
  check("RoleAssignments_Create", await client(await hsmToken(seed.READER_APP))("PUT", `${assignments}/${randomUUID()}`, assignment), 403, "no roleAssignments/write/action");
  const vaultToken = `Bearer ${(await sandboxCredential(sandbox).getToken("https://vault.azure.net/.default")).token}`;
  check("RoleAssignments_ListForScope", await client(vaultToken, `${seed.KV_SANDBOX}.vault.azure.net`)("GET", assignments), 404, "a vault has no local RBAC");
});

t.test("every route the emulator serves for ARM and the Key Vault / Managed HSM data plane had a conformance check", async (t) => {
  /** A router of the emulator's routes whose handlers name the route they stand for. */
  const routerOf = (routes: readonly RouteDescription[]) => {
    const router = new Router<Exchange>();
    for (const route of routes) router.on([...route.methods], route.pattern, (request) => ({ status: 200, body: `${request.method} ${route.pattern}` }));
    return router;
  };
  const arm = routerOf(sandbox.routes.arm);
  const keyVault = routerOf(sandbox.routes.keyVault);
  const covered = new Set<string>();
  for (const exchange of checked) {
    // As the emulator reads them: a path's leading `//` is `/`, and ARM collapses any `//`.
    const isArm = exchange.host === "management.azure.com";
    const path = isArm ? exchange.path.replace(/\/{2,}/g, "/") : exchange.path.replace(/^\/{2,}/, "/");
    const match = (isArm ? arm : keyVault).match(exchange.method, path);
    if (match && "handler" in match) covered.add(String((await match.handler(exchange, match.params)).body));
  }
  // The generic provider (arm/generic-resources.ts: Container Apps, Azure Managed Redis, Event Grid system
  // topics, for deploy/cmk-service.json) has no REST definition copied here: its shapes are checked by
  // test/sandbox/generic-resources.test.ts and test/deploy/cmk-service-template.test.ts instead.
  const generic = new RegExp(`/providers/(${GENERIC_TYPES.map((spec) => spec.type.split("/")[0]).join("|").replace(/\./g, "\\.")})/`);
  const served = [...sandbox.routes.arm, ...sandbox.routes.keyVault]
    .filter((route) => !generic.test(route.pattern))
    .flatMap((route) => route.methods.map((method) => `${method} ${route.pattern}`));
  t.ok(served.length > 60, `${served.length} routes served`);
  t.same(
    served.filter((route) => !covered.has(route)),
    [],
    "each has a check against a definition",
  );
});
