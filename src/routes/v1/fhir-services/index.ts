import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { AzureUnavailableError, NotFoundError } from "../../../errors.js";
import { fhirServiceRef, type FhirServiceRef } from "../../../domain/arm-ids.js";
import { encryptionState } from "../../../domain/encryption.js";
import type { FhirServiceResource } from "../../../domain/fhir-resource.js";
import { ANY_V1_ROUTE, jsonResponse, problemResponses } from "../../../schemas/common.js";
import { PROBLEM_EXAMPLES as problems } from "../../../schemas/examples.js";
import { EncryptionHealth, EncryptionState, FhirServiceParams } from "../../../schemas/encryption.js";
import { diagnoseKeyAccess } from "../../../preflight/diagnose-key-access.js";

const fhirServiceRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const prefix = "/subscriptions/:subscriptionId/resourceGroups/:resourceGroup/workspaces/:workspace/fhirservices/:fhirService";

  /** The FHIR service as ARM has it now; 404 NotFound when ARM does not know it. */
  const readService = async (ref: FhirServiceRef): Promise<FhirServiceResource> => {
    const resource = await fastify.azure.fhirServices.read(ref).catch(() => {
      throw new AzureUnavailableError(`FHIR service ${ref.fhirService}`);
    });
    if (!resource) throw new NotFoundError(`FHIR service ${ref.id}`);
    return resource;
  };
  const fhirServiceProblems = problemResponses(...ANY_V1_ROUTE, problems.pathInvalid, problems.subscriptionNotAllowed, problems.fhirServiceMissing, problems.azureUnavailable);
  const refOf = (params: { subscriptionId: string; resourceGroup: string; workspace: string; fhirService: string }) =>
    fhirServiceRef(params.subscriptionId, params.resourceGroup, params.workspace, params.fhirService);

  fastify.get(
    `${prefix}/encryption`,
    {
      config: { role: "reader", readsAzure: true },
      schema: {
        tags: ["FHIR services"],
        operationId: "getEncryptionState",
        summary: "Current encryption state",
        description: "Encryption type, key URL (vault, key, version), identity and principal, provisioning state and region.",
        security: [{ apiKey: [] }, { bearer: [] }],
        params: FhirServiceParams,
        response: { 200: jsonResponse(EncryptionState, "The FHIR service's encryption as ARM reports it now."), ...fhirServiceProblems },
      },
    },
    async (request) => {
      const ref = refOf(request.params);
      return encryptionState(ref, await readService(ref));
    },
  );

  fastify.get(
    `${prefix}/encryption/health`,
    {
      config: { role: "reader", readsAzure: true },
      schema: {
        tags: ["FHIR services"],
        operationId: "diagnoseKeyAccess",
        summary: "Diagnose lost key access",
        description:
          "Healthy, KeyAccessLost or Degraded, with the checks behind it (key exists, enabled, not expired, not soft-deleted; identity present; " +
          "identity holds its role; the FHIR data plane answers /metadata) and a recommended action naming the change request to send.",
        security: [{ apiKey: [] }, { bearer: [] }],
        params: FhirServiceParams,
        response: { 200: jsonResponse(EncryptionHealth, "The diagnosis, the checks behind it and the recommended action."), ...fhirServiceProblems },
      },
    },
    async (request) => {
      const ref = refOf(request.params);
      const resource = await readService(ref);
      return diagnoseKeyAccess(fastify.azure, ref, resource, { propagationWindowMs: fastify.config.CMK_ROLE_PROPAGATION_WINDOW_MS });
    },
  );
};

export default fhirServiceRoutes;
