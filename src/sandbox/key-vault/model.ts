import type { KeyRecord, KeyVersionRecord, VaultRecord } from "../world.js";

/** Key Vault wire shapes (azure-contracts.md 3.3–3.4; SUMMARY.md section 2). */

export const DEFAULT_KEY_OPS = ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"];

/**
 * `recoveryLevel` for the vault's soft-delete settings. Retention of 90 days gives the non-customized
 * values: `Recoverable` with purge protection, `Recoverable+Purgeable` without.
 */
export function recoveryLevel(vault: VaultRecord, plane: "data" | "arm" = "data"): string {
  // ARM's DeletionRecoveryLevel (openapi.json 2026-02-01) has no "Customized" levels: it names the kind only.
  const prefix = vault.softDeleteRetentionInDays === 90 || plane === "arm" ? "Recoverable" : "CustomizedRecoverable";
  return vault.purgeProtection ? prefix : `${prefix}+Purgeable`;
}

/** `kid`s use the host the caller used (no port), e.g. `https://kvsandbox.vault.azure.net/keys/k/v`. */
export function keyId(vaultHost: string, keyName: string, version?: string): string {
  return `https://${vaultHost}/keys/${keyName}${version ? `/${version}` : ""}`;
}

export function currentVersion(key: KeyRecord): KeyVersionRecord {
  const version = key.versions[key.versions.length - 1];
  if (!version) throw new Error(`key ${key.name} has no versions`);
  return version;
}

/**
 * Attribute fields by api-version, as recorded (SUMMARY.md 2): 7.3 and before send neither; 7.4 adds
 * `exportable`; 7.5 (where keys.json defines `hsmPlatform`) and every later version, dated ones included,
 * add `hsmPlatform`. Only `"0"`, a software key's, is recorded; HSM-protected keys send it too.
 */
export function attributeFieldsFor(apiVersion: string): { exportable: boolean; hsmPlatform: boolean } {
  const [major = 0, minor = 0] = apiVersion.split(/[.-]/).map(Number);
  if (major >= 2000) return { exportable: true, hsmPlatform: true };
  const exportable = major > 7 || (major === 7 && minor >= 4);
  return { exportable, hsmPlatform: major > 7 || (major === 7 && minor >= 5) };
}

export function keyAttributes(vault: VaultRecord, version: KeyVersionRecord, apiVersion: string): Record<string, unknown> {
  const attributes: Record<string, unknown> = { enabled: version.enabled };
  if (version.nbf !== undefined) attributes.nbf = version.nbf;
  if (version.exp !== undefined) attributes.exp = version.exp;
  attributes.created = version.created;
  attributes.updated = version.updated;
  attributes.recoveryLevel = recoveryLevel(vault);
  attributes.recoverableDays = vault.softDeleteRetentionInDays;
  const fields = attributeFieldsFor(apiVersion);
  if (fields.exportable) attributes.exportable = false;
  if (fields.hsmPlatform) attributes.hsmPlatform = "0";
  return attributes;
}

/** Metadata of one version, without key material (state dumps, list items). */
export function versionSummary(version: KeyVersionRecord): Record<string, unknown> {
  const { material: _material, ...rest } = version;
  return rest;
}

/** Soft delete (the only mode: soft delete is on in every sandbox vault). Returns the deleted record. */
/** `nowSeconds`: the emulator clock. */
export function softDeleteKey(vault: VaultRecord, keyName: string, nowSeconds: number) {
  const name = keyName.toLowerCase();
  const key = vault.keys.get(name);
  if (!key) return undefined;
  vault.keys.delete(name);
  const deleted = { key, deletedDate: nowSeconds, scheduledPurgeDate: nowSeconds + vault.softDeleteRetentionInDays * 86_400 };
  vault.deletedKeys.set(name, deleted);
  return deleted;
}

export function recoverDeletedKey(vault: VaultRecord, keyName: string): KeyRecord | undefined {
  const name = keyName.toLowerCase();
  const deleted = vault.deletedKeys.get(name);
  if (!deleted || vault.keys.has(name)) return undefined;
  vault.deletedKeys.delete(name);
  vault.keys.set(name, deleted.key);
  return deleted.key;
}
