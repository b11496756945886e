import { isManagedHsmKey, type KeyUrl } from "../key-url.js";
import { failed, passed, skipped, warning, type CheckResult } from "./check-result.js";
import type { Fact, KeyFacts, VaultFacts } from "./facts.js";

/** recoveryLevel values meaning soft delete and purge protection are both on (azure-contracts 3.4). */
const PURGE_PROTECTED_LEVELS = ["Recoverable", "Recoverable+ProtectedSubscription", "CustomizedRecoverable", "CustomizedRecoverable+ProtectedSubscription"];

/** Azure spells regions both "West US 3" and "westus3". */
export function normalizeRegion(region: string): string {
  return region.toLowerCase().replace(/\s+/g, "");
}

/** The ARM read that gives the vault (or managed HSM) a key URL names. */
export function vaultReadAction(key: KeyUrl): string {
  return isManagedHsmKey(key) ? "Microsoft.KeyVault/managedHSMs/read" : "Microsoft.KeyVault/vaults/read";
}

/** VaultSoftDelete, VaultPurgeProtection, VaultRegion, VaultFirewall. */
export function checkVault(key: KeyUrl, vault: Fact<VaultFacts>, keyFact: Fact<KeyFacts>, fhirLocation: string | undefined): CheckResult[] {
  const hsm = isManagedHsmKey(key);
  const update = (flag: string) => (hsm ? `az keyvault update-hsm --hsm-name ${key.vaultName} ${flag}` : `az keyvault update --name ${key.vaultName} ${flag}`);
  const store = hsm ? "managed HSM" : "vault";
  if (vault.status !== "found") {
    // The key's recoveryLevel says the same as the vault's soft delete and purge protection flags.
    const level = keyFact.status === "found" ? keyFact.value.recoveryLevel : undefined;
    const why = vault.status === "missing" ? `${store} ${key.vaultName} was not found through ARM` : `the service could not read ${store} ${key.vaultName} through ARM: ${vault.reason}`;
    const readIt = `Give the service's identity ${vaultReadAction(key)} on the ${store} (it is in deploy/cmk-service-role.json) so it can check it.`;
    const fromLevel = (id: "VaultSoftDelete" | "VaultPurgeProtection", ok: boolean, fix: string) =>
      level === undefined
        ? warning(id, `Not verified: ${why}.`, readIt)
        : ok
          ? passed(id, `Key recoveryLevel is ${level}.`)
          : failed(id, `Key recoveryLevel is ${level}.`, fix);
    // A vault the service could not read is a check it could not run (a warning, like every fact its own
    // permissions hide); one not found through ARM lives elsewhere by design (gather-facts.ts): skipped.
    const notRun = (id: "VaultRegion" | "VaultFirewall") => (vault.status === "unreadable" ? warning(id, `Not checked: ${why}.`, readIt) : skipped(id, `Not checked: ${why}.`));
    return [
      fromLevel("VaultSoftDelete", level !== undefined && level !== "Purgeable", update("--enable-soft-delete true")),
      fromLevel("VaultPurgeProtection", level !== undefined && PURGE_PROTECTED_LEVELS.includes(level), update("--enable-purge-protection true")),
      notRun("VaultRegion"),
      notRun("VaultFirewall"),
    ];
  }

  const facts = vault.value;
  const results: CheckResult[] = [
    facts.enableSoftDelete
      ? passed("VaultSoftDelete", `Soft delete is on (${facts.softDeleteRetentionInDays ?? 90} days)${facts.managedHsm ? ", as it always is on a managed HSM" : ""}.`)
      : failed("VaultSoftDelete", `Soft delete is off on ${facts.name}.`, `Turn it on: ${update("--enable-soft-delete true")}.`),
    facts.enablePurgeProtection
      ? passed("VaultPurgeProtection", "Purge protection is on.")
      : failed(
          "VaultPurgeProtection",
          `Purge protection is off on ${facts.name}.`,
          `Turn it on (it cannot be turned off again): ${update("--enable-purge-protection true")}, or use a key in a vault that has it.`,
        ),
  ];
  if (!fhirLocation) {
    results.push(skipped("VaultRegion", "Not checked: the FHIR service's region is unknown."));
  } else if (normalizeRegion(facts.location) === normalizeRegion(fhirLocation)) {
    results.push(passed("VaultRegion", `Vault and FHIR service are both in ${normalizeRegion(fhirLocation)}.`));
  } else {
    results.push(
      failed(
        "VaultRegion",
        `${facts.managedHsm ? "Managed HSM" : "Vault"} ${facts.name} is in ${normalizeRegion(facts.location)}; the FHIR service is in ${normalizeRegion(fhirLocation)}.`,
        `Use a key from a vault in ${normalizeRegion(fhirLocation)} (az keyvault create --name <vault> --location ${normalizeRegion(fhirLocation)} --enable-purge-protection true --enable-rbac-authorization true)${facts.managedHsm ? ` or a managed HSM there` : ""}.`,
      ),
    );
  }
  results.push(checkFirewall(facts, update));
  return results;
}

function checkFirewall(facts: VaultFacts, update: (flag: string) => string): CheckResult {
  const publicDisabled = facts.publicNetworkAccess.toLowerCase() === "disabled";
  const denyByDefault = facts.networkAcls?.defaultAction?.toLowerCase() === "deny";
  if (!publicDisabled && !denyByDefault) return passed("VaultFirewall", "Public network access is enabled; no firewall stands between the FHIR service and the vault.");
  const bypass = facts.networkAcls?.bypass ?? "AzureServices";
  const how = publicDisabled ? "Public network access is disabled" : "The vault firewall denies by default";
  if (bypass.split(",").map((part) => part.trim().toLowerCase()).includes("azureservices")) {
    return passed("VaultFirewall", `${how}, and trusted Microsoft services may bypass it.`);
  }
  return failed(
    "VaultFirewall",
    `${how} and trusted Microsoft services may not bypass the firewall (bypass ${bypass}).`,
    `Allow trusted Microsoft services: ${update("--bypass AzureServices")} (portal: Networking → "Allow trusted Microsoft services to bypass this firewall").`,
  );
}
