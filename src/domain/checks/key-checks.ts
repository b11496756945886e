import type { KeyUrl } from "../key-url.js";
import { failed, passed, skipped, warning, type CheckResult } from "./check-result.js";
import type { Fact, KeyFacts } from "./facts.js";

const ALLOWED_KEY_TYPES = ["RSA", "RSA-HSM"];
const ALLOWED_KEY_SIZES = [2048, 3072];
const REQUIRED_OPERATIONS = ["wrapKey", "unwrapKey"];

function createCommand(key: KeyUrl): string {
  return `az keyvault key create --vault-name ${key.vaultName} --name ${key.keyName} --kty RSA --size 2048 --ops wrapKey unwrapKey`;
}

/** KeyExists, KeyType, KeySize, KeyEnabled, KeyNotExpired, KeyOperations. */
export function checkKey(key: KeyUrl, fact: Fact<KeyFacts>, now: Date): CheckResult[] {
  const where = `${key.keyName}${key.version ? ` version ${key.version}` : ""} in ${key.vaultName}`;
  if (fact.status !== "found") {
    const behindFirewall = fact.status === "unreadable" && fact.cause === "firewall";
    const reason =
      fact.status === "missing" ? "the key does not exist" : behindFirewall ? "the vault's firewall refuses the service's own requests" : "the key could not be read";
    const dependents = (["KeyType", "KeySize", "KeyEnabled", "KeyNotExpired", "KeyOperations"] as const).map((id) => skipped(id, `Not checked: ${reason}.`));
    // Behind a firewall, VaultFirewall is the check that matters: whether the FHIR service may pass.
    if (behindFirewall) return [skipped("KeyExists", `Not checked: ${reason} (${fact.reason}); see VaultFirewall.`), ...dependents];
    const exists =
      fact.status === "missing"
        ? failed(
            "KeyExists",
            `Key ${where} was not found${fact.detail ? ` (${fact.detail})` : ""}.`,
            `Check the key URL, or create the key (${createCommand(key)}) and use the versioned Key Identifier it returns. A soft-deleted key can be recovered with az keyvault key recover --vault-name ${key.vaultName} --name ${key.keyName}.`,
          )
        : warning(
            "KeyExists",
            `The service could not read key ${where}: ${fact.reason}.`,
            `Give the service's identity read access to keys (e.g. Key Vault Crypto Officer or Key Vault Reader on ${key.vaultName}) so it can check the key, or check it yourself.`,
          );
    return [exists, ...dependents];
  }

  const facts = fact.value;
  const results: CheckResult[] = [passed("KeyExists", `Key ${where} exists.`)];
  const isRsa = ALLOWED_KEY_TYPES.includes(facts.keyType);
  results.push(
    isRsa
      ? passed("KeyType", `Key type is ${facts.keyType}.`)
      : failed(
          "KeyType",
          `Key is ${facts.keyType}${facts.curve ? ` ${facts.curve}` : ""}; the FHIR service needs an RSA key.`,
          `Create an RSA key: ${createCommand(key).replace(`--name ${key.keyName}`, "--name <new-key>")}.`,
        ),
  );
  results.push(
    !isRsa
      ? skipped("KeySize", "Not checked: the key is not RSA.")
      : facts.keySize !== undefined && ALLOWED_KEY_SIZES.includes(facts.keySize)
        ? passed("KeySize", `Key is ${facts.keySize}-bit.`)
        : failed(
            "KeySize",
            `Key is ${facts.keySize ?? "of unknown size"}${facts.keySize ? "-bit" : ""}; the FHIR service accepts 2048 or 3072 bits.`,
            `Create a 2048- or 3072-bit RSA key (az keyvault key create --vault-name ${key.vaultName} --name <new-key> --kty RSA --size 3072).`,
          ),
  );
  results.push(
    facts.enabled
      ? passed("KeyEnabled", "Key is enabled.")
      : failed("KeyEnabled", `Key ${where} is disabled.`, `Enable it: az keyvault key set-attributes --vault-name ${key.vaultName} --name ${key.keyName} --version ${key.version ?? "<version>"} --enabled true.`),
  );
  results.push(checkValidity(key, facts, now));
  const missingOps = REQUIRED_OPERATIONS.filter((op) => !facts.keyOps.includes(op));
  results.push(
    missingOps.length === 0
      ? passed("KeyOperations", `key_ops allow ${REQUIRED_OPERATIONS.join(" and ")}.`)
      : failed(
          "KeyOperations",
          `key_ops are ${facts.keyOps.join(", ") || "empty"}; ${missingOps.join(" and ")} ${missingOps.length > 1 ? "are" : "is"} missing.`,
          `Allow them: az keyvault key set-attributes --vault-name ${key.vaultName} --name ${key.keyName} --version ${key.version ?? "<version>"} --ops wrapKey unwrapKey (or create a new key with --ops wrapKey unwrapKey).`,
        ),
  );
  return results;
}

function checkValidity(key: KeyUrl, facts: KeyFacts, now: Date): CheckResult {
  if (facts.notBefore && facts.notBefore > now) {
    return failed(
      "KeyNotExpired",
      `Key is not valid before ${facts.notBefore.toISOString()} (nbf).`,
      `Wait until then, or move the start: az keyvault key set-attributes --vault-name ${key.vaultName} --name ${key.keyName} --version ${key.version ?? "<version>"} --not-before <date>.`,
    );
  }
  if (facts.expiresOn && facts.expiresOn <= now) {
    return failed(
      "KeyNotExpired",
      `Key expired at ${facts.expiresOn.toISOString()} (exp).`,
      `Rotate to a new version (az keyvault key rotate --vault-name ${key.vaultName} --name ${key.keyName}) and use its URL, or extend it with az keyvault key set-attributes ... --expires <date>.`,
    );
  }
  if (facts.expiresOn) {
    const days = Math.floor((facts.expiresOn.getTime() - now.getTime()) / 86_400_000);
    if (days < 30) {
      return warning("KeyNotExpired", `Key expires in ${days} day(s), at ${facts.expiresOn.toISOString()}.`, "Plan a RotateKey before it expires: an expired key makes the FHIR service answer 500.");
    }
    return passed("KeyNotExpired", `Key is valid until ${facts.expiresOn.toISOString()}.`);
  }
  return passed("KeyNotExpired", "Key has no expiry date.");
}
