import { createHash, randomBytes, randomInt, randomUUID } from "node:crypto";

/** Identifier and timestamp formats copied from real Azure traffic (test/fixtures/azure-rest/SUMMARY.md). */

const ALPHANUMERIC = "abcdefghijklmnopqrstuvwxyz0123456789";

/** HealthcareApis operation ids: 25 lowercase alphanumerics, e.g. `6uuqk5vvqa03l2xasj5bwb399`. */
export function newOperationId(): string {
  let id = "";
  for (let i = 0; i < 25; i++) id += ALPHANUMERIC[randomInt(ALPHANUMERIC.length)];
  return id;
}

/** HealthcareApis etags, quotes included: `"df00e67d-0000-0400-0000-627a118d0000"` (the tail is the time in hex). */
/** `nowMs`: the emulator clock (etags carry the time they were made). */
export function newEtag(nowMs: number): string {
  const seconds = Math.floor(nowMs / 1000).toString(16).padStart(8, "0");
  return `"${randomBytes(4).toString("hex")}-0000-0400-0000-${seconds}0000"`;
}

/** Key Vault key versions: 32 lowercase hex characters. */
export function newKeyVersion(): string {
  return randomBytes(16).toString("hex");
}

export function newGuid(): string {
  return randomUUID();
}

/** A GUID that is always the same for the same input (ids the world does not store but must not change). */
export function derivedGuid(input: string): string {
  const hex = createHash("sha256").update(input).digest("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** `x-request-id` on HealthcareApis answers: 32 hex characters, no dashes. */
export function newHexRequestId(): string {
  return randomBytes(16).toString("hex");
}

/** ISO time with 7 fractional digits, as HealthcareApis writes `startTime` and `systemData`. */
export function armTime(ms: number): string {
  const extra = randomInt(10_000).toString().padStart(4, "0");
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, `.$1${extra}Z`);
}

export function unixSeconds(ms: number): number {
  return Math.floor(ms / 1000);
}
