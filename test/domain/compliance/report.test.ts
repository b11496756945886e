import t from "tap";
import { buildReport, filterReport, scopeReport, summarize } from "../../../src/domain/compliance/report.js";
import { csvCell, CSV_COLUMNS, renderCsv } from "../../../src/domain/compliance/csv.js";
import type { ServiceCompliance } from "../../../src/schemas/compliance.js";
import { schemaErrors } from "../../helpers/change-request-validator.js";

/** The report builder, its filters and allow-list scoping, and the CSV auditors open. */

const A = "22222222-2222-2222-2222-222222222222";
const B = "33333333-3333-3333-3333-333333333333";
const id = (subscription: string, name: string) => `/subscriptions/${subscription}/resourceGroups/rg/providers/Microsoft.HealthcareApis/workspaces/ws/fhirservices/${name}`;
const key = "https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048/00000000000000000000000000000001";

const rows: ServiceCompliance[] = [
  { fhirServiceId: id(B, "fhir-other"), encryption: "CustomerManaged", keyEncryptionKeyUrl: key, latestKeyVersion: "00000000000000000000000000000002", health: "Healthy", findings: [{ rule: "KeyVersionBehindLatest", severity: "Low", message: "behind" }] },
  { fhirServiceId: id(A, "fhir-sys"), encryption: "MicrosoftManaged", health: "Healthy", findings: [{ rule: "MicrosoftManagedKey", severity: "High", message: "Microsoft-managed" }] },
  {
    fhirServiceId: id(A, "fhir-uami"),
    encryption: "CustomerManaged",
    keyEncryptionKeyUrl: key,
    keyVersionAgeDays: 400,
    health: "KeyAccessLost",
    findings: [
      { rule: "KeyAccessLost", severity: "High", message: "lost" },
      { rule: "KeyVersionTooOld", severity: "Medium", message: "old" },
    ],
  },
  { fhirServiceId: id(A, "fhir-ok"), encryption: "CustomerManaged", keyEncryptionKeyUrl: key, health: "Healthy", findings: [] },
];
const report = buildReport("scan-1", new Date("2026-11-29T03:00:00Z"), rows);

t.test("buildReport: rows sorted by service id, summary counts, the contract's shape", async (t) => {
  t.same(report.services.map((row) => row.fhirServiceId.split("/").at(-1)), ["fhir-ok", "fhir-sys", "fhir-uami", "fhir-other"]);
  t.same(report.summary, { services: 4, customerManaged: 3, microsoftManaged: 1, findings: { High: 2, Medium: 1, Low: 1 } });
  t.equal(report.scannedDateTime, "2026-11-29T03:00:00.000Z");
  t.same(schemaErrors("ComplianceReport", report), [], "matches the report schema");
  t.not(schemaErrors("ComplianceReport", { ...report, summary: { ...report.summary, findings: { High: 1 } } }).length, 0, "which does check");
  t.same(summarize([]), { services: 0, customerManaged: 0, microsoftManaged: 0, findings: { High: 0, Medium: 0, Low: 0 } });
});

t.test("filters combine; rule and severity keep the matching findings; the summary counts what is left", async (t) => {
  t.equal(filterReport(report, {}), report, "no filter: the same report");
  const high = filterReport(report, { severity: "High" });
  t.same(high.services.map((row) => [row.fhirServiceId.split("/").at(-1), row.findings.map((finding) => finding.rule)]), [["fhir-sys", ["MicrosoftManagedKey"]], ["fhir-uami", ["KeyAccessLost"]]]);
  t.same(high.summary, { services: 2, customerManaged: 1, microsoftManaged: 1, findings: { High: 2, Medium: 0, Low: 0 } });
  t.same(filterReport(report, { rule: "KeyVersionTooOld" }).services.map((row) => row.findings.length), [1]);
  t.same(filterReport(report, { rule: "KeyVersionTooOld", severity: "High" }).services, [], "both must match");
  const other = filterReport(report, { subscriptionId: B.toUpperCase() });
  t.same(other.services.map((row) => row.fhirServiceId), [id(B, "fhir-other")], "subscription ids compare without case");
  t.same(filterReport(report, { subscriptionId: A }).summary.services, 3, "a subscription keeps services without findings too");
  t.equal(filterReport(report, { subscriptionId: A, rule: "KeyExpired" }).services.length, 0);
});

