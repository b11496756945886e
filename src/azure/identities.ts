import { ManagedServiceIdentityClient } from "@azure/arm-msi";
import type { UserAssignedIdentityRef } from "../domain/arm-ids.js";
import type { AzureContext } from "./azure-context.js";
import { perSubscription, readFact, type GatheredFact } from "./arm-facts.js";

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
export function createIdentitiesAdapter(context: AzureContext): IdentitiesAdapter {
  const client = perSubscription(
    (subscriptionId) => new ManagedServiceIdentityClient(context.credential, subscriptionId, { ...context.clientOptions, endpoint: context.cloud.resourceManager }),
  );
  return {
    userAssignedIdentity: (ref) =>
      readFact(async () => {
        const identity = await client(ref.subscriptionId).userAssignedIdentities.get(ref.resourceGroup, ref.name);
        return { id: identity.id ?? ref.id, principalId: identity.principalId ?? "", clientId: identity.clientId ?? "", tenantId: identity.tenantId ?? "", location: identity.location };
      }),
  };
}
