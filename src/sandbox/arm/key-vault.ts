import { json, withHeaders } from "../http/responses.js";
import type { Router } from "../http/router.js";
import type { RouteHandler } from "../http/types.js";
import type { SandboxRuntime } from "../runtime.js";
import { lower, type ManagedHsmRecord, type VaultRecord } from "../world.js";
import { resourceNotFound } from "./errors.js";
import type { ArmRequest } from "./request.js";
import { checkResourceGroup, checkSubscription, inResourceGroup, inSubscription } from "./scope.js";

/**
 * ARM `Microsoft.KeyVault/vaults`, read-only: GET and the two lists. Bodies follow real traffic
 * (SUMMARY.md section 3): `enablePurgeProtection` and `networkAcls` are left out when off/absent.
 * Sandbox vaults use the RBAC permission model, so `enableRbacAuthorization: true` is reported.
 */

const VAULT_TYPE = "Microsoft.KeyVault/vaults";
const MANAGED_HSM_TYPE = "Microsoft.KeyVault/managedHSMs";

function vaultHeaders(): Record<string, string> {
  return { Server: "Microsoft-IIS/10.0", "x-aspnet-version": "4.0.30319", "x-ms-keyvault-service-version": "1.5.1361.0" };
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
    id: `/subscriptions/${vault.subscriptionId}/resourceGroups/${vault.resourceGroup}/providers/${VAULT_TYPE}/${vault.name}`,
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

/**
 * `Microsoft.KeyVault/managedHSMs` (arm-keyvault 5.0.0 `ManagedHsm`; azure-contracts.md 5.2): soft delete is
 * always on; `enablePurgeProtection` as set; `networkAcls` always present (`bypass` defaults to AzureServices).
 */
export function managedHsmResource(hsm: ManagedHsmRecord): Record<string, unknown> {
  return {
    id: `/subscriptions/${hsm.subscriptionId}/resourceGroups/${hsm.resourceGroup}/providers/${MANAGED_HSM_TYPE}/${hsm.name}`,
    name: hsm.name,
    type: MANAGED_HSM_TYPE,
    location: hsm.location,
    sku: { family: "B", name: "Standard_B1" },
    tags: {},
    systemData: {
      createdBy: "sandbox-admin@example.com",
      createdByType: "User",
      createdAt: hsm.createdAt,
      lastModifiedBy: "sandbox-admin@example.com",
      lastModifiedByType: "User",
      lastModifiedAt: hsm.createdAt,
    },
    properties: {
      tenantId: hsm.tenantId,
      initialAdminObjectIds: [],
      hsmUri: `https://${hsm.name}.managedhsm.azure.net/`,
      enableSoftDelete: true,
      softDeleteRetentionInDays: hsm.softDeleteRetentionInDays,
      enablePurgeProtection: hsm.purgeProtection,
      provisioningState: "Succeeded",
      statusMessage: "The Managed HSM is provisioned and ready to use.",
      networkAcls: structuredClone(hsm.networkAcls ?? { bypass: "AzureServices", defaultAction: "Allow", ipRules: [], virtualNetworkRules: [] }),
      publicNetworkAccess: hsm.publicNetworkAccess,
      securityDomainProperties: { activationStatus: "Active", activationStatusMessage: "Your HSM has been activated and can be used for cryptographic operations." },
      regions: [],
    },
  };
}

export function registerKeyVaultManagement(router: Router<ArmRequest>, runtime: SandboxRuntime): void {
  const kv =
    (handler: RouteHandler<ArmRequest>): RouteHandler<ArmRequest> =>
    async (request, params) =>
      withHeaders(await handler(request, params), vaultHeaders());
  const vaults = () => [...runtime.world.vaults.values()];

  router.on("GET", "/subscriptions/{subscriptionId}/providers/Microsoft.KeyVault/vaults", kv((_request, params) => {
    const error = checkSubscription(runtime.world, params.subscriptionId);
    if (error) return error;
    return json(200, { value: vaults().filter(inSubscription(params.subscriptionId)).map(vaultResource) });
  }));

  router.on("GET", "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers/Microsoft.KeyVault/vaults", kv((_request, params) => {
    const error = checkResourceGroup(runtime.world, params);
    if (error) return error;
    return json(200, { value: vaults().filter(inResourceGroup(params)).map(vaultResource) });
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

  const hsms = () => [...runtime.world.managedHsms.values()];
  router.on("GET", "/subscriptions/{subscriptionId}/providers/Microsoft.KeyVault/managedHSMs", kv((_request, params) => {
    const error = checkSubscription(runtime.world, params.subscriptionId);
    if (error) return error;
    return json(200, { value: hsms().filter(inSubscription(params.subscriptionId)).map(managedHsmResource) });
  }));

  router.on("GET", "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers/Microsoft.KeyVault/managedHSMs", kv((_request, params) => {
    const error = checkResourceGroup(runtime.world, params);
    if (error) return error;
    return json(200, { value: hsms().filter(inResourceGroup(params)).map(managedHsmResource) });
  }));

  router.on("GET", "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers/Microsoft.KeyVault/managedHSMs/{name}", kv((_request, params) => {
    const error = checkResourceGroup(runtime.world, params);
    if (error) return error;
    const hsm = runtime.world.managedHsms.get(lower(params.name ?? ""));
    if (!hsm || !inResourceGroup(params)(hsm)) return resourceNotFound(`${MANAGED_HSM_TYPE}/${params.name}`, params.resourceGroup ?? "");
    return json(200, managedHsmResource(hsm));
  }));
}
