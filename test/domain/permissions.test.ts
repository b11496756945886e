import t from "tap";
import { readFile } from "node:fs/promises";
import {
  blockedOperations,
  isPermitted,
  judgeProbes,
  judgeScope,
  managedHsmRoleAssignmentCommand,
  permissionMatches,
  PERMISSION_REQUIREMENTS,
  READ_ONLY_OPERATIONS,
  requiredPermissions,
  roleAssignmentCommand,
} from "../../src/domain/permissions.js";

const role = async (name: string) => JSON.parse(await readFile(new URL(`../../deploy/${name}.json`, import.meta.url), "utf8")) as { Actions: string[]; DataActions: string[] };

t.test("the roles in deploy/ are exactly what the operations need: no drift either way", async (t) => {
  const operator = await role("cmk-service-role");
  const all = requiredPermissions();
  t.same([...operator.Actions].sort(), [...all.actions].sort(), "CMK Service Operator's actions");
  t.same([...operator.DataActions].sort(), [...all.dataActions].sort(), "and data actions");
  const reader = await role("cmk-service-reader-role");
  const reads = requiredPermissions(READ_ONLY_OPERATIONS);
  t.same([...reader.Actions].sort(), [...reads.actions].sort(), "CMK Service Reader: what validations and scans need");
  t.same([...reader.DataActions].sort(), [...reads.dataActions].sort());
  t.notOk(all.dataActions.some((permission) => permission.includes("managedHsm")), "a Managed HSM's local RBAC is no part of the Azure role");
});

t.test("wildcards, per-entry notActions, and planes", async (t) => {
  t.ok(permissionMatches("*", "Microsoft.KeyVault/vaults/read"));
  t.ok(permissionMatches("*/read", "Microsoft.KeyVault/vaults/read"));
  t.ok(permissionMatches("microsoft.keyvault/vaults/keys/*", "Microsoft.KeyVault/vaults/keys/rotate/action"), "case-insensitive");
  t.notOk(permissionMatches("*/read", "Microsoft.KeyVault/vaults/keys/rotate/action"));
  t.notOk(permissionMatches("Microsoft.KeyVault/vaults/read", "Microsoft.KeyVault/vaults/readX"), "no prefix match");

  const contributor = { actions: ["*"], notActions: ["Microsoft.Authorization/*/Write"] };
  t.ok(isPermitted([contributor], "action", "Microsoft.HealthcareApis/workspaces/fhirservices/write"));
  t.notOk(isPermitted([contributor], "action", "Microsoft.Authorization/roleAssignments/write"), "excluded by its own notActions");
  t.ok(isPermitted([contributor, { actions: ["Microsoft.Authorization/roleAssignments/write"] }], "action", "Microsoft.Authorization/roleAssignments/write"), "another assignment grants it: notActions are no deny");
  t.notOk(isPermitted([contributor], "dataAction", "Microsoft.KeyVault/vaults/keys/read"), "actions grant no data action");
  t.ok(isPermitted([{ dataActions: ["Microsoft.KeyVault/vaults/keys/*"], notDataActions: ["Microsoft.KeyVault/vaults/keys/delete"] }], "dataAction", "Microsoft.KeyVault/vaults/keys/rotate/action"));
});

t.test("judging a scope names each missing permission with the operations it blocks", async (t) => {
  const verdict = judgeScope("vault", [{ actions: ["Microsoft.KeyVault/vaults/read"], dataActions: ["Microsoft.KeyVault/vaults/keys/read"] }]);
  t.same(verdict.granted, ["Microsoft.KeyVault/vaults/read", "Microsoft.KeyVault/vaults/keys/read"]);
  t.same(verdict.missing, [
    { plane: "dataAction", permission: "Microsoft.KeyVault/vaults/keys/rotate/action", operations: ["RotateKey", "FleetRotation"] },
    { plane: "dataAction", permission: "Microsoft.KeyVault/vaults/keys/recover/action", operations: ["RecoverKeyAccess"] },
  ]);
  t.same(blockedOperations(verdict.missing), ["RotateKey", "RecoverKeyAccess", "FleetRotation"]);
  t.same(judgeScope("vault", [{ actions: ["Microsoft.KeyVault/vaults/read"] }], ["action"]).missing, [], "data actions left out (a vault on access policies)");
  t.equal(judgeScope("resourceGroup", []).missing.length, PERMISSION_REQUIREMENTS.filter((requirement) => requirement.scope === "resourceGroup").length, "nothing granted: everything missing");

  const probed = judgeProbes("subscription", new Map([["Microsoft.HealthcareApis/locations/operationresults/read", false]]));
  t.same(probed.granted, [], "a probe that did not run is neither granted nor missing");
  t.same(probed.missing.map((entry) => entry.permission), ["Microsoft.HealthcareApis/locations/operationresults/read"]);
});

t.test("the fixes are the commands an operator runs", async (t) => {
  t.equal(
    roleAssignmentCommand("c0000000-0000-4000-8000-000000000004", "/subscriptions/22222222-2222-2222-2222-222222222222"),
    'az role assignment create --assignee-object-id c0000000-0000-4000-8000-000000000004 --assignee-principal-type ServicePrincipal --role "CMK Service Operator" --scope /subscriptions/22222222-2222-2222-2222-222222222222',
  );
  t.match(managedHsmRoleAssignmentCommand("oid", "hsm1", "key1"), /^az keyvault role assignment create --hsm-name hsm1 --role "Managed HSM Crypto User" --assignee-object-id oid .* --scope \/keys\/key1$/);
});
