import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { ANY_V1_ROUTE, WITH_BODY, jsonResponse, problemResponses } from "../../../schemas/common.js";
import { PROBLEM_EXAMPLES as problems } from "../../../schemas/examples.js";
import { TemplateRequest, TemplateResponse } from "../../../schemas/templates.js";

const templateRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post(
    "/templates",
    {
      config: { role: "reader", readsAzure: true },
      schema: {
        tags: ["Change requests"],
        operationId: "renderDeploymentTemplate",
        summary: "Get the ARM deployment template for a change",
        description:
          "Answers the ARM deployment template and parameters file that make the requested change, for teams that deploy " +
          "through their own pipelines. SetKey, RotateKey and RecoverKeyAccess templates declare the FHIR service with every " +
          "setting it has now (a deployment replaces the resource, as the job's PUT does), read from Azure; CreateService " +
          "templates may also declare the workspace, vault and key, identity and role assignment (`options`). Role " +
          "assignments use Key Vault Crypto Service Encryption User, not the Crypto Officer role of the documentation's sample. " +
          "What only Key Vault's data plane can do (make a key version, recover a deleted key) is refused. Nothing is changed.",
        security: [{ apiKey: [] }, { bearer: [] }],
        body: TemplateRequest,
        response: {
          200: jsonResponse(TemplateResponse, "The deployment template, its parameters file and what to know before deploying."),
          ...problemResponses(
            ...ANY_V1_ROUTE,
            ...WITH_BODY,
            problems.bodyInvalid,
            problems.subscriptionNotAllowed,
            problems.fhirServiceNotFound,
            problems.fhirServiceExists,
            problems.templateNotPossible,
            problems.azureUnavailable,
          ),
        },
      },
    },
    async (request) => fastify.templates.render(request.body, request.log),
  );
};

export default templateRoutes;
