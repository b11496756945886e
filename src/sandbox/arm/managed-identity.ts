import { json } from "../http/responses.js";
import type { Router } from "../http/router.js";
import type { RouteParams } from "../http/types.js";
import { derivedGuid, newGuid } from "../ids.js";
import type { SandboxRuntime } from "../runtime.js";
import { idKey, type UserAssignedIdentityRecord } from "../world.js";
import { parseArmBody, parseTags } from "./body.js";
import { armError, invalidRequestContent, resourceNotFound } from "./errors.js";
import { normalizeLocation, type FhirServiceResource } from "./healthcare-apis-model.js";
import { pagedList } from "./paging.js";
import type { ArmRequest } from "./request.js";
import { checkResourceGroup, checkSubscription, inResourceGroup, inSubscription } from "./scope.js";

/**
 * ARM `Microsoft.ManagedIdentity`: `userAssignedIdentities` (get, lists, PUT; the service writes
 * `resourcegroups` in lower case in `id` whatever the request said, SUMMARY.md section 4) and the
 * system-assigned identity of a resource, `{scope}/providers/Microsoft.ManagedIdentity/identities/default`
 * (azure-contracts.md 7).
 */

export const IDENTITY_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities";
const PAGING = { pageSize: 100 };
const IDENTITY_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_-]{2,127}$/;

export function identityResourceId(identity: UserAssignedIdentityRecord): string {
  return `/subscriptions/${identity.subscriptionId}/resourcegroups/${identity.resourceGroup}/providers/${IDENTITY_TYPE}/${identity.name}`;
}

function identityResource(identity: UserAssignedIdentityRecord): Record<string, unknown> {
  return {
    location: identity.location,
    tags: identity.tags,
    id: identityResourceId(identity),
    name: identity.name,
    type: IDENTITY_TYPE,
    properties: { isolationScope: "None", tenantId: identity.tenantId, principalId: identity.principalId, clientId: identity.clientId },
  };
}

/**
 * The system-assigned identity of a FHIR service (the only resources with one in the sandbox). The
 * world keeps no client id for it, so one is derived from the principal id: stable across reads.
 */
function systemAssignedIdentityResource(service: FhirServiceResource, principalId: string, tenantId: string): Record<string, unknown> {
  const clientId = derivedGuid(`client-id:${principalId}`);
  return {
    id: `${service.id}/providers/Microsoft.ManagedIdentity/identities/default`,
    name: "default",
    type: "Microsoft.ManagedIdentity/identities",
    location: service.location,
    tags: {},
    properties: {
      tenantId,
      principalId,
      clientId,
      clientSecretUrl: `https://control-${service.location}.identity.azure.net${service.id}/credentials/v2/systemassigned?tid=${tenantId}&oid=${principalId}&aid=${clientId}`,
    },
  };
}

export function registerManagedIdentity(router: Router<ArmRequest>, runtime: SandboxRuntime): void {
  const identities = () => [...runtime.world.identities.values()];

  router.on("GET", `/subscriptions/{subscriptionId}/providers/${IDENTITY_TYPE}`, (request, params) => {
    const error = checkSubscription(runtime.world, params.subscriptionId);
    if (error) return error;
    return pagedList(request, identities().filter(inSubscription(params.subscriptionId)), PAGING, identityResource);
  });

  router.on("GET", `/subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers/${IDENTITY_TYPE}`, (request, params) => {
    const error = checkResourceGroup(runtime.world, params);
    if (error) return error;
    return pagedList(request, identities().filter(inResourceGroup(params)), PAGING, identityResource);
  });

  const IDENTITY = `/subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers/${IDENTITY_TYPE}/{name}`;
  const keyOf = (params: RouteParams) => idKey(`/subscriptions/${params.subscriptionId}/resourcegroups/${params.resourceGroup}/providers/${IDENTITY_TYPE}/${params.name}`);

  router.on("GET", IDENTITY, (_request, params) => {
    const error = checkResourceGroup(runtime.world, params);
    if (error) return error;
    const identity = runtime.world.identities.get(keyOf(params));
    if (!identity) return resourceNotFound(`${IDENTITY_TYPE}/${params.name}`, params.resourceGroup ?? "");
    return json(200, identityResource(identity));
  });

  // Create (201, with a relative `Location` as real traffic shows) or update the tags (200); principal and client ids are made once.
  router.on("PUT", IDENTITY, (request, params) => {
    const error = checkResourceGroup(runtime.world, params);
    if (error) return error;
    const name = params.name ?? "";
    if (!IDENTITY_NAME.test(name)) return armError(400, "InvalidResourceName", `The identity name '${name}' is invalid: 3-128 letters, digits, '-' and '_', starting with a letter or digit.`);
    const parsed = parseArmBody(request);
    if ("error" in parsed) return parsed.error;
    if (typeof parsed.body.location !== "string" || parsed.body.location.trim() === "") return armError(400, "LocationRequired", "The location property is required for this definition.");
    const tags = parseTags(parsed.body.tags);
    if (!tags) return invalidRequestContent("The request content was invalid: 'tags' must map strings to strings.");
    const existing = runtime.world.identities.get(keyOf(params));
    const identity: UserAssignedIdentityRecord = existing
      ? { ...existing, tags }
      : {
          name,
          subscriptionId: params.subscriptionId ?? "",
          resourceGroup: params.resourceGroup ?? "",
          location: normalizeLocation(parsed.body.location),
          tenantId: runtime.world.tenantId,
          principalId: newGuid(),
          clientId: newGuid(),
          tags,
        };
    runtime.world.identities.set(keyOf(params), identity);
    return existing ? json(200, identityResource(identity)) : json(201, identityResource(identity), { Location: identityResourceId(identity) });
  });

  router.on("GET", "{*scope}/providers/Microsoft.ManagedIdentity/identities/default", (_request, params) => {
    const scope = `/${params.scope ?? ""}`;
    const service = runtime.world.fhirServices.get(idKey(scope));
    const identity = service?.identity;
    if (!service || identity?.type !== "SystemAssigned" || !identity.principalId) {
      return armError(404, "ResourceNotFound", `The resource '${scope}' has no system-assigned identity, or does not exist.`);
    }
    return json(200, systemAssignedIdentityResource(service, identity.principalId, identity.tenantId ?? runtime.world.tenantId));
  });
}
