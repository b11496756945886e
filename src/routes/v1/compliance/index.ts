import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { ANY_V1_ROUTE, RATE_LIMIT_HEADERS, WITH_BODY, jsonResponse, problemResponses, responseHeaders } from "../../../schemas/common.js";
import { PROBLEM_EXAMPLES as problems, SEED_EXAMPLES } from "../../../schemas/examples.js";
import { ComplianceQuery, ComplianceReport, ComplianceScanRequest } from "../../../schemas/compliance.js";
import { JobStatusMonitor } from "../../../schemas/jobs.js";
import { renderCsv } from "../../../domain/compliance/csv.js";
import { clientRequestIdOf } from "../../../security/client-request-id.js";

const SUBSCRIPTION = SEED_EXAMPLES.fhirSys.split("/")[2]!;
const REPORT_EXAMPLE = {
  scanId: "4b0c6a1e-8f8e-4c1a-9a53-0c3c9f0f2d11",
  scannedDateTime: "2026-11-29T03:00:12.000Z",
  summary: { services: 2, customerManaged: 1, microsoftManaged: 1, findings: { High: 0, Medium: 0, Low: 2 } },
  services: [
    {
      fhirServiceId: SEED_EXAMPLES.fhirSys,
      encryption: "MicrosoftManaged",
      health: "Healthy",
      findings: [{ rule: "MicrosoftManagedKey", severity: "Low", message: "FHIR service fhir-sys encrypts its data with a Microsoft-managed key." }],
    },
    {
      fhirServiceId: `/subscriptions/${SUBSCRIPTION}/resourceGroups/rg-sandbox/providers/Microsoft.HealthcareApis/workspaces/wssandbox/fhirservices/fhir-uami`,
      encryption: "CustomerManaged",
      keyEncryptionKeyUrl: "https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048/00000000000000000000000000000001",
      keyVersionCreatedDateTime: "2026-01-01T00:00:00.000Z",
      keyVersionAgeDays: 332,
      latestKeyVersion: "00000000000000000000000000000002",
      health: "Healthy",
      findings: [
        {
          rule: "KeyVersionBehindLatest",
          severity: "Low",
          message:
            "FHIR service fhir-uami uses version 00000000000000000000000000000001 of key cmk-rsa-2048 in kvsandbox, but version 00000000000000000000000000000002 is the newest enabled one.",
          recommendedChange: {
            operation: "RotateKey",
            fhirServiceId: `/subscriptions/${SUBSCRIPTION}/resourceGroups/rg-sandbox/providers/Microsoft.HealthcareApis/workspaces/wssandbox/fhirservices/fhir-uami`,
            useLatestExistingVersion: true,
          },
        },
      ],
    },
  ],
};

/** Whether `Accept` prefers CSV: text/csv named, with a quality no lower than JSON's (a client accepting anything gets JSON). */
export function wantsCsv(accept: string | undefined): boolean {
  if (!accept) return false;
  const quality = (type: string) =>
    Math.max(
      -1,
      ...accept.split(",").map((entry) => {
        const [range, ...params] = entry.trim().toLowerCase().split(";");
        if (range?.trim() !== type) return -1;
        const q = params.map((param) => /^\s*q=([0-9.]+)\s*$/.exec(param)?.[1]).find(Boolean);
        return q === undefined ? 1 : Number(q);
      }),
    );
  const csv = quality("text/csv");
  return csv > 0 && csv >= quality("application/json");
}

const complianceRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  // A scan takes an optional body: none at all is `{}`.
  fastify.addHook("preValidation", async (request) => {
    if (request.method === "POST" && request.body === undefined) request.body = {};
  });

  fastify.post(
    "/compliance-scans",
    {
      config: { role: "operator", auditChanges: true, auditOperation: "ComplianceScan" },
      schema: {
        tags: ["Compliance"],
        operationId: "startComplianceScan",
        summary: "Scan every FHIR service now",
        description:
          "Accepts a compliance scan: a job (`operation: ComplianceScan`) lists every FHIR service of `subscriptions` (default CMK_SUBSCRIPTIONS, " +
          "or every subscription the service can list; always within the caller's allow-list), reads each distinct key once, evaluates the " +
          "rules and stores the report `GET /v1/compliance` answers (the previous report stays until the new one is complete). Writes nothing " +
          "to Azure, so it waits for no approval; with CMK_FOLLOW_LATEST_KEY_VERSION=true it starts one RotateKey per service behind its key's " +
          "newest version. One unfinished scan at a time (scheduled ones included): 409 ChangeInProgress names it in `activeJobId`. " +
          "Answers 202 with the job's status monitor and `Operation-Location`.",
        security: [{ apiKey: [] }, { bearer: [] }],
        body: ComplianceScanRequest,
        response: {
          202: jsonResponse(JobStatusMonitor, "Accepted: the scan's status monitor; follow Operation-Location.", { "Operation-Location": true }),
          ...problemResponses(...ANY_V1_ROUTE, ...WITH_BODY, problems.bodyInvalid, problems.subscriptionNotAllowed, problems.scanInProgress, problems.queueUnavailable),
        },
      },
    },
    async (request, reply) => {
      const origin = { ip: request.ip, userAgent: request.headers["user-agent"], requestId: request.id, clientRequestId: clientRequestIdOf(request.headers) };
      const answer = await fastify.changes.submitScan(request.body, request.principal!, origin);
      request.auditRecorded = answer.audited;
      return reply.code(202).headers(answer.headers).send(answer.body);
    },
  );

  fastify.get(
    "/compliance",
    {
      config: { role: "reader" },
      schema: {
        tags: ["Compliance"],
        operationId: "getComplianceReport",
        summary: "The latest compliance report",
        description:
          "The latest finished scan's report: every FHIR service with its encryption, key version dates, health and findings (each with a " +
          "message and, where a change request fixes it, that request's body in `recommendedChange`). Filters combine: `rule` and `severity` " +
          "keep the services with a matching finding (and only those findings), `subscriptionId` one subscription's services; a caller with a " +
          "subscription allow-list sees its subscriptions only; `summary` counts what is shown. `Accept: text/csv` answers one row per service " +
          "(RFC 4180, cells that a spreadsheet would run as a formula prefixed with '). 404 NotFound before the first scan has finished.",
        security: [{ apiKey: [] }, { bearer: [] }],
        querystring: ComplianceQuery,
        response: {
          200: {
            description: "The report (JSON), or one CSV row per service with `Accept: text/csv`.",
            headers: responseHeaders(RATE_LIMIT_HEADERS),
            content: {
              "application/json": { schema: Type.Ref(ComplianceReport), example: REPORT_EXAMPLE },
              "text/csv": {
                schema: { type: "string", description: "Header row, then one row per FHIR service; CRLF line ends." },
                example:
                  "fhirServiceId,subscriptionId,encryption,keyEncryptionKeyUrl,keyVersionCreatedDateTime,keyVersionAgeDays,latestKeyVersion,keyExpiresDateTime,health,highestSeverity,rules,findings\r\n",
              },
            },
          },
          ...problemResponses(...ANY_V1_ROUTE, problems.queryInvalid, problems.complianceReportNotFound, problems.queueUnavailable),
        },
      },
    },
    async (request, reply) => {
      const report = await fastify.compliance.report(request.principal!, request.query);
      reply.header("vary", "Accept");
      // CSV only when asked for by name: a client accepting anything gets JSON.
      if (wantsCsv(request.headers.accept)) {
        return reply.type("text/csv; charset=utf-8").header("content-disposition", `attachment; filename="compliance-${report.scanId}.csv"`).send(renderCsv(report));
      }
      return reply.type("application/json; charset=utf-8").send(report);
    },
  );
};

export default complianceRoutes;
