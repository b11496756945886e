import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { ChangeRequest } from "../../../schemas/change-requests.js";
import { ANY_V1_ROUTE, WITH_BODY, jsonResponse, problemResponses } from "../../../schemas/common.js";
import { PROBLEM_EXAMPLES as problems } from "../../../schemas/examples.js";
import { ValidationReport } from "../../../schemas/validations.js";

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
    async (request) => fastify.validations.validate(request.body, request.log),
  );
};

export default validationRoutes;
