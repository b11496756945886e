import fc from "fast-check";
import t from "tap";
import { AZURE_PUBLIC_CLOUD } from "../../../src/azure/cloud.js";
import { parseFhirServiceId } from "../../../src/domain/arm-ids.js";
import { diagnoseEncryption, type HealthFacts } from "../../../src/domain/encryption.js";
import type { FhirServiceResource } from "../../../src/domain/fhir-resource.js";
import { keyUrlFormErrors } from "../../../src/domain/key-url.js";
import {
  evaluateService,
  keyAccessLost,
  keyExpired,
  keyExpiresSoon,
  keyVersionBehindLatest,
  keyVersionTooOld,
  microsoftManagedKey,
  newestEnabledVersion,
  suggestKeyUrl,
  type ComplianceFacts,
  type ComplianceSettings,
  type KeyVersionFacts,
} from "../../../src/domain/compliance/rules.js";
import type { ComplianceFinding } from "../../../src/schemas/compliance.js";
import { changeRequestErrors } from "../../helpers/change-request-validator.js";

/** The compliance rules (api-contract v1.1): pure functions from facts to findings with the change that fixes them. */

const SUBSCRIPTION = "22222222-2222-2222-2222-222222222222";
const serviceId = (name: string) => `/subscriptions/${SUBSCRIPTION}/resourceGroups/rg-sandbox/providers/Microsoft.HealthcareApis/workspaces/wssandbox/fhirservices/${name}`;
const V1 = "00000000000000000000000000000001";
const V2 = "00000000000000000000000000000002";
const keyUrl = (version: string) => `https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048/${version}`;
const now = new Date("2026-11-29T12:00:00Z");
const daysAgo = (days: number) => new Date(now.getTime() - days * 86_400_000);
const inDays = (days: number) => new Date(now.getTime() + days * 86_400_000);
const settings: ComplianceSettings = { requireCustomerManagedKey: false, keyMaxAgeDays: 365 };
const v1: KeyVersionFacts = { version: V1, enabled: true, created: daysAgo(100) };
const v2: KeyVersionFacts = { version: V2, enabled: true, created: daysAgo(10) };
const cmk = (overrides: Partial<ComplianceFacts> = {}): ComplianceFacts => ({
  service: { fhirServiceId: serviceId("fhir-uami"), location: "westus3", keyEncryptionKeyUrl: keyUrl(V1), identity: { type: "UserAssigned", userAssignedIdentityId: `/subscriptions/${SUBSCRIPTION}/resourceGroups/rg-sandbox/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uami-sandbox` } },
  keyVersion: v1,
  latestVersion: v1,
  health: { status: "Healthy", checks: [] },
  ...overrides,
});

/** A recommended change must be a body POST /v1/change-requests takes: the TypeBox schema, and the canonical key URL form. */
function assertValidChange(t: { same(found: unknown, wanted: unknown, message: string): unknown }, finding: ComplianceFinding | undefined) {
  if (!finding?.recommendedChange) return;
  const change = finding.recommendedChange;
  t.same(changeRequestErrors(change), [], `${finding.rule}: ${JSON.stringify(change)} is a change request`);
  t.same(keyUrlFormErrors(change, AZURE_PUBLIC_CLOUD.keyVaultSuffixes), [], `${finding.rule}: its key URL is canonical`);
}

