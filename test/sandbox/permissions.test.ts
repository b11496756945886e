import t from "tap";
import { AuthorizationManagementClient } from "@azure/arm-authorization";
import { seed } from "../../src/sandbox/index.js";
import { armToken, listAll, sandboxCredential, sandboxHttpClient, sandboxRequest, startTestSandbox } from "../helpers/sandbox.js";

/**
 * `Microsoft.Authorization/permissions` (Permissions_ListForResourceGroup / _ListForResource, 2022-04-01):
 * the caller's own role assignments at or above the scope, one entry per assignment with its role's four
 * lists, readable by any signed-in principal, through the real SDK client.
 */

const SUB = `/subscriptions/${seed.SUBSCRIPTION_ID}`;

t.test("permissions at a resource group and at a resource: one entry per covering assignment of the caller", async (t) => {
  const sandbox = await startTestSandbox(t);
  const scenario = (body: object) => sandboxRequest(sandbox, { method: "POST", path: "/_sandbox/scenarios", body });
  const client = (app = seed.SERVICE_APP) => new AuthorizationManagementClient(sandboxCredential(sandbox, app), seed.SUBSCRIPTION_ID, { httpClient: sandboxHttpClient(sandbox) });

  const atGroup = await listAll(client().permissions.listForResourceGroup("rg-sandbox"));
  t.ok(atGroup.length >= 1, "the seed's service holds roles at the subscription");
  t.ok(atGroup.some((entry) => entry.actions?.includes("*")), "Contributor's actions, as defined (wildcards unresolved)");
  t.ok(atGroup.some((entry) => (entry.notActions ?? []).includes("Microsoft.Authorization/*/Write")), "with its notActions");

  const atVault = await listAll(client().permissions.listForResource("rg-sandbox", "Microsoft.KeyVault", "", "vaults", "kvsandbox"));
  t.ok(atVault.some((entry) => (entry.dataActions ?? []).includes("Microsoft.KeyVault/vaults/keys/*")), "the vault's data actions (Crypto Officer)");
  t.ok(atVault.length >= atGroup.length, "a resource sees what its resource group sees, and what is assigned at it");

  // A principal without any role reads its own (empty) permissions: the listing needs no action.
  const none = await listAll(client(seed.READER_APP).permissions.listForResourceGroup("rg-sandbox"));
  t.same(none, [], "no assignment, no entry");
  await scenario({ action: "defineRole", role: { Name: "Vault Keys", IsCustom: true, Description: "x", Actions: [], DataActions: ["Microsoft.KeyVault/vaults/keys/read"], NotDataActions: ["Microsoft.KeyVault/vaults/keys/delete"], AssignableScopes: [SUB] } });
  const vault = `${SUB}/resourceGroups/rg-sandbox/providers/Microsoft.KeyVault/vaults/kvsandbox`;
  t.equal((await scenario({ action: "addRoleAssignment", principalId: seed.READER_APP.objectId, role: "Vault Keys", scope: vault })).status, 200);
  t.same(await listAll(client(seed.READER_APP).permissions.listForResourceGroup("rg-sandbox")), [], "an assignment below the scope does not count");
  t.same(await listAll(client(seed.READER_APP).permissions.listForResource("rg-sandbox", "Microsoft.KeyVault", "", "vaults", "kvsandbox")), [
    { actions: [], notActions: [], dataActions: ["Microsoft.KeyVault/vaults/keys/read"], notDataActions: ["Microsoft.KeyVault/vaults/keys/delete"] },
  ]);
});

t.test("the scopes the REST definition documents, and ARM's answers for others", async (t) => {
  const sandbox = await startTestSandbox(t);
  const token = await armToken(sandbox);
  const get = (path: string) => sandboxRequest(sandbox, { host: "management.azure.com", path: `${path}/providers/Microsoft.Authorization/permissions?api-version=2022-04-01`, headers: { authorization: `Bearer ${token}` } });
  t.match((await get(`${SUB}/resourceGroups/rg-missing`)).json, { error: { code: "ResourceGroupNotFound" } });
  const atSubscription = await get(SUB);
  t.equal(atSubscription.status, 400, "no subscription-scope listing is documented");
  t.match(atSubscription.json, { error: { code: "InvalidScope" } });
});
