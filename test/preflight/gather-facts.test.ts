import t, { type Test } from "tap";
import { createAzureAdapters } from "../../src/azure/adapters.js";
import type { PreflightRequest } from "../../src/domain/checks/preflight-report.js";
import { gatherFacts } from "../../src/preflight/gather-facts.js";
import * as seed from "../../src/sandbox/seed.js";
import { fhirId, KEY_V2, SUB, uamiId } from "../helpers/requests.js";
import { recordingAzureContext, sandboxRequest, startTestSandbox, type Exchange } from "../helpers/sandbox.js";

/**
 * Issue 13, item 3: a pre-flight costs one round of Azure requests. Counted, not timed: every request of
 * a validation is handed to the network before the first answer comes back, so none waited for another
 * (the principal no longer gates the role assignments), and the number of requests did not grow.
 */

const ARM = "management.azure.com";
const VAULT_HOST = "kvsandbox.vault.azure.net";
const FHIR_GET = (name: string) => `GET ${ARM}${fhirId(name)}`;
const KEY_GET = `GET ${VAULT_HOST}/keys/cmk-rsa-2048/${seed.VERSION_2}`;
const VAULT_LIST = `GET ${ARM}/subscriptions/${SUB}/providers/Microsoft.KeyVault/vaults`;
const ROLE_LIST = `GET ${ARM}/subscriptions/${SUB}/providers/Microsoft.Authorization/roleAssignments`;
const UAMI_GET = `GET ${ARM}${uamiId("uami-sandbox")}`;

/** "METHOD host/path" of each exchange, without the query, sorted. */
function requests(exchanges: Exchange[]): string[] {
  return exchanges.map((exchange) => `${exchange.method} ${new URL(exchange.url).host}${new URL(exchange.url).pathname}`).sort();
}

/** True when every request was sent before the first response arrived: nothing waited for an answer. */
function oneRound(exchanges: Exchange[]): boolean {
  return Math.max(...exchanges.map((exchange) => exchange.sentAt)) < Math.min(...exchanges.map((exchange) => exchange.receivedAt));
}

async function setUp(t: Test) {
  const sandbox = await startTestSandbox(t);
  const { context, exchanges } = recordingAzureContext(sandbox);
  const adapters = createAzureAdapters(context, { pollIntervalMs: 100 });
  // Once per process, not per validation: tokens, Key Vault's challenge, the role definitions.
  await gatherFacts(adapters, { fhirServiceId: fhirId("fhir-sys"), keyEncryptionKeyUrl: KEY_V2, identity: { type: "SystemAssigned" } });
  /** The exchanges of one gathering. */
  const gather = async (request: PreflightRequest) => {
    exchanges.length = 0;
    const facts = await gatherFacts(adapters, request);
    return { facts, exchanges: [...exchanges] };
  };
  return { gather };
}

t.test("SetKey with the FHIR service's system-assigned identity: four requests, one round", async (t) => {
  const { gather } = await setUp(t);
  const { facts, exchanges } = await gather({ fhirServiceId: fhirId("fhir-sys"), keyEncryptionKeyUrl: KEY_V2, identity: { type: "SystemAssigned" } });
  t.same(requests(exchanges), [FHIR_GET("fhir-sys"), VAULT_LIST, ROLE_LIST, KEY_GET].sort(), "the FHIR service, the key, the vault and the role assignments, once each");
  t.ok(oneRound(exchanges), `every request went out before the first answer: ${JSON.stringify(exchanges)}`);
  t.match(facts.principal, { status: "found", value: { principalId: seed.FHIR_SYS_PRINCIPAL_ID } });
  const scopes = facts.roleAssignments.status === "found" ? facts.roleAssignments.value.map((assignment) => assignment.scope).sort() : [];
  t.same(scopes, seed.SEED_VAULTS.map((vault) => seed.vaultId(vault.name)).sort(), "the principal's assignments (one per seed vault), out of every one in the subscription");
});

