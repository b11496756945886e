import { isRecord, json, withHeaders } from "../http/responses.js";
import type { Router } from "../http/router.js";
import type { RouteHandler, RouteParams, SandboxResponse } from "../http/types.js";
import { newKeyVersion } from "../ids.js";
import { isEc, isRsa, lazyKeyMaterial } from "../key-vault/key-material.js";
import { currentVersion, DEFAULT_KEY_OPS, recoveryLevel } from "../key-vault/model.js";
import type { SandboxRuntime } from "../runtime.js";
import { lower, type KeyRecord, type KeyVersionRecord, type ManagedHsmRecord, type NetworkAcls, type VaultRecord } from "../world.js";
import { parseArmBody } from "./body.js";
import { armError, invalidRequestContent, parentResourceNotFound, resourceNotFound } from "./errors.js";
import { normalizeLocation } from "./healthcare-apis-model.js";
import { pagedList } from "./paging.js";
import type { ArmRequest } from "./request.js";
import { checkResourceGroup, checkSubscription, inResourceGroup, inSubscription } from "./scope.js";

/**
 * ARM `Microsoft.KeyVault`: vaults (get, the two lists, PUT) and keys (`vaults/keys`: get, PUT as
 * Keys_CreateIfNotExist, what templates use to make a key). Bodies follow real traffic (SUMMARY.md
 * section 3): `enablePurgeProtection` and `networkAcls` are left out when off/absent. Sandbox vaults use
 * the RBAC permission model, so `enableRbacAuthorization: true` is reported, and a vault PUT asking for
 * access policies instead is refused. Writes are synchronous (a vault PUT answers 200 with Succeeded in
 * real traffic).
 */

export const VAULT_TYPE = "Microsoft.KeyVault/vaults";
export const MANAGED_HSM_TYPE = "Microsoft.KeyVault/managedHSMs";
const PAGING = { pageSize: 100 };

function vaultHeaders(): Record<string, string> {
  return { Server: "Microsoft-IIS/10.0", "x-aspnet-version": "4.0.30319", "x-ms-keyvault-service-version": "1.5.1361.0" };
}

export function vaultResourceId(vault: Pick<VaultRecord, "subscriptionId" | "resourceGroup" | "name">): string {
  return `/subscriptions/${vault.subscriptionId}/resourceGroups/${vault.resourceGroup}/providers/${VAULT_TYPE}/${vault.name}`;
}

