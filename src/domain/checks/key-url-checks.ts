import type { AzureCloud } from "../../azure/cloud.js";
import { parseKeyUrl } from "../key-url.js";
import { failed, passed, type CheckResult } from "./check-result.js";

/** FHIR's limit on vault name + key name ([FHIR-CMK] prerequisites). */
export const MAX_VAULT_AND_KEY_NAME_LENGTH = 94;
/** Key Vault and Managed HSM issue versions as 32 lower-case hexadecimal characters. */
const KEY_VERSION = /^[0-9a-f]{32}$/;
const VAULT_NAME = /^[a-zA-Z](?!.*--)[a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$/;
const KEY_NAME = /^[0-9a-zA-Z-]{1,127}$/;

/**
 * The checks that need nothing but the URL: the API runs them before accepting a request, so nothing is
 * ever fetched from a host outside the cloud's Key Vault suffixes.
 */
export function checkKeyUrl(url: string, cloud: Pick<AzureCloud, "keyVaultSuffixes">): CheckResult[] {
  const key = parseKeyUrl(url);
  const suffixes = cloud.keyVaultSuffixes;
  const example = `https://{vault}.${suffixes[0]}/keys/{key}/{version}`;
  if (!key) {
    return [
      failed(
        "KeyHostAllowed",
        `"${truncate(url)}" is not a key identifier.`,
        `Copy the Key Identifier of a key version from Key Vault (Keys → key → version); it looks like ${example}.`,
      ),
    ];
  }

  const suffix = suffixes.find((candidate) => key.host.endsWith(`.${candidate}`));
  const vaultLabel = suffix ? key.host.slice(0, -(suffix.length + 1)) : undefined;
  const hostCheck =
    suffix && vaultLabel && VAULT_NAME.test(vaultLabel)
      ? passed("KeyHostAllowed", `${key.host} is a ${suffix.startsWith("managedhsm") ? "Managed HSM" : "Key Vault"} host.`)
      : failed(
          "KeyHostAllowed",
          `Host ${key.host} is not a key vault or managed HSM of this cloud.`,
          `Use a key from Azure Key Vault or Managed HSM: the host must be {name}.${suffixes.join(" or {name}.")}.`,
        );

  const versionCheck =
    key.version === undefined
      ? failed(
          "KeyUrlVersioned",
          `The key URL has no version (${truncate(url)}).`,
          `The FHIR service needs a versioned key: append the version, e.g. ${key.vaultUrl}/keys/${key.keyName}/{version} (az keyvault key show --vault-name ${key.vaultName} --name ${key.keyName} --query key.kid).`,
        )
      : KEY_VERSION.test(key.version)
        ? passed("KeyUrlVersioned", `Key version ${key.version}.`)
        : failed(
            "KeyUrlVersioned",
            `"${truncate(key.version)}" is not a key version (32 lower-case hexadecimal characters).`,
            `Copy the Key Identifier of a key version from Key Vault; the version is its last path segment.`,
          );

  const nameLength = key.vaultName.length + key.keyName.length;
  const lengthCheck = !KEY_NAME.test(key.keyName)
    ? failed("KeyNameLength", `Key name "${truncate(key.keyName)}" is not valid.`, "Key names are 1-127 letters, digits and hyphens.")
    : nameLength > MAX_VAULT_AND_KEY_NAME_LENGTH
      ? failed(
          "KeyNameLength",
          `Vault name + key name is ${nameLength} characters (${key.vaultName.length} + ${key.keyName.length}); the FHIR service allows ${MAX_VAULT_AND_KEY_NAME_LENGTH}.`,
          `Create a key with a name of at most ${MAX_VAULT_AND_KEY_NAME_LENGTH - key.vaultName.length} characters in ${key.vaultName} (az keyvault key create --vault-name ${key.vaultName} --name <shorter-name> --kty RSA --size 2048).`,
        )
      : passed("KeyNameLength", `Vault name + key name is ${nameLength} characters (limit ${MAX_VAULT_AND_KEY_NAME_LENGTH}).`);

  return [versionCheck, hostCheck, lengthCheck];
}

function truncate(text: string, max = 120): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
