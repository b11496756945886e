import { json, withHeaders } from "../http/responses.js";
import type { Router } from "../http/router.js";
import type { RouteHandler } from "../http/types.js";
import type { SandboxRuntime } from "../runtime.js";
import { lower, type VaultRecord } from "../world.js";
import { resourceNotFound } from "./errors.js";
import { pagedList } from "./paging.js";
import type { ArmRequest } from "./request.js";
import { checkResourceGroup, checkSubscription, inResourceGroup, inSubscription } from "./scope.js";

/**
 * ARM `Microsoft.KeyVault/vaults`, read-only: GET and the two lists. Bodies follow real traffic
 * (SUMMARY.md section 3): `enablePurgeProtection` and `networkAcls` are left out when off/absent.
 * Sandbox vaults use the RBAC permission model, so `enableRbacAuthorization: true` is reported.
 */

export const VAULT_TYPE = "Microsoft.KeyVault/vaults";
const PAGING = { pageSize: 100 };

function vaultHeaders(): Record<string, string> {
  return { Server: "Microsoft-IIS/10.0", "x-aspnet-version": "4.0.30319", "x-ms-keyvault-service-version": "1.5.1361.0" };
}

export function vaultResourceId(vault: Pick<VaultRecord, "subscriptionId" | "resourceGroup" | "name">): string {
  return `/subscriptions/${vault.subscriptionId}/resourceGroups/${vault.resourceGroup}/providers/${VAULT_TYPE}/${vault.name}`;
}

export function vaultResource(vault: VaultRecord): Record<string, unknown> {
  const properties: Record<string, unknown> = {
    sku: { family: "A", name: "standard" },
    tenantId: vault.tenantId,
    accessPolicies: [],
    enabledForDeployment: false,
    enableSoftDelete: true,
    softDeleteRetentionInDays: vault.softDeleteRetentionInDays,
    enableRbacAuthorization: true,
    vaultUri: `https://${vault.name}.vault.azure.net/`,
    provisioningState: "Succeeded",
    publicNetworkAccess: vault.publicNetworkAccess,
  };
  if (vault.purgeProtection) properties.enablePurgeProtection = true;
  if (vault.networkAcls) properties.networkAcls = structuredClone(vault.networkAcls);
  return {
    id: vaultResourceId(vault),
    name: vault.name,
    type: VAULT_TYPE,
    location: vault.location,
    tags: {},
    systemData: {
      createdBy: "sandbox-admin@example.com",
      createdByType: "User",
      createdAt: vault.createdAt,
      lastModifiedBy: "sandbox-admin@example.com",
      lastModifiedByType: "User",
      lastModifiedAt: vault.createdAt,
    },
    properties,
  };
}

export function registerKeyVaultManagement(router: Router<ArmRequest>, runtime: SandboxRuntime): void {
  const kv =
    (handler: RouteHandler<ArmRequest>): RouteHandler<ArmRequest> =>
    async (request, params) =>
      withHeaders(await handler(request, params), vaultHeaders());
  const vaults = () => [...runtime.world.vaults.values()];

  router.on("GET", "/subscriptions/{subscriptionId}/providers/Microsoft.KeyVault/vaults", kv((request, params) => {
    const error = checkSubscription(runtime.world, params.subscriptionId);
    if (error) return error;
    return pagedList(request, vaults().filter(inSubscription(params.subscriptionId)), PAGING, vaultResource);
  }));

  router.on("GET", "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers/Microsoft.KeyVault/vaults", kv((request, params) => {
    const error = checkResourceGroup(runtime.world, params);
    if (error) return error;
    return pagedList(request, vaults().filter(inResourceGroup(params)), PAGING, vaultResource);
  }));

  router.on("GET", "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers/Microsoft.KeyVault/vaults/{vault}", kv((_request, params) => {
    const error = checkResourceGroup(runtime.world, params);
    if (error) return error;
    const vault = runtime.world.vaults.get(lower(params.vault ?? ""));
    if (!vault || !inResourceGroup(params)(vault)) {
      return resourceNotFound(`${VAULT_TYPE}/${params.vault}`, params.resourceGroup ?? "");
    }
    return json(200, vaultResource(vault));
  }));
}