t.test("MicrosoftManagedKey: Low by default, High when customer-managed keys are required; SetKey with the suggested key", async (t) => {
  const facts: ComplianceFacts = { service: { fhirServiceId: serviceId("fhir-sys"), location: "westus3", identity: { type: "SystemAssigned" } }, health: { status: "Healthy", checks: [] } };
  t.match(microsoftManagedKey(facts, settings), { rule: "MicrosoftManagedKey", severity: "Low", message: /fhir-sys encrypts its data with a Microsoft-managed key\. Send SetKey with a key in a vault in the service's region \(westus3\)/ });
  t.notOk(microsoftManagedKey(facts, settings)?.recommendedChange, "no key to suggest: no change");
  const required = microsoftManagedKey({ ...facts, suggestedKeyUrl: keyUrl(V2) }, { ...settings, requireCustomerManagedKey: true });
  t.match(required, { severity: "High", message: /customer-managed keys are required \(CMK_REQUIRE_CUSTOMER_MANAGED_KEY\).*key cmk-rsa-2048 in kvsandbox/ });
  t.same(required?.recommendedChange, { operation: "SetKey", fhirServiceId: serviceId("fhir-sys"), keyEncryptionKeyUrl: keyUrl(V2), identity: { type: "SystemAssigned" } });
  assertValidChange(t, required);
  const noIdentity = microsoftManagedKey({ ...facts, service: { fhirServiceId: serviceId("fhir-x"), location: "westus3" }, suggestedKeyUrl: keyUrl(V2) }, settings);
  t.match(noIdentity?.recommendedChange, { identity: { type: "SystemAssigned" } }, "a service without identity gets a system-assigned one");
  t.notOk(microsoftManagedKey(cmk(), settings), "a customer-managed service has no such finding");
});

t.test("KeyVersionBehindLatest: a service on …01 while …02 is the newest enabled version", async (t) => {
  const finding = keyVersionBehindLatest(cmk({ latestVersion: v2 }));
  t.match(finding, { rule: "KeyVersionBehindLatest", severity: "Low", message: new RegExp(`fhir-uami uses version ${V1} of key cmk-rsa-2048 in kvsandbox, but version ${V2} \\(created 2026-11-19\\) is the newest enabled one`) });
  t.same(finding?.recommendedChange, { operation: "RotateKey", fhirServiceId: serviceId("fhir-uami"), useLatestExistingVersion: true });
  assertValidChange(t, finding);
  t.notOk(keyVersionBehindLatest(cmk()), "on the newest version");
  t.notOk(keyVersionBehindLatest(cmk({ service: { fhirServiceId: serviceId("fhir-sys") }, latestVersion: v2 })), "a Microsoft-managed service is never behind");
  t.notOk(keyVersionBehindLatest(cmk({ keyVersion: v2, latestVersion: v1, service: { ...cmk().service, keyEncryptionKeyUrl: keyUrl(V2) } })), "a newest version older than the service's is not 'behind'");
  t.notOk(keyVersionBehindLatest(cmk({ latestVersion: undefined })), "the key's versions could not be read");
  t.same(changeRequestErrors({ operation: "RotateKey", fhirServiceId: "nope" }).length > 0, true, "the validator does refuse bad bodies");
  t.same(newestEnabledVersion([v1, v2, { version: "3", enabled: false, created: now }]), v2, "disabled versions are not the latest");
});

t.test("KeyVersionTooOld: older than CMK_KEY_MAX_AGE_DAYS; rotate to the newest version when it is fit, else to a new one", async (t) => {
  const old = { ...v1, created: daysAgo(400) };
  t.notOk(keyVersionTooOld(cmk({ keyVersion: { ...v1, created: daysAgo(365) } }), now, settings), "365 days is not more than 365");
  const finding = keyVersionTooOld(cmk({ keyVersion: old, latestVersion: old }), now, settings);
  t.match(finding, { rule: "KeyVersionTooOld", severity: "Medium", message: /created 2025-10-25: 400 days old, more than 365 \(CMK_KEY_MAX_AGE_DAYS\)\. Rotate: make a new key version/ });
  t.same(finding?.recommendedChange, { operation: "RotateKey", fhirServiceId: serviceId("fhir-uami") });
  const withNewer = keyVersionTooOld(cmk({ keyVersion: old, latestVersion: v2 }), now, settings);
  t.same(withNewer?.recommendedChange, { operation: "RotateKey", fhirServiceId: serviceId("fhir-uami"), useLatestExistingVersion: true });
  t.match(withNewer?.message, new RegExp(`move it to version ${V2}`));
  const newerExpiring = keyVersionTooOld(cmk({ keyVersion: old, latestVersion: { ...v2, expiresOn: inDays(5) } }), now, settings);
  t.same(newerExpiring?.recommendedChange, { operation: "RotateKey", fhirServiceId: serviceId("fhir-uami") }, "a newest version about to expire is no fix");
  t.ok(keyVersionTooOld(cmk({ keyVersion: { ...v1, created: daysAgo(40) } }), now, { ...settings, keyMaxAgeDays: 30 }), "the threshold is the setting");
  for (const each of [finding, withNewer, newerExpiring]) assertValidChange(t, each);
});

t.test("KeyExpiresSoon within 30 days (High within 7), KeyExpired after exp", async (t) => {
  t.notOk(keyExpiresSoon(cmk({ keyVersion: { ...v1, expiresOn: inDays(31) } }), now));
  t.match(keyExpiresSoon(cmk({ keyVersion: { ...v1, expiresOn: inDays(30) } }), now), { rule: "KeyExpiresSoon", severity: "Medium", message: /expires 2026-12-29T12:00:00\.000Z \(in 30 days\)/ });
  const soon = keyExpiresSoon(cmk({ keyVersion: { ...v1, expiresOn: inDays(1) }, latestVersion: v2 }), now);
  t.match(soon, { severity: "High", message: /\(in 1 day\).*move it to version/ });
  t.same(soon?.recommendedChange, { operation: "RotateKey", fhirServiceId: serviceId("fhir-uami"), useLatestExistingVersion: true });
  t.notOk(keyExpiresSoon(cmk({ keyVersion: { ...v1, expiresOn: daysAgo(1) } }), now), "an expired key is KeyExpired, not this");
  const expired = keyExpired(cmk({ keyVersion: { ...v1, expiresOn: daysAgo(1) } }), now);
  t.match(expired, { rule: "KeyExpired", severity: "High", message: /expired 2026-11-28T12:00:00\.000Z\. Make a new key version/ });
  t.same(expired?.recommendedChange, { operation: "RotateKey", fhirServiceId: serviceId("fhir-uami") });
  t.notOk(keyExpired(cmk({ keyVersion: { ...v1, expiresOn: inDays(1) } }), now));
  t.notOk(keyExpired(cmk({ keyVersion: { ...v1 } }), now), "no exp, never expires");
  for (const each of [soon, expired]) assertValidChange(t, each);
});

t.test("KeyAccessLost is the existing health diagnosis, with the change it recommends", async (t) => {
  const ref = parseFhirServiceId(serviceId("fhir-uami"))!;
  const resource: FhirServiceResource = { id: ref.id, location: "westus3", identity: { type: "SystemAssigned", principalId: "p1" }, encryption: { customerManagedKeyEncryption: { keyEncryptionKeyUrl: keyUrl(V1) } } };
  const base: HealthFacts = {
    key: { status: "found", value: { kid: keyUrl(V1), keyType: "RSA", keySize: 2048, enabled: false, keyOps: ["wrapKey", "unwrapKey"] } },
    vault: { status: "missing" },
    principal: { status: "found", value: { kind: "SystemAssigned", principalId: "p1" } },
    roleAssignments: { status: "found", value: [] },
    dataPlane: { status: 500, detail: "key disabled" },
  };
  const disabled = diagnoseEncryption(ref, resource, { type: "SystemAssigned" }, base, { now, propagationWindowMs: 0 });
  t.equal(disabled.status, "KeyAccessLost");
  const finding = keyAccessLost(cmk({ health: disabled }));
  t.match(finding, { rule: "KeyAccessLost", severity: "High", message: /fhir-uami cannot use its key: .*disabled.*Enable key cmk-rsa-2048/ });
  t.same(finding?.recommendedChange, { operation: "RecoverKeyAccess", fhirServiceId: ref.id });
  assertValidChange(t, finding);

  const deleted = diagnoseEncryption(ref, resource, { type: "SystemAssigned" }, { ...base, key: { status: "missing" }, deletedKey: { status: "found", value: { recoveryId: "x" } } }, { now, propagationWindowMs: 0 });
  const recover = keyAccessLost(cmk({ health: deleted }));
  t.same(recover?.recommendedChange, { operation: "RecoverKeyAccess", fhirServiceId: ref.id, recoverDeletedKey: true });
  assertValidChange(t, recover);

  const enabled: HealthFacts = { ...base, key: { status: "found", value: { kid: keyUrl(V1), keyType: "RSA", keySize: 2048, enabled: true, keyOps: ["wrapKey", "unwrapKey"] } } };
  const noIdentity = diagnoseEncryption(ref, { ...resource, identity: { type: "None" } }, undefined, enabled, { now, propagationWindowMs: 0 });
  const withoutChange = keyAccessLost(cmk({ health: noIdentity }));
  t.ok(withoutChange, "lost");
  t.notOk(withoutChange?.recommendedChange, "the diagnosis names no request: none is made up");
  t.notOk(keyAccessLost(cmk({ health: { status: "Degraded", checks: [] } })), "Degraded is not lost");
  t.notOk(keyAccessLost(cmk({ health: undefined })), "no diagnosis, no finding");
});

t.test("evaluateService: the report row, with every rule's findings", async (t) => {
  const row = evaluateService(cmk({ keyVersion: { ...v1, created: daysAgo(400), expiresOn: inDays(3) }, latestVersion: v2 }), now, settings);
  t.same(row.findings.map((finding) => finding.rule), ["KeyExpiresSoon", "KeyVersionTooOld", "KeyVersionBehindLatest"]);
  t.match(row, {
    fhirServiceId: serviceId("fhir-uami"),
    encryption: "CustomerManaged",
    keyEncryptionKeyUrl: keyUrl(V1),
    keyVersionCreatedDateTime: daysAgo(400).toISOString(),
    keyVersionAgeDays: 400,
    latestKeyVersion: V2,
    keyExpiresDateTime: inDays(3).toISOString(),
    health: "Healthy",
  });
  const sys = evaluateService({ service: { fhirServiceId: serviceId("fhir-sys") } }, now, settings);
  t.same(sys, { fhirServiceId: serviceId("fhir-sys"), encryption: "MicrosoftManaged", health: "Unknown", findings: [sys.findings[0]] });
  t.equal(sys.findings[0]?.rule, "MicrosoftManagedKey");
});

t.test("every recommendedChange, whatever the facts, is a valid change-request body", async (t) => {
  const version = fc.record({
    version: fc.constantFrom(V1, V2, "0123456789abcdef0123456789abcdef"),
    enabled: fc.boolean(),
    created: fc.option(fc.integer({ min: -800, max: 0 }).map((days) => inDays(days)), { nil: undefined }),
    expiresOn: fc.option(fc.integer({ min: -60, max: 400 }).map((days) => inDays(days)), { nil: undefined }),
  });
  const facts = fc.record({
    cmk: fc.boolean(),
    version: fc.constantFrom(V1, V2),
    keyVersion: fc.option(version, { nil: undefined }),
    latestVersion: fc.option(version, { nil: undefined }),
    suggest: fc.boolean(),
    identity: fc.constantFrom(undefined, { type: "SystemAssigned" as const }),
    health: fc.constantFrom<ComplianceFacts["health"]>(undefined, { status: "Healthy", checks: [] }, { status: "KeyAccessLost", checks: [], recommendedAction: { description: "d", operation: "RecoverKeyAccess", request: { operation: "RecoverKeyAccess", fhirServiceId: serviceId("fhir-uami") } } }),
    required: fc.boolean(),
    maxAge: fc.integer({ min: 1, max: 3650 }),
  });
  let changes = 0;
  fc.assert(
    fc.property(facts, (input) => {
      const row = evaluateService(
        {
          service: { fhirServiceId: serviceId("fhir-uami"), location: "westus3", ...(input.cmk ? { keyEncryptionKeyUrl: keyUrl(input.version) } : {}), ...(input.identity ? { identity: input.identity } : {}) },
          ...(input.keyVersion ? { keyVersion: input.keyVersion } : {}),
          ...(input.latestVersion ? { latestVersion: input.latestVersion } : {}),
          ...(input.health ? { health: input.health } : {}),
          ...(input.suggest ? { suggestedKeyUrl: keyUrl(V2) } : {}),
        },
        now,
        { requireCustomerManagedKey: input.required, keyMaxAgeDays: input.maxAge },
      );
      for (const finding of row.findings) {
        if (!finding.recommendedChange) continue;
        changes++;
        if (changeRequestErrors(finding.recommendedChange).length > 0) return false;
        if (keyUrlFormErrors(finding.recommendedChange, AZURE_PUBLIC_CLOUD.keyVaultSuffixes).length > 0) return false;
        if (finding.recommendedChange.fhirServiceId !== serviceId("fhir-uami")) return false;
      }
      return true;
    }),
    { numRuns: 500, seed: 16 },
  );
  t.ok(changes > 100, `${changes} recommended changes checked`);
});

t.test("suggestKeyUrl: the key most customer-managed services in the region use, at its newest version", async (t) => {
  const rows = [
    { location: "westus3", keyEncryptionKeyUrl: keyUrl(V1), latestKeyVersion: V2 },
    { location: "westus3", keyEncryptionKeyUrl: keyUrl(V2), latestKeyVersion: V2 },
    { location: "westus3", keyEncryptionKeyUrl: "https://kveast.vault.azure.net/keys/cmk-east/00000000000000000000000000000001" },
    { location: "eastus", keyEncryptionKeyUrl: "https://kveast.vault.azure.net/keys/cmk-east/00000000000000000000000000000001" },
    { location: "eastus", keyEncryptionKeyUrl: "https://kveast.vault.azure.net/keys/cmk-east/00000000000000000000000000000001" },
    { location: "westus3" },
  ];
  t.equal(suggestKeyUrl("westus3", rows), keyUrl(V2));
  t.equal(suggestKeyUrl("WestUS3", rows), keyUrl(V2), "regions compare without case");
  t.equal(suggestKeyUrl("eastus", rows), "https://kveast.vault.azure.net/keys/cmk-east/00000000000000000000000000000001");
  t.equal(suggestKeyUrl("northeurope", rows), undefined, "no key in the region: nothing to suggest");
  t.equal(suggestKeyUrl(undefined, rows), undefined);
});
