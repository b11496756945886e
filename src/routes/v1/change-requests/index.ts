import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { ValidationFailedError } from "../../../errors.js";
import { ChangeRequest } from "../../../schemas/change-requests.js";
import { ANY_V1_ROUTE, WITH_BODY, jsonResponse, problemResponses } from "../../../schemas/common.js";
import { PROBLEM_EXAMPLES as problems } from "../../../schemas/examples.js";
import { JobStatusMonitor } from "../../../schemas/jobs.js";
import { failedChecks } from "../../../domain/checks/check-result.js";
import { staticReport } from "../../../domain/checks/preflight-report.js";
import { clientRequestIdOf } from "../../../security/client-request-id.js";

const changeRequestRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post(
    "/change-requests",
    {
      config: { role: "operator", auditChanges: true },
      schema: {
        tags: ["Change requests"],
        operationId: "submitChangeRequest",
        summary: "Submit a change",
        description:
          "Validates the request, refuses at once what needs no Azure to decide (unversioned key URL, a host outside the " +
          "cloud's Key Vault suffixes, vault + key name over 94 characters), then enqueues a job. Answers 202 with the job's " +
          "status monitor and `Operation-Location`. While the FHIR service has an unfinished job: 409 ChangeInProgress.",
        security: [{ apiKey: [] }, { bearer: [] }],
        headers: Type.Object({
          "idempotency-key": Type.Optional(
            Type.String({
              minLength: 1,
              maxLength: 255,
              description: "Retries with the same key and body get the first answer and start nothing new (kept 24 hours or more); the same key with another body gets 422.",
            }),
          ),
        }),
        body: ChangeRequest,
        response: {
          202: jsonResponse(JobStatusMonitor, "Accepted: the new job's status monitor; follow Operation-Location.", { "Operation-Location": true, "Idempotent-Replayed": true }),
          ...problemResponses(
            ...ANY_V1_ROUTE,
            ...WITH_BODY,
            problems.bodyInvalid,
            problems.subscriptionNotAllowed,
            problems.changeInProgress,
            problems.requestInProgress,
            problems.idempotencyKeyReused,
            problems.queueUnavailable,
          ),
        },
      },
    },
    async (request, reply) => {
      const body = request.body;
      // Operations that name a key are judged on it before anything is fetched.
      const refused = "keyEncryptionKeyUrl" in body ? failedChecks(staticReport({ ...body, create: undefined }, fastify.cloud).checks) : [];
      if (refused.length > 0) {
        throw new ValidationFailedError(
          refused.map((check) => ({ path: "/body/keyEncryptionKeyUrl", message: `${check.id}: ${check.message} ${check.remediation ?? ""}`.trim() })),
          `Refused before anything was fetched: ${refused.map((check) => check.id).join(", ")}.`,
          { failedChecks: refused.map((check) => check.id), checks: refused },
        );
      }
      // The header is a Structured Field string: accept it quoted or bare.
      const idempotencyKey = request.headers["idempotency-key"]?.replace(/^"(.*)"$/, "$1");
      const origin = { ip: request.ip, userAgent: request.headers["user-agent"], requestId: request.id, clientRequestId: clientRequestIdOf(request.headers) };
      const answer = await fastify.changes.submit(body, request.principal!, idempotencyKey, origin);
      // Accepted: its audit entry went with the job; anything else is the audit plugin's to write.
      request.auditRecorded = answer.audited;
      if (answer.replayed) reply.header("idempotent-replayed", "true");
      return reply.code(202).headers(answer.headers).send(answer.body);
    },
  );
};

export default changeRequestRoutes;
