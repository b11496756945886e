import type { ComplianceReport, ServiceCompliance } from "../../schemas/compliance.js";

/**
 * The report as CSV for auditors (`Accept: text/csv`): a header row, then one row per FHIR service.
 * RFC 4180: fields separated by commas, records by CRLF, a field holding a comma, quote, CR or LF is
 * quoted with its quotes doubled. Spreadsheets run a cell that starts with `=`, `+`, `-`, `@`, TAB or CR
 * as a formula (CSV injection): such a cell gets a leading single quote, OWASP's advice
 * (owasp.org/www-community/attacks/CSV_Injection), before quoting. Pure.
 */

export const CSV_COLUMNS = [
  "fhirServiceId",
  "subscriptionId",
  "encryption",
  "keyEncryptionKeyUrl",
  "keyVersionCreatedDateTime",
  "keyVersionAgeDays",
  "latestKeyVersion",
  "keyExpiresDateTime",
  "health",
  "highestSeverity",
  "rules",
  "findings",
] as const;

const FORMULA_START = /^[=+\-@\t\r]/;
const NEEDS_QUOTES = /[",\r\n]/;

/** One cell: formula-safe, then quoted when RFC 4180 needs it. */
export function csvCell(value: string | number | undefined): string {
  if (value === undefined) return "";
  let text = String(value);
  if (FORMULA_START.test(text)) text = `'${text}`;
  return NEEDS_QUOTES.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

const RANK = { High: 3, Medium: 2, Low: 1 } as const;

function row(service: ServiceCompliance): Array<string | number | undefined> {
  const highest = service.findings.reduce<ServiceCompliance["findings"][number]["severity"] | undefined>(
    (top, finding) => (!top || RANK[finding.severity] > RANK[top] ? finding.severity : top),
    undefined,
  );
  return [
    service.fhirServiceId,
    service.fhirServiceId.split("/")[2],
    service.encryption,
    service.keyEncryptionKeyUrl,
    service.keyVersionCreatedDateTime,
    service.keyVersionAgeDays,
    service.latestKeyVersion,
    service.keyExpiresDateTime,
    service.health,
    highest,
    service.findings.map((finding) => finding.rule).join(";"),
    // Every finding on its own line inside the cell: "Severity Rule: message".
    service.findings.map((finding) => `${finding.severity} ${finding.rule}: ${finding.message}`).join("\n"),
  ];
}

export function renderCsv(report: ComplianceReport): string {
  const lines = [CSV_COLUMNS.join(","), ...report.services.map((service) => row(service).map(csvCell).join(","))];
  return `${lines.join("\r\n")}\r\n`;
}
