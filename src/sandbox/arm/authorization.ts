import { empty, isRecord, json } from "../http/responses.js";
import type { Router } from "../http/router.js";
import type { RouteParams, SandboxResponse } from "../http/types.js";
import { encryptionPrincipal } from "../key-access.js";
import { findGrant, findRoleDefinition, normalizeScope, ROLE_DEFINITIONS as ROLE_DEFINITIONS_BUILT_IN, roleDefinitions, scopeCovers, type RoleDefinition } from "../rbac.js";
import type { SandboxRuntime } from "../runtime.js";
import { APPS } from "../seed.js";
import { lower, type RoleAssignmentRecord, type World } from "../world.js";
import { parseArmBody } from "./body.js";
import { armError, invalidRequestContent } from "./errors.js";
import { pagedList } from "./paging.js";
import type { ArmRequest } from "./request.js";
import { checkResourceGroup } from "./scope.js";

/**
 * ARM `Microsoft.Authorization`: role assignments at any scope (create, get, delete, list with the
 * `$filter`s the SDK documents), the built-in role definitions (azure-contracts.md 6.2; SUMMARY.md 5),
 * custom role definitions (PUT), and the caller's own permissions at a resource group or resource.
 */

const ASSIGNMENT_TYPE = "Microsoft.Authorization/roleAssignments";
const DEFINITION_TYPE = "Microsoft.Authorization/roleDefinitions";
const PERMISSIONS_TYPE = "Microsoft.Authorization/permissions";
/** The two scopes Permissions_ListForResourceGroup and Permissions_ListForResource document (2022-04-01). */
const PERMISSION_SCOPE = /^\/subscriptions\/([^/]+)\/resourcegroups\/([^/]+)(?:\/providers\/[^/]+(?:\/[^/]+\/[^/]+)+)?$/i;
/** Role assignments (and definitions) per page of a list; ARM does not document its own page size. */
export const ROLE_ASSIGNMENTS_PAGE_SIZE = 100;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Router `{*scope}` → ARM scope: "" is the root scope "/". */
function scopeOf(params: RouteParams): string {
  const scope = (params.scope ?? "").replace(/\/+$/, "");
  return scope === "" ? "/" : `/${scope.replace(/^\/+/, "")}`;
}

function assignmentId(assignment: Pick<RoleAssignmentRecord, "scope" | "name">): string {
  return `${assignment.scope === "/" ? "" : assignment.scope}/providers/${ASSIGNMENT_TYPE}/${assignment.name}`;
}

function assignmentResource(assignment: RoleAssignmentRecord, overrides: Partial<RoleAssignmentRecord> = {}): Record<string, unknown> {
  const record = { ...assignment, ...overrides };
  return {
    properties: {
      roleDefinitionId: record.roleDefinitionId,
      principalId: record.principalId,
      principalType: record.principalType,
      scope: record.scope,
      condition: record.condition,
      conditionVersion: record.conditionVersion,
      createdOn: record.createdOn,
      updatedOn: record.updatedOn,
      createdBy: record.createdBy,
      updatedBy: record.updatedBy,
      delegatedManagedIdentityResourceId: null,
      description: record.description,
    },
    id: assignmentId(record),
    type: ASSIGNMENT_TYPE,
    name: record.name,
  };
}

function definitionResource(definition: RoleDefinition, scope: string): Record<string, unknown> {
  return {
    id: `${scope === "/" ? "" : scope}/providers/${DEFINITION_TYPE}/${definition.id}`,
    properties: {
      roleName: definition.roleName,
      type: definition.assignableScopes ? "CustomRole" : "BuiltInRole",
      description: definition.description,
      assignableScopes: definition.assignableScopes ?? ["/"],
      permissions: [
        { actions: definition.actions, notActions: definition.notActions, dataActions: definition.dataActions, notDataActions: definition.notDataActions },
      ],
      createdOn: "2015-02-02T21:55:09.8806423Z",
      updatedOn: "2024-01-01T00:00:00.0000000Z",
      createdBy: null,
      updatedBy: null,
    },
    type: DEFINITION_TYPE,
    name: definition.id,
  };
}

/** Object ids Entra would know: the seed apps, the user-assigned identities and the FHIR services' identities. */
function knownPrincipals(world: World): Set<string> {
  const principals = new Set(APPS.map((app) => lower(app.objectId)));
  for (const identity of world.identities.values()) principals.add(lower(identity.principalId));
  for (const service of world.fhirServices.values()) {
    const principal = encryptionPrincipal(world, service);
    if (principal) principals.add(lower(principal.principalId));
  }
  return principals;
}

