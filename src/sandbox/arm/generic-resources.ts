import { createHash } from "node:crypto";
import { empty, isRecord, json } from "../http/responses.js";
import type { Router } from "../http/router.js";
import type { RouteParams, SandboxResponse } from "../http/types.js";
import { armTime } from "../ids.js";
import type { SandboxRuntime } from "../runtime.js";
import { idKey, type GenericResourceRecord, type World } from "../world.js";
import { parseArmBody, parseTags } from "./body.js";
import { vaultResourceId } from "./key-vault.js";
import { armError, invalidRequestContent, parentResourceNotFound, resourceNotFound } from "./errors.js";
import { normalizeLocation } from "./healthcare-apis-model.js";
import { pagedList } from "./paging.js";
import type { ArmRequest } from "./request.js";
import { checkResourceGroup } from "./scope.js";

/**
 * A small generic resource provider for the types cmk-service's own template (deploy/cmk-service.json)
 * deploys and no other module serves: Container Apps (`Microsoft.App/managedEnvironments`,
 * `containerApps`), Azure Managed Redis (`Microsoft.Cache/redisEnterprise`, `databases`,
 * `accessPolicyAssignments`) and Event Grid system topics (`Microsoft.EventGrid/systemTopics`,
 * `eventSubscriptions`). PUT, GET, DELETE and the lists of a resource group (or of a parent). It stores
 * the body as sent and answers with id, name, type, location, tags and the properties, plus what the
 * real RP computes that the template reads back (a container app's ingress FQDN, the cache's host
 * name) and `provisioningState: "Succeeded"`. It checks what the real RP requires (name rules,
 * required properties, the parent or referenced resource existing) with ARM-shaped 400/404 errors;
 * RBAC is ARM's front door's, as for every provider.
 *
 * What it does not do: the writes are synchronous (the real ones are long-running), nothing runs
 * (no container, no cache), and an event subscription made here delivers nothing: the emulated Key
 * Vault events go to the subscriptions of `PUT /_sandbox/event-subscriptions`. Property shapes and
 * api-versions are those of azure-rest-api-specs (ContainerApps stable 2025-01-01, RedisEnterprise
 * stable 2025-04-01, EventGrid stable 2025-02-15). Error codes where the specs name none are this
 * emulator's.
 */

interface Context {
  world: World;
  params: RouteParams;
  /** The resource's id, as requested. */
  id: string;
  location: string | undefined;
}

interface GenericType {
  /** `Namespace/type[/child…]`. */
  type: string;
  tracked: boolean;
  name: RegExp;
  nameRule: string;
  /** The first problem with the body, as an ARM error; undefined when it is acceptable. */
  validate?: (body: Record<string, unknown>, context: Context) => SandboxResponse | undefined;
  /** Properties the RP adds to what was sent. */
  computed?: (record: GenericResourceRecord, world: World) => Record<string, unknown>;
  /** The response's `name`: the leaf (default) or every name segment joined with `/` (Redis databases). */
  fullName?: boolean;
}

const SUB_RG = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers";

/** Ids as this module keys them: `…/providers/{ns}/{type}/{name}[/{child}/{name}…]`. */
function leafOf(id: string): string {
  return id.split("/").pop() ?? "";
}

function shortHash(text: string, length: number): string {
  return createHash("sha256").update(text.toLowerCase()).digest("hex").slice(0, length);
}

function badRequest(code: string, message: string): SandboxResponse {
  return armError(400, code, message);
}

function properties(body: Record<string, unknown>): Record<string, unknown> {
  return isRecord(body.properties) ? body.properties : {};
}

function find(world: World, id: string): GenericResourceRecord | undefined {
  return world.genericResources.get(idKey(id));
}

/** The parent of a nested resource id (drops the last type and name). */
function parentId(id: string): string {
  return id.split("/").slice(0, -2).join("/");
}

// --- Microsoft.App ------------------------------------------------------------------------

const ENVIRONMENT_TYPE = "Microsoft.App/managedEnvironments";

/** The environment's default domain, as ACA makes one: `{word}-{hash}.{region}.azurecontainerapps.io`. */
function defaultDomain(environment: GenericResourceRecord): string {
  return `cmk-${shortHash(environment.id, 8)}.${environment.location ?? "westus3"}.azurecontainerapps.io`;
}

