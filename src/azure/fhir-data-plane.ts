import { createDefaultHttpClient, createPipelineRequest } from "@azure/core-rest-pipeline";
import type { FhirServiceRef } from "../domain/arm-ids.js";
import { fhirServiceUrl } from "../domain/fhir-resource.js";
import type { AzureContext } from "./azure-context.js";

export interface FhirDataPlaneAdapter {
  /**
   * `GET {service}/metadata`: the FHIR service answers its CapabilityStatement, or 500 while it cannot
   * use its key. Returns the HTTP status, or undefined when the service could not be reached at all.
   */
  metadataStatus(ref: FhirServiceRef): Promise<{ status: number | undefined; detail: string }>;
}

/** The FHIR data plane, reached with the same HTTP setup as every other adapter (sandbox routing). */
export function createFhirDataPlaneAdapter(context: AzureContext): FhirDataPlaneAdapter {
  const httpClient = context.clientOptions.httpClient ?? createDefaultHttpClient();
  return {
    async metadataStatus(ref) {
      const url = `${fhirServiceUrl(ref.workspace, ref.fhirService, context.cloud.fhirSuffix)}/metadata`;
      try {
        const response = await httpClient.sendRequest(createPipelineRequest({ url, method: "GET", timeout: 10_000 }));
        return { status: response.status, detail: `GET ${url} answered ${response.status}` };
      } catch (error) {
        return { status: undefined, detail: `GET ${url} failed: ${(error as Error).message}` };
      }
    },
  };
}
