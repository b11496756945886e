import type { FhirServiceResource } from "./arm/healthcare-apis-model.js";
import { findLocalGrant } from "./managed-hsm-rbac.js";
import { findGrant } from "./rbac.js";
import { idKey, lower, type KeyRecord, type KeyVersionRecord, type ManagedHsmRecord, type OperationError, type VaultRecord, type World } from "./world.js";

/**
 * Can a FHIR service use a customer-managed key? The same checks serve two purposes:
 *
 * - `configure`: what the HealthcareApis RP verifies when a PUT sets or changes the key (the async
 *   operation ends Failed with the first failure). Every check runs.
 * - `runtime`: what the FHIR data plane needs to keep serving (key reachable, enabled, not expired,
 *   identity enabled and authorized). Properties that only matter when configuring (key type and
 *   size, purge protection, region) are skipped.
 *
 * The real RP's error codes for these cases are undocumented (azure-contracts.md 10.5, 12.2): the
 * codes below are the sandbox's choice and are named so a reader can tell the failures apart.
 */

export const KEY_VAULT_SUFFIX = ".vault.azure.net";
export const MANAGED_HSM_SUFFIX = ".managedhsm.azure.net";
export const MAX_VAULT_AND_KEY_NAME_LENGTH = 94;

/** Read, wrap and unwrap, as each kind of key store names them (Crypto Service Encryption User's, in both). */
const REQUIRED_DATA_ACTIONS = {
  vault: ["Microsoft.KeyVault/vaults/keys/read", "Microsoft.KeyVault/vaults/keys/wrap/action", "Microsoft.KeyVault/vaults/keys/unwrap/action"],
  managedHsm: ["Microsoft.KeyVault/managedHsm/keys/read/action", "Microsoft.KeyVault/managedHsm/keys/wrap/action", "Microsoft.KeyVault/managedHsm/keys/unwrap/action"],
};

export interface ParsedKeyUrl {
  /** The vault's or the Managed HSM's name. */
  vaultName: string;
  keyName: string;
  version?: string;
  managedHsm: boolean;
}

/** The vault or Managed HSM a key URL names, if the world has it. */
export function keyStoreOf(world: World, parsed: ParsedKeyUrl): VaultRecord | ManagedHsmRecord | undefined {
  return (parsed.managedHsm ? world.managedHsms : world.vaults).get(lower(parsed.vaultName));
}

/** `https://{vault}.vault.azure.net/keys/{name}[/{version}]` (or `{hsm}.managedhsm.azure.net`), or undefined for anything else. */
export function parseKeyUrl(url: string): ParsedKeyUrl | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  const host = parsed.hostname.toLowerCase();
  const suffix = [KEY_VAULT_SUFFIX, MANAGED_HSM_SUFFIX].find((candidate) => host.endsWith(candidate));
  if (parsed.protocol !== "https:" || !suffix) return undefined;
  const vaultName = host.slice(0, -suffix.length);
  if (!/^[a-z0-9-]{3,24}$/.test(vaultName)) return undefined;
  const match = /^\/keys\/([0-9a-zA-Z-]+)(?:\/([0-9a-zA-Z]*))?\/?$/.exec(parsed.pathname);
  if (!match) return undefined;
  const result: ParsedKeyUrl = { vaultName, keyName: match[1] as string, managedHsm: suffix === MANAGED_HSM_SUFFIX };
  if (match[2]) result.version = match[2];
  return result;
}

export function keyScope(vault: VaultRecord, keyName: string): string {
  return `/subscriptions/${vault.subscriptionId}/resourceGroups/${vault.resourceGroup}/providers/Microsoft.KeyVault/vaults/${vault.name}/keys/${keyName}`;
}

/** The principal a FHIR service reaches its key with: its system identity or its single UAMI. */
export function encryptionPrincipal(world: World, resource: Pick<FhirServiceResource, "identity">): { principalId: string; label: string } | undefined {
  const identity = resource.identity;
  if (!identity) return undefined;
  if (identity.type === "SystemAssigned" && identity.principalId) {
    return { principalId: identity.principalId, label: `system-assigned identity '${identity.principalId}'` };
  }
  if (identity.type === "UserAssigned" && identity.userAssignedIdentities) {
    const [uamiId] = Object.keys(identity.userAssignedIdentities);
    const uami = uamiId ? world.identities.get(idKey(uamiId)) : undefined;
    if (uami) return { principalId: uami.principalId, label: `user-assigned identity '${uamiId}'` };
  }
  return undefined;
}

export interface ResolvedKey {
  vault: VaultRecord;
  key: KeyRecord;
  version: KeyVersionRecord;
}

export interface KeyAccessInput {
  keyUrl: string;
  /** Location of the FHIR service (normalized). */
  location: string;
  identity: FhirServiceResource["identity"];
  purpose: "configure" | "runtime";
  /** The emulator clock, in Unix seconds. */
  nowSeconds: number;
}

function failure(code: string, message: string): OperationError {
  return { code, message };
}

