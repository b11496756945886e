import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { AzureUnavailableError } from "../../../errors.js";
import { ANY_V1_ROUTE, jsonResponse, problemResponses } from "../../../schemas/common.js";
import { PROBLEM_EXAMPLES as problems } from "../../../schemas/examples.js";
import { SelfCheckReport } from "../../../schemas/self-check.js";

const selfCheckRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get(
    "/self-check",
    {
      config: { role: "admin", readsAzure: true },
      schema: {
        tags: ["Self-check"],
        operationId: "runSelfCheck",
        summary: "Check the service's own Azure permissions",
        description:
          "For each covered subscription, the resource groups of its FHIR workspaces, the user-assigned identities, vaults, Managed HSMs and HSM keys " +
          "its FHIR services use: whether the service's own identity may do what each operation needs (ARM's Microsoft.Authorization/permissions at " +
          "resource groups and resources; listing workspaces and reading operation results probed at the subscription; a Managed HSM key's local role " +
          "assignments), with the missing actions, the operations they block and the `az role assignment create` that grants them. Reads only; " +
          "explicit, never part of readiness. Concurrent calls share one run.",
        security: [{ apiKey: [] }, { bearer: [] }],
        response: {
          200: jsonResponse(SelfCheckReport, "The report: `status` ok, missing or incomplete; per scope and per operation what is granted and what is missing."),
          ...problemResponses(...ANY_V1_ROUTE, problems.azureUnavailable),
        },
      },
    },
    async (request) => {
      try {
        return await fastify.selfCheck.run(request.principal?.subscriptions);
      } catch (error) {
        request.log.warn({ err: (error as Error).message }, "self-check could not run");
        throw new AzureUnavailableError("the service's identity and subscriptions");
      }
    },
  );
};

export default selfCheckRoutes;