function validateContainerApp(body: Record<string, unknown>, context: Context): SandboxResponse | undefined {
  const props = properties(body);
  const environmentId = props.environmentId ?? props.managedEnvironmentId;
  if (typeof environmentId !== "string" || environmentId === "") {
    return invalidRequestContent("The request content was invalid: 'properties.environmentId' (or 'managedEnvironmentId') is required.");
  }
  const environment = find(context.world, environmentId);
  if (!environment || environment.type.toLowerCase() !== ENVIRONMENT_TYPE.toLowerCase()) {
    return badRequest("ManagedEnvironmentNotFound", `The managed environment '${environmentId}' was not found.`);
  }
  if (environment.location !== context.location) {
    return badRequest("InvalidLocation", `The container app's location '${context.location}' must be its environment's, '${environment.location}'.`);
  }
  const template = isRecord(props.template) ? props.template : {};
  const containers = Array.isArray(template.containers) ? template.containers : [];
  if (containers.length === 0) return invalidRequestContent("The request content was invalid: 'properties.template.containers' needs at least one container.");
  for (const [index, container] of containers.entries()) {
    if (!isRecord(container) || typeof container.name !== "string" || typeof container.image !== "string" || container.image === "") {
      return invalidRequestContent(`The request content was invalid: 'properties.template.containers[${index}]' needs 'name' and 'image'.`);
    }
    const env = container.env ?? [];
    if (!Array.isArray(env) || env.some((variable) => !isRecord(variable) || typeof variable.name !== "string" || (typeof variable.value !== "string" && typeof variable.secretRef !== "string"))) {
      return invalidRequestContent(`The request content was invalid: 'properties.template.containers[${index}].env' must list { name, value } or { name, secretRef }.`);
    }
  }
  const configuration = isRecord(props.configuration) ? props.configuration : {};
  if (configuration.ingress !== undefined) {
    const ingress = isRecord(configuration.ingress) ? configuration.ingress : {};
    if (!Number.isInteger(ingress.targetPort)) return invalidRequestContent("The request content was invalid: 'properties.configuration.ingress.targetPort' must be an integer.");
  }
  const identity = isRecord(body.identity) ? body.identity : undefined;
  for (const identityId of Object.keys(identity && isRecord(identity.userAssignedIdentities) ? identity.userAssignedIdentities : {})) {
    if (!context.world.identities.has(idKey(identityId))) {
      return badRequest("InvalidUserAssignedIdentity", `The user-assigned identity '${identityId}' was not found.`);
    }
  }
  return undefined;
}

function containerAppComputed(record: GenericResourceRecord, world: World): Record<string, unknown> {
  const props = properties(record.body);
  const environmentId = String(props.environmentId ?? props.managedEnvironmentId ?? "");
  const environment = find(world, environmentId);
  const domain = environment ? defaultDomain(environment) : "";
  const name = leafOf(record.id);
  const revision = `${name}--${shortHash(`${record.id}${record.changedAt}`, 7)}`;
  const configuration = isRecord(props.configuration) ? { ...props.configuration } : {};
  if (isRecord(configuration.ingress)) {
    const ingress = configuration.ingress;
    configuration.ingress = { ...ingress, fqdn: ingress.external === true ? `${name}.${domain}` : `${name}.internal.${domain}`, transport: ingress.transport ?? "auto" };
  }
  return {
    ...props,
    environmentId,
    managedEnvironmentId: environmentId,
    configuration,
    latestRevisionName: revision,
    latestReadyRevisionName: revision,
    latestRevisionFqdn: isRecord(configuration.ingress) ? `${revision}.${domain}` : "",
    runningStatus: "Running",
  };
}

// --- Microsoft.Cache ----------------------------------------------------------------------

