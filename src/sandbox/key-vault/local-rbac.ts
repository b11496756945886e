import { BodyParseError, isRecord, json, jsonBody, withHeaders } from "../http/responses.js";
import type { Router } from "../http/router.js";
import type { RouteParams, SandboxResponse } from "../http/types.js";
import { findLocalGrant, findLocalRoleDefinition, isManagedHsm, localRoleDefinitionId, localScopeCovers, LOCAL_ROLE_DEFINITIONS, normalizeLocalScope, type LocalRoleDefinition } from "../managed-hsm-rbac.js";
import { lower, type LocalRoleAssignmentRecord, type ManagedHsmRecord } from "../world.js";
import { badParameter, forbiddenByRbac, kvError, RBAC_CACHE_HEADER } from "./errors.js";
import type { KeyVaultRequest } from "./keys.js";

/**
 * Managed HSM local RBAC on the HSM's own data plane (rbac.json 7.5, what `az keyvault role assignment
 * … --hsm-name` calls): `{scope}/providers/Microsoft.Authorization/roleAssignments[/{name}]` list, get,
 * PUT, DELETE, and `roleDefinitions[/{name}]` list and get, with scopes `/`, `/keys`, `/keys/{name}`.
 * Lists carry `value` only, no `nextLink` (a real HSM's, test/fixtures/azure-rest/azure-sdk-for-js-keyvault-admin).
 */

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const HSM = "Microsoft.KeyVault/managedHsm";
const AUTHORIZATION = "{*scope}/providers/Microsoft.Authorization";

type Collection = "roleAssignments" | "roleDefinitions";
type LocalRbacHandler = (request: KeyVaultRequest, hsm: ManagedHsmRecord, scope: string, params: RouteParams) => SandboxResponse;

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

const assignmentNotFound = (name: string) => kvError(404, "RoleAssignmentNotFound", `Requested role assignment not found (Id = ${name}).`);

function createAssignment(request: KeyVaultRequest, hsm: ManagedHsmRecord, scope: string, name: string): SandboxResponse {
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
  if (hsm.localRoleAssignments.has(lower(name))) return kvError(409, "RoleAssignmentExists", `A role assignment named ${name} already exists.`);
  const assignment: LocalRoleAssignmentRecord = { name: lower(name), scope, roleId: definition.id, principalId: lower(properties.principalId) };
  hsm.localRoleAssignments.set(assignment.name, assignment);
  return json(201, assignmentBody(assignment));
}

/** The assignment named in the route, when it is at the route's scope. */
function assignmentAt(hsm: ManagedHsmRecord, scope: string, name: string): LocalRoleAssignmentRecord | undefined {
  const existing = hsm.localRoleAssignments.get(lower(name));
  return existing && normalizeLocalScope(existing.scope) === scope ? existing : undefined;
}

/** The routes, on the Key Vault data plane's router: a vault answers 404, an HSM checks the caller's local grant first. */
export function registerLocalRbacRoutes(router: Router<KeyVaultRequest>): void {
  const on = (method: string, collection: Collection, pattern: string, handler: LocalRbacHandler) =>
    router.on(method, `${AUTHORIZATION}/${collection}${pattern}`, (request, params) => {
      const hsm = request.vault;
      if (!isManagedHsm(hsm)) return kvError(404, "NotFound", "Role assignments and definitions on the data plane exist on a Managed HSM only.");
      // The SDKs send scope `/` as `//providers/…` and may encode `/keys` as one segment.
      const written = `/${params.scope ?? ""}`.replace(/\/{2,}/g, "/");
      const scope = normalizeLocalScope(written);
      if (!scope) return badParameter(`The scope '${written}' is not valid for a Managed HSM: use /, /keys or /keys/{key name}.`);
      const verb = method === "GET" ? "read" : method === "DELETE" ? "delete" : "write";
      const action = `${HSM}/${collection}/${verb}/action`;
      const grant = findLocalGrant(hsm, request.caller.objectId, scope, action);
      if (!grant) return forbiddenByRbac(request.caller, hsm, action, scope);
      return withHeaders(handler(request, hsm, scope, params), { "x-ms-keyvault-rbac-assignment-id": grant.name, ...RBAC_CACHE_HEADER });
    });

  on("GET", "roleAssignments", "", (request, hsm, scope) => {
    const value = listAssignments(hsm, scope, request.query.get("$filter"));
    return value ? json(200, { value }) : badParameter("The $filter is not supported: use atScope() or principalId eq '{id}'.");
  });
  on("GET", "roleAssignments", "/{name}", (_request, hsm, scope, params) => {
    const assignment = assignmentAt(hsm, scope, params.name ?? "");
    return assignment ? json(200, assignmentBody(assignment)) : assignmentNotFound(params.name ?? "");
  });
  on("PUT", "roleAssignments", "/{name}", (request, hsm, scope, params) => createAssignment(request, hsm, scope, params.name ?? ""));
  on("DELETE", "roleAssignments", "/{name}", (_request, hsm, scope, params) => {
    const assignment = assignmentAt(hsm, scope, params.name ?? "");
    if (!assignment) return assignmentNotFound(params.name ?? "");
    hsm.localRoleAssignments.delete(assignment.name);
    return json(200, assignmentBody(assignment));
  });

  // Built-in definitions only: the sandbox has no custom roles to write or delete.
  on("GET", "roleDefinitions", "", () => json(200, { value: LOCAL_ROLE_DEFINITIONS.map(definitionBody) }));
  on("GET", "roleDefinitions", "/{name}", (_request, _hsm, _scope, params) => {
    const definition = findLocalRoleDefinition(params.name ?? "");
    return definition ? json(200, definitionBody(definition)) : kvError(404, "RoleDefinitionNotFound", `Requested role definition was not found: ${params.name}`);
  });
}