export function managedHsmResourceId(hsm: Pick<ManagedHsmRecord, "subscriptionId" | "resourceGroup" | "name">): string {
  return `/subscriptions/${hsm.subscriptionId}/resourceGroups/${hsm.resourceGroup}/providers/${MANAGED_HSM_TYPE}/${hsm.name}`;
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

/**
 * `Microsoft.KeyVault/managedHSMs` (arm-keyvault 5.0.0 `ManagedHsm`; azure-contracts.md 5.2): soft delete is
 * always on; `enablePurgeProtection` as set; `networkAcls` always present (`bypass` defaults to AzureServices).
 */
export function managedHsmResource(hsm: ManagedHsmRecord): Record<string, unknown> {
  return {
    id: managedHsmResourceId(hsm),
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

const KEY_TYPE = "Microsoft.KeyVault/vaults/keys";
const VAULT_NAME = /^[a-zA-Z](?!.*--)[a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$/;
const KEY_NAME = /^[0-9a-zA-Z-]{1,127}$/;

export function keyResource(vault: VaultRecord, key: KeyRecord): Record<string, unknown> {
  const version = currentVersion(key);
  const keyUri = `https://${vault.name}.vault.azure.net/keys/${key.name}`;
  const attributes: Record<string, unknown> = { enabled: version.enabled };
  if (version.nbf !== undefined) attributes.nbf = version.nbf;
  if (version.exp !== undefined) attributes.exp = version.exp;
  Object.assign(attributes, { created: version.created, updated: version.updated, recoveryLevel: recoveryLevel(vault, "arm"), exportable: false });
  return {
    id: `${vaultResourceId(vault)}/keys/${key.name}`,
    name: key.name,
    type: KEY_TYPE,
    location: vault.location,
    tags: version.tags,
    properties: {
      attributes,
      kty: version.kty,
      keyOps: version.keyOps,
      ...(version.keySize !== undefined ? { keySize: version.keySize } : {}),
      ...(version.crv !== undefined ? { curveName: version.crv } : {}),
      keyUri,
      keyUriWithVersion: `${keyUri}/${version.version}`,
    },
  };
}

/** Vaults_CreateOrUpdate: a new vault, or new settings for one in this resource group (its keys stay). */
function putVault(runtime: SandboxRuntime, request: ArmRequest, params: RouteParams): SandboxResponse {
  const name = params.vault ?? "";
  if (!VAULT_NAME.test(name)) return armError(400, "VaultNameNotValid", `The vault name '${name}' is invalid: 3-24 letters, digits and single hyphens, starting with a letter.`);
  const parsed = parseArmBody(request);
  if ("error" in parsed) return parsed.error;
  const { body } = parsed;
  if (typeof body.location !== "string" || body.location.trim() === "") return armError(400, "LocationRequired", "The location property is required for this definition.");
  const properties = isRecord(body.properties) ? body.properties : undefined;
  if (!properties || typeof properties.tenantId !== "string" || !isRecord(properties.sku)) {
    return invalidRequestContent("The request content was invalid: 'properties.tenantId' and 'properties.sku' are required.");
  }
  if (properties.enableSoftDelete === false) return armError(400, "BadRequest", "Soft delete cannot be disabled: every vault has it.");
  if (properties.enableRbacAuthorization === false) return armError(400, "BadRequest", "The sandbox emulates the Azure RBAC permission model only: leave enableRbacAuthorization true.");
  const retention = properties.softDeleteRetentionInDays ?? 90;
  if (!Number.isInteger(retention) || (retention as number) < 7 || (retention as number) > 90) {
    return armError(400, "BadRequest", "softDeleteRetentionInDays must be an integer from 7 to 90.");
  }
  const existing = runtime.world.vaults.get(lower(name));
  if (existing && !inResourceGroup(params)(existing)) {
    return armError(409, "VaultAlreadyExists", `The vault name '${name}' is already in use. Vault names are globally unique so it is possible that the name is already taken.`);
  }
  if (existing?.purgeProtection && properties.enablePurgeProtection === false) {
    return armError(400, "BadRequest", "The property \"enablePurgeProtection\" cannot be set to false. Enabling the purge protection for a vault is an irreversible action.");
  }
  const vault: VaultRecord = {
    name: existing?.name ?? name,
    subscriptionId: existing?.subscriptionId ?? params.subscriptionId ?? "",
    resourceGroup: existing?.resourceGroup ?? params.resourceGroup ?? "",
    location: normalizeLocation(body.location),
    tenantId: properties.tenantId,
    purgeProtection: properties.enablePurgeProtection === true || existing?.purgeProtection === true,
    softDeleteRetentionInDays: retention as number,
    publicNetworkAccess: properties.publicNetworkAccess === "Disabled" ? "Disabled" : "Enabled",
    createdAt: existing?.createdAt ?? new Date(runtime.clock.now()).toISOString(),
    keys: existing?.keys ?? new Map(),
    deletedKeys: existing?.deletedKeys ?? new Map(),
  };
  if (isRecord(properties.networkAcls)) vault.networkAcls = structuredClone(properties.networkAcls) as unknown as NetworkAcls;
  runtime.world.vaults.set(lower(name), vault);
  return json(existing ? 200 : 201, vaultResource(vault));
}

/** Keys_CreateIfNotExist: makes the key (one version) unless it exists, which is answered unchanged. */
function putKey(runtime: SandboxRuntime, vault: VaultRecord, request: ArmRequest, name: string): SandboxResponse {
  if (!KEY_NAME.test(name)) return armError(400, "BadRequest", `The key name '${name}' is invalid: use 1-127 letters, digits and dashes.`);
  const existing = vault.keys.get(lower(name));
  if (existing) return json(200, keyResource(vault, existing));
  if (vault.deletedKeys.has(lower(name))) return armError(409, "Conflict", `Key ${name} is currently in a deleted but recoverable state, and its name cannot be reused.`);
  const parsed = parseArmBody(request);
  if ("error" in parsed) return parsed.error;
  const properties = isRecord(parsed.body.properties) ? parsed.body.properties : {};
  const kty = properties.kty;
  if (typeof kty !== "string" || !(isRsa(kty) || isEc(kty))) return armError(400, "BadRequest", `The key type '${String(kty)}' is not supported; use RSA, RSA-HSM, EC or EC-HSM.`);
  const attributes = isRecord(properties.attributes) ? properties.attributes : {};
  const now = runtime.clock.nowSeconds();
  const version: KeyVersionRecord = {
    version: newKeyVersion(),
    kty,
    keyOps: Array.isArray(properties.keyOps) ? properties.keyOps.map(String) : isRsa(kty) ? [...DEFAULT_KEY_OPS] : ["sign", "verify"],
    enabled: attributes.enabled !== false,
    created: now,
    updated: now,
    tags: isRecord(parsed.body.tags) ? (parsed.body.tags as Record<string, string>) : {},
    material: lazyKeyMaterial(isRsa(kty) ? { kty, keySize: Number(properties.keySize ?? 2048) } : { kty, crv: String(properties.curveName ?? "P-256") }),
  };
  if (isRsa(kty)) version.keySize = Number(properties.keySize ?? 2048);
  else version.crv = String(properties.curveName ?? "P-256");
  if (typeof attributes.nbf === "number") version.nbf = attributes.nbf;
  if (typeof attributes.exp === "number") version.exp = attributes.exp;
  const key: KeyRecord = { name, versions: [version] };
  vault.keys.set(lower(name), key);
  runtime.events.keyVersionCreated(vault, key, version);
  return json(200, keyResource(vault, key));
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

  const VAULT = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers/Microsoft.KeyVault/vaults/{vault}";
  /** The vault the route names, when it is in the route's resource group. */
  const vaultIn = (params: RouteParams): VaultRecord | undefined => {
    const vault = runtime.world.vaults.get(lower(params.vault ?? ""));
    return vault && inResourceGroup(params)(vault) ? vault : undefined;
  };
  const vaultNotFound = (params: RouteParams) => resourceNotFound(`${VAULT_TYPE}/${params.vault}`, params.resourceGroup ?? "");

  router.on("GET", VAULT, kv((_request, params) => {
    const vault = vaultIn(params);
    return checkResourceGroup(runtime.world, params) ?? (vault ? json(200, vaultResource(vault)) : vaultNotFound(params));
  }));

  router.on("PUT", VAULT, kv((request, params) => checkResourceGroup(runtime.world, params) ?? putVault(runtime, request, params)));

  router.on("GET", `${VAULT}/keys/{key}`, kv((_request, params) => {
    const error = checkResourceGroup(runtime.world, params);
    if (error) return error;
    const vault = vaultIn(params);
    if (!vault) return parentResourceNotFound(params.vault ?? "");
    const key = vault.keys.get(lower(params.key ?? ""));
    return key ? json(200, keyResource(vault, key)) : resourceNotFound(`${KEY_TYPE}/${params.vault}/${params.key}`, params.resourceGroup ?? "");
  }));

  router.on("PUT", `${VAULT}/keys/{key}`, kv((request, params) => {
    const error = checkResourceGroup(runtime.world, params);
    if (error) return error;
    const vault = vaultIn(params);
    return vault ? putKey(runtime, vault, request, params.key ?? "") : parentResourceNotFound(params.vault ?? "");
  }));

  const hsms = () => [...runtime.world.managedHsms.values()];
  router.on("GET", "/subscriptions/{subscriptionId}/providers/Microsoft.KeyVault/managedHSMs", kv((request, params) => {
    const error = checkSubscription(runtime.world, params.subscriptionId);
    if (error) return error;
    return pagedList(request, hsms().filter(inSubscription(params.subscriptionId)), PAGING, managedHsmResource);
  }));

  router.on("GET", "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers/Microsoft.KeyVault/managedHSMs", kv((request, params) => {
    const error = checkResourceGroup(runtime.world, params);
    if (error) return error;
    return pagedList(request, hsms().filter(inResourceGroup(params)), PAGING, managedHsmResource);
  }));

  router.on("GET", "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers/Microsoft.KeyVault/managedHSMs/{name}", kv((_request, params) => {
    const error = checkResourceGroup(runtime.world, params);
    if (error) return error;
    const hsm = runtime.world.managedHsms.get(lower(params.name ?? ""));
    if (!hsm || !inResourceGroup(params)(hsm)) return resourceNotFound(`${MANAGED_HSM_TYPE}/${params.name}`, params.resourceGroup ?? "");
    return json(200, managedHsmResource(hsm));
  }));
}
