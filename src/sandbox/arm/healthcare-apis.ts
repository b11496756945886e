import { empty, isRecord, json, withHeaders } from "../http/responses.js";
import type { Router } from "../http/router.js";
import type { RouteHandler, RouteParams, SandboxResponse } from "../http/types.js";
import { newEtag, newHexRequestId } from "../ids.js";
import { checkKeyAccess, encryptionPrincipal } from "../key-access.js";
import type { SandboxRuntime } from "../runtime.js";
import { idKey, type OperationError } from "../world.js";
import { parseArmBody, parseTags } from "./body.js";
import { armError, invalidRequestContent, parentResourceNotFound, resourceNotFound } from "./errors.js";
import { resolveIdentity } from "./fhir-identity.js";
import {
  composeFhirService,
  composeWorkspace,
  fhirServiceResourceId,
  keyEncryptionKeyUrlOf,
  normalizeLocation,
  systemData,
  workspaceResourceId,
  type FhirServiceAddress,
  type FhirServiceResource,
  type SystemData,
  type WorkspaceResource,
} from "./healthcare-apis-model.js";
import { asyncOperationHeaders, injectedFailure, operationStatusBody, runningOperationOn, startOperation } from "./lro.js";
import { pagedList } from "./paging.js";
import type { ArmRequest } from "./request.js";
import { checkResourceGroup, checkSubscription } from "./scope.js";

/**
 * ARM `Microsoft.HealthcareApis`: workspaces and FHIR services, with async operations shaped like the
 * real RP's (SUMMARY.md section 1; azure-contracts.md 1.4–1.11).
 */

const RG = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers/Microsoft.HealthcareApis";
const FHIR_KINDS = ["fhir-R4", "fhir-Stu3"];
const NAME_PATTERN = /^[a-z0-9][a-z0-9-]{1,21}[a-z0-9]$/;
/** Workspaces and FHIR services per page of a list (the RP's own page size is undocumented). */
export const HEALTHCARE_PAGE_SIZE = 100;
const HEALTHCARE_PAGING = { pageSize: HEALTHCARE_PAGE_SIZE };

/** Headers HealthcareApis adds to ARM's (SUMMARY.md 1, "Headers on HealthcareApis responses"). */
function healthcareHeaders(): Record<string, string> {
  return { Server: "Microsoft-HTTPAPI/2.0", "x-request-id": newHexRequestId() };
}

/**
 * Bodies as an api-version's callers get them. The 2021-11-01 recording (SUMMARY.md 1) has no `systemData`
 * and no `tags` where none are set; the versions with `systemData` in their definitions (2022 on) send both.
 */
function shapedForApiVersion(body: unknown, apiVersion: string): unknown {
  if (apiVersion >= "2022" || !isRecord(body)) return body;
  if (Array.isArray(body.value)) return { ...body, value: body.value.map((item) => shapedForApiVersion(item, apiVersion)) };
  if (typeof body.type !== "string" || !body.type.startsWith("Microsoft.HealthcareApis/workspaces")) return body;
  return Object.fromEntries(Object.entries(body).filter(([name, value]) => name !== "systemData" && !(name === "tags" && isRecord(value) && Object.keys(value).length === 0)));
}

function addressOf(params: RouteParams): FhirServiceAddress {
  return {
    subscriptionId: params.subscriptionId ?? "",
    resourceGroup: params.resourceGroup ?? "",
    workspace: params.workspace ?? "",
    name: params.name ?? "",
  };
}

function fhirNotFound(address: FhirServiceAddress): SandboxResponse {
  return resourceNotFound(`Microsoft.HealthcareApis/workspaces/${address.workspace}/fhirservices/${address.name}`, address.resourceGroup);
}

const PUBLIC_NETWORK_ACCESS = ["Enabled", "Disabled"];

/** `properties.publicNetworkAccess` is an enum; ARM refuses other values before the RP stores them. */
function invalidPublicNetworkAccess(properties: Record<string, unknown>): SandboxResponse | undefined {
  const value = properties.publicNetworkAccess;
  if (value === undefined || PUBLIC_NETWORK_ACCESS.includes(value as string)) return undefined;
  return invalidRequestContent(`The request content was invalid: 'properties.publicNetworkAccess' must be one of ${PUBLIC_NETWORK_ACCESS.join(", ")}.`);
}

/** The code for a write while another operation runs is unconfirmed (azure-contracts.md 12.5); `Conflict` is ARM's usual one. */
function operationInProgress(resourceId: string): SandboxResponse {
  return armError(
    409,
    "Conflict",
    `The resource '${resourceId}' is busy with another operation. Wait for the operation to complete and try again.`,
  );
}

