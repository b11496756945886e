import { empty, isRecord, json } from "../http/responses.js";
import type { Router } from "../http/router.js";
import type { RouteParams, SandboxResponse } from "../http/types.js";
import { scopeCovers } from "../rbac.js";
import type { SandboxRuntime } from "../runtime.js";
import { OTHER_SUBSCRIPTION_ID, SUBSCRIPTION_ID } from "../seed.js";
import { lower, resourceGroupKey, type ResourceGroupRecord, type World } from "../world.js";
import { parseArmBody, parseTags } from "./body.js";
import { armError, invalidRequestContent, resourceGroupNotFound } from "./errors.js";
import { normalizeLocation, type FhirServiceResource, type WorkspaceResource } from "./healthcare-apis-model.js";
import { trackedGenericResources } from "./generic-resources.js";
import { managedHsmResourceId, MANAGED_HSM_TYPE, vaultResourceId, VAULT_TYPE } from "./key-vault.js";
import { identityResourceId, IDENTITY_TYPE } from "./managed-identity.js";
import { pagedList } from "./paging.js";
import type { ArmRequest } from "./request.js";
import { checkResourceGroup, checkSubscription } from "./scope.js";

/**
 * ARM's own `Microsoft.Resources`: tenants, subscriptions, resource groups and the generic resource
 * lists (resources.json 2025-04-01, subscriptions.json 2022-12-01). The generic lists show every
 * tracked resource of the emulated providers, nested FHIR services included, with `$filter`, `$top`
 * and `$expand` as ARM documents them.
 */

const RESOURCE_GROUP_TYPE = "Microsoft.Resources/resourceGroups";
/** Resources and resource groups per page unless `$top` asks for fewer; ARM's own limit is 1,000. */
export const RESOURCES_PAGE_SIZE = 1000;
const RESOURCE_PAGING = { pageSize: RESOURCES_PAGE_SIZE, top: true };
const RESOURCE_GROUP_NAME = /^[-\w._()]{1,90}$/;

const SUBSCRIPTION_NAMES: Record<string, string> = {
  [SUBSCRIPTION_ID]: "cmk-sandbox",
  [OTHER_SUBSCRIPTION_ID]: "cmk-sandbox-other",
};

function subscriptionResource(world: World, subscriptionId: string): Record<string, unknown> {
  return {
    id: `/subscriptions/${subscriptionId}`,
    authorizationSource: "RoleBased",
    managedByTenants: [],
    subscriptionId,
    tenantId: world.tenantId,
    displayName: SUBSCRIPTION_NAMES[subscriptionId] ?? `cmk-sandbox-${subscriptionId.slice(0, 8)}`,
    state: "Enabled",
    subscriptionPolicies: { locationPlacementId: "Public_2014-09-01", quotaId: "PayAsYouGo_2014-09-01", spendingLimit: "Off" },
  };
}

/** A principal sees a subscription when a role assignment of its applies at, above or below it (as `az account list` shows). */
function visibleSubscriptions(world: World, principalId: string): string[] {
  const principal = lower(principalId);
  const assignments = [...world.roleAssignments.values()].filter((assignment) => lower(assignment.principalId) === principal);
  return [...world.subscriptions].filter((subscriptionId) => {
    const scope = `/subscriptions/${subscriptionId}`;
    return assignments.some((assignment) => scopeCovers(assignment.scope, scope) || scopeCovers(scope, assignment.scope));
  });
}

export function resourceGroupResource(group: ResourceGroupRecord): Record<string, unknown> {
  return {
    id: `/subscriptions/${group.subscriptionId}/resourceGroups/${group.name}`,
    name: group.name,
    type: RESOURCE_GROUP_TYPE,
    location: group.location,
    ...(group.tags ? { tags: group.tags } : {}),
    properties: { provisioningState: "Succeeded" },
  };
}

/** A tracked resource as the generic lists show it (GenericResourceExpanded). */
interface TrackedResource {
  id: string;
  name: string;
  type: string;
  subscriptionId: string;
  resourceGroup: string;
  location: string;
  tags: Record<string, string>;
  kind?: string;
  identity?: unknown;
  createdTime?: string;
  changedTime?: string;
  provisioningState?: string;
}

