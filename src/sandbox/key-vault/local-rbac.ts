import { BodyParseError, isRecord, json, jsonBody, withHeaders } from "../http/responses.js";
import type { SandboxResponse } from "../http/types.js";
import { findLocalGrant, findLocalRoleDefinition, localRoleDefinitionId, localScopeCovers, LOCAL_ROLE_DEFINITIONS, normalizeLocalScope, type LocalRoleDefinition } from "../managed-hsm-rbac.js";
import { lower, type LocalRoleAssignmentRecord, type ManagedHsmRecord } from "../world.js";
import { badParameter, forbiddenByRbac, kvError, RBAC_CACHE_HEADER } from "./errors.js";
import type { KeyVaultRequest } from "./keys.js";

/**
 * Managed HSM local RBAC on the HSM's own data plane (rbac.json 7.5, what `az keyvault role assignment
 * … --hsm-name` calls): `{scope}/providers/Microsoft.Authorization/roleAssignments[/{name}]` list, get,
 * PUT, DELETE, and `roleDefinitions[/{name}]` list and get, with scopes `/`, `/keys`, `/keys/{name}`.
 */

export const LOCAL_RBAC_PATH = /^(.*?)\/providers\/Microsoft\.Authorization\/(roleAssignments|roleDefinitions)(?:\/([^/]+))?\/?$/i;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const HSM = "Microsoft.KeyVault/managedHsm";

function assignmentBody(assignment: LocalRoleAssignmentRecord): Record<string, unknown> {
  return {
    id: `${assignment.scope === "/" ? "" : assignment.scope}/providers/Microsoft.Authorization/roleAssignments/${assignment.name}`,
    name: assignment.name,
    type: "Microsoft.Authorization/roleAssignments",
    properties: { scope: assignment.scope, roleDefinitionId: localRoleDefinitionId(assignment.roleId), principalId: assignment.principalId },
  };
}

function definitionBody(definition: LocalRoleDefinition): Record<string, unknown> {
  return {
    id: localRoleDefinitionId(definition.id),
    name: definition.id,
    type: "Microsoft.Authorization/roleDefinitions",
    properties: {
      roleName: definition.roleName,
      description: definition.description,
      type: "AKVBuiltInRole",
      permissions: [{ actions: [], notActions: [], dataActions: definition.dataActions, notDataActions: [] }],
      assignableScopes: ["/"],
    },
  };
}

/** `$filter`: `atScope()` (at or above), `principalId eq '{id}'` (at, above or below, one principal), none (at, above or below). */
function listAssignments(hsm: ManagedHsmRecord, scope: string, filter: string | null): Record<string, unknown>[] | undefined {
  const trimmed = filter?.trim() ?? "";
  const principal = /^principalId\s+eq\s+'([^']+)'$/i.exec(trimmed)?.[1];
  const atScope = /^atScope\(\)$/i.test(trimmed);
  if (trimmed !== "" && !principal && !atScope) return undefined;
  return [...hsm.localRoleAssignments.values()]
    .filter((assignment) => localScopeCovers(assignment.scope, scope) || (!atScope && localScopeCovers(scope, assignment.scope)))
    .filter((assignment) => !principal || lower(assignment.principalId) === lower(principal))
    .map(assignmentBody);
}

export function createLocalRbacHandler(): (request: KeyVaultRequest, hsm: ManagedHsmRecord) => SandboxResponse {
  return (request, hsm) => {
    const [, rawScope = "", collection = "", name] = LOCAL_RBAC_PATH.exec(request.path) ?? [];
    const scope = normalizeLocalScope(decodeURIComponent(rawScope));
    if (!scope) return badParameter(`The scope '${rawScope || "/"}' is not valid for a Managed HSM: use /, /keys or /keys/{key name}.`);
    const assignments = collection.toLowerCase() === "roleassignments";
    const verb = request.method === "GET" ? "read" : request.method === "DELETE" ? "delete" : "write";
    const action = `${HSM}/${assignments ? "roleAssignments" : "roleDefinitions"}/${verb}/action`;
    const grant = findLocalGrant(hsm, request.caller.objectId, scope, action);
    if (!grant) return forbiddenByRbac(request.caller, hsm, action, scope);
    const answer = (response: SandboxResponse) => withHeaders(response, { "x-ms-keyvault-rbac-assignment-id": grant.name, ...RBAC_CACHE_HEADER });

    if (!assignments) {
      if (request.method !== "GET") return kvError(405, "MethodNotAllowed", "The sandbox's Managed HSM has built-in role definitions only.");
      if (!name) return answer(json(200, { value: LOCAL_ROLE_DEFINITIONS.map(definitionBody), nextLink: null }));
      const definition = findLocalRoleDefinition(name);
      return answer(definition ? json(200, definitionBody(definition)) : kvError(404, "RoleDefinitionNotFound", `Requested role definition was not found: ${name}`));
    }

    if (!name) {
      if (request.method !== "GET") return kvError(405, "MethodNotAllowed", `The method '${request.method}' is not supported on a list of role assignments.`);
      const value = listAssignments(hsm, scope, request.query.get("$filter"));
      return answer(value ? json(200, { value, nextLink: null }) : badParameter("The $filter is not supported: use atScope() or principalId eq '{id}'."));
    }
    const existing = hsm.localRoleAssignments.get(lower(name));
    const here = existing && normalizeLocalScope(existing.scope) === scope ? existing : undefined;
    if (request.method === "GET") return answer(here ? json(200, assignmentBody(here)) : kvError(404, "RoleAssignmentNotFound", `Requested role assignment not found (Id = ${name}).`));
    if (request.method === "DELETE") {
      if (!here) return answer(kvError(404, "RoleAssignmentNotFound", `Requested role assignment not found (Id = ${name}).`));
      hsm.localRoleAssignments.delete(lower(name));
      return answer(json(200, assignmentBody(here)));
    }
    if (request.method !== "PUT") return kvError(405, "MethodNotAllowed", `The method '${request.method}' is not supported on a role assignment.`);
    if (!GUID.test(name)) return badParameter(`The role assignment name '${name}' is not a GUID.`);
    let body: unknown;
    try {
      body = jsonBody(request);
    } catch (error) {
      if (error instanceof BodyParseError) return badParameter(`The request body is not valid JSON: ${error.message}`);
      throw error;
    }
    const properties = isRecord(body) && isRecord(body.properties) ? body.properties : undefined;
    if (typeof properties?.roleDefinitionId !== "string" || typeof properties.principalId !== "string") {
      return badParameter("'properties.roleDefinitionId' and 'properties.principalId' are required.");
    }
    const definition = findLocalRoleDefinition(properties.roleDefinitionId);
    if (!definition) return badParameter(`Role definition '${properties.roleDefinitionId}' does not exist.`);
    if (existing) return answer(kvError(409, "RoleAssignmentExists", `A role assignment named ${name} already exists.`));
    const assignment: LocalRoleAssignmentRecord = { name: lower(name), scope, roleId: definition.id, principalId: lower(properties.principalId) };
    hsm.localRoleAssignments.set(assignment.name, assignment);
    return answer(json(201, assignmentBody(assignment)));
  };
}