const REDIS_SKU = /^(Balanced_B\d+|MemoryOptimized_M\d+|ComputeOptimized_X\d+|FlashOptimized_A\d+|Enterprise_E\d+|EnterpriseFlash_F\d+)$/;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function validateRedisEnterprise(body: Record<string, unknown>): SandboxResponse | undefined {
  const sku = isRecord(body.sku) ? body.sku : undefined;
  if (!sku || typeof sku.name !== "string") return invalidRequestContent("The request content was invalid: 'sku.name' is required.");
  if (!REDIS_SKU.test(sku.name)) return badRequest("InvalidSku", `The SKU '${sku.name}' is not a Redis Enterprise or Azure Managed Redis SKU (e.g. Balanced_B1).`);
  return undefined;
}

/** Azure Managed Redis hosts are `{name}.{region}.redis.azure.net`; Redis Enterprise's `….redisenterprise.cache.azure.net`. */
function redisComputed(record: GenericResourceRecord): Record<string, unknown> {
  const sku = isRecord(record.body.sku) ? String(record.body.sku.name) : "";
  const domain = sku.startsWith("Enterprise") ? "redisenterprise.cache.azure.net" : "redis.azure.net";
  return { minimumTlsVersion: "1.2", ...properties(record.body), hostName: `${leafOf(record.id)}.${record.location}.${domain}`, redisVersion: "7.4", resourceState: "Running" };
}

const CLIENT_PROTOCOLS = ["Encrypted", "Plaintext"];
const CLUSTERING_POLICIES = ["EnterpriseCluster", "OSSCluster", "NoCluster"];

function validateDatabase(body: Record<string, unknown>): SandboxResponse | undefined {
  const props = properties(body);
  if (props.clientProtocol !== undefined && !CLIENT_PROTOCOLS.includes(String(props.clientProtocol))) {
    return invalidRequestContent(`The request content was invalid: 'properties.clientProtocol' must be one of ${CLIENT_PROTOCOLS.join(", ")}.`);
  }
  if (props.clusteringPolicy !== undefined && !CLUSTERING_POLICIES.includes(String(props.clusteringPolicy))) {
    return invalidRequestContent(`The request content was invalid: 'properties.clusteringPolicy' must be one of ${CLUSTERING_POLICIES.join(", ")}.`);
  }
  if (props.port !== undefined && props.port !== 10000) return badRequest("InvalidPort", `Port ${String(props.port)} is not available: Azure Managed Redis listens on 10000.`);
  if (props.accessKeysAuthentication !== undefined && !["Enabled", "Disabled"].includes(String(props.accessKeysAuthentication))) {
    return invalidRequestContent("The request content was invalid: 'properties.accessKeysAuthentication' must be Enabled or Disabled.");
  }
  return undefined;
}

function databaseComputed(record: GenericResourceRecord): Record<string, unknown> {
  return { clientProtocol: "Encrypted", clusteringPolicy: "OSSCluster", evictionPolicy: "VolatileLRU", port: 10000, accessKeysAuthentication: "Disabled", ...properties(record.body), resourceState: "Running" };
}

function validateAccessPolicyAssignment(body: Record<string, unknown>): SandboxResponse | undefined {
  const props = properties(body);
  const user = isRecord(props.user) ? props.user : {};
  if (typeof props.accessPolicyName !== "string") return invalidRequestContent("The request content was invalid: 'properties.accessPolicyName' is required.");
  // Azure Managed Redis has one built-in access policy, "default" (Data Owner); custom policies are not offered.
  if (props.accessPolicyName !== "default") return badRequest("InvalidAccessPolicy", `The access policy '${props.accessPolicyName}' does not exist; use 'default'.`);
  if (typeof user.objectId !== "string" || !GUID.test(user.objectId)) return invalidRequestContent("The request content was invalid: 'properties.user.objectId' must be the identity's object id (a GUID).");
  return undefined;
}

// --- Microsoft.EventGrid ------------------------------------------------------------------

