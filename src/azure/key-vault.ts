import { KeyClient, type KeyVaultKey } from "@azure/keyvault-keys";
import type { KeyFacts } from "../domain/checks/facts.js";
import type { KeyUrl } from "../domain/key-url.js";
import { rsaModulusBits } from "../domain/key-size.js";
import type { AzureContext } from "./azure-context.js";
import { readFact, type GatheredFact } from "./arm-facts.js";

export interface KeyVaultAdapter {
  /** The key version the URL names (or the latest version when it names none). */
  keyFacts(key: KeyUrl): Promise<GatheredFact<KeyFacts>>;
  /** The versioned URL of the key's newest version. */
  latestVersionUrl(key: KeyUrl): Promise<string>;
  /** Makes a new version now (az keyvault key rotate); returns its versioned URL. */
  rotate(key: KeyUrl): Promise<string>;
  /** Whether the key is soft-deleted (and so recoverable). */
  deletedKey(key: KeyUrl): Promise<GatheredFact<{ recoveryId: string; scheduledPurgeDate?: Date }>>;
  /** Recovers a soft-deleted key and waits until it is back. */
  recoverDeleted(key: KeyUrl): Promise<void>;
}

export function toKeyFacts(key: KeyVaultKey): KeyFacts {
  const jwk = key.key;
  const modulus = jwk?.n;
  return {
    kid: key.id ?? "",
    keyType: jwk?.kty ?? key.keyType ?? "unknown",
    ...(modulus && modulus.length > 0 ? { keySize: rsaModulusBits(modulus) } : {}),
    ...(jwk?.crv ? { curve: jwk.crv } : {}),
    enabled: key.properties.enabled ?? false,
    ...(key.properties.notBefore ? { notBefore: key.properties.notBefore } : {}),
    ...(key.properties.expiresOn ? { expiresOn: key.properties.expiresOn } : {}),
    keyOps: (key.keyOperations ?? jwk?.keyOps ?? []).map(String),
    ...(key.properties.recoveryLevel ? { recoveryLevel: key.properties.recoveryLevel } : {}),
    ...(key.properties.recoverableDays !== undefined ? { recoverableDays: key.properties.recoverableDays } : {}),
  };
}

/** Key Vault's keys data plane through `@azure/keyvault-keys` (challenge auth, as in Azure). */
export function createKeyVaultAdapter(context: AzureContext): KeyVaultAdapter {
  const clients = new Map<string, KeyClient>();
  const client = (vaultUrl: string) => {
    let existing = clients.get(vaultUrl);
    if (!existing) {
      existing = new KeyClient(vaultUrl, context.credential, { ...context.clientOptions });
      clients.set(vaultUrl, existing);
    }
    return existing;
  };
  return {
    keyFacts: (key) => readFact(async () => toKeyFacts(await client(key.vaultUrl).getKey(key.keyName, key.version ? { version: key.version } : {}))),
    latestVersionUrl: async (key) => (await client(key.vaultUrl).getKey(key.keyName)).id ?? "",
    rotate: async (key) => (await client(key.vaultUrl).rotateKey(key.keyName)).id ?? "",
    deletedKey: (key) =>
      readFact(async () => {
        const deleted = await client(key.vaultUrl).getDeletedKey(key.keyName);
        return { recoveryId: deleted.properties.recoveryId ?? "", ...(deleted.properties.scheduledPurgeDate ? { scheduledPurgeDate: deleted.properties.scheduledPurgeDate } : {}) };
      }),
    recoverDeleted: async (key) => {
      const poller = await client(key.vaultUrl).beginRecoverDeletedKey(key.keyName, { intervalInMs: 500 });
      await poller.pollUntilDone();
    },
  };
}
