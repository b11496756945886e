import t from "tap";
import { checkKey } from "../../../src/domain/checks/key-checks.js";
import { checkVault, vaultReadAction } from "../../../src/domain/checks/vault-checks.js";
import type { KeyFacts, VaultFacts } from "../../../src/domain/checks/facts.js";
import type { CheckResult } from "../../../src/domain/checks/check-result.js";
import { parseKeyUrl } from "../../../src/domain/key-url.js";
import { rsaModulusBits } from "../../../src/domain/key-size.js";

const key = parseKeyUrl("https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048/00000000000000000000000000000002")!;
const now = new Date("2026-11-28T12:00:00Z");
const good: KeyFacts = { kid: key.url, keyType: "RSA", keySize: 2048, enabled: true, keyOps: ["wrapKey", "unwrapKey", "encrypt"], recoveryLevel: "Recoverable" };
const byId = (results: CheckResult[]) => Object.fromEntries(results.map((r) => [r.id, r])) as Record<string, CheckResult>;
const keyResult = (facts: Partial<KeyFacts>) => byId(checkKey(key, { status: "found", value: { ...good, ...facts } }, now));

t.test("a good RSA key passes every key check", async (t) => {
  t.same(checkKey(key, { status: "found", value: good }, now).map((r) => r.status), ["Passed", "Passed", "Passed", "Passed", "Passed", "Passed"]);
  t.equal(keyResult({ keyType: "RSA-HSM", keySize: 3072 }).KeySize?.status, "Passed");
});

t.test("each bad key fails for one reason, saying what was found", async (t) => {
  t.match(keyResult({ keyType: "EC", keySize: undefined, curve: "P-256" }).KeyType, { status: "Failed", message: /EC P-256/ });
  t.equal(keyResult({ keyType: "EC", keySize: undefined }).KeySize?.status, "Skipped");
  t.match(keyResult({ keySize: 4096 }).KeySize, { status: "Failed", message: /4096-bit/, remediation: /--size/ });
  t.match(keyResult({ enabled: false }).KeyEnabled, { status: "Failed", remediation: /--enabled true/ });
  t.match(keyResult({ expiresOn: new Date("2026-01-01T00:00:00Z") }).KeyNotExpired, { status: "Failed", message: /expired at 2026-01-01/ });
  t.match(keyResult({ notBefore: new Date("2027-01-01T00:00:00Z") }).KeyNotExpired, { status: "Failed", message: /not valid before/ });
  t.match(keyResult({ expiresOn: new Date("2026-12-05T00:00:00Z") }).KeyNotExpired, { status: "Warning", message: /expires in 6 day/ });
  t.match(keyResult({ keyOps: ["sign", "verify"] }).KeyOperations, { status: "Failed", message: /sign, verify; wrapKey and unwrapKey are missing/, remediation: /--ops wrapKey unwrapKey/ });
});

t.test("a missing key fails KeyExists and skips the rest; an unreadable one warns", async (t) => {
  const missing = byId(checkKey(key, { status: "missing" }, now));
  t.match(missing.KeyExists, { status: "Failed", remediation: /az keyvault key create/ });
  t.equal(missing.KeySize?.status, "Skipped");
  const unreadable = byId(checkKey(key, { status: "unreadable", reason: "403 ForbiddenByRbac", cause: "permission" }, now));
  t.match(unreadable.KeyExists, { status: "Warning", message: /ForbiddenByRbac/ });
  const firewalled = byId(checkKey(key, { status: "unreadable", reason: "Forbidden/ForbiddenByFirewall (HTTP 403)", cause: "firewall" }, now));
  t.match(firewalled.KeyExists, { status: "Skipped", message: /firewall.*VaultFirewall/ }, "behind a firewall, VaultFirewall decides");
});

