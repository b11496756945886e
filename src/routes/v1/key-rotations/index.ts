import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { ValidationFailedError, type FieldError } from "../../../errors.js";
import { KeyRotationRequest } from "../../../schemas/key-rotations.js";
import { ANY_V1_ROUTE, WITH_BODY, jsonResponse, problemResponses } from "../../../schemas/common.js";
import { PROBLEM_EXAMPLES as problems } from "../../../schemas/examples.js";
import { JobStatusMonitor } from "../../../schemas/jobs.js";
import { failedChecks } from "../../../domain/checks/check-result.js";
import { checkKeyUrl } from "../../../domain/checks/key-url-checks.js";
import { parseKeyUrl } from "../../../domain/key-url.js";
import type { AzureCloud } from "../../../azure/cloud.js";
import { clientRequestIdOf } from "../../../security/client-request-id.js";

/** What needs no Azure to refuse in a fleet rotation: a versioned key URL, a host or name the key checks refuse, contradicting options. */
export function keyRotationProblems(body: KeyRotationRequest, cloud: Pick<AzureCloud, "keyVaultSuffixes">): FieldError[] {
  const problems: FieldError[] = [];
  const key = parseKeyUrl(body.keyUrl);
  if (key?.version) {
    problems.push({
      path: "/body/keyUrl",
      message: `must be versionless (https://${key.host}/keys/${key.keyName}): a rotation moves every service on the key; to move them to version ${key.version}, send it as targetVersion.`,
    });
  } else if (key) {
    // The key URL checks judge versioned URLs: judge the host and names with a stand-in version.
    for (const check of failedChecks(checkKeyUrl(`${body.keyUrl}/${"0".repeat(32)}`, cloud)).filter((check) => check.id !== "KeyUrlVersioned")) {
      problems.push({ path: "/body/keyUrl", message: `${check.id}: ${check.message} ${check.remediation ?? ""}`.trim() });
    }
  }
  if (body.targetVersion !== undefined && body.createNewVersion === true) {
    problems.push({ path: "/body/createNewVersion", message: "must not be true with targetVersion: send either a version to move to or createNewVersion to make one." });
  }
  return problems;
}

const keyRotationRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post(
    "/key-rotations",
    {
      config: { role: "operator", auditChanges: true, auditOperation: "RotateFleet" },
      schema: {
        tags: ["Change requests"],
        operationId: "submitKeyRotation",
        summary: "Rotate a key across every FHIR service that uses it",
        description:
          "Accepts a fleet rotation: a parent job (`operation: RotateFleet`) discovers every FHIR service whose key URL names the key " +
          "(any version) in `subscriptions` (default CMK_SUBSCRIPTIONS, or every subscription the service can list; always within the caller's " +
          "allow-list), resolves the target version (`targetVersion`, the newest enabled version, or one new version with `createNewVersion`), " +
          "checks the target key once, and starts one RotateKey child per service not on it yet (`GET /v1/jobs?parentJobId=`). ARM writes are " +
          "paced per subscription across all workers. The parent ends when its last child does: Succeeded, or Failed with FleetPartiallyFailed " +
          "and one detail per failed child; `result.services` counts them. Cancel the parent to cancel every child that has not written. " +
          "One unfinished rotation per key: 409 ChangeInProgress. Answers 202 with the parent's status monitor and `Operation-Location`.",
        security: [{ apiKey: [] }, { bearer: [] }],
        headers: Type.Object({
          "idempotency-key": Type.Optional(
            Type.String({ minLength: 1, maxLength: 255, description: "Retries with the same key and body get the first answer and start nothing new; the same key with another body gets 422." }),
          ),
        }),
        body: KeyRotationRequest,
        response: {
          202: jsonResponse(JobStatusMonitor, "Accepted: the fleet rotation's status monitor; follow Operation-Location.", { "Operation-Location": true, "Idempotent-Replayed": true }),
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
      const refused = keyRotationProblems(body, fastify.cloud);
      if (refused.length > 0) throw new ValidationFailedError(refused);
      const idempotencyKey = request.headers["idempotency-key"]?.replace(/^"(.*)"$/, "$1");
      const origin = { ip: request.ip, userAgent: request.headers["user-agent"], requestId: request.id, clientRequestId: clientRequestIdOf(request.headers) };
      const answer = await fastify.changes.submitRotation(body, request.principal!, idempotencyKey, origin);
      request.auditRecorded = answer.audited;
      if (answer.replayed) reply.header("idempotent-replayed", "true");
      return reply.code(202).headers(answer.headers).send(answer.body);
    },
  );
};

export default keyRotationRoutes;
