import { AuthorizationManagementClient } from "@azure/arm-authorization";
import t from "tap";
import { createReadCache } from "../../src/azure/read-cache.js";
import { createRoleAssignmentsAdapter } from "../../src/azure/role-assignments.js";
import { ROLE_ASSIGNMENTS_PAGE_SIZE } from "../../src/sandbox/arm/authorization.js";
import * as seed from "../../src/sandbox/seed.js";
import { setFaults } from "../helpers/sandbox-admin.js";
import { recordingAzureContext, sandboxCredential, sandboxHttpClient, sandboxRequest, startTestSandbox, type Exchange } from "../helpers/sandbox.js";

const SCOPE = `/subscriptions/${seed.SUBSCRIPTION_ID}`;
const VAULT = seed.vaultId(seed.KV_SANDBOX);

const isList = (exchange: Exchange) => new URL(exchange.url).pathname.endsWith("/providers/Microsoft.Authorization/roleAssignments");
const isDefinition = (exchange: Exchange) => new URL(exchange.url).pathname.includes("/providers/Microsoft.Authorization/roleDefinitions/");

async function addAssignment(sandbox: Awaited<ReturnType<typeof startTestSandbox>>, principalId: string, role: string, scope: string) {
  const response = await sandboxRequest(sandbox, { method: "POST", path: "/_sandbox/scenarios", body: { action: "addRoleAssignment", principalId, role, scope } });
  if (response.status !== 200) throw new Error(`addRoleAssignment: ${response.status} ${response.text}`);
}

/** What ARM answers with its own exact filter, `principalId eq`, through the SDK. */
async function serverFiltered(sandbox: Awaited<ReturnType<typeof startTestSandbox>>, principalId: string): Promise<string[]> {
  const client = new AuthorizationManagementClient(sandboxCredential(sandbox), seed.SUBSCRIPTION_ID, { httpClient: sandboxHttpClient(sandbox) });
  const ids: string[] = [];
  for await (const assignment of client.roleAssignments.listForScope(SCOPE.slice(1), { filter: `principalId eq '${principalId}'` })) ids.push(assignment.id!);
  return ids.sort();
}

t.test("more assignments than a page: the first page only, then ARM's exact principalId filter with every page followed", async (t) => {
  const sandbox = await startTestSandbox(t);
  const target = seed.FHIR_NOROLE_PRINCIPAL_ID;
  const scopes = ["/", SCOPE, seed.resourceGroupId(), `${SCOPE}/resourceGroups/rg-elsewhere`, VAULT, `${VAULT}/keys/${seed.KEY_RSA_2048}`];
  const otherRoles = ["Owner", "Contributor", "Key Vault Administrator", "Key Vault Reader"];
  const targetRoles = ["Key Vault Crypto Service Encryption User", "Reader", "Key Vault Crypto User"];
  const count = ROLE_ASSIGNMENTS_PAGE_SIZE + 1;
  await Promise.all([
    // 40 assignments of 8 other principals at every kind of scope, with roles the target does not hold.
    ...Array.from({ length: 40 }, (_, index) =>
      addAssignment(sandbox, `e0000000-0000-4000-8000-${(index % 8).toString(16).padStart(12, "0")}`, otherRoles[index % otherRoles.length]!, scopes[index % scopes.length]!),
    ),
    // The target's fill more than a page of their own.
    ...Array.from({ length: count }, (_, index) => addAssignment(sandbox, target, targetRoles[index % targetRoles.length]!, `${VAULT}/keys/key-${index}`)),
  ]);

  const { context, exchanges } = recordingAzureContext(sandbox);
  const adapter = createRoleAssignmentsAdapter(context);
  const fact = await adapter.forPrincipal(seed.SUBSCRIPTION_ID, SCOPE, Promise.resolve(target));
  if (fact.status !== "found") throw new Error(JSON.stringify(fact));
  t.equal(fact.value.length, count, "all of the principal's assignments");
  t.same(fact.value.map((assignment) => assignment.id).sort(), await serverFiltered(sandbox, target), "the same assignments as `principalId eq`");
  t.same([...new Set(fact.value.map((assignment) => assignment.roleName))].sort(), [...targetRoles].sort(), "with their role names");
  t.ok(fact.value.every((assignment) => Array.isArray(assignment.dataActions) && assignment.createdOn instanceof Date), "each with its role's data actions and its age");
  t.ok(fact.value.some((assignment) => assignment.dataActions.includes("Microsoft.KeyVault/vaults/keys/wrap/action")), "Crypto Service Encryption User's include wrap");

  const query = (exchange: Exchange) => new URL(exchange.url).searchParams;
  const unfiltered = exchanges.filter((exchange) => isList(exchange) && !query(exchange).has("$filter"));
  const filtered = exchanges.filter((exchange) => isList(exchange) && query(exchange).get("$filter") === `principalId eq '${target}'`);
  t.equal(unfiltered.length, 1, "the list for every principal stopped at its first page");
  t.equal(filtered.length, 2, "the principal's own list: both pages");
  t.ok(query(filtered[1]!).has("$skipToken"), "the second followed nextLink");
  t.equal(exchanges.filter(isDefinition).length, targetRoles.length, "role definitions are read for the principal's roles only, together");
});

