import { isRecord } from "../http/responses.js";
import { newGuid } from "../ids.js";
import { ROLE_DEFINITIONS } from "../rbac.js";
import { lower, type RoleDefinition, type World } from "../world.js";
import { ScenarioError } from "./scenario-error.js";

/**
 * Scenario `defineRole`: a custom role definition in the JSON form `az role definition create
 * --role-definition` takes (`Name`, `IsCustom`, `Description`, `Actions`, `NotActions`, `DataActions`,
 * `NotDataActions`, `AssignableScopes`). A role with the same name is updated in place, keeping its id
 * and its assignments, as `az role definition update` does.
 */

function stringList(input: Record<string, unknown>, field: string, required: boolean): string[] {
  const value = input[field];
  if (value === undefined && !required) return [];
  if (!Array.isArray(value) || value.some((item) => typeof item !== "string" || item.trim() === "")) {
    throw new ScenarioError(400, "InvalidRoleDefinition", `'role.${field}' must be an array of non-empty strings.`);
  }
  return value as string[];
}

export function defineRole(world: World, body: Record<string, unknown>): Record<string, unknown> {
  const input = body.role;
  if (!isRecord(input)) throw new ScenarioError(400, "InvalidRoleDefinition", "'role' must be a role definition object (Name, Actions, DataActions, AssignableScopes, ...).");
  if (typeof input.Name !== "string" || input.Name.trim() === "") throw new ScenarioError(400, "InvalidRoleDefinition", "'role.Name' is required.");
  if (input.IsCustom !== undefined && input.IsCustom !== true) throw new ScenarioError(400, "InvalidRoleDefinition", "'role.IsCustom' must be true: only custom roles can be defined.");
  const name = input.Name;
  if (ROLE_DEFINITIONS.some((definition) => lower(definition.roleName) === lower(name))) {
    throw new ScenarioError(409, "RoleDefinitionWithSameNameExists", `A built-in role is named '${name}'.`);
  }
  const assignableScopes = stringList(input, "AssignableScopes", true);
  if (assignableScopes.length === 0 || assignableScopes.some((scope) => !scope.startsWith("/"))) {
    throw new ScenarioError(400, "InvalidRoleDefinition", "'role.AssignableScopes' must list at least one ARM scope, e.g. /subscriptions/{id}.");
  }
  const existing = [...world.customRoles.values()].find((definition) => lower(definition.roleName) === lower(name));
  const definition: RoleDefinition = {
    id: existing?.id ?? newGuid(),
    roleName: name,
    description: typeof input.Description === "string" ? input.Description : "",
    actions: stringList(input, "Actions", true),
    notActions: stringList(input, "NotActions", false),
    dataActions: stringList(input, "DataActions", false),
    notDataActions: stringList(input, "NotDataActions", false),
    assignableScopes,
  };
  world.customRoles.set(definition.id, definition);
  return { action: "defineRole", id: definition.id, roleName: definition.roleName, updated: existing !== undefined };
}