const vault: VaultFacts = {
  name: "kvsandbox",
  id: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kvsandbox",
  location: "westus3",
  enableSoftDelete: true,
  enablePurgeProtection: true,
  enableRbacAuthorization: true,
  publicNetworkAccess: "Enabled",
};
const vaultResult = (facts: Partial<VaultFacts>, fhirLocation = "westus3") =>
  byId(checkVault(key, { status: "found", value: { ...vault, ...facts } }, { status: "found", value: good }, fhirLocation));

t.test("vault checks", async (t) => {
  t.same(Object.values(vaultResult({})).map((r) => r.status), ["Passed", "Passed", "Passed", "Passed"]);
  t.equal(vaultResult({}, "West US 3").VaultRegion?.status, "Passed", "region spellings compare equal");
  t.match(vaultResult({ enablePurgeProtection: false }).VaultPurgeProtection, { status: "Failed", remediation: /--enable-purge-protection true/ });
  t.match(vaultResult({ enableSoftDelete: false }).VaultSoftDelete, { status: "Failed" });
  t.match(vaultResult({ location: "eastus" }).VaultRegion, { status: "Failed", message: /eastus.*westus3/ });
  t.match(vaultResult({ publicNetworkAccess: "Disabled", networkAcls: { defaultAction: "Deny", bypass: "None" } }).VaultFirewall, { status: "Failed", remediation: /--bypass AzureServices/ });
  t.equal(vaultResult({ publicNetworkAccess: "Disabled", networkAcls: { defaultAction: "Deny", bypass: "AzureServices" } }).VaultFirewall?.status, "Passed");
  t.equal(vaultResult({ networkAcls: { defaultAction: "Deny", bypass: "None" } }).VaultFirewall?.status, "Failed");
});

t.test("an unreadable vault falls back on the key's recoveryLevel; region and firewall warn that they could not run", async (t) => {
  const reason = "AuthorizationFailed (HTTP 403): the service's identity lacks 'Microsoft.KeyVault/vaults/read'";
  const results = byId(checkVault(key, { status: "unreadable", reason, cause: "permission" }, { status: "found", value: { ...good, recoveryLevel: "Recoverable+Purgeable" } }, "westus3"));
  t.equal(results.VaultSoftDelete?.status, "Passed");
  t.equal(results.VaultPurgeProtection?.status, "Failed");
  for (const id of ["VaultRegion", "VaultFirewall"]) {
    t.match(results[id], { status: "Warning", message: /Not checked: .*lacks 'Microsoft\.KeyVault\/vaults\/read'/, remediation: /Microsoft\.KeyVault\/vaults\/read/ }, id);
  }
  const elsewhere = byId(checkVault(key, { status: "missing" }, { status: "found", value: good }, "westus3"));
  t.equal(elsewhere.VaultRegion?.status, "Skipped", "a vault not found through ARM (another subscription) is skipped, by design");
  const hsmKey = parseKeyUrl("https://hsmsandbox.managedhsm.azure.net/keys/cmk-hsm-3072/00000000000000000000000000000001")!;
  const hsm = byId(checkVault(hsmKey, { status: "unreadable", reason: "AuthorizationFailed (HTTP 403): the service's identity lacks 'Microsoft.KeyVault/managedHSMs/read'", cause: "permission" }, { status: "found", value: good }, "westus3"));
  t.match(hsm.VaultFirewall, { status: "Warning", message: /managed HSM hsmsandbox.*managedHSMs\/read/, remediation: /Microsoft\.KeyVault\/managedHSMs\/read on the managed HSM/ });
  t.equal(vaultReadAction(hsmKey), "Microsoft.KeyVault/managedHSMs/read");
  t.equal(vaultReadAction(key), "Microsoft.KeyVault/vaults/read");
});

t.test("RSA modulus size", async (t) => {
  t.equal(rsaModulusBits(Buffer.concat([Buffer.from([0]), Buffer.alloc(256, 0xff)])), 2048);
  t.equal(rsaModulusBits(Buffer.alloc(384, 0x80).toString("base64url")), 3072);
  t.equal(rsaModulusBits(Buffer.alloc(0)), 0);
});