export function registerHealthcareApis(router: Router<ArmRequest>, runtime: SandboxRuntime): void {
  const world = () => runtime.world;
  const hc =
    (handler: RouteHandler<ArmRequest>): RouteHandler<ArmRequest> =>
    async (request, params) => {
      const response = await handler(request, params);
      return withHeaders({ ...response, body: shapedForApiVersion(response.body, request.apiVersion) }, healthcareHeaders());
    };

  const getWorkspace = (params: RouteParams): WorkspaceResource | undefined =>
    world().workspaces.get(idKey(workspaceResourceId({ subscriptionId: params.subscriptionId ?? "", resourceGroup: params.resourceGroup ?? "", workspace: params.workspace ?? "" })));

  // --- Workspaces: PUT is synchronous in real traffic (201 with Succeeded, no async headers).

  const workspacesUnder = (request: ArmRequest, prefix: string) =>
    pagedList(request, [...world().workspaces.values()].filter((workspace) => idKey(workspace.id).startsWith(prefix)), HEALTHCARE_PAGING);

  router.on("GET", "/subscriptions/{subscriptionId}/providers/Microsoft.HealthcareApis/workspaces", hc((request, params) => {
    const scopeError = checkSubscription(world(), params.subscriptionId);
    return scopeError ?? workspacesUnder(request, idKey(`/subscriptions/${params.subscriptionId}/`));
  }));

  router.on("GET", `${RG}/workspaces`, hc((request, params) => {
    const scopeError = checkResourceGroup(world(), params);
    return scopeError ?? workspacesUnder(request, idKey(`/subscriptions/${params.subscriptionId}/resourceGroups/${params.resourceGroup}/`));
  }));

  router.on("GET", `${RG}/workspaces/{workspace}`, hc((_request, params) => {
    const scopeError = checkResourceGroup(world(), params);
    if (scopeError) return scopeError;
    const workspace = getWorkspace(params);
    if (!workspace) return resourceNotFound(`Microsoft.HealthcareApis/workspaces/${params.workspace}`, params.resourceGroup ?? "");
    return json(200, workspace, { ETag: workspace.etag });
  }));

  router.on("PUT", `${RG}/workspaces/{workspace}`, hc((request, params) => {
    const scopeError = checkResourceGroup(world(), params);
    if (scopeError) return scopeError;
    const parsed = parseArmBody(request);
    if ("error" in parsed) return parsed.error;
    const { body } = parsed;
    const name = params.workspace ?? "";
    if (!NAME_PATTERN.test(name)) return armError(400, "InvalidResourceName", `The workspace name '${name}' is invalid. It must be 3-24 lowercase letters, digits or hyphens.`);
    if (typeof body.location !== "string" || body.location.trim() === "") return armError(400, "LocationRequired", "The location property is required for this definition.");
    const tags = parseTags(body.tags);
    if (!tags) return invalidRequestContent("The request content was invalid: 'tags' must map strings to strings.");
    const existing = getWorkspace(params);
    if (existing && runningOperationOn(world(), existing.id)) return operationInProgress(existing.id);
    const address = { subscriptionId: params.subscriptionId ?? "", resourceGroup: params.resourceGroup ?? "", workspace: name };
    const properties = isRecord(body.properties) ? body.properties : {};
    const accessError = invalidPublicNetworkAccess(properties);
    if (accessError) return accessError;
    const workspace = composeWorkspace({
      address,
      location: normalizeLocation(body.location),
      tags,
      publicNetworkAccess: properties.publicNetworkAccess,
      systemData: systemData(request.caller.objectId, existing?.systemData, runtime.clock.now()),
      nowMs: runtime.clock.now(),
    });
    world().workspaces.set(idKey(workspace.id), workspace);
    return json(existing ? 200 : 201, workspace, { ETag: workspace.etag });
  }));

  router.on("PATCH", `${RG}/workspaces/{workspace}`, hc((request, params) => {
    const scopeError = checkResourceGroup(world(), params);
    if (scopeError) return scopeError;
    const workspace = getWorkspace(params);
    if (!workspace) return resourceNotFound(`Microsoft.HealthcareApis/workspaces/${params.workspace}`, params.resourceGroup ?? "");
    if (runningOperationOn(world(), workspace.id)) return operationInProgress(workspace.id);
    const patch = parsePatch(request, ["tags"]);
    if ("error" in patch) return patch.error;
    if (patch.tags) workspace.tags = patch.tags;
    return patched(runtime, request, workspace);
  }));

  router.on("DELETE", `${RG}/workspaces/{workspace}`, hc((request, params) => {
    const scopeError = checkResourceGroup(world(), params);
    if (scopeError) return scopeError;
    const workspace = getWorkspace(params);
    if (!workspace) return empty(204); // ARM: deleting what does not exist succeeds with 204
    const children = `${idKey(workspace.id)}/fhirservices/`;
    if ([...world().fhirServices.keys()].some((key) => key.startsWith(children))) {
      // Undocumented; the sandbox refuses rather than cascading (README, "Choices").
      return armError(409, "Conflict", `The workspace '${workspace.name}' still contains FHIR services. Delete them before deleting the workspace.`);
    }
    return startDelete(runtime, request, {
      resource: workspace,
      subscriptionId: params.subscriptionId ?? "",
      remove: () => world().workspaces.delete(idKey(workspace.id)),
    });
  }));

  // --- FHIR services.

  router.on("GET", `${RG}/workspaces/{workspace}/fhirservices`, hc((request, params) => {
    const scopeError = checkResourceGroup(world(), params);
    if (scopeError) return scopeError;
    const workspace = getWorkspace(params);
    if (!workspace) return parentResourceNotFound(params.workspace ?? "");
    const prefix = `${idKey(workspace.id)}/fhirservices/`;
    // Real traffic: `{"value":[...]}` with no nextLink key at all while one page holds everything.
    return pagedList(request, [...world().fhirServices.values()].filter((service) => idKey(service.id).startsWith(prefix)), HEALTHCARE_PAGING);
  }));

  router.on("GET", `${RG}/workspaces/{workspace}/fhirservices/{name}`, hc((_request, params) => {
    const scopeError = checkResourceGroup(world(), params);
    if (scopeError) return scopeError;
    const address = addressOf(params);
    if (!getWorkspace(params)) return parentResourceNotFound(address.workspace);
    const service = world().fhirServices.get(idKey(fhirServiceResourceId(address)));
    if (!service) return fhirNotFound(address);
    return json(200, service, { ETag: service.etag });
  }));

  router.on("PUT", `${RG}/workspaces/{workspace}/fhirservices/{name}`, hc((request, params) => putFhirService(runtime, request, params)));
  router.on("PATCH", `${RG}/workspaces/{workspace}/fhirservices/{name}`, hc((request, params) => patchFhirService(runtime, request, params)));
  router.on("DELETE", `${RG}/workspaces/{workspace}/fhirservices/{name}`, hc((request, params) => deleteFhirService(runtime, request, params)));

  router.on(
    "GET",
    "/subscriptions/{subscriptionId}/providers/Microsoft.HealthcareApis/locations/{location}/operationresults/{operationId}",
    hc((request, params) => getOperationResult(runtime, request, params)),
  );
}