/** Every tracked resource of the world, in a stable order (workspaces, FHIR services, vaults, managed HSMs, identities, the generic provider's). */
function trackedResources(world: World): TrackedResource[] {
  const placed = (id: string) => {
    const match = /^\/subscriptions\/([^/]+)\/resourcegroups\/([^/]+)\//i.exec(id);
    return { subscriptionId: match?.[1] ?? "", resourceGroup: match?.[2] ?? "" };
  };
  const healthcare = (resource: WorkspaceResource | FhirServiceResource): TrackedResource => ({
    id: resource.id,
    name: resource.name,
    type: resource.type,
    ...placed(resource.id),
    location: resource.location,
    tags: resource.tags,
    ...("kind" in resource ? { kind: resource.kind } : {}),
    ...("identity" in resource && resource.identity ? { identity: resource.identity } : {}),
    createdTime: resource.systemData.createdAt,
    changedTime: resource.systemData.lastModifiedAt,
    provisioningState: resource.properties.provisioningState,
  });
  const resources: TrackedResource[] = [...[...world.workspaces.values()].map(healthcare), ...[...world.fhirServices.values()].map(healthcare)];
  const keyStores = [
    ...[...world.vaults.values()].map((store) => ({ store, id: vaultResourceId(store), type: VAULT_TYPE })),
    ...[...world.managedHsms.values()].map((store) => ({ store, id: managedHsmResourceId(store), type: MANAGED_HSM_TYPE })),
  ];
  for (const { store, id, type } of keyStores) {
    resources.push({
      id,
      name: store.name,
      type,
      subscriptionId: store.subscriptionId,
      resourceGroup: store.resourceGroup,
      location: store.location,
      tags: {},
      createdTime: store.createdAt,
      changedTime: store.createdAt,
      provisioningState: "Succeeded",
    });
  }
  for (const identity of world.identities.values()) {
    resources.push({
      id: identityResourceId(identity),
      name: identity.name,
      type: IDENTITY_TYPE,
      subscriptionId: identity.subscriptionId,
      resourceGroup: identity.resourceGroup,
      location: identity.location,
      tags: identity.tags,
      provisioningState: "Succeeded",
    });
  }
  for (const record of trackedGenericResources(world)) {
    resources.push({
      id: record.id,
      name: record.id.split("/").pop() ?? "",
      type: record.type,
      subscriptionId: record.subscriptionId,
      resourceGroup: record.resourceGroup,
      location: record.location ?? "",
      tags: record.tags ?? {},
      ...(record.body.identity !== undefined ? { identity: record.body.identity } : {}),
      createdTime: record.createdAt,
      changedTime: record.changedAt,
      provisioningState: "Succeeded",
    });
  }
  return resources;
}

function genericResource(resource: TrackedResource, expand: Set<string>): Record<string, unknown> {
  const body: Record<string, unknown> = { id: resource.id, name: resource.name, type: resource.type };
  if (resource.kind !== undefined) body.kind = resource.kind;
  body.location = resource.location;
  if (resource.identity !== undefined) body.identity = resource.identity;
  body.tags = resource.tags;
  for (const member of ["createdTime", "changedTime", "provisioningState"] as const) {
    if (expand.has(member.toLowerCase()) && resource[member] !== undefined) body[member] = resource[member];
  }
  return body;
}

type ResourceFilter = (resource: TrackedResource) => boolean;

/**
 * `$filter` of the generic lists, the forms resources.json documents: `eq`/`ne` on resourceType, name,
 * resourceGroup, location and identity/principalId, `substringof('x', name|resourceGroup)`,
 * `tagName eq 'n' [and tagValue eq 'v']` and `startswith(tagName, 'p')`, joined with `and`.
 */