function validateSystemTopic(body: Record<string, unknown>, context: Context): SandboxResponse | undefined {
  const props = properties(body);
  if (typeof props.source !== "string" || typeof props.topicType !== "string") {
    return invalidRequestContent("The request content was invalid: 'properties.source' and 'properties.topicType' are required.");
  }
  const vaultName = /\/providers\/Microsoft\.KeyVault\/vaults\/([^/]+)$/i.exec(props.source)?.[1];
  if (!vaultName || props.topicType.toLowerCase() !== "microsoft.keyvault.vaults") {
    return badRequest("InvalidTopicType", "The sandbox emulates system topics of Key Vault vaults only: topicType 'Microsoft.KeyVault.vaults' and a vault's resource id as source.");
  }
  const vault = context.world.vaults.get(vaultName.toLowerCase());
  if (!vault || idKey(vaultResourceId(vault)) !== idKey(props.source)) {
    return badRequest("InvalidSourceResource", `The source resource '${props.source}' was not found.`);
  }
  // Event Grid places a system topic in its source's region.
  if (normalizeLocation(vault.location) !== context.location) {
    return badRequest("InvalidLocation", `The system topic's location '${context.location}' must be its source's, '${normalizeLocation(vault.location)}'.`);
  }
  const other = [...context.world.genericResources.values()].find(
    (record) => record.type === "Microsoft.EventGrid/systemTopics" && idKey(record.id) !== idKey(context.id) && idKey(String(properties(record.body).source)) === idKey(props.source as string),
  );
  if (other) return badRequest("OnlyOneSystemTopicPerSource", `The source resource already has the system topic '${other.id}'.`);
  return undefined;
}

function validateEventSubscription(body: Record<string, unknown>): SandboxResponse | undefined {
  const props = properties(body);
  const destination = isRecord(props.destination) ? props.destination : undefined;
  if (!destination || typeof destination.endpointType !== "string") return invalidRequestContent("The request content was invalid: 'properties.destination.endpointType' is required.");
  if (destination.endpointType !== "WebHook") return badRequest("InvalidDestination", "The sandbox emulates WebHook destinations only.");
  const endpoint = isRecord(destination.properties) ? destination.properties.endpointUrl : undefined;
  if (typeof endpoint !== "string" || !/^https:\/\/[^/]+/i.test(endpoint)) {
    return badRequest("InvalidEndpointUrl", "The destination's 'endpointUrl' must be an https URL.");
  }
  if (props.eventDeliverySchema !== undefined && !["EventGridSchema", "CloudEventSchemaV1_0", "CustomInputSchema"].includes(String(props.eventDeliverySchema))) {
    return invalidRequestContent("The request content was invalid: 'properties.eventDeliverySchema' must be EventGridSchema, CloudEventSchemaV1_0 or CustomInputSchema.");
  }
  return undefined;
}

/** The destination as Event Grid answers it: the endpoint's URL is write-only, its base URL shown. */
function eventSubscriptionComputed(record: GenericResourceRecord): Record<string, unknown> {
  const props = properties(record.body);
  const destination = isRecord(props.destination) ? props.destination : {};
  const destinationProperties = isRecord(destination.properties) ? destination.properties : {};
  const { endpointUrl, ...rest } = destinationProperties;
  const base = typeof endpointUrl === "string" ? endpointUrl.split("?")[0] : undefined;
  return { ...props, topic: parentId(record.id), destination: { ...destination, properties: { ...rest, endpointBaseUrl: base } } };
}

// --- The types ----------------------------------------------------------------------------

const LOWER_DASHED = (min: number, max: number) => new RegExp(`^(?!.*--)[a-z][a-z0-9-]{${min - 2},${max - 2}}[a-z0-9]$`);

