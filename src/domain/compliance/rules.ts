import type { EncryptionHealth } from "../encryption.js";
import type { RequestedIdentity } from "../fhir-resource.js";
import { formatKeyUrl, parseKeyUrl } from "../key-url.js";
import type { ComplianceFinding, RecommendedChange, ServiceCompliance, Severity } from "../../schemas/compliance.js";

/**
 * The compliance rules (api-contract v1.1): pure functions from what a scan read about one FHIR service
 * and its key to findings, each with a message naming what was found and, where a change request fixes
 * it, that request's body. No I/O and no clock: `now` comes in.
 *
 * Severities (the contract fixes only MicrosoftManagedKey's):
 * - MicrosoftManagedKey: High with CMK_REQUIRE_CUSTOMER_MANAGED_KEY=true, else Low;
 * - KeyAccessLost, KeyExpired: High (the FHIR API cannot read its data);
 * - KeyExpiresSoon: High within 7 days of exp, else Medium (it stops working on that date);
 * - KeyVersionTooOld: Medium (policy: rotate yearly);
 * - KeyVersionBehindLatest: Low (the old version still works; a newer one was made for a reason).
 */

export const EXPIRES_SOON_DAYS = 30;
const EXPIRES_VERY_SOON_DAYS = 7;
const DAY_MS = 86_400_000;

export interface ComplianceSettings {
  /** CMK_REQUIRE_CUSTOMER_MANAGED_KEY. */
  requireCustomerManagedKey: boolean;
  /** CMK_KEY_MAX_AGE_DAYS. */
  keyMaxAgeDays: number;
}

/** One key version's attributes, as Key Vault lists them. */
export interface KeyVersionFacts {
  version: string;
  enabled: boolean;
  created?: Date;
  notBefore?: Date;
  expiresOn?: Date;
}

/** The FHIR service as a scan saw it. */
export interface ServiceFacts {
  fhirServiceId: string;
  location?: string;
  /** The versioned key URL the service uses; absent: a Microsoft-managed key. */
  keyEncryptionKeyUrl?: string;
  /** The one identity the service has, if it has exactly one (what a SetKey keeps). */
  identity?: RequestedIdentity;
}

export interface ComplianceFacts {
  service: ServiceFacts;
  /** The service's key version; absent when it could not be read (the health diagnosis says why). */
  keyVersion?: KeyVersionFacts;
  /** The key's newest enabled version (by creation). */
  latestVersion?: KeyVersionFacts;
  /** The lost-key-access diagnosis; absent: not made (health Unknown). */
  health?: EncryptionHealth;
  /** For a Microsoft-managed service: a versioned key to recommend (see `suggestKeyUrl`); absent: no SetKey is recommended. */
  suggestedKeyUrl?: string;
}

const day = (date: Date) => date.toISOString().slice(0, 10);
const nameOf = (fhirServiceId: string) => fhirServiceId.split("/").at(-1) ?? fhirServiceId;

/** The newest enabled version: the one `RotateKey` with `useLatestExistingVersion` moves to. */
export function newestEnabledVersion(versions: readonly KeyVersionFacts[]): KeyVersionFacts | undefined {
  return versions
    .filter((version) => version.enabled)
    .reduce<KeyVersionFacts | undefined>((newest, version) => (!newest || (version.created?.getTime() ?? 0) > (newest.created?.getTime() ?? 0) ? version : newest), undefined);
}

function keyLabel(url: string): string {
  const key = parseKeyUrl(url);
  return key ? `key ${key.keyName} in ${key.vaultName}` : url;
}

/** A version a service may move to with `useLatestExistingVersion`: newer than its own, usable and not expiring soon. */
function usableLatest(facts: ComplianceFacts, now: Date): KeyVersionFacts | undefined {
  const latest = facts.latestVersion;
  const current = parseKeyUrl(facts.service.keyEncryptionKeyUrl ?? "")?.version;
  if (!latest || !current || latest.version.toLowerCase() === current.toLowerCase()) return undefined;
  if (latest.expiresOn && latest.expiresOn.getTime() - now.getTime() <= EXPIRES_SOON_DAYS * DAY_MS) return undefined;
  if (latest.notBefore && latest.notBefore > now) return undefined;
  return latest;
}

/** RotateKey to the newest existing version when that one is fit, else to a new version. */
function rotation(facts: ComplianceFacts, now: Date): { change: RecommendedChange; how: string } {
  const fhirServiceId = facts.service.fhirServiceId;
  const latest = usableLatest(facts, now);
  return latest
    ? { change: { operation: "RotateKey", fhirServiceId, useLatestExistingVersion: true }, how: `move it to version ${latest.version}, the newest enabled one` }
    : { change: { operation: "RotateKey", fhirServiceId }, how: "make a new key version and move the service to it" };
}

