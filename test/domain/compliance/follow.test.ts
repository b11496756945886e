import t from "tap";
import { behindLatestMoves, newVersionMoves } from "../../../src/domain/compliance/follow.js";
import { buildReport, reportStats } from "../../../src/domain/compliance/report.js";
import type { ServiceCompliance } from "../../../src/schemas/compliance.js";

/** Which services following the latest key version moves, from a scan's report or from Key Vault events; and a report's stats. */

const id = (name: string) => `/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg/providers/Microsoft.HealthcareApis/workspaces/ws/fhirservices/${name}`;
const KEY = "https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048";
const V1 = "00000000000000000000000000000001";
const V2 = "00000000000000000000000000000002";
const V3 = "00000000000000000000000000000003";
const rows: ServiceCompliance[] = [
  { fhirServiceId: id("behind"), encryption: "CustomerManaged", keyEncryptionKeyUrl: `${KEY}/${V1}`, latestKeyVersion: V2, health: "Healthy", findings: [{ rule: "KeyVersionBehindLatest", severity: "Low", message: "behind" }] },
  { fhirServiceId: id("current"), encryption: "CustomerManaged", keyEncryptionKeyUrl: `${KEY}/${V2}`, latestKeyVersion: V2, health: "Healthy", findings: [] },
  { fhirServiceId: id("other-key"), encryption: "CustomerManaged", keyEncryptionKeyUrl: `https://kvsandbox.vault.azure.net/keys/cmk-rsa-3072/${V1}`, latestKeyVersion: V1, health: "Healthy", findings: [] },
  { fhirServiceId: id("microsoft"), encryption: "MicrosoftManaged", health: "Healthy", findings: [{ rule: "MicrosoftManagedKey", severity: "Low", message: "mmk" }] },
];
const report = buildReport("scan-1", new Date("2026-11-29T03:00:00Z"), rows);

t.test("a scan moves the services with KeyVersionBehindLatest to the newest enabled version, nothing else", async (t) => {
  t.same(behindLatestMoves(report), [{ fhirServiceId: id("behind"), keyVersionUrl: `${KEY}/${V2}` }]);
});

t.test("a KeyNewVersionCreated moves every service on that key (any other version); other events and keys move none", async (t) => {
  const event = (type: string, version: string, keyUrl = KEY) => ({ type, versionlessKeyUrl: keyUrl, keyId: `${keyUrl}/${version}`, version });
  t.same(
    newVersionMoves(report, [event("Microsoft.KeyVault.KeyNewVersionCreated", V3)]).map((move) => [move.fhirServiceId.split("/").at(-1), move.keyVersionUrl]),
    [
      ["behind", `${KEY}/${V3}`],
      ["current", `${KEY}/${V3}`],
    ],
  );
  t.same(newVersionMoves(report, [event("Microsoft.KeyVault.KeyNewVersionCreated", V2)]).map((move) => move.fhirServiceId), [id("behind")], "a service on that version stays");
  t.same(newVersionMoves(report, [event("Microsoft.KeyVault.KeyNearExpiry", V3)]), []);
  t.same(newVersionMoves(report, [event("Microsoft.KeyVault.KeyNewVersionCreated", V3, KEY.toUpperCase().replace("HTTPS", "https"))]).length, 2, "key URLs compare without case");
  const batch = newVersionMoves(report, [event("Microsoft.KeyVault.KeyNewVersionCreated", V2), event("Microsoft.KeyVault.KeyNewVersionCreated", V3)]);
  t.same(batch.map((move) => move.keyVersionUrl), [`${KEY}/${V3}`, `${KEY}/${V3}`], "a batch: each service once, to the last version");
});

t.test("a report's stats: services by encryption, findings by rule and severity", async (t) => {
  t.same(reportStats(report, 1234), {
    scanId: "scan-1",
    scannedDateTime: "2026-11-29T03:00:00.000Z",
    durationMs: 1234,
    services: { CustomerManaged: 3, MicrosoftManaged: 1 },
    findings: { "KeyVersionBehindLatest/Low": 1, "MicrosoftManagedKey/Low": 1 },
  });
});
