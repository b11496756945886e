import t from "tap";
import { AZURE_CHINA_CLOUD, AZURE_CLOUD_NAMES, AZURE_PUBLIC_CLOUD, AZURE_US_GOVERNMENT, azureCloud, emulatedHosts, hostMatches, type AzureCloud } from "../../src/azure/cloud.js";
import { createAzureContext } from "../../src/azure/azure-context.js";
import { checkKeyUrl } from "../../src/domain/checks/key-url-checks.js";
import { isManagedHsmKey, parseKeyUrl } from "../../src/domain/key-url.js";

/** CMK_CLOUD: each cloud's endpoints (as `az cloud show` lists them) and the key URL rules that follow from them. */

const V = "00000000000000000000000000000002";
const status = (url: string, cloud: AzureCloud) => Object.fromEntries(checkKeyUrl(url, cloud).map((check) => [check.id, check]));

const EXPECTED: Record<string, { arm: string; login: string; vault: string; hsm: string; fhir: string }> = {
  AzurePublicCloud: { arm: "https://management.azure.com", login: "https://login.microsoftonline.com", vault: "vault.azure.net", hsm: "managedhsm.azure.net", fhir: "fhir.azurehealthcareapis.com" },
  AzureUSGovernment: { arm: "https://management.usgovcloudapi.net", login: "https://login.microsoftonline.us", vault: "vault.usgovcloudapi.net", hsm: "managedhsm.usgovcloudapi.net", fhir: "fhir.azurehealthcareapis.us" },
  AzureChinaCloud: { arm: "https://management.chinacloudapi.cn", login: "https://login.chinacloudapi.cn", vault: "vault.azure.cn", hsm: "managedhsm.azure.cn", fhir: "fhir.azurehealthcareapis.cn" },
};

t.test("each cloud's endpoints, and an azure-mode context wired to them", async (t) => {
  t.same([...AZURE_CLOUD_NAMES], ["AzurePublicCloud", "AzureUSGovernment", "AzureChinaCloud"]);
  t.same([AZURE_PUBLIC_CLOUD, AZURE_US_GOVERNMENT, AZURE_CHINA_CLOUD].map((cloud) => cloud.name), AZURE_CLOUD_NAMES);
  for (const name of AZURE_CLOUD_NAMES) {
    const cloud = azureCloud(name);
    const expected = EXPECTED[name]!;
    t.same(
      { arm: cloud.resourceManager, login: cloud.authorityHost, vault: cloud.keyVaultSuffixes[0], hsm: cloud.keyVaultSuffixes[1], fhir: cloud.fhirSuffix },
      expected,
      `${name} endpoints`,
    );
    const context = createAzureContext(cloud);
    t.equal(context.cloud, cloud, `${name}: the azure-mode context carries the cloud every SDK client takes its endpoint from`);
    t.equal(context.mode, "azure");
  }
});

t.test("key URLs: a cloud accepts its own vault and HSM hosts and refuses every other cloud's", async (t) => {
  for (const name of AZURE_CLOUD_NAMES) {
    const cloud = azureCloud(name);
    const own = EXPECTED[name]!;
    const vaultKey = `https://kvprod.${own.vault}/keys/cmk/${V}`;
    const hsmKey = `https://hsmprod.${own.hsm}/keys/cmk/${V}`;
    t.same(Object.values(status(vaultKey, cloud)).map((check) => check.status), ["Passed", "Passed", "Passed"], `${name}: its vault key passes`);
    t.match(status(hsmKey, cloud).KeyHostAllowed, { status: "Passed", message: /Managed HSM host/ }, `${name}: its HSM key passes as an HSM`);
    t.ok(isManagedHsmKey(parseKeyUrl(hsmKey)!), `${name}: the HSM is recognised from its host`);
    t.notOk(isManagedHsmKey(parseKeyUrl(vaultKey)!));
    for (const other of AZURE_CLOUD_NAMES.filter((candidate) => candidate !== name)) {
      const foreign = `https://kvprod.${EXPECTED[other]!.vault}/keys/cmk/${V}`;
      t.match(
        status(foreign, cloud).KeyHostAllowed,
        { status: "Failed", message: /is not a key vault or managed HSM of this cloud/, remediation: new RegExp(`\\{name\\}\\.${own.vault.replace(/\./g, "\\.")} or \\{name\\}\\.${own.hsm.replace(/\./g, "\\.")}`) },
        `${name} refuses a ${other} key and names its own suffixes`,
      );
    }
  }
});

t.test("the routing patterns follow the cloud (one label under each suffix)", async (t) => {
  const hosts = emulatedHosts(AZURE_US_GOVERNMENT);
  t.same(hosts, ["management.usgovcloudapi.net", "login.microsoftonline.us", "*.vault.usgovcloudapi.net", "*.managedhsm.usgovcloudapi.net", "*.fhir.azurehealthcareapis.us"]);
  t.ok(hostMatches("kv.vault.usgovcloudapi.net", "*.vault.usgovcloudapi.net"));
  t.notOk(hostMatches("a.b.vault.usgovcloudapi.net", "*.vault.usgovcloudapi.net"));
  t.notOk(hostMatches("kv.vault.azure.net", "*.vault.usgovcloudapi.net"));
});