function putFhirService(runtime: SandboxRuntime, request: ArmRequest, params: RouteParams): SandboxResponse {
  const { world } = runtime;
  const scopeError = checkResourceGroup(world, params);
  if (scopeError) return scopeError;
  const address = addressOf(params);
  const workspace = world.workspaces.get(idKey(workspaceResourceId(address)));
  if (!workspace) return parentResourceNotFound(address.workspace);
  if (runningOperationOn(world, workspace.id)) return operationInProgress(workspace.id);
  if (!NAME_PATTERN.test(address.name)) {
    return armError(400, "InvalidResourceName", `The FHIR service name '${address.name}' is invalid. It must be 3-24 lowercase letters, digits or hyphens.`);
  }
  const id = fhirServiceResourceId(address);
  const key = idKey(id);
  const previous = world.fhirServices.get(key);
  if (runningOperationOn(world, id)) return operationInProgress(id);

  const parsed = parseArmBody(request);
  if ("error" in parsed) return parsed.error;
  const { body } = parsed;
  if (typeof body.location !== "string" || body.location.trim() === "") {
    return armError(400, "LocationRequired", "The location property is required for this definition.");
  }
  const location = normalizeLocation(body.location);
  if (previous && previous.location !== location) {
    return armError(
      400,
      "InvalidResourceLocation",
      `The resource '${address.name}' already exists in location '${previous.location}' in resource group '${address.resourceGroup}'. A resource with the same name cannot be created in location '${location}'. Please select a new resource name.`,
    );
  }
  const kind = FHIR_KINDS.find((candidate) => candidate.toLowerCase() === String(body.kind ?? "fhir-R4").toLowerCase());
  if (!kind) return invalidRequestContent(`The request content was invalid: 'kind' must be one of ${FHIR_KINDS.join(", ")}.`);
  const tags = parseTags(body.tags);
  if (!tags) return invalidRequestContent("The request content was invalid: 'tags' must map strings to strings.");
  if (body.properties !== undefined && !isRecord(body.properties)) return invalidRequestContent("The request content was invalid: 'properties' must be an object.");
  const properties = body.properties ?? {};
  const accessError = invalidPublicNetworkAccess(properties);
  if (accessError) return accessError;
  const keyUrl = (properties.encryption as { customerManagedKeyEncryption?: { keyEncryptionKeyUrl?: unknown } } | undefined)?.customerManagedKeyEncryption
    ?.keyEncryptionKeyUrl;
  if (keyUrl !== undefined && typeof keyUrl !== "string") {
    return invalidRequestContent("The request content was invalid: 'properties.encryption.customerManagedKeyEncryption.keyEncryptionKeyUrl' must be a string.");
  }
  const identityResult = resolveIdentity(runtime, body.identity, previous?.identity);
  if ("error" in identityResult) return identityResult.error;

  const desired = composeFhirService({
    address,
    tenantId: world.tenantId,
    location,
    kind,
    tags,
    identity: identityResult.identity,
    properties,
    provisioningState: previous ? "Updating" : "Creating",
    systemData: systemData(request.caller.objectId, previous?.systemData, runtime.clock.now()),
    nowMs: runtime.clock.now(),
  });
  world.fhirServices.set(key, desired);

  // The RP verifies the key when it is set or changed, or when the identity that reaches it changes.
  const previousUrl = previous ? keyEncryptionKeyUrlOf(previous) : undefined;
  const principalOf = (resource: FhirServiceResource | undefined) => (resource ? encryptionPrincipal(world, resource)?.principalId : undefined);
  const verifyKey = keyUrl !== undefined && (keyUrl.toLowerCase() !== previousUrl?.toLowerCase() || principalOf(previous) !== principalOf(desired));

  const injectedError = injectedFailure(runtime, request);
  const operation = startOperation(runtime, {
    subscriptionId: address.subscriptionId,
    location,
    resourceId: id,
    method: "PUT",
    ...(injectedError ? { injectedError } : {}),
    apply: () => {
      if (verifyKey) {
        const failure = checkKeyAccess(world, { keyUrl, location, identity: desired.identity, purpose: "configure", nowSeconds: runtime.clock.nowSeconds() });
        if (failure) return failure;
      }
      desired.properties.provisioningState = "Succeeded";
      desired.etag = newEtag(runtime.clock.now());
      return undefined;
    },
    // A failed update leaves the service running on its previous configuration (previous key), with
    // provisioningState `Failed` so a GET shows the write did not take. A failed create leaves the
    // new resource in `Failed`, as ARM does for tracked resources.
    rollback: (_error: OperationError) => {
      const restored = previous ?? desired;
      restored.properties.provisioningState = "Failed";
      restored.etag = newEtag(runtime.clock.now());
      world.fhirServices.set(key, restored);
    },
  });
  return json(previous ? 200 : 201, desired, {
    ETag: desired.etag,
    ...asyncOperationHeaders(request.armOrigin, operation, request.apiVersion, false),
  });
}