t.test("SetKey with a user-assigned identity: the identity is read in the same round", async (t) => {
  const { gather } = await setUp(t);
  const { facts, exchanges } = await gather({
    fhirServiceId: fhirId("fhir-uami"),
    keyEncryptionKeyUrl: KEY_V2,
    identity: { type: "UserAssigned", userAssignedIdentityId: uamiId("uami-sandbox") },
  });
  t.same(requests(exchanges), [FHIR_GET("fhir-uami"), VAULT_LIST, ROLE_LIST, KEY_GET, UAMI_GET].sort(), "five requests, once each");
  t.ok(oneRound(exchanges), `every request went out before the first answer: ${JSON.stringify(exchanges)}`);
  t.match(facts.principal, { status: "found", value: { principalId: seed.UAMI_SANDBOX_PRINCIPAL_ID } });
  t.match(facts.roleAssignments, { status: "found", value: [{ roleName: "Key Vault Crypto Service Encryption User" }] });
});

t.test("CreateService with a system-assigned identity: no principal yet, so no role assignments are listed", async (t) => {
  const { gather } = await setUp(t);
  const { facts, exchanges } = await gather({
    fhirServiceId: fhirId("fhir-new"),
    keyEncryptionKeyUrl: KEY_V2,
    identity: { type: "SystemAssigned" },
    create: { location: seed.LOCATION },
  });
  t.same(requests(exchanges), [FHIR_GET("fhir-new"), `GET ${ARM}${seed.workspaceId()}`, VAULT_LIST, KEY_GET].sort());
  t.ok(oneRound(exchanges));
  t.match(facts.roleAssignments, { status: "missing" });
});

t.test("a system-assigned identity that does not exist yet: the list was made but nothing is judged on it", async (t) => {
  const { gather } = await setUp(t);
  // fhir-uami has no system-assigned identity: SetKey SystemAssigned turns one on first.
  const { facts, exchanges } = await gather({ fhirServiceId: fhirId("fhir-uami"), keyEncryptionKeyUrl: KEY_V2, identity: { type: "SystemAssigned" } });
  t.ok(oneRound(exchanges));
  t.match(facts.principal, { status: "found", value: { kind: "SystemAssigned" } });
  t.equal(facts.principal.status === "found" && facts.principal.value.principalId, undefined);
  t.same(facts.roleAssignments, { status: "missing", detail: "no principal to look up" });
});

t.test("more role assignments in the subscription than a page: the principal's own list in a second round, not every page", async (t) => {
  const sandbox = await startTestSandbox(t);
  for (let index = 0; index < 120; index += 1) {
    const added = await sandboxRequest(sandbox, {
      method: "POST",
      path: "/_sandbox/scenarios",
      body: { action: "addRoleAssignment", principalId: `e0000000-0000-4000-8000-${index.toString(16).padStart(12, "0")}`, role: "Reader", scope: `/subscriptions/${SUB}` },
    });
    if (added.status !== 200) throw new Error(added.text);
  }
  const { context, exchanges } = recordingAzureContext(sandbox);
  const adapters = createAzureAdapters(context, { pollIntervalMs: 100 });
  const request: PreflightRequest = { fhirServiceId: fhirId("fhir-sys"), keyEncryptionKeyUrl: KEY_V2, identity: { type: "SystemAssigned" } };
  await gatherFacts(adapters, request);
  exchanges.length = 0;
  const facts = await gatherFacts(adapters, request);

  const filtered = exchanges.filter((exchange) => new URL(exchange.url).searchParams.has("$filter"));
  const first = exchanges.filter((exchange) => !filtered.includes(exchange));
  t.same(requests(exchanges), [FHIR_GET("fhir-sys"), VAULT_LIST, ROLE_LIST, ROLE_LIST, KEY_GET].sort(), "one request more than with one page: the principal's");
  t.equal(filtered.length, 1);
  t.equal(new URL(filtered[0]!.url).searchParams.get("$filter"), `principalId eq '${seed.FHIR_SYS_PRINCIPAL_ID}'`);
  t.ok(oneRound(first), "the rest, the first page of every principal's included, in one round");
  t.notOk(first.some((exchange) => new URL(exchange.url).searchParams.has("$skipToken")), "no second page of everyone's");
  t.equal(facts.roleAssignments.status === "found" && facts.roleAssignments.value.length, seed.SEED_VAULTS.length, "the same answer");
});
