import t from "tap";
import { seed } from "../../src/sandbox/index.js";
import { armToken, sandboxRequest, startTestSandbox } from "../helpers/sandbox.js";

/** Scenario `defineRole`: custom role definitions that ARM's RBAC evaluates like built-in ones. */

const SUB = `/subscriptions/${seed.SUBSCRIPTION_ID}`;
const ROLE = { Name: "Test Reader", IsCustom: true, Description: "reads workspaces", Actions: ["Microsoft.HealthcareApis/workspaces/read"], AssignableScopes: [SUB] };

t.test("defineRole: validation, update in place, assignable scopes, and ARM serving the definition", async (t) => {
  const sandbox = await startTestSandbox(t);
  const scenario = (body: object) => sandboxRequest(sandbox, { method: "POST", path: "/_sandbox/scenarios", body });

  t.match((await scenario({ action: "defineRole", role: { ...ROLE, Actions: "x" } })).json, { error: { code: "InvalidRoleDefinition", message: /role\.Actions/ } });
  t.match((await scenario({ action: "defineRole", role: { ...ROLE, AssignableScopes: [] } })).json, { error: { code: "InvalidRoleDefinition", message: /AssignableScopes/ } });
  const builtIn = await scenario({ action: "defineRole", role: { ...ROLE, Name: "Contributor" } });
  t.equal(builtIn.status, 409);

  const first = (await scenario({ action: "defineRole", role: ROLE })).json as { id: string; updated: boolean };
  t.equal(first.updated, false);
  const second = (await scenario({ action: "defineRole", role: { ...ROLE, Actions: [...ROLE.Actions, "Microsoft.HealthcareApis/workspaces/fhirservices/read"] } })).json as { id: string; updated: boolean };
  t.same(second, { action: "defineRole", id: first.id, roleName: "Test Reader", updated: true }, "same name: same id, updated");

  const outside = await scenario({ action: "addRoleAssignment", principalId: seed.READER_APP.objectId, role: "Test Reader", scope: `/subscriptions/${seed.OTHER_SUBSCRIPTION_ID}` });
  t.match(outside.json, { error: { message: /not assignable at/ } }, "AssignableScopes are enforced");
  t.equal((await scenario({ action: "addRoleAssignment", principalId: seed.READER_APP.objectId, role: "Test Reader", scope: SUB })).status, 200);

  const token = await armToken(sandbox);
  const definition = await sandboxRequest(sandbox, {
    host: "management.azure.com",
    path: `${SUB}/providers/Microsoft.Authorization/roleDefinitions/${first.id}?api-version=2022-04-01`,
    headers: { authorization: `Bearer ${token}` },
  });
  t.equal(definition.status, 200, definition.text);
  t.match(definition.json, { name: first.id, properties: { roleName: "Test Reader", type: "CustomRole", assignableScopes: [SUB], permissions: [{ actions: ROLE.Actions.concat("Microsoft.HealthcareApis/workspaces/fhirservices/read") }] } });

  // Whatever the reader app holds, a write it lacks is refused with the action named.
  const readerToken = await armToken(sandbox, seed.READER_APP);
  const workspaces = await sandboxRequest(sandbox, { host: "management.azure.com", path: `${SUB}/providers/Microsoft.HealthcareApis/workspaces?api-version=2023-11-01`, headers: { authorization: `Bearer ${readerToken}` } });
  t.equal(workspaces.status, 200, workspaces.text);
  const write = await sandboxRequest(sandbox, {
    method: "PUT",
    host: "management.azure.com",
    path: `${SUB}/resourceGroups/rg-sandbox/providers/Microsoft.HealthcareApis/workspaces/wsnew?api-version=2023-11-01`,
    headers: { authorization: `Bearer ${readerToken}` },
    body: { location: "westus3" },
  });
  t.equal(write.status, 403);
  t.match(write.json, { error: { code: "AuthorizationFailed", message: /does not have authorization to perform action 'Microsoft\.HealthcareApis\/workspaces\/write'/ } });
});