export function microsoftManagedKey(facts: ComplianceFacts, settings: ComplianceSettings): ComplianceFinding | undefined {
  const { service } = facts;
  if (service.keyEncryptionKeyUrl) return undefined;
  const severity: Severity = settings.requireCustomerManagedKey ? "High" : "Low";
  const required = settings.requireCustomerManagedKey ? "; customer-managed keys are required (CMK_REQUIRE_CUSTOMER_MANAGED_KEY)" : "";
  const finding: ComplianceFinding = {
    rule: "MicrosoftManagedKey",
    severity,
    message: `FHIR service ${nameOf(service.fhirServiceId)} encrypts its data with a Microsoft-managed key${required}.`,
  };
  if (!facts.suggestedKeyUrl) {
    return { ...finding, message: `${finding.message} Send SetKey with a key in a vault in the service's region (${service.location ?? "its location"}) that its identity can use.` };
  }
  // The identity the service has, or a system-assigned one (none yet is not an identity type change).
  const identity: RequestedIdentity = service.identity ?? { type: "SystemAssigned" };
  return {
    ...finding,
    message: `${finding.message} The recommended SetKey uses ${keyLabel(facts.suggestedKeyUrl)} (version ${facts.suggestedKeyUrl.split("/").at(-1)}), the key most services in ${service.location ?? "its region"} use; its identity needs Key Vault Crypto Service Encryption User on it first.`,
    recommendedChange: { operation: "SetKey", fhirServiceId: service.fhirServiceId, keyEncryptionKeyUrl: facts.suggestedKeyUrl, identity },
  };
}

export function keyVersionBehindLatest(facts: ComplianceFacts): ComplianceFinding | undefined {
  const url = facts.service.keyEncryptionKeyUrl;
  const current = url ? parseKeyUrl(url) : undefined;
  const latest = facts.latestVersion;
  if (!url || !current?.version || !latest || latest.version.toLowerCase() === current.version.toLowerCase()) return undefined;
  // A newest version older than the service's (the service's was disabled and re-enabled?) is not "behind".
  if (facts.keyVersion?.created && latest.created && latest.created <= facts.keyVersion.created) return undefined;
  return {
    rule: "KeyVersionBehindLatest",
    severity: "Low",
    message:
      `FHIR service ${nameOf(facts.service.fhirServiceId)} uses version ${current.version} of ${keyLabel(url)}, ` +
      `but version ${latest.version}${latest.created ? ` (created ${day(latest.created)})` : ""} is the newest enabled one.`,
    recommendedChange: { operation: "RotateKey", fhirServiceId: facts.service.fhirServiceId, useLatestExistingVersion: true },
  };
}

export function keyVersionAgeDays(version: KeyVersionFacts | undefined, now: Date): number | undefined {
  if (!version?.created) return undefined;
  return Math.max(0, Math.floor((now.getTime() - version.created.getTime()) / DAY_MS));
}

export function keyVersionTooOld(facts: ComplianceFacts, now: Date, settings: ComplianceSettings): ComplianceFinding | undefined {
  const url = facts.service.keyEncryptionKeyUrl;
  const age = keyVersionAgeDays(facts.keyVersion, now);
  if (!url || age === undefined || age <= settings.keyMaxAgeDays) return undefined;
  const { change, how } = rotation(facts, now);
  return {
    rule: "KeyVersionTooOld",
    severity: "Medium",
    message:
      `FHIR service ${nameOf(facts.service.fhirServiceId)} uses version ${facts.keyVersion!.version} of ${keyLabel(url)}, created ${day(facts.keyVersion!.created!)}: ` +
      `${age} days old, more than ${settings.keyMaxAgeDays} (CMK_KEY_MAX_AGE_DAYS). Rotate: ${how}.`,
    recommendedChange: change,
  };
}

export function keyExpiresSoon(facts: ComplianceFacts, now: Date): ComplianceFinding | undefined {
  const url = facts.service.keyEncryptionKeyUrl;
  const expires = facts.keyVersion?.expiresOn;
  if (!url || !expires) return undefined;
  const leftMs = expires.getTime() - now.getTime();
  if (leftMs <= 0 || leftMs > EXPIRES_SOON_DAYS * DAY_MS) return undefined;
  const days = Math.ceil(leftMs / DAY_MS);
  const { change, how } = rotation(facts, now);
  return {
    rule: "KeyExpiresSoon",
    severity: days <= EXPIRES_VERY_SOON_DAYS ? "High" : "Medium",
    message:
      `Version ${facts.keyVersion!.version} of ${keyLabel(url)}, used by FHIR service ${nameOf(facts.service.fhirServiceId)}, expires ${expires.toISOString()} ` +
      `(in ${days} day${days === 1 ? "" : "s"}); the FHIR API cannot read its data after that. Rotate before then: ${how}.`,
    recommendedChange: change,
  };
}

