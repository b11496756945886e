import { parseKeyUrl } from "../key-url.js";
import type { ComplianceReport } from "../../schemas/compliance.js";

/** A FHIR service to move to a key version (versioned URL). */
export interface FollowMove {
  fhirServiceId: string;
  keyVersionUrl: string;
}

/** From a scan: every service with a KeyVersionBehindLatest finding, to its key's newest enabled version. Pure. */
export function behindLatestMoves(report: ComplianceReport): FollowMove[] {
  return report.services.flatMap((service) => {
    const key = parseKeyUrl(service.keyEncryptionKeyUrl ?? "");
    if (!key || !service.latestKeyVersion || !service.findings.some((finding) => finding.rule === "KeyVersionBehindLatest")) return [];
    return [{ fhirServiceId: service.fhirServiceId, keyVersionUrl: `${key.vaultUrl}/keys/${key.keyName}/${service.latestKeyVersion}` }];
  });
}

/**
 * From KeyNewVersionCreated events: every service the latest report has on that key (any other version)
 * moves to the new one. Services the report does not know yet (none before the first scan) are left to the
 * next scan. Pure.
 */
export function newVersionMoves(report: ComplianceReport, events: ReadonlyArray<{ type: string; versionlessKeyUrl: string; keyId: string; version: string }>): FollowMove[] {
  const moves = new Map<string, FollowMove>();
  for (const event of events) {
    if (event.type !== "Microsoft.KeyVault.KeyNewVersionCreated") continue;
    const versionless = event.versionlessKeyUrl.toLowerCase();
    for (const service of report.services) {
      const key = parseKeyUrl(service.keyEncryptionKeyUrl ?? "");
      if (!key?.version || `${key.vaultUrl}/keys/${key.keyName}`.toLowerCase() !== versionless || key.version.toLowerCase() === event.version.toLowerCase()) continue;
      // The newest event of a batch wins: a service moves once, to the last version made.
      moves.set(service.fhirServiceId.toLowerCase(), { fhirServiceId: service.fhirServiceId, keyVersionUrl: event.keyId });
    }
  }
  return [...moves.values()];
}