interface AssignmentFilter {
  atScope: boolean;
  principalId?: string;
}

/** `atScope()`, `principalId eq '{id}'`, `assignedTo('{id}')`, joined with `and`. */
function parseAssignmentFilter(filter: string | null): AssignmentFilter | undefined {
  const result: AssignmentFilter = { atScope: false };
  if (!filter || filter.trim() === "") return result;
  for (const clause of filter.trim().split(/\s+and\s+/i)) {
    const principal = /^(?:principalId\s+eq\s+'([^']+)'|assignedTo\('([^']+)'\))$/i.exec(clause.trim());
    if (/^atScope\(\)$/i.test(clause.trim())) result.atScope = true;
    else if (principal) result.principalId = lower(principal[1] ?? principal[2] ?? "");
    else return undefined;
  }
  return result;
}

export interface RoleAssignmentInput {
  name: string;
  /** ARM scope; `/` is the root. */
  scope: string;
  /** As the caller names it (Azure reports it in the form sent). */
  roleDefinitionId: string;
  principalId: string;
  principalType?: string;
  description?: string | null;
  condition?: string | null;
  conditionVersion?: string | null;
  createdBy: string | null;
}

/** Stores a role assignment (no checks: callers decide who may), stamped `nowMs` (the emulator clock). One place builds the record for ARM, scenarios and fleets. */
export function addRoleAssignment(world: World, input: RoleAssignmentInput, nowMs: number): RoleAssignmentRecord {
  const now = new Date(nowMs).toISOString();
  const assignment: RoleAssignmentRecord = {
    name: lower(input.name),
    scope: input.scope.replace(/\/+$/, "") || "/",
    roleDefinitionId: input.roleDefinitionId,
    principalId: lower(input.principalId),
    principalType: input.principalType ?? "ServicePrincipal",
    description: input.description ?? null,
    condition: input.condition ?? null,
    conditionVersion: input.conditionVersion ?? null,
    createdOn: now,
    updatedOn: now,
    createdBy: input.createdBy,
    updatedBy: input.createdBy,
  };
  world.roleAssignments.set(assignment.name, assignment);
  return assignment;
}

function createAssignment(runtime: SandboxRuntime, request: ArmRequest, params: RouteParams): SandboxResponse {
  const { world } = runtime;
  const scope = scopeOf(params);
  const name = params.name ?? "";
  if (!GUID.test(name)) {
    return armError(400, "InvalidRoleAssignmentId", `The role assignment ID '${name}' is not valid. The role assignment ID must be a GUID.`);
  }
  const parsed = parseArmBody(request);
  if ("error" in parsed) return parsed.error;
  const properties = isRecord(parsed.body.properties) ? parsed.body.properties : undefined;
  if (!properties || typeof properties.roleDefinitionId !== "string" || typeof properties.principalId !== "string") {
    return invalidRequestContent("The request content was invalid: 'properties.roleDefinitionId' and 'properties.principalId' are required.");
  }
  const { roleDefinitionId, principalId } = properties as { roleDefinitionId: string; principalId: string };
  if (!findRoleDefinition(roleDefinitionId, world)) {
    return armError(400, "RoleDefinitionDoesNotExist", `The specified role definition with ID '${roleDefinitionId.split("/").pop()}' does not exist.`);
  }
  const principalType = typeof properties.principalType === "string" ? properties.principalType : undefined;
  // Entra replication delay: an unknown principal is refused unless principalType says what it is
  // (azure-contracts.md 6.2, PrincipalNotFound).
  if (!principalType && !knownPrincipals(world).has(lower(principalId))) {
    return armError(400, "PrincipalNotFound", `Principal ${principalId.replace(/-/g, "")} does not exist in the directory ${world.tenantId}. Check that you have the correct principal ID.`);
  }

  const existing = world.roleAssignments.get(lower(name));
  const sameAs = (assignment: RoleAssignmentRecord) =>
    normalizeScope(assignment.scope) === normalizeScope(scope) &&
    lower(assignment.principalId) === lower(principalId) &&
    findRoleDefinition(assignment.roleDefinitionId, world)?.id === findRoleDefinition(roleDefinitionId, world)?.id;
  if (existing) {
    if (sameAs(existing)) return json(200, assignmentResource(existing));
    return armError(400, "RoleAssignmentUpdateNotPermitted", "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.");
  }
  const duplicate = [...world.roleAssignments.values()].find(sameAs);
  if (duplicate) {
    return armError(409, "RoleAssignmentExists", `The role assignment already exists. The ID of the existing role assignment is ${duplicate.name.replace(/-/g, "")}.`);
  }
  const assignment = addRoleAssignment(world, {
    name,
    scope,
    roleDefinitionId,
    principalId,
    principalType: principalType ?? "ServicePrincipal",
    description: typeof properties.description === "string" ? properties.description : null,
    condition: typeof properties.condition === "string" ? properties.condition : null,
    conditionVersion: typeof properties.conditionVersion === "string" ? properties.conditionVersion : null,
    createdBy: request.caller.objectId,
  }, runtime.clock.now());
  // Real traffic: `createdBy` is null in the PUT answer and filled in on later reads.
  return json(201, assignmentResource(assignment, { createdBy: null }));
}