function parseResourceFilter(filter: string | null): ResourceFilter | undefined {
  if (filter === null || filter.trim() === "") return () => true;
  const clauses = filter.trim().split(/\s+and\s+/i).map((clause) => clause.trim());
  const tests: ResourceFilter[] = [];
  let tagName: string | undefined;
  let tagValue: string | undefined;
  for (const clause of clauses) {
    const comparison = /^(resourceType|name|resourceGroup|location|identity\/principalId)\s+(eq|ne)\s+'([^']*)'$/i.exec(clause);
    const substring = /^substringof\(\s*'([^']*)'\s*,\s*(name|resourceGroup)\s*\)$/i.exec(clause);
    const tag = /^(tagName|tagValue)\s+eq\s+'([^']*)'$/i.exec(clause);
    const prefix = /^startswith\(\s*tagName\s*,\s*'([^']*)'\s*\)$/i.exec(clause);
    if (comparison) {
      const [, property = "", operator = "", expected = ""] = comparison;
      const read = (resource: TrackedResource): string => {
        switch (property.toLowerCase()) {
          case "resourcetype":
            return resource.type;
          case "name":
            return resource.name;
          case "resourcegroup":
            return resource.resourceGroup;
          case "location":
            return resource.location;
          default:
            return isRecord(resource.identity) && typeof resource.identity.principalId === "string" ? resource.identity.principalId : "";
        }
      };
      const equal = (resource: TrackedResource) => lower(read(resource)) === lower(expected);
      tests.push(operator.toLowerCase() === "eq" ? equal : (resource) => !equal(resource));
    } else if (substring) {
      const [, needle = "", property = ""] = substring;
      tests.push((resource) => lower(property.toLowerCase() === "name" ? resource.name : resource.resourceGroup).includes(lower(needle)));
    } else if (tag) {
      if (tag[1]?.toLowerCase() === "tagname") tagName = tag[2];
      else tagValue = tag[2];
    } else if (prefix) {
      const start = lower(prefix[1] ?? "");
      tests.push((resource) => Object.keys(resource.tags).some((name) => lower(name).startsWith(start)));
    } else {
      return undefined;
    }
  }
  if (tagValue !== undefined && tagName === undefined) return undefined;
  if (tagName !== undefined) {
    const name = lower(tagName);
    tests.push((resource) => Object.entries(resource.tags).some(([key, value]) => lower(key) === name && (tagValue === undefined || value === tagValue)));
  }
  return (resource) => tests.every((test) => test(resource));
}

function invalidFilter(filter: string | null): SandboxResponse {
  return armError(400, "InvalidFilterInQueryString", `Invalid $filter '${filter}' specified in the query string.`);
}

function listResources(world: World, request: ArmRequest, inScope: ResourceFilter): SandboxResponse {
  const filter = request.query.get("$filter");
  const matches = parseResourceFilter(filter);
  if (!matches) return invalidFilter(filter);
  // A tag filter leaves the resources' own tags out of the answer (resources.json, Resources_List).
  const tagFiltered = /tagName/i.test(filter ?? "");
  const expand = new Set((request.query.get("$expand") ?? "").split(",").map((member) => member.trim().toLowerCase()).filter(Boolean));
  const selected = trackedResources(world).filter((resource) => inScope(resource) && matches(resource));
  return pagedList(request, selected, RESOURCE_PAGING, (resource) => {
    const body = genericResource(resource, expand);
    if (tagFiltered) delete body.tags;
    return body;
  });
}

function putResourceGroup(world: World, request: ArmRequest, params: RouteParams): SandboxResponse {
  const subscriptionError = checkSubscription(world, params.subscriptionId);
  if (subscriptionError) return subscriptionError;
  const name = params.resourceGroup ?? "";
  if (!RESOURCE_GROUP_NAME.test(name) || name.endsWith(".")) {
    return armError(400, "InvalidResourceGroup", `The provided resource group name '${name}' has these invalid characters: it must be 1-90 letters, digits, '-', '_', '.', '(' or ')', not ending in '.'.`);
  }
  const parsed = parseArmBody(request);
  if ("error" in parsed) return parsed.error;
  const { body } = parsed;
  if (typeof body.location !== "string" || body.location.trim() === "") return armError(400, "LocationRequired", "The location property is required for this definition.");
  const tags = parseTags(body.tags);
  if (!tags) return invalidRequestContent("The request content was invalid: 'tags' must map strings to strings.");
  const key = resourceGroupKey(params.subscriptionId ?? "", name);
  const existing = world.resourceGroups.get(key);
  const location = normalizeLocation(body.location);
  if (existing && existing.location !== location) {
    return armError(400, "InvalidResourceGroupLocation", `Invalid resource group location '${location}'. The Resource group already exists in location '${existing.location}'.`);
  }
  const group: ResourceGroupRecord = { subscriptionId: existing?.subscriptionId ?? params.subscriptionId ?? "", name: existing?.name ?? name, location };
  if (body.tags !== undefined) group.tags = tags;
  else if (existing?.tags) group.tags = existing.tags;
  world.resourceGroups.set(key, group);
  return json(existing ? 200 : 201, resourceGroupResource(group));
}