function patchFhirService(runtime: SandboxRuntime, request: ArmRequest, params: RouteParams): SandboxResponse {
  const { world } = runtime;
  const scopeError = checkResourceGroup(world, params);
  if (scopeError) return scopeError;
  const address = addressOf(params);
  if (!world.workspaces.get(idKey(workspaceResourceId(address)))) return parentResourceNotFound(address.workspace);
  const id = fhirServiceResourceId(address);
  const service = world.fhirServices.get(idKey(id));
  if (!service) return fhirNotFound(address);
  if (runningOperationOn(world, id)) return operationInProgress(id);

  const patch = parsePatch(request, ["tags", "identity"]);
  if ("error" in patch) return patch.error;
  const identityResult = patch.body.identity === undefined ? undefined : resolveIdentity(runtime, patch.body.identity, service.identity);
  if (identityResult && "error" in identityResult) return identityResult.error;
  if (patch.tags) service.tags = patch.tags;
  if (identityResult?.identity) service.identity = identityResult.identity;
  else if (identityResult) delete service.identity;
  return patched(runtime, request, service);
}

/**
 * A PATCH body (the spec's `*PatchResource`): only `allowed` top-level fields. Tags are replaced, not
 * merged (real traffic).
 */
function parsePatch(request: ArmRequest, allowed: string[]): { body: Record<string, unknown>; tags?: Record<string, string> } | { error: SandboxResponse } {
  const parsed = parseArmBody(request);
  if ("error" in parsed) return parsed;
  const unsupported = Object.keys(parsed.body).filter((name) => !allowed.includes(name));
  if (unsupported.length > 0) {
    return { error: invalidRequestContent(`PATCH can only change '${allowed.join("' and '")}'; use PUT for '${unsupported.join("', '")}'.`) };
  }
  if (parsed.body.tags === undefined) return { body: parsed.body };
  const tags = parseTags(parsed.body.tags);
  if (!tags) return { error: invalidRequestContent("The request content was invalid: 'tags' must map strings to strings.") };
  return { body: parsed.body, tags };
}

