import { json } from "../http/responses.js";
import type { Router } from "../http/router.js";
import type { SandboxRuntime } from "../runtime.js";
import { idKey, lower, type UserAssignedIdentityRecord } from "../world.js";
import { resourceNotFound } from "./errors.js";
import type { ArmRequest } from "./request.js";
import { checkResourceGroup, checkSubscription } from "./scope.js";

/**
 * ARM `Microsoft.ManagedIdentity/userAssignedIdentities`, read-only. The service writes `resourcegroups`
 * in lower case in `id` whatever the request said (SUMMARY.md section 4).
 */

const IDENTITY_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities";

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

export function registerManagedIdentity(router: Router<ArmRequest>, runtime: SandboxRuntime): void {
  const identities = () => [...runtime.world.identities.values()];

  router.on("GET", `/subscriptions/{subscriptionId}/providers/${IDENTITY_TYPE}`, (_request, params) => {
    const error = checkSubscription(runtime.world, params.subscriptionId);
    if (error) return error;
    return json(200, { value: identities().map(identityResource) });
  });

  router.on("GET", `/subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers/${IDENTITY_TYPE}`, (_request, params) => {
    const error = checkResourceGroup(runtime.world, params);
    if (error) return error;
    return json(200, { value: identities().filter((identity) => lower(identity.resourceGroup) === lower(params.resourceGroup ?? "")).map(identityResource) });
  });

  router.on("GET", `/subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers/${IDENTITY_TYPE}/{name}`, (_request, params) => {
    const error = checkResourceGroup(runtime.world, params);
    if (error) return error;
    const id = `/subscriptions/${params.subscriptionId}/resourcegroups/${params.resourceGroup}/providers/${IDENTITY_TYPE}/${params.name}`;
    const identity = runtime.world.identities.get(idKey(id));
    if (!identity) return resourceNotFound(`${IDENTITY_TYPE}/${params.name}`, params.resourceGroup ?? "");
    return json(200, identityResource(identity));
  });
}
