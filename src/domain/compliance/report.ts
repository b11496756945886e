import { parseFhirServiceId } from "../arm-ids.js";
import type { ComplianceReport, ComplianceRule, ComplianceSummary, ServiceCompliance, Severity } from "../../schemas/compliance.js";

/** The report around the rows (summary counts), and the views of it a caller may see. Pure. */

export function summarize(services: readonly ServiceCompliance[]): ComplianceSummary {
  const findings = { High: 0, Medium: 0, Low: 0 };
  let customerManaged = 0;
  for (const service of services) {
    if (service.encryption === "CustomerManaged") customerManaged++;
    for (const finding of service.findings) findings[finding.severity]++;
  }
  return { services: services.length, customerManaged, microsoftManaged: services.length - customerManaged, findings };
}

/** The report of a scan: rows in a stable order (by FHIR service id), with their summary. */
export function buildReport(scanId: string, scannedAt: Date, services: readonly ServiceCompliance[]): ComplianceReport {
  const sorted = [...services].sort((a, b) => a.fhirServiceId.toLowerCase().localeCompare(b.fhirServiceId.toLowerCase()));
  return { scanId, scannedDateTime: scannedAt.toISOString(), summary: summarize(sorted), services: sorted };
}

/** The subscription of an ARM id (`/subscriptions/{id}/...`), lower-cased. */
function subscriptionOf(fhirServiceId: string): string | undefined {
  return (parseFhirServiceId(fhirServiceId)?.subscriptionId ?? fhirServiceId.split("/")[2])?.toLowerCase();
}

/**
 * The report as a caller with a subscription allow-list sees it: only its subscriptions' services, the
 * summary counting those alone. `undefined`: no allow-list, everything.
 */
export function scopeReport(report: ComplianceReport, allowedSubscriptions: readonly string[] | undefined): ComplianceReport {
  if (!allowedSubscriptions) return report;
  const allowed = new Set(allowedSubscriptions.map((id) => id.toLowerCase()));
  const services = report.services.filter((service) => allowed.has(subscriptionOf(service.fhirServiceId) ?? ""));
  return { ...report, summary: summarize(services), services };
}

export interface ReportFilters {
  rule?: ComplianceRule | undefined;
  severity?: Severity | undefined;
  subscriptionId?: string | undefined;
}

/**
 * `?rule=`, `?severity=`, `?subscriptionId=` (combined): a rule or severity keeps the services with a
 * matching finding and, of their findings, the matching ones; the summary counts what is left.
 */
export function filterReport(report: ComplianceReport, filters: ReportFilters): ComplianceReport {
  const { rule, severity, subscriptionId } = filters;
  if (!rule && !severity && !subscriptionId) return report;
  const subscription = subscriptionId?.toLowerCase();
  const services = report.services.flatMap((service) => {
    if (subscription && subscriptionOf(service.fhirServiceId) !== subscription) return [];
    if (!rule && !severity) return [service];
    const findings = service.findings.filter((finding) => (!rule || finding.rule === rule) && (!severity || finding.severity === severity));
    return findings.length > 0 ? [{ ...service, findings }] : [];
  });
  return { ...report, summary: summarize(services), services };
}

/** What metrics show of a report (bounded label sets: two encryptions, six rules, three severities). */
export interface ReportStats {
  scanId: string;
  scannedDateTime: string;
  durationMs: number;
  services: { CustomerManaged: number; MicrosoftManaged: number };
  /** Findings by `${rule}/${severity}`. */
  findings: Record<string, number>;
}

export function reportStats(report: ComplianceReport, durationMs: number): ReportStats {
  const findings: Record<string, number> = {};
  for (const service of report.services) for (const finding of service.findings) findings[`${finding.rule}/${finding.severity}`] = (findings[`${finding.rule}/${finding.severity}`] ?? 0) + 1;
  return {
    scanId: report.scanId,
    scannedDateTime: report.scannedDateTime,
    durationMs,
    services: { CustomerManaged: report.summary.customerManaged, MicrosoftManaged: report.summary.microsoftManaged },
    findings,
  };
}