t.test("the principal does not hold the list back; concurrent principals share it; the cache key is the scope's", async (t) => {
  const sandbox = await startTestSandbox(t);
  const { context, exchanges } = recordingAzureContext(sandbox);
  const adapter = createRoleAssignmentsAdapter(context, createReadCache(60_000));

  let resolvePrincipal!: (id: string) => void;
  const principal = new Promise<string>((resolve) => (resolvePrincipal = resolve));
  const pending = adapter.forPrincipal(seed.SUBSCRIPTION_ID, SCOPE, principal);
  const other = adapter.forPrincipal(seed.SUBSCRIPTION_ID, SCOPE, Promise.resolve(seed.UAMI_SANDBOX_PRINCIPAL_ID));
  // The list completes while the principal is still being read (`other` waits on the same list).
  const otherFact = await other;
  t.equal(exchanges.filter(isList).length, 1, "listed before the principal was known");
  resolvePrincipal(seed.FHIR_SYS_PRINCIPAL_ID);
  const fact = await pending;
  t.same(fact.status === "found" && fact.value.map((assignment) => assignment.id).sort(), await serverFiltered(sandbox, seed.FHIR_SYS_PRINCIPAL_ID));
  t.same(otherFact.status === "found" && otherFact.value.map((assignment) => assignment.id).sort(), await serverFiltered(sandbox, seed.UAMI_SANDBOX_PRINCIPAL_ID));
  t.equal(exchanges.filter(isList).length, 1, "two principals, one list");
  t.notOk(exchanges.some((exchange) => new URL(exchange.url).searchParams.has("$filter")), "one page holds them all: picked out here, no filtered request");

  const third = await adapter.forPrincipal(seed.SUBSCRIPTION_ID, SCOPE, seed.FHIR_NOROLE_PRINCIPAL_ID);
  t.same(third, { status: "found", value: [] }, "fhir-norole holds nothing");
  t.equal(exchanges.filter(isList).length, 1, "a third principal within the cache's lifetime: no request");
  await adapter.forPrincipal(seed.OTHER_SUBSCRIPTION_ID, `/subscriptions/${seed.OTHER_SUBSCRIPTION_ID}`, seed.FHIR_OTHER_PRINCIPAL_ID);
  t.equal(exchanges.filter(isList).length, 2, "another scope is another entry");

  const before = exchanges.length;
  t.same(await adapter.forPrincipal(seed.SUBSCRIPTION_ID, SCOPE, undefined), { status: "missing", detail: "no principal to look up" });
  t.equal(exchanges.length, before, "no principal: nothing listed");
});

t.test("the service's own permission: a 403 on the list is unreadable (permission), unless there was no principal to look up", async (t) => {
  const sandbox = await startTestSandbox(t);
  await setFaults(sandbox, { rules: [{ service: "arm", pathContains: "Microsoft.Authorization/roleAssignments", status: 403, probability: 1, errorCode: "AuthorizationFailed" }] });
  const { context } = recordingAzureContext(sandbox);
  const adapter = createRoleAssignmentsAdapter(context);
  t.match(await adapter.forPrincipal(seed.SUBSCRIPTION_ID, SCOPE, Promise.resolve(seed.FHIR_SYS_PRINCIPAL_ID)), {
    status: "unreadable",
    reason: "AuthorizationFailed (HTTP 403)",
    cause: "permission",
  });
  t.same(await adapter.forPrincipal(seed.SUBSCRIPTION_ID, SCOPE, Promise.resolve(undefined)), { status: "missing", detail: "no principal to look up" });
});
