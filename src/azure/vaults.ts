import { KeyVaultManagementClient, type Vault } from "@azure/arm-keyvault";
import type { VaultFacts } from "../domain/checks/facts.js";
import type { AzureContext } from "./azure-context.js";
import { keepAnswers, perSubscription, readFact, withArmErrorMessage, type GatheredFact } from "./arm-facts.js";
import { createReadCache, type ReadCache } from "./read-cache.js";

export interface VaultsAdapter {
  /**
   * The vault named by a key URL. A key URL names the vault but not its subscription: the vault is looked
   * for in the given subscriptions (the FHIR service's first).
   */
  vaultFacts(vaultName: string, subscriptionIds: string[]): Promise<GatheredFact<VaultFacts>>;
}

export function toVaultFacts(vault: Vault): VaultFacts {
  const properties = vault.properties;
  const acls = properties.networkAcls;
  return {
    name: vault.name ?? "",
    id: vault.id ?? "",
    location: vault.location ?? "",
    // Absent means on: soft delete is the default and cannot be turned off (azure-contracts 5.1).
    enableSoftDelete: properties.enableSoftDelete ?? true,
    enablePurgeProtection: properties.enablePurgeProtection ?? false,
    ...(properties.softDeleteRetentionInDays !== undefined ? { softDeleteRetentionInDays: properties.softDeleteRetentionInDays } : {}),
    enableRbacAuthorization: properties.enableRbacAuthorization ?? false,
    publicNetworkAccess: properties.publicNetworkAccess ?? "Enabled",
    ...(acls ? { networkAcls: { ...(acls.defaultAction ? { defaultAction: acls.defaultAction } : {}), ...(acls.bypass ? { bypass: acls.bypass } : {}) } } : {}),
  };
}

/** `Microsoft.KeyVault/vaults` through `@azure/arm-keyvault`. */
export function createVaultsAdapter(context: AzureContext, cache: ReadCache = createReadCache(0)): VaultsAdapter {
  const client = perSubscription((subscriptionId) => new KeyVaultManagementClient(context.credential, subscriptionId, { ...context.clientOptions, endpoint: context.cloud.resourceManager }));
  return {
    vaultFacts: (vaultName, subscriptionIds) =>
      cache.read(`vault:${vaultName}:${subscriptionIds.join(",")}`.toLowerCase(), () => find(vaultName, subscriptionIds), keepAnswers),
  };

  async function find(vaultName: string, subscriptionIds: string[]): Promise<GatheredFact<VaultFacts>> {
    let last: GatheredFact<VaultFacts> = { status: "missing", detail: `no vault named ${vaultName} in the subscriptions searched` };
    for (const subscriptionId of subscriptionIds) {
      const fact = await readFact(() =>
        withArmErrorMessage(async (options) => {
          for await (const vault of client(subscriptionId).vaults.listBySubscription(options)) {
            if (vault.name?.toLowerCase() === vaultName.toLowerCase()) return toVaultFacts(vault);
          }
          return undefined;
        }),
      );
      if (fact.status === "found") return fact;
      if (fact.status === "unreadable") last = fact;
    }
    return last;
  }
}