/** The first reason the key cannot be used, or undefined when it can. */
export function checkKeyAccess(world: World, input: KeyAccessInput): OperationError | undefined {
  const now = input.nowSeconds;
  const configuring = input.purpose === "configure";
  const url = input.keyUrl;

  const parsed = parseKeyUrl(url);
  if (!parsed) {
    return failure(
      "InvalidKeyEncryptionKeyUrl",
      `The key encryption key URL '${url}' is not a valid Azure Key Vault or Managed HSM key identifier (https://{vault}${KEY_VAULT_SUFFIX}/keys/{name}/{version} or https://{hsm}${MANAGED_HSM_SUFFIX}/keys/{name}/{version}).`,
    );
  }
  if (!parsed.version) {
    return failure("InvalidKeyEncryptionKeyUrl", `The key encryption key URL '${url}' must include a key version; versionless keys are not supported.`);
  }
  if (configuring && parsed.vaultName.length + parsed.keyName.length > MAX_VAULT_AND_KEY_NAME_LENGTH) {
    return failure(
      "KeyVaultKeyNameTooLong",
      `The key vault name and key name together must not exceed ${MAX_VAULT_AND_KEY_NAME_LENGTH} characters; '${parsed.vaultName}' and '${parsed.keyName}' have ${parsed.vaultName.length + parsed.keyName.length}.`,
    );
  }
  const vault = keyStoreOf(world, parsed);
  const store = parsed.managedHsm ? "managed HSM" : "key vault";
  if (!vault) return failure("KeyVaultNotFound", `The ${store} '${parsed.vaultName}' could not be found.`);

  const principal = encryptionPrincipal(world, { identity: input.identity });
  if (!principal) {
    return failure("ManagedIdentityRequired", "A system-assigned or user-assigned managed identity is required to access the customer-managed key.");
  }
  if (world.disabledPrincipals.has(lower(principal.principalId))) {
    return failure("KeyVaultAccessForbidden", `The ${principal.label} is disabled and cannot access key vault '${vault.name}'.`);
  }
  const firewallClosed = vault.publicNetworkAccess === "Disabled" || vault.networkAcls?.defaultAction === "Deny";
  if (firewallClosed && vault.networkAcls?.bypass !== "AzureServices") {
    return failure(
      "KeyVaultAccessForbidden",
      `Key vault '${vault.name}' denies access from public networks and does not allow trusted Microsoft services to bypass its firewall.`,
    );
  }
  const missing =
    "localRoleAssignments" in vault
      ? REQUIRED_DATA_ACTIONS.managedHsm.find((dataAction) => !findLocalGrant(vault, principal.principalId, `/keys/${parsed.keyName}`, dataAction))
      : REQUIRED_DATA_ACTIONS.vault.find((dataAction) => !findGrant(world, principal.principalId, keyScope(vault, parsed.keyName), { dataAction }));
  if (missing) {
    const role = parsed.managedHsm ? "Managed HSM Crypto Service Encryption User" : "Key Vault Crypto Service Encryption User";
    return failure(
      "KeyVaultAccessForbidden",
      `The ${principal.label} does not have permission '${missing}' on key '${parsed.keyName}' in ${store} '${vault.name}'. Assign it the '${role}' role.`,
    );
  }

  const key = vault.keys.get(lower(parsed.keyName));
  const version = key?.versions.find((candidate) => candidate.version === lower(parsed.version ?? ""));
  if (!key || !version) return failure("KeyVaultKeyNotFound", `The key '${url}' was not found in ${store} '${vault.name}'.`);
  if (!version.enabled) return failure("KeyVaultKeyDisabled", `The key '${url}' is disabled.`);
  if (version.exp !== undefined && version.exp <= now) {
    return failure("KeyVaultKeyExpired", `The key '${url}' expired at ${new Date(version.exp * 1000).toISOString()}.`);
  }
  if (version.nbf !== undefined && version.nbf > now) {
    return failure("KeyVaultKeyNotYetValid", `The key '${url}' is not valid before ${new Date(version.nbf * 1000).toISOString()}.`);
  }
  if (!configuring) return undefined;

  if (version.kty !== "RSA" && version.kty !== "RSA-HSM") {
    return failure("InvalidKeyType", `The key '${url}' has type '${version.kty}'; the FHIR service requires an RSA or RSA-HSM key.`);
  }
  if (version.keySize !== 2048 && version.keySize !== 3072) {
    return failure("InvalidKeySize", `The key '${url}' has ${version.keySize ?? "an unknown number of"} bits; the FHIR service requires 2048 or 3072.`);
  }
  const missingOps = ["wrapKey", "unwrapKey"].filter((op) => !version.keyOps.includes(op));
  if (missingOps.length > 0) {
    return failure("InvalidKeyOperations", `The key '${url}' does not permit ${missingOps.join(" and ")}; the FHIR service requires wrapKey and unwrapKey.`);
  }
  if (!vault.purgeProtection) {
    return failure("KeyVaultPurgeProtectionRequired", `The ${store} '${vault.name}' must have soft delete and purge protection enabled.`);
  }
  if (vault.location !== input.location) {
    return failure("KeyVaultRegionMismatch", `The ${store} '${vault.name}' is in '${vault.location}'; it must be in the FHIR service's region '${input.location}'.`);
  }
  return undefined;
}
