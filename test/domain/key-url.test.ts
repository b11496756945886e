import t from "tap";
import { keyUrlFormErrors, keyUrlFormProblem, parseKeyUrl, requestedKeyUrls } from "../../src/domain/key-url.js";
import { AZURE_PUBLIC_CLOUD } from "../../src/azure/cloud.js";

const V = "00000000000000000000000000000002";
const KEY = `https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048/${V}`;
const SUFFIXES = AZURE_PUBLIC_CLOUD.keyVaultSuffixes;

t.test("parses canonical key URLs of vaults and managed HSMs into their parts", async (t) => {
  t.same(parseKeyUrl(KEY), { url: KEY, vaultUrl: "https://kvsandbox.vault.azure.net", vaultName: "kvsandbox", host: "kvsandbox.vault.azure.net", keyName: "cmk-rsa-2048", version: V });
  t.match(parseKeyUrl(`https://contoso-hsm.managedhsm.azure.net/keys/cmk/${V}`), { vaultName: "contoso-hsm", keyName: "cmk", version: V });
  t.match(parseKeyUrl("https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048"), { keyName: "cmk-rsa-2048", version: undefined }, "unversioned: the checks say what is missing");
  t.equal(keyUrlFormProblem(KEY, SUFFIXES), undefined);
});

t.test("refuses every other spelling, and names the canonical string when a URL parser would make one", async (t) => {
  const cases: Array<[string, string | undefined]> = [
    [`https:/\\kvsandbox\uff0evault.azure.net/keys/cmk-rsa-2048/${V}`, KEY],
    [`  ${KEY}`, KEY],
    [`${KEY}\u0000`, KEY],
    [`https://kvsandbox.vault.azure.net:443/keys/cmk-rsa-2048/${V}`, KEY],
    [`https://kvsandbox.vault.azure.net/secrets/x/../../keys/cmk-rsa-2048/${V}`, KEY],
    [`https://kvsandbox.vault.azure.net/keys/cmk%2Drsa-2048/${V}`, KEY],
    [`https://KVSANDBOX.vault.azure.net/keys/cmk-rsa-2048/${V}`, KEY],
    [`HTTPS://kvsandbox.vault.azure.net/keys/cmk-rsa-2048/${V}`, KEY],
    [`https://kvsandbox.vault.azure.net:8443/keys/cmk-rsa-2048/${V}`, undefined],
    [`https://ops@kvsandbox.vault.azure.net/keys/cmk-rsa-2048/${V}`, undefined],
    [`${KEY}?api-version=7.4`, undefined],
    [`${KEY}#x`, undefined],
    [`${KEY}/`, undefined],
    [`https://kvsandbox.vault.azure.net./keys/cmk-rsa-2048/${V}`, undefined],
    [`https://kvsandbox.vault.azure.net/keys/cmk rsa/${V}`, undefined],
    [`https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048/${V}\u202e`, undefined],
    ["https://kvsandbox.vault.azure.net/keys/%zz/1", undefined],
    ["not a url", undefined],
  ];
  for (const [url, suggestion] of cases) {
    t.equal(parseKeyUrl(url), undefined, JSON.stringify(url));
    const problem = keyUrlFormProblem(url, SUFFIXES);
    t.match(problem, /canonical form.*https:\/\/\{name\}\.vault\.azure\.net\/keys\/\{key\}\/\{version\} or https:\/\/\{name\}\.managedhsm\.azure\.net/, JSON.stringify(url));
    if (suggestion) t.match(problem, `send ${suggestion} exactly`, JSON.stringify(url));
    else t.match(problem, "send exactly https://{name}", JSON.stringify(url));
  }
});

t.test("finds the key URLs a body names, and one error per non-canonical one", async (t) => {
  t.same(requestedKeyUrls({ keyEncryptionKeyUrl: KEY, options: { keyEncryptionKeyUrl: `${KEY}/` } }), [
    { path: "/body/keyEncryptionKeyUrl", url: KEY },
    { path: "/body/options/keyEncryptionKeyUrl", url: `${KEY}/` },
  ]);
  t.same(requestedKeyUrls(undefined), []);
  t.same(requestedKeyUrls({ keyEncryptionKeyUrl: 1 }), []);
  t.same(keyUrlFormErrors({ keyEncryptionKeyUrl: KEY, options: { keyEncryptionKeyUrl: `${KEY}/` } }, SUFFIXES).map((error) => error.path), ["/body/options/keyEncryptionKeyUrl"]);
});