export const GENERIC_TYPES: readonly GenericType[] = [
  {
    type: ENVIRONMENT_TYPE,
    tracked: true,
    name: LOWER_DASHED(2, 60),
    nameRule: "2-60 lower-case letters, digits and '-', starting with a letter, ending with a letter or digit, no '--'",
    computed: (record) => ({ ...properties(record.body), defaultDomain: defaultDomain(record), staticIp: "20.118.0.10" }),
  },
  {
    type: "Microsoft.App/containerApps",
    tracked: true,
    name: LOWER_DASHED(2, 32),
    nameRule: "2-32 lower-case letters, digits and '-', starting with a letter, ending with a letter or digit, no '--'",
    validate: validateContainerApp,
    computed: containerAppComputed,
  },
  {
    type: "Microsoft.Cache/redisEnterprise",
    tracked: true,
    name: /^(?!.*--)[A-Za-z0-9][A-Za-z0-9-]{0,58}[A-Za-z0-9]$|^[A-Za-z0-9]$/,
    nameRule: "1-60 letters, digits and '-', starting and ending with a letter or digit, no '--'",
    validate: validateRedisEnterprise,
    computed: redisComputed,
  },
  {
    type: "Microsoft.Cache/redisEnterprise/databases",
    tracked: false,
    // Azure Managed Redis has one database per cache, named "default".
    name: /^default$/,
    nameRule: "'default' (a cache has one database)",
    validate: validateDatabase,
    computed: databaseComputed,
    fullName: true,
  },
  {
    type: "Microsoft.Cache/redisEnterprise/databases/accessPolicyAssignments",
    tracked: false,
    name: /^[A-Za-z0-9]{1,60}$/,
    nameRule: "1-60 letters and digits",
    validate: validateAccessPolicyAssignment,
  },
  {
    type: "Microsoft.EventGrid/systemTopics",
    tracked: true,
    name: /^[A-Za-z0-9-]{3,128}$/,
    nameRule: "3-128 letters, digits and '-'",
    validate: validateSystemTopic,
    computed: (record) => ({ ...properties(record.body), metricResourceId: shortHash(record.id, 32).replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, "$1-$2-$3-$4-$5") }),
  },
  {
    type: "Microsoft.EventGrid/systemTopics/eventSubscriptions",
    tracked: false,
    name: /^[A-Za-z0-9-]{3,64}$/,
    nameRule: "3-64 letters, digits and '-'",
    validate: validateEventSubscription,
    computed: eventSubscriptionComputed,
  },
];

/** The route of a type: `…/providers/{ns}/{type}/{p0}/{child}/{p1}…/{name}`; its list drops the last `{name}`. */
function routeOf(type: string): { item: string; list: string; depth: number } {
  const [namespace = "", ...segments] = type.split("/");
  const parents = segments.slice(0, -1).map((segment, index) => `${segment}/{parent${index}}`);
  const base = `${SUB_RG}/${namespace}/${[...parents, segments.at(-1)].join("/")}`;
  return { item: `${base}/{name}`, list: base, depth: segments.length };
}

/** `identity` as the RPs answer it: each user-assigned identity with its principal and client ids. */
function identityOf(identity: unknown, world: World): unknown {
  if (!isRecord(identity) || !isRecord(identity.userAssignedIdentities)) return identity;
  const userAssignedIdentities = Object.fromEntries(
    Object.keys(identity.userAssignedIdentities).map((id) => {
      const known = world.identities.get(idKey(id));
      return [id, known ? { principalId: known.principalId, clientId: known.clientId } : {}];
    }),
  );
  return { ...identity, userAssignedIdentities };
}

function resourceOf(spec: GenericType, record: GenericResourceRecord, world: World): Record<string, unknown> {
  const { properties: _sent, ...members } = record.body;
  if (members.identity !== undefined) members.identity = identityOf(members.identity, world);
  const name = spec.fullName ? record.id.split("/providers/")[1]?.split("/").filter((_, index) => index % 2 === 0 && index > 0).join("/") : leafOf(record.id);
  return {
    id: record.id,
    name,
    type: spec.type,
    ...(spec.tracked ? { location: record.location, tags: record.tags ?? {} } : {}),
    ...members,
    systemData: { createdAt: record.createdAt, lastModifiedAt: record.changedAt },
    properties: { ...(spec.computed ? spec.computed(record, world) : properties(record.body)), provisioningState: "Succeeded" },
  };
}

/** The id of the route's resource, from the params, spelled as requested. */
function requestedId(spec: GenericType, params: RouteParams): string {
  const [namespace = "", ...segments] = spec.type.split("/");
  const names = segments.map((_, index) => (index === segments.length - 1 ? params.name : params[`parent${index}`]) ?? "");
  return `/subscriptions/${params.subscriptionId}/resourceGroups/${params.resourceGroup}/providers/${namespace}/${segments.map((segment, index) => `${segment}/${names[index]}`).join("/")}`;
}

/** Records of the generic provider that are tracked resources (for the resource group's resource list). */
export function trackedGenericResources(world: World): GenericResourceRecord[] {
  const tracked = new Set(GENERIC_TYPES.filter((spec) => spec.tracked).map((spec) => spec.type));
  return [...world.genericResources.values()].filter((record) => tracked.has(record.type));
}