export function registerResourceManager(router: Router<ArmRequest>, runtime: SandboxRuntime): void {
  const world = () => runtime.world;

  router.on("GET", "/tenants", (request) =>
    pagedList(request, [world().tenantId], { pageSize: 100 }, (tenantId) => ({
      id: `/tenants/${tenantId}`,
      tenantId,
      tenantCategory: "Home",
      country: "United States",
      countryCode: "US",
      displayName: "cmk-service sandbox",
      domains: ["cmksandbox.onmicrosoft.com"],
      defaultDomain: "cmksandbox.onmicrosoft.com",
      tenantType: "AAD",
    })),
  );

  router.on("GET", "/subscriptions", (request) =>
    pagedList(request, visibleSubscriptions(world(), request.caller.objectId), { pageSize: 100 }, (subscriptionId) => subscriptionResource(world(), subscriptionId)),
  );

  router.on("GET", "/subscriptions/{subscriptionId}", (_request, params) => {
    const error = checkSubscription(world(), params.subscriptionId);
    if (error) return error;
    const subscriptionId = [...world().subscriptions].find((candidate) => candidate === lower(params.subscriptionId ?? "")) ?? "";
    return json(200, subscriptionResource(world(), subscriptionId));
  });

  router.on("GET", "/subscriptions/{subscriptionId}/resourcegroups", (request, params) => {
    const error = checkSubscription(world(), params.subscriptionId);
    if (error) return error;
    const filter = request.query.get("$filter");
    const tag = filter ? /^tagName\s+eq\s+'([^']*)'(?:\s+and\s+tagValue\s+eq\s+'([^']*)')?$/i.exec(filter.trim()) : undefined;
    if (filter && filter.trim() !== "" && !tag) return invalidFilter(filter);
    const groups = [...world().resourceGroups.values()].filter(
      (group) =>
        lower(group.subscriptionId) === lower(params.subscriptionId ?? "") &&
        (!tag || Object.entries(group.tags ?? {}).some(([name, value]) => lower(name) === lower(tag[1] ?? "") && (tag[2] === undefined || value === tag[2]))),
    );
    return pagedList(request, groups, RESOURCE_PAGING, resourceGroupResource);
  });

  router.on(["GET", "HEAD"], "/subscriptions/{subscriptionId}/resourcegroups/{resourceGroup}", (request, params) => {
    const error = checkSubscription(world(), params.subscriptionId);
    if (error) return error;
    const group = world().resourceGroups.get(resourceGroupKey(params.subscriptionId ?? "", params.resourceGroup ?? ""));
    if (request.method === "HEAD") return empty(group ? 204 : 404);
    return group ? json(200, resourceGroupResource(group)) : resourceGroupNotFound(params.resourceGroup ?? "");
  });

  router.on("PUT", "/subscriptions/{subscriptionId}/resourcegroups/{resourceGroup}", (request, params) => putResourceGroup(world(), request, params));

  router.on("GET", "/subscriptions/{subscriptionId}/resources", (request, params) => {
    const error = checkSubscription(world(), params.subscriptionId);
    if (error) return error;
    return listResources(world(), request, (resource) => lower(resource.subscriptionId) === lower(params.subscriptionId ?? ""));
  });

  router.on("GET", "/subscriptions/{subscriptionId}/resourcegroups/{resourceGroup}/resources", (request, params) => {
    const error = checkResourceGroup(world(), params);
    if (error) return error;
    return listResources(
      world(),
      request,
      (resource) => lower(resource.subscriptionId) === lower(params.subscriptionId ?? "") && lower(resource.resourceGroup) === lower(params.resourceGroup ?? ""),
    );
  });
}
