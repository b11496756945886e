import { KeyClient, type KeyVaultKey } from "@azure/keyvault-keys";
import type { KeyFacts } from "../domain/checks/facts.js";
import type { KeyUrl } from "../domain/key-url.js";
import type { KeyVersionFacts } from "../domain/fleet-plan.js";
import { rsaModulusBits } from "../domain/key-size.js";
import type { AzureContext } from "./azure-context.js";
import { keepAnswers, readFact, type GatheredFact } from "./arm-facts.js";
import { createReadCache, type ReadCache } from "./read-cache.js";

export interface KeyVaultAdapter {
  /** The key version the URL names (or the latest version when it names none). */
  keyFacts(key: KeyUrl): Promise<GatheredFact<KeyFacts>>;
  /** The versioned URL of the key's newest version. */
  latestVersionUrl(key: KeyUrl): Promise<string>;
  /** Every version of the key (every page of Key Vault's list), with what choosing one needs. */
  keyVersions(key: KeyUrl): Promise<KeyVersionFacts[]>;
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
export function createKeyVaultAdapter(context: AzureContext, cache: ReadCache = createReadCache(0)): KeyVaultAdapter {
  const clients = new Map<string, KeyClient>();
  const client = (vaultUrl: string) => {
    let existing = clients.get(vaultUrl);
    if (!existing) {
      existing = new KeyClient(vaultUrl, context.credential, { ...context.clientOptions });
      clients.set(vaultUrl, existing);
    }
    return existing;
  };
  /** Every cached read of one key (any version) starts with this; a rotation or recovery forgets them all. */
  const keyPrefix = (key: KeyUrl) => `key:${key.vaultUrl}/keys/${key.keyName}/`.toLowerCase();
  const changing = <T>(key: KeyUrl, change: () => Promise<T>): Promise<T> => cache.writing(keyPrefix(key), change);
  return {
    keyFacts: (key) =>
      cache.read(
        `${keyPrefix(key)}facts/${(key.version ?? "").toLowerCase()}`,
        () => readFact(async () => toKeyFacts(await client(key.vaultUrl).getKey(key.keyName, key.version ? { version: key.version } : {}))),
        keepAnswers,
      ),
    latestVersionUrl: (key) => cache.read(`${keyPrefix(key)}latest`, async () => (await client(key.vaultUrl).getKey(key.keyName)).id ?? ""),
    keyVersions: (key) =>
      cache.read(`${keyPrefix(key)}versions`, async () => {
        const versions: KeyVersionFacts[] = [];
        for await (const version of client(key.vaultUrl).listPropertiesOfKeyVersions(key.keyName)) {
          if (!version.id) continue;
          versions.push({
            url: version.id,
            enabled: version.enabled ?? false,
            ...(version.createdOn ? { createdOn: version.createdOn } : {}),
            ...(version.notBefore ? { notBefore: version.notBefore } : {}),
            ...(version.expiresOn ? { expiresOn: version.expiresOn } : {}),
          });
        }
        return versions;
      }),
    rotate: (key) => changing(key, async () => (await client(key.vaultUrl).rotateKey(key.keyName)).id ?? ""),
    deletedKey: (key) =>
      cache.read(
        `${keyPrefix(key)}deleted`,
        () =>
          readFact(async () => {
            const deleted = await client(key.vaultUrl).getDeletedKey(key.keyName);
            return { recoveryId: deleted.properties.recoveryId ?? "", ...(deleted.properties.scheduledPurgeDate ? { scheduledPurgeDate: deleted.properties.scheduledPurgeDate } : {}) };
          }),
        keepAnswers,
      ),
    recoverDeleted: (key) =>
      changing(key, async () => {
        const poller = await client(key.vaultUrl).beginRecoverDeletedKey(key.keyName, { intervalInMs: 500 });
        await poller.pollUntilDone();
      }),
  };
}
