import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { AzureUnavailableError } from "../../../errors.js";
import { ChangeRequest } from "../../../schemas/change-requests.js";
import { ANY_V1_ROUTE, WITH_BODY, jsonResponse, problemResponses } from "../../../schemas/common.js";
import { PROBLEM_EXAMPLES as problems } from "../../../schemas/examples.js";
import { ValidationReport } from "../../../schemas/validations.js";
import { runPreflight } from "../../../preflight/run-preflight.js";
import { resolvePreflightRequest } from "../../../preflight/resolve-request.js";
import { transientFacts } from "../../../preflight/gather-facts.js";

const validationRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post(
    "/validations",
    {
      config: { role: "reader", readsAzure: true },
      schema: {
        tags: ["Change requests"],
        operationId: "validateChangeRequest",
        summary: "Run every pre-flight check now",
        description:
          "Checks a would-be change request against every documented key and identity requirement, reading Azure as the " +
          "service's own identity, and answers the report whether or not it passes. Nothing is changed and no job is made.",
        security: [{ apiKey: [] }, { bearer: [] }],
        body: ChangeRequest,
        response: {
          200: jsonResponse(ValidationReport, "The report: `valid` is false when a check failed."),
          ...problemResponses(...ANY_V1_ROUTE, ...WITH_BODY, problems.bodyInvalid, problems.subscriptionNotAllowed, problems.azureUnavailable),
        },
      },
    },
    async (request) => {
      const resolution = await resolvePreflightRequest(fastify.azure, request.body).catch((error: unknown) => {
        request.log.warn({ err: (error as Error).message }, "could not read the FHIR service");
        throw new AzureUnavailableError("the FHIR service");
      });
      if (resolution.kind === "refused") return resolution.report;
      const { report, facts } = await runPreflight(fastify.azure, resolution.request, { propagationWindowMs: fastify.config.CMK_ROLE_PROPAGATION_WINDOW_MS });
      // A report built on lookups Azure did not answer would look better than it is.
      const unavailable = facts ? transientFacts(facts) : [];
      if (unavailable.length > 0) throw new AzureUnavailableError(unavailable.join("; "));
      return report;
    },
  );
};

export default validationRoutes;