/** Synchronous in real traffic: 200 with the full resource, a new etag, no async headers. */
function patched(runtime: SandboxRuntime, request: ArmRequest, resource: { etag: string; systemData: SystemData }): SandboxResponse {
  resource.etag = newEtag(runtime.clock.now());
  resource.systemData = systemData(request.caller.objectId, resource.systemData, runtime.clock.now());
  return json(200, resource, { ETag: resource.etag });
}

function deleteFhirService(runtime: SandboxRuntime, request: ArmRequest, params: RouteParams): SandboxResponse {
  const { world } = runtime;
  const scopeError = checkResourceGroup(world, params);
  if (scopeError) return scopeError;
  const address = addressOf(params);
  if (!world.workspaces.get(idKey(workspaceResourceId(address)))) return parentResourceNotFound(address.workspace);
  const id = fhirServiceResourceId(address);
  const key = idKey(id);
  const service = world.fhirServices.get(key);
  if (!service) return empty(204); // ARM: deleting what does not exist succeeds with 204
  return startDelete(runtime, request, { resource: service, subscriptionId: address.subscriptionId, remove: () => world.fhirServices.delete(key) });
}

interface DeleteTarget {
  resource: { id: string; location: string; properties: { provisioningState: string } };
  subscriptionId: string;
  remove: () => void;
}

/**
 * DELETE as real traffic shows it for FHIR services and workspaces: 202 with an empty body and both
 * `Azure-AsyncOperation` and `Location` (…&operationResultResponseType=Location); the resource reads
 * `Deleting` until the operation ends, and keeps its previous state if the operation fails.
 */
function startDelete(runtime: SandboxRuntime, request: ArmRequest, target: DeleteTarget): SandboxResponse {
  const { resource } = target;
  if (runningOperationOn(runtime.world, resource.id)) return operationInProgress(resource.id);
  const previousState = resource.properties.provisioningState;
  resource.properties.provisioningState = "Deleting";
  const injectedError = injectedFailure(runtime, request);
  const operation = startOperation(runtime, {
    subscriptionId: target.subscriptionId,
    location: resource.location,
    resourceId: resource.id,
    method: "DELETE",
    ...(injectedError ? { injectedError } : {}),
    apply: () => {
      target.remove();
      return undefined;
    },
    rollback: () => {
      resource.properties.provisioningState = previousState;
    },
  });
  return empty(202, { ...asyncOperationHeaders(request.armOrigin, operation, request.apiVersion, true), "Content-Length": "0" });
}

function getOperationResult(runtime: SandboxRuntime, request: ArmRequest, params: RouteParams): SandboxResponse {
  const operation = runtime.world.operations.get(params.operationId?.toLowerCase() ?? "");
  if (!operation || operation.subscriptionId.toLowerCase() !== params.subscriptionId?.toLowerCase()) {
    return armError(404, "NotFound", `The operation result '${params.operationId}' was not found.`);
  }
  if (operation.status === "Running") {
    const injectedError = injectedFailure(runtime, request);
    if (injectedError) operation.injectedError = injectedError;
  }
  if (request.query.get("operationResultResponseType")?.toLowerCase() === "location") {
    // Location semantics: 202 while running, 200 with an empty body when done. The failure answer is
    // the sandbox's choice (400 with the operation's error; 400 is not retried by the SDKs).
    if (operation.status === "Running") {
      return empty(202, { Location: `${request.armOrigin}${request.path}?${request.query.toString()}` });
    }
    if (operation.status === "Failed" && operation.error) return armError(400, operation.error.code, operation.error.message);
    return empty(200);
  }
  return json(200, operationStatusBody(operation));
}