/**
 * What the caller may do at a scope, as `Permissions_ListForResourceGroup` / `_ListForResource` answer: one
 * entry per role assignment of the caller at or above the scope, its role's four lists as defined (ARM does
 * not merge or resolve wildcards; the client does).
 */
function listPermissions(runtime: SandboxRuntime, request: ArmRequest, params: RouteParams): SandboxResponse {
  const scope = scopeOf(params);
  const match = PERMISSION_SCOPE.exec(scope);
  if (!match) {
    return armError(400, "InvalidScope", `Permissions are listed for a resource group or a resource below one, not for the scope '${scope}'.`);
  }
  const missing = checkResourceGroup(runtime.world, { subscriptionId: match[1] ?? "", resourceGroup: match[2] ?? "" });
  if (missing) return missing;
  const principal = lower(request.caller.objectId);
  const permissions = [...runtime.world.roleAssignments.values()]
    .filter((assignment) => lower(assignment.principalId) === principal && scopeCovers(assignment.scope, scope))
    .flatMap((assignment) => {
      const definition = findRoleDefinition(assignment.roleDefinitionId, runtime.world);
      return definition ? [{ actions: definition.actions, notActions: definition.notActions, dataActions: definition.dataActions, notDataActions: definition.notDataActions }] : [];
    });
  return pagedList(request, permissions, { pageSize: ROLE_ASSIGNMENTS_PAGE_SIZE });
}

function stringsAt(value: unknown): string[] | undefined {
  if (value === undefined) return [];
  return Array.isArray(value) && value.every((item) => typeof item === "string" && item.trim() !== "") ? (value as string[]) : undefined;
}

/**
 * A custom role definition's PUT (RoleDefinitions_CreateOrUpdate, 2022-04-01): the GUID is the caller's,
 * a name may belong to one role only, and the caller needs `roleDefinitions/write` at every assignable
 * scope, not only where it sends the request (ARM checks each). The role lands where scenario
 * `defineRole` puts its roles, so RBAC evaluates it like them.
 */
function putRoleDefinition(runtime: SandboxRuntime, request: ArmRequest, params: RouteParams): SandboxResponse {
  const { world } = runtime;
  const id = lower(params.id ?? "");
  if (!GUID.test(id)) return armError(400, "InvalidRoleDefinitionId", `The role definition ID '${params.id}' is not valid. The role definition ID must be a GUID.`);
  if (ROLE_DEFINITIONS_BUILT_IN.some((definition) => definition.id === id)) return armError(400, "RoleDefinitionUpdateNotPermitted", `The built-in role definition '${id}' cannot be changed.`);
  const parsed = parseArmBody(request);
  if ("error" in parsed) return parsed.error;
  const properties = isRecord(parsed.body.properties) ? parsed.body.properties : {};
  if (typeof properties.roleName !== "string" || properties.roleName.trim() === "") return invalidRequestContent("The request content was invalid: 'properties.roleName' is required.");
  if (properties.type !== undefined && properties.type !== "CustomRole") return invalidRequestContent("The request content was invalid: 'properties.type' must be 'CustomRole'.");
  const permissions = Array.isArray(properties.permissions) ? properties.permissions : undefined;
  const permission = permissions?.length === 1 && isRecord(permissions[0]) ? permissions[0] : undefined;
  const lists = permission ? (["actions", "notActions", "dataActions", "notDataActions"] as const).map((field) => stringsAt(permission[field])) : [];
  if (!permission || lists.some((list) => list === undefined)) {
    return invalidRequestContent("The request content was invalid: 'properties.permissions' must be one { actions, notActions, dataActions, notDataActions } of string arrays.");
  }
  const [actions = [], notActions = [], dataActions = [], notDataActions = []] = lists as string[][];
  const assignableScopes = stringsAt(properties.assignableScopes);
  if (!assignableScopes || assignableScopes.length === 0 || assignableScopes.some((scope) => !scope.startsWith("/"))) {
    return armError(400, "InvalidAssignableScopes", "A custom role needs at least one assignable scope, e.g. /subscriptions/{id}.");
  }
  const roleName = properties.roleName;
  const sameName = roleDefinitions(world).find((definition) => lower(definition.roleName) === lower(roleName) && definition.id !== id);
  if (sameName) return armError(409, "RoleDefinitionWithSameNameExists", `A role definition cannot be updated with a name that already exists.`);
  const forbidden = assignableScopes.find((scope) => !findGrant(world, request.caller.objectId, scope, { action: `${DEFINITION_TYPE}/write` }));
  if (forbidden) {
    return armError(
      403,
      "AuthorizationFailed",
      `The client '${request.caller.appId}' with object id '${request.caller.objectId}' does not have authorization to perform action '${DEFINITION_TYPE}/write' over scope '${forbidden}' or the scope is invalid.`,
    );
  }
  const definition: RoleDefinition = {
    id,
    roleName,
    description: typeof properties.description === "string" ? properties.description : "",
    actions,
    notActions,
    dataActions,
    notDataActions,
    assignableScopes,
  };
  world.customRoles.set(id, definition);
  // RoleDefinitions_CreateOrUpdate documents 201 only, for a new role and an update alike.
  return json(201, definitionResource(definition, scopeOf(params)));
}

