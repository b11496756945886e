import t from "tap";
import { checkKeyUrl } from "../../../src/domain/checks/key-url-checks.js";
import { AZURE_PUBLIC_CLOUD } from "../../../src/azure/cloud.js";

const check = (url: string) => Object.fromEntries(checkKeyUrl(url, AZURE_PUBLIC_CLOUD).map((c) => [c.id, c]));
const V = "00000000000000000000000000000002";

t.test("a versioned key on a vault host passes all three", async (t) => {
  const result = check(`https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048/${V}`);
  t.same(Object.values(result).map((c) => c.status), ["Passed", "Passed", "Passed"]);
  t.equal(check(`https://myhsm.managedhsm.azure.net/keys/k/${V}`).KeyHostAllowed?.status, "Passed");
});

t.test("a key URL without version fails KeyUrlVersioned with the fix", async (t) => {
  const result = check("https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048");
  t.equal(result.KeyUrlVersioned?.status, "Failed");
  t.match(result.KeyUrlVersioned?.remediation, /az keyvault key show --vault-name kvsandbox --name cmk-rsa-2048/);
  t.equal(result.KeyHostAllowed?.status, "Passed");
  t.equal(check("https://kvsandbox.vault.azure.net/keys/k/1").KeyUrlVersioned?.status, "Failed", "a version must be 32 hex characters");
  t.match(check(`https://kvsandbox.vault.azure.net/keys/k/${V.toUpperCase().replace("0", "A")}`).KeyUrlVersioned, { status: "Failed", message: /lower-case/ }, "as Key Vault writes them: lower case");
});

t.test("hosts outside the cloud's Key Vault suffixes fail KeyHostAllowed", async (t) => {
  for (const url of [
    "https://kv.example.com/keys/a/1",
    `https://vault.azure.net.evil.com/keys/a/${V}`,
    `https://a.b.vault.azure.net/keys/a/${V}`,
    `https://kvsandbox.vault.azure.net:8443/keys/a/${V}`,
    `https://169.254.169.254/keys/a/${V}`,
  ]) {
    t.equal(check(url).KeyHostAllowed?.status, "Failed", url);
  }
  t.match(check("https://kv.example.com/keys/a/1").KeyHostAllowed?.message, /kv\.example\.com/);
});

t.test("anything that is not an https key identifier fails KeyHostAllowed only", async (t) => {
  for (const url of [
    "not a url",
    "http://kvsandbox.vault.azure.net/keys/a/b",
    `https://kvsandbox.vault.azure.net/secrets/a/${V}`,
    `https://user:pw@kvsandbox.vault.azure.net/keys/a/${V}`,
    "https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048/",
  ]) {
    const results = checkKeyUrl(url, AZURE_PUBLIC_CLOUD);
    t.same(results.map((c) => [c.id, c.status]), [["KeyHostAllowed", "Failed"]], url);
  }
});

t.test("vault name + key name over 94 characters fails KeyNameLength and says by how much", async (t) => {
  const long = `cmk-${"a".repeat(82)}`; // 9 + 86 = 95
  const result = check(`https://kvsandbox.vault.azure.net/keys/${long}/${V}`);
  t.equal(result.KeyNameLength?.status, "Failed");
  t.match(result.KeyNameLength?.message, /95 characters/);
  t.match(result.KeyNameLength?.remediation, /at most 85 characters/);
  t.equal(check(`https://kvsandbox.vault.azure.net/keys/${"a".repeat(85)}/${V}`).KeyNameLength?.status, "Passed", "94 is allowed");
});
