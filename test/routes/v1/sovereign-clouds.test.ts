import t from "tap";
import { createAzureAdapters } from "../../../src/azure/adapters.js";
import { createAzureContext } from "../../../src/azure/azure-context.js";
import { AZURE_CHINA_CLOUD, AZURE_US_GOVERNMENT } from "../../../src/azure/cloud.js";
import { buildTestApp, KEYS, testConfig } from "../../helpers/app.js";
import { fhirId } from "../../helpers/requests.js";

/**
 * The API's key URL checks follow CMK_CLOUD: an app wired for a sovereign cloud refuses a public-cloud key
 * before anything is queued, naming its own cloud's host names, and accepts its own. Nothing reaches Azure:
 * the refusal is static, and the accepted request is only queued (no worker runs here).
 */

const V = "00000000000000000000000000000002";

for (const cloud of [AZURE_US_GOVERNMENT, AZURE_CHINA_CLOUD]) {
  t.test(`${cloud.name}: change requests take only ${cloud.keyVaultSuffixes.join(" / ")} keys`, async (t) => {
    const config = testConfig(t);
    const app = await buildTestApp(t, config, createAzureAdapters(createAzureContext(cloud), { pollIntervalMs: 5000 }));
    const submit = (keyUrl: string) =>
      app.inject({
        method: "POST",
        url: "/v1/change-requests",
        payload: { operation: "SetKey", fhirServiceId: fhirId("fhir-sys"), keyEncryptionKeyUrl: keyUrl, identity: { type: "SystemAssigned" } },
        headers: { "x-api-key": KEYS.operator },
      });

    const publicKey = await submit(`https://kvprod.vault.azure.net/keys/cmk/${V}`);
    t.equal(publicKey.statusCode, 400, publicKey.body);
    t.match(publicKey.body, new RegExp(`\\{name\\}\\.${cloud.keyVaultSuffixes[0]!.replace(/\./g, "\\.")}`), "the answer names this cloud's Key Vault host form");

    const ownKey = await submit(`https://kvprod.${cloud.keyVaultSuffixes[0]}/keys/cmk/${V}`);
    t.equal(ownKey.statusCode, 202, ownKey.body);
    const hsmKey = await submit(`https://hsmprod.${cloud.keyVaultSuffixes[1]}/keys/cmk/${V}`);
    t.not(hsmKey.statusCode, 400, "its Managed HSM host passes the static checks too");
  });
}