export function registerAuthorization(router: Router<ArmRequest>, runtime: SandboxRuntime): void {
  const world = () => runtime.world;
  const findAssignment = (params: RouteParams) => {
    const assignment = world().roleAssignments.get(lower(params.name ?? ""));
    return assignment && normalizeScope(assignment.scope) === normalizeScope(scopeOf(params)) ? assignment : undefined;
  };

  router.on("GET", `{*scope}/providers/${ASSIGNMENT_TYPE}`, (request, params) => {
    const scope = scopeOf(params);
    const filter = parseAssignmentFilter(request.query.get("$filter"));
    if (!filter) return armError(400, "UnsupportedQuery", `The filter '${request.query.get("$filter")}' is not supported. Use atScope(), principalId eq '{id}' or assignedTo('{id}').`);
    const matching = [...world().roleAssignments.values()]
      .filter((assignment) => (filter.atScope ? scopeCovers(assignment.scope, scope) : scopeCovers(assignment.scope, scope) || scopeCovers(scope, assignment.scope)))
      .filter((assignment) => !filter.principalId || lower(assignment.principalId) === filter.principalId);
    return pagedList(request, matching, { pageSize: ROLE_ASSIGNMENTS_PAGE_SIZE }, (assignment) => assignmentResource(assignment));
  });

  router.on("GET", `{*scope}/providers/${ASSIGNMENT_TYPE}/{name}`, (_request, params) => {
    const assignment = findAssignment(params);
    if (!assignment) return armError(404, "RoleAssignmentNotFound", `The role assignment '${params.name}' is not found.`);
    return json(200, assignmentResource(assignment));
  });

  router.on("PUT", `{*scope}/providers/${ASSIGNMENT_TYPE}/{name}`, (request, params) => createAssignment(runtime, request, params));

  router.on("DELETE", `{*scope}/providers/${ASSIGNMENT_TYPE}/{name}`, (_request, params) => {
    const assignment = findAssignment(params);
    if (!assignment) return empty(204);
    world().roleAssignments.delete(assignment.name);
    return json(200, assignmentResource(assignment));
  });

  router.on("GET", `{*scope}/providers/${PERMISSIONS_TYPE}`, (request, params) => listPermissions(runtime, request, params));

  router.on("GET", `{*scope}/providers/${DEFINITION_TYPE}`, (request, params) => {
    const filter = request.query.get("$filter") ?? "";
    const roleName = /roleName\s+eq\s+'([^']+)'/i.exec(filter)?.[1];
    const matching = roleDefinitions(runtime.world).filter((definition) => !roleName || lower(definition.roleName) === lower(roleName));
    return pagedList(request, matching, { pageSize: ROLE_ASSIGNMENTS_PAGE_SIZE }, (definition) => definitionResource(definition, scopeOf(params)));
  });

  router.on("PUT", `{*scope}/providers/${DEFINITION_TYPE}/{id}`, (request, params) => putRoleDefinition(runtime, request, params));

  router.on("GET", `{*scope}/providers/${DEFINITION_TYPE}/{id}`, (_request, params) => {
    const definition = findRoleDefinition(params.id ?? "", runtime.world);
    if (!definition) return armError(404, "RoleDefinitionDoesNotExist", `The specified role definition with ID '${params.id}' does not exist.`);
    return json(200, definitionResource(definition, scopeOf(params)));
  });
}