export function registerGenericResources(router: Router<ArmRequest>, runtime: SandboxRuntime): void {
  const world = () => runtime.world;
  for (const spec of GENERIC_TYPES) {
    const route = routeOf(spec.type);
    const displayPath = (id: string) => id.split("/providers/")[1] ?? id;

    router.on("GET", route.list, (request, params) => {
      const error = checkResourceGroup(world(), params);
      if (error) return error;
      // The id a member would have, less its name: `…/{type}/`.
      const sample = requestedId(spec, { ...params, name: "x" });
      const prefix = `${idKey(sample).slice(0, -1)}`;
      if (route.depth > 1 && !find(world(), parentId(sample))) return parentResourceNotFound(leafOf(parentId(sample)));
      const items = [...world().genericResources.values()].filter((record) => record.type === spec.type && idKey(record.id).startsWith(prefix) && !idKey(record.id).slice(prefix.length).includes("/"));
      return pagedList(request, items, { pageSize: 100 }, (record) => resourceOf(spec, record, world()));
    });

    router.on("GET", route.item, (_request, params) => {
      const error = checkResourceGroup(world(), params);
      if (error) return error;
      const record = find(world(), requestedId(spec, params));
      return record ? json(200, resourceOf(spec, record, world())) : resourceNotFound(displayPath(requestedId(spec, params)), params.resourceGroup ?? "");
    });

    router.on("PUT", route.item, (request, params) => {
      const error = checkResourceGroup(world(), params);
      if (error) return error;
      const id = requestedId(spec, params);
      const name = params.name ?? "";
      if (!spec.name.test(name)) return badRequest("InvalidResourceName", `The resource name '${name}' is invalid for type '${spec.type}': ${spec.nameRule}.`);
      if (route.depth > 1 && !find(world(), parentId(id))) return parentResourceNotFound(leafOf(parentId(id)));
      const parsed = parseArmBody(request);
      if ("error" in parsed) return parsed.error;
      const { location, tags: rawTags, id: _id, name: _name, type: _type, ...members } = parsed.body;
      let normalizedLocation: string | undefined;
      if (spec.tracked) {
        if (typeof location !== "string" || location.trim() === "") return armError(400, "LocationRequired", "The location property is required for this definition.");
        normalizedLocation = normalizeLocation(location);
      }
      const tags = parseTags(rawTags);
      if (!tags) return invalidRequestContent("The request content was invalid: 'tags' must map strings to strings.");
      if (members.properties !== undefined && !isRecord(members.properties)) return invalidRequestContent("The request content was invalid: 'properties' must be an object.");
      const existing = find(world(), id);
      if (existing?.location && normalizedLocation && existing.location !== normalizedLocation) {
        return badRequest("LocationNotAvailableForResourceType", `The resource '${name}' exists in '${existing.location}'; its location cannot change to '${normalizedLocation}'.`);
      }
      const invalid = spec.validate?.(parsed.body, { world: world(), params, id, location: normalizedLocation });
      if (invalid) return invalid;
      const now = armTime(runtime.clock.now());
      const record: GenericResourceRecord = {
        id: existing?.id ?? id,
        type: spec.type,
        subscriptionId: params.subscriptionId ?? "",
        resourceGroup: params.resourceGroup ?? "",
        ...(normalizedLocation ? { location: normalizedLocation } : {}),
        ...(spec.tracked ? { tags } : {}),
        body: members,
        createdAt: existing?.createdAt ?? now,
        changedAt: now,
      };
      world().genericResources.set(idKey(id), record);
      return json(existing ? 200 : 201, resourceOf(spec, record, world()));
    });

    router.on("DELETE", route.item, (_request, params) => {
      const error = checkResourceGroup(world(), params);
      if (error) return error;
      const key = idKey(requestedId(spec, params));
      if (!world().genericResources.has(key)) return empty(204);
      // A parent takes its children with it.
      for (const other of [...world().genericResources.keys()]) if (other === key || other.startsWith(`${key}/`)) world().genericResources.delete(other);
      return empty(200);
    });
  }
}