export function keyExpired(facts: ComplianceFacts, now: Date): ComplianceFinding | undefined {
  const url = facts.service.keyEncryptionKeyUrl;
  const expires = facts.keyVersion?.expiresOn;
  if (!url || !expires || expires > now) return undefined;
  const { change, how } = rotation(facts, now);
  return {
    rule: "KeyExpired",
    severity: "High",
    message: `Version ${facts.keyVersion!.version} of ${keyLabel(url)}, used by FHIR service ${nameOf(facts.service.fhirServiceId)}, expired ${expires.toISOString()}. ${how[0]!.toUpperCase()}${how.slice(1)}.`,
    recommendedChange: change,
  };
}

/** The change request the diagnosis recommends, when it names one of the bodies a finding may carry. */
function diagnosedChange(health: EncryptionHealth): RecommendedChange | undefined {
  const request = health.recommendedAction?.request;
  const operation = request?.operation;
  return operation === "RecoverKeyAccess" || operation === "RotateKey" || operation === "SetKey" ? (request as unknown as RecommendedChange) : undefined;
}

/** The existing lost-key-access diagnosis (domain/encryption.ts), as a finding. */
export function keyAccessLost(facts: ComplianceFacts): ComplianceFinding | undefined {
  const { health } = facts;
  if (health?.status !== "KeyAccessLost") return undefined;
  const reasons = health.checks.filter((check) => check.status === "Failed").map((check) => check.message);
  const change = diagnosedChange(health);
  return {
    rule: "KeyAccessLost",
    severity: "High",
    message: `FHIR service ${nameOf(facts.service.fhirServiceId)} cannot use its key: ${reasons.join(" ")}${health.recommendedAction ? ` ${health.recommendedAction.description}` : ""}`,
    ...(change ? { recommendedChange: change } : {}),
  };
}

/** Every rule for one service: its report row. */
export function evaluateService(facts: ComplianceFacts, now: Date, settings: ComplianceSettings): ServiceCompliance {
  const { service, keyVersion, latestVersion, health } = facts;
  const findings = [
    microsoftManagedKey(facts, settings),
    keyAccessLost(facts),
    keyExpired(facts, now),
    keyExpiresSoon(facts, now),
    keyVersionTooOld(facts, now, settings),
    keyVersionBehindLatest(facts),
  ].filter((finding): finding is ComplianceFinding => finding !== undefined);
  const age = keyVersionAgeDays(keyVersion, now);
  return {
    fhirServiceId: service.fhirServiceId,
    encryption: service.keyEncryptionKeyUrl ? "CustomerManaged" : "MicrosoftManaged",
    ...(service.keyEncryptionKeyUrl ? { keyEncryptionKeyUrl: service.keyEncryptionKeyUrl } : {}),
    ...(keyVersion?.created ? { keyVersionCreatedDateTime: keyVersion.created.toISOString() } : {}),
    ...(age !== undefined ? { keyVersionAgeDays: age } : {}),
    ...(service.keyEncryptionKeyUrl && latestVersion ? { latestKeyVersion: latestVersion.version } : {}),
    ...(keyVersion?.expiresOn ? { keyExpiresDateTime: keyVersion.expiresOn.toISOString() } : {}),
    health: health?.status ?? "Unknown",
    findings,
  };
}

/**
 * The key to recommend to a Microsoft-managed service: the key most customer-managed services in the same
 * region use (a vault must be in the service's region), at that key's newest enabled version.
 */
export function suggestKeyUrl(location: string | undefined, rows: ReadonlyArray<{ location?: string; keyEncryptionKeyUrl?: string; latestKeyVersion?: string }>): string | undefined {
  if (!location) return undefined;
  const counts = new Map<string, { count: number; vaultUrl: string; keyName: string; version: string }>();
  for (const row of rows) {
    if (row.location?.toLowerCase() !== location.toLowerCase() || !row.keyEncryptionKeyUrl) continue;
    const key = parseKeyUrl(row.keyEncryptionKeyUrl);
    const version = row.latestKeyVersion ?? key?.version;
    if (!key || !version) continue;
    const versionless = `${key.vaultUrl}/keys/${key.keyName}`.toLowerCase();
    const entry = counts.get(versionless) ?? { count: 0, vaultUrl: key.vaultUrl, keyName: key.keyName, version };
    entry.count++;
    counts.set(versionless, entry);
  }
  const best = [...counts.entries()].sort(([a, x], [b, y]) => y.count - x.count || a.localeCompare(b))[0]?.[1];
  return best ? formatKeyUrl(best.vaultUrl, best.keyName, best.version) : undefined;
}
