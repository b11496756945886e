import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { ApiError, QueueUnavailableError, ValidationFailedError } from "../../../errors.js";
import { ANY_V1_ROUTE, jsonResponse, problemResponses } from "../../../schemas/common.js";
import { PROBLEM_EXAMPLES as problems } from "../../../schemas/examples.js";
import { AuditPage, AuditQuery } from "../../../schemas/audit.js";
import { isStreamId } from "../../../job-store/audit-trail.js";
import { invalidContinuationToken, queryBinding } from "../../../security/page-cursor.js";

const DEFAULT_TOP = 20;

const auditRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get(
    "/audit",
    {
      config: { role: "admin" },
      schema: {
        tags: ["Audit"],
        operationId: "listAuditEntries",
        summary: "Audit trail of changes",
        description:
          "Every change request of an authenticated caller, accepted or refused (who, when, from where, ticket, FHIR service, requested " +
          "key and identity), and every job that ended (Succeeded, Failed or Canceled, with the key before and after), newest first. " +
          "Requests refused without a valid credential (401) or over the rate limit (429) are counted per principal and minute in " +
          "`RefusedSummary` entries, kept apart: ask for them with `outcome=RefusedSummary`. " +
          "Filters combine; a page may hold fewer than `top` entries when many entries were skipped: follow `nextLink`.",
        security: [{ apiKey: [] }, { bearer: [] }],
        querystring: AuditQuery,
        response: {
          200: jsonResponse(AuditPage, "Audit entries, newest first; follow nextLink for older ones."),
          ...problemResponses(...ANY_V1_ROUTE, problems.queryInvalid, problems.subscriptionNotAllowed, problems.queueUnavailable),
        },
      },
    },
    async (request) => {
      const { top = DEFAULT_TOP, continuationToken, from, to, ...filters } = request.query;
      if (from && to && new Date(from) > new Date(to)) throw new ValidationFailedError([{ path: "/query/from", message: "must not be after to" }]);
      // Tokens are sealed stream positions, bound to this query and the caller's scope (page-cursor.ts): a
      // page that skipped other subscriptions' entries does not show where they are.
      const cursors = fastify.jobStore.pageCursors;
      const binding = queryBinding("audit", request.principal?.subscriptions, { ...filters, from, to });
      const after = continuationToken === undefined ? undefined : await cursors.open(continuationToken, binding);
      if (after !== undefined && !isStreamId(after)) throw invalidContinuationToken();
      try {
        const page = await fastify.audit.query(
          { ...filters, from: from ? new Date(from) : undefined, to: to ? new Date(to) : undefined, subscriptions: request.principal?.subscriptions },
          top,
          after,
        );
        if (!page.continuationToken) return { value: page.entries };
        const sealed = await cursors.seal(page.continuationToken, binding);
        const next = new URLSearchParams(Object.entries({ ...request.query, top, continuationToken: sealed }).map(([name, value]): [string, string] => [name, String(value)]));
        return { value: page.entries, nextLink: `/v1/audit?${next.toString()}` };
      } catch (error) {
        if (error instanceof ApiError) throw error;
        request.log.warn({ err: (error as Error).message }, "audit read failed");
        throw new QueueUnavailableError();
      }
    },
  );
};

export default auditRoutes;
