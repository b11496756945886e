import t from "tap";
import { readFile } from "node:fs/promises";
import { armToken, sandboxRequest, startTestSandbox } from "../helpers/sandbox.js";

/**
 * deploy/cmk-service-role.json and deploy/cmk-service-reader-role.json: the shape `az role definition create
 * --role-definition @file` takes, and every action a real operation name, as the emulated providers list
 * them at `GET /providers/{namespace}/operations` (isDataAction telling control plane from data plane).
 */

interface RoleFile {
  Name: string;
  IsCustom: boolean;
  Description: string;
  Actions: string[];
  NotActions: string[];
  DataActions: string[];
  NotDataActions: string[];
  AssignableScopes: string[];
}

const FIELDS = ["Name", "IsCustom", "Description", "Actions", "NotActions", "DataActions", "NotDataActions", "AssignableScopes"];

export async function loadRole(name: "cmk-service-role" | "cmk-service-reader-role"): Promise<RoleFile> {
  return JSON.parse(await readFile(new URL(`../../deploy/${name}.json`, import.meta.url), "utf8")) as RoleFile;
}

t.test("both role files have the role-definition shape, no wildcard and no duplicate", async (t) => {
  for (const name of ["cmk-service-role", "cmk-service-reader-role"] as const) {
    const role = await loadRole(name);
    t.same(Object.keys(role).sort(), [...FIELDS].sort(), `${name}: exactly the role-definition fields`);
    t.equal(role.IsCustom, true);
    t.ok(role.Name.length > 0 && role.Description.length > 0);
    for (const field of ["Actions", "NotActions", "DataActions", "NotDataActions", "AssignableScopes"] as const) {
      t.ok(Array.isArray(role[field]) && role[field].every((item) => typeof item === "string"), `${name}: ${field} is a string array`);
    }
    t.ok(role.AssignableScopes.every((scope) => /^\/subscriptions\/[0-9a-f-]{36}$/i.test(scope)), `${name}: assignable at subscription scopes`);
    const all = [...role.Actions, ...role.DataActions];
    t.equal(all.filter((action) => action.includes("*")).length, 0, `${name}: least privilege, no wildcard`);
    t.equal(new Set(all.map((action) => action.toLowerCase())).size, all.length, `${name}: no duplicate`);
  }
});

t.test("the reader role is the operator role without any write, action or data change", async (t) => {
  const operator = await loadRole("cmk-service-role");
  const reader = await loadRole("cmk-service-reader-role");
  t.ok(reader.Actions.every((action) => operator.Actions.includes(action)), "reader actions are a subset");
  t.ok(reader.DataActions.every((action) => operator.DataActions.includes(action)), "reader data actions are a subset");
  t.ok([...reader.Actions, ...reader.DataActions].every((action) => action.endsWith("/read")), "reader only reads");
  t.ok(operator.Actions.includes("Microsoft.HealthcareApis/workspaces/fhirservices/write"));
  t.ok(operator.Actions.includes("Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"));
  t.ok(operator.DataActions.includes("Microsoft.KeyVault/vaults/keys/rotate/action"));
});

t.test("every action is an operation the emulated provider lists, on the right plane", async (t) => {
  const sandbox = await startTestSandbox(t);
  const token = await armToken(sandbox);
  const served = new Map<string, boolean>();
  for (const namespace of ["Microsoft.Resources", "Microsoft.HealthcareApis", "Microsoft.KeyVault", "Microsoft.ManagedIdentity", "Microsoft.Authorization"]) {
    const answer = await sandboxRequest(sandbox, {
      host: "management.azure.com",
      path: `/providers/${namespace}/operations?api-version=2022-04-01`,
      headers: { authorization: `Bearer ${token}` },
    });
    t.equal(answer.status, 200, answer.text);
    for (const operation of (answer.json as { value: Array<{ name: string; isDataAction?: boolean }> }).value) {
      served.set(operation.name.toLowerCase(), operation.isDataAction === true);
    }
  }
  for (const name of ["cmk-service-role", "cmk-service-reader-role"] as const) {
    const role = await loadRole(name);
    for (const action of role.Actions) t.equal(served.get(action.toLowerCase()), false, `${name}: ${action} is a control-plane operation`);
    for (const action of role.DataActions) t.equal(served.get(action.toLowerCase()), true, `${name}: ${action} is a data action`);
  }
});
