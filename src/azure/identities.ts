import { ManagedServiceIdentityClient } from "@azure/arm-msi";
import type { UserAssignedIdentityRef } from "../domain/arm-ids.js";
import type { AzureContext } from "./azure-context.js";
import { keepAnswers, perSubscription, readFact, type GatheredFact } from "./arm-facts.js";
import { createReadCache, type ReadCache } from "./read-cache.js";

export interface UserAssignedIdentityFacts {
  id: string;
  principalId: string;
  clientId: string;
  tenantId: string;
  location: string;
}

export interface IdentitiesAdapter {
  userAssignedIdentity(ref: UserAssignedIdentityRef): Promise<GatheredFact<UserAssignedIdentityFacts>>;
}

/** `Microsoft.ManagedIdentity/userAssignedIdentities` through `@azure/arm-msi`. */
export function createIdentitiesAdapter(context: AzureContext, cache: ReadCache = createReadCache(0)): IdentitiesAdapter {
  const client = perSubscription(
    (subscriptionId) => new ManagedServiceIdentityClient(context.credential, subscriptionId, { ...context.clientOptions, endpoint: context.cloud.resourceManager }),
  );
  return {
    userAssignedIdentity: (ref) =>
      cache.read(
        `identity:${ref.id.toLowerCase()}`,
        () =>
          readFact(async () => {
            const identity = await client(ref.subscriptionId).userAssignedIdentities.get(ref.resourceGroup, ref.name);
            return { id: identity.id ?? ref.id, principalId: identity.principalId ?? "", clientId: identity.clientId ?? "", tenantId: identity.tenantId ?? "", location: identity.location };
          }),
        keepAnswers,
      ),
  };
}