t.test("scopeReport: a caller with an allow-list sees its subscriptions' services only", async (t) => {
  t.equal(scopeReport(report, undefined), report, "no allow-list: everything");
  const scoped = scopeReport(report, [B]);
  t.same(scoped.services.map((row) => row.fhirServiceId), [id(B, "fhir-other")]);
  t.same(scoped.summary, { services: 1, customerManaged: 1, microsoftManaged: 0, findings: { High: 0, Medium: 0, Low: 1 } });
  t.same(scopeReport(report, []).services, [], "an empty allow-list: nothing");
  t.same(filterReport(scopeReport(report, [B]), { subscriptionId: A }).services, [], "a filter cannot widen the scope");
});

/** RFC 4180 parser (quoted fields, doubled quotes, CRLF records), to read the CSV back as a spreadsheet would. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let field = "";
  let record: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && field === "") quoted = true;
    else if (c === ",") {
      record.push(field);
      field = "";
    } else if (c === "\r" && text[i + 1] === "\n") {
      record.push(field);
      records.push(record);
      record = [];
      field = "";
      i++;
    } else field += c;
  }
  if (field !== "" || record.length > 0) throw new Error("the last record does not end with CRLF");
  return records;
}

t.test("the CSV: a header and one row per service, RFC 4180, every cell formula-safe", async (t) => {
  const csv = renderCsv(report);
  t.ok(csv.endsWith("\r\n"), "records end with CRLF");
  const records = parseCsv(csv);
  t.same(records[0], [...CSV_COLUMNS]);
  t.equal(records.length, 1 + report.services.length, "one row per service");
  t.ok(records.every((record) => record.length === CSV_COLUMNS.length), "every row has every column");
  const uami = Object.fromEntries(CSV_COLUMNS.map((column, i) => [column, records[3]![i]]));
  t.match(uami, { fhirServiceId: id(A, "fhir-uami"), subscriptionId: A, encryption: "CustomerManaged", keyVersionAgeDays: "400", health: "KeyAccessLost", highestSeverity: "High", rules: "KeyAccessLost;KeyVersionTooOld", findings: "High KeyAccessLost: lost\nMedium KeyVersionTooOld: old" });
  t.equal(records[1]![CSV_COLUMNS.indexOf("highestSeverity")], "", "no finding: empty");

  // Hostile text in a message (a finding names what it found: a key or tag an attacker chose).
  const hostile = buildReport("scan-2", new Date(0), [
    { fhirServiceId: id(A, "fhir-x"), encryption: "MicrosoftManaged", health: "Unknown", findings: [{ rule: "MicrosoftManagedKey", severity: "Low", message: '=HYPERLINK("http://evil","x"),"quoted"' }] },
  ]);
  const [, row] = parseCsv(renderCsv(hostile));
  t.equal(row![CSV_COLUMNS.indexOf("findings")], 'Low MicrosoftManagedKey: =HYPERLINK("http://evil","x"),"quoted"', "quotes and commas survive the round trip");
});

t.test("csvCell: quoting and the OWASP prefix for cells a spreadsheet would run", async (t) => {
  t.equal(csvCell(undefined), "");
  t.equal(csvCell(12), "12");
  t.equal(csvCell("plain"), "plain");
  t.equal(csvCell('a "b", c'), '"a ""b"", c"');
  t.equal(csvCell("two\nlines"), '"two\nlines"');
  t.equal(csvCell("=1+2"), "'=1+2");
  t.equal(csvCell("+1"), "'+1");
  t.equal(csvCell("-1"), "'-1");
  t.equal(csvCell("@SUM(A1)"), "'@SUM(A1)");
  t.equal(csvCell("\tcmd"), "'\tcmd");
  t.equal(csvCell("\rcmd"), `"'\rcmd"`, "prefixed, then quoted for the CR");
  t.equal(csvCell('=cmd|" /C calc"!A0'), `"'=cmd|"" /C calc""!A0"`);
  t.equal(csvCell("a=b"), "a=b", "only the first character matters");
});
