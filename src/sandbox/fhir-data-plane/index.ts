import { json } from "../http/responses.js";
import type { SandboxRequest, SandboxResponse } from "../http/types.js";
import { checkKeyAccess, parseKeyUrl } from "../key-access.js";
import { keyEncryptionKeyUrlOf, type FhirServiceResource } from "../arm/healthcare-apis-model.js";
import type { SandboxRuntime } from "../runtime.js";

/**
 * The FHIR data plane, reduced to what CMK work needs: `GET /metadata` answers a small
 * CapabilityStatement while the service can use its key, and 500 while it cannot (key disabled,
 * deleted or expired; identity disabled or without its role), as the docs describe (azure-contracts.md 10.4).
 */

export const FHIR_HOST_SUFFIX = ".fhir.azurehealthcareapis.com";
const FHIR_JSON = "application/fhir+json; charset=utf-8";

function operationOutcome(status: number, code: string, diagnostics: string): SandboxResponse {
  return json(status, { resourceType: "OperationOutcome", issue: [{ severity: "error", code, diagnostics }] }, { "Content-Type": FHIR_JSON });
}

/** `{workspace}-{service}` host label → the FHIR service (names may contain hyphens, so compare whole labels). */
function findService(runtime: SandboxRuntime, host: string): FhirServiceResource | undefined {
  const label = host.slice(0, -FHIR_HOST_SUFFIX.length);
  return [...runtime.world.fhirServices.values()].find((service) => service.name.replace("/", "-").toLowerCase() === label);
}

function capabilityStatement(service: FhirServiceResource, url: string, nowMs: number): Record<string, unknown> {
  return {
    resourceType: "CapabilityStatement",
    url: `${url}/metadata`,
    version: "1.0",
    name: "FHIR Server Capability Statement",
    status: "active",
    experimental: false,
    date: new Date(nowMs).toISOString(),
    publisher: "Microsoft",
    kind: "instance",
    software: { name: "Microsoft FHIR Server (cmk-service sandbox)", version: "4.0.0" },
    implementation: { description: `FHIR service ${service.name}`, url },
    fhirVersion: service.kind === "fhir-Stu3" ? "3.0.2" : "4.0.1",
    format: ["application/fhir+json", "application/json"],
    rest: [{ mode: "server", security: { cors: true }, resource: [] }],
  };
}

export function createFhirDataPlaneHandler(runtime: SandboxRuntime): (request: SandboxRequest) => Promise<SandboxResponse> {
  return async (request) => {
    const service = findService(runtime, request.host);
    if (!service || service.properties.provisioningState === "Deleting") {
      return operationOutcome(404, "not-found", `No FHIR service answers at '${request.host}'.`);
    }
    if (request.method !== "GET" || request.path.replace(/\/+$/, "") !== "/metadata") {
      return operationOutcome(404, "not-supported", "The sandbox FHIR data plane only serves GET /metadata.");
    }
    const keyUrl = keyEncryptionKeyUrlOf(service);
    if (keyUrl && parseKeyUrl(keyUrl)) {
      const failure = checkKeyAccess(runtime.world, { keyUrl, location: service.location, identity: service.identity, purpose: "runtime", nowSeconds: runtime.clock.nowSeconds() });
      if (failure) {
        return operationOutcome(500, "exception", `The customer-managed key is not accessible (${failure.code}): ${failure.message}`);
      }
    }
    return json(200, capabilityStatement(service, `https://${request.host}`, runtime.clock.now()), { "Content-Type": FHIR_JSON });
  };
}
