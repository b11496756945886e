import { json } from "../http/responses.js";
import type { Router } from "../http/router.js";
import { derivedGuid } from "../ids.js";
import type { SandboxRuntime } from "../runtime.js";
import { idKey, type UserAssignedIdentityRecord } from "../world.js";
import { armError, resourceNotFound } from "./errors.js";
import type { FhirServiceResource } from "./healthcare-apis-model.js";
import { pagedList } from "./paging.js";
import type { ArmRequest } from "./request.js";
import { checkResourceGroup, checkSubscription, inResourceGroup, inSubscription } from "./scope.js";

/**
 * ARM `Microsoft.ManagedIdentity`, read-only: `userAssignedIdentities` (the service writes
 * `resourcegroups` in lower case in `id` whatever the request said, SUMMARY.md section 4) and the
 * system-assigned identity of a resource, `{scope}/providers/Microsoft.ManagedIdentity/identities/default`
 * (azure-contracts.md 7).
 */

export const IDENTITY_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities";
const PAGING = { pageSize: 100 };

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

  router.on("GET", `/subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers/${IDENTITY_TYPE}/{name}`, (_request, params) => {
    const error = checkResourceGroup(runtime.world, params);
    if (error) return error;
    const id = `/subscriptions/${params.subscriptionId}/resourcegroups/${params.resourceGroup}/providers/${IDENTITY_TYPE}/${params.name}`;
    const identity = runtime.world.identities.get(idKey(id));
    if (!identity) return resourceNotFound(`${IDENTITY_TYPE}/${params.name}`, params.resourceGroup ?? "");
    return json(200, identityResource(identity));
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
