import { HealthcareApisManagementClient, type FhirService } from "@azure/arm-healthcareapis";
import { createHttpHeaders, type HttpClient } from "@azure/core-rest-pipeline";

/**
 * The JSON body @azure/arm-healthcareapis puts on the wire for a FHIR service PUT of `body` (the SDK's
 * own serializer, through a real client; the HTTP client answers locally, nothing leaves the process).
 */
export async function sdkPutBody(body: FhirService): Promise<Record<string, unknown>> {
  let sent: string | undefined;
  const httpClient: HttpClient = {
    async sendRequest(request) {
      if (request.method === "PUT") sent = String(request.body);
      const answer = { ...(JSON.parse(sent ?? "{}") as object), properties: { provisioningState: "Succeeded" } };
      return { request, status: 200, headers: createHttpHeaders({ "content-type": "application/json" }), bodyAsText: JSON.stringify(answer) };
    },
  };
  const credential = { getToken: async () => ({ token: "test-token", expiresOnTimestamp: Date.now() + 3_600_000 }) };
  const client = new HealthcareApisManagementClient(credential, "22222222-2222-2222-2222-222222222222", { httpClient, endpoint: "https://management.azure.com" });
  await client.fhirServices.beginCreateOrUpdateAndWait("rg", "ws", "fhir", body, { updateIntervalInMs: 1 });
  if (sent === undefined) throw new Error("the SDK sent no PUT");
  return JSON.parse(sent) as Record<string, unknown>;
}
