import { parseFhirServiceId } from "../domain/arm-ids.js";
import { failed, type CheckResult } from "../domain/checks/check-result.js";
import { completeReport, type PreflightRequest, type ValidationReport } from "../domain/checks/preflight-report.js";
import { currentIdentityType, currentKeyUrl, type FhirServiceResource, type RequestedIdentity } from "../domain/fhir-resource.js";
import { parseKeyUrl } from "../domain/key-url.js";
import type { ChangeRequest } from "../schemas/change-requests.js";
import type { AzureAdapters } from "../azure/adapters.js";

export type Resolution =
  | { kind: "resolved"; request: PreflightRequest; current?: FhirServiceResource }
  /** The request cannot be checked further: the report says why (one failed check). */
  | { kind: "refused"; report: ValidationReport; failure: CheckResult };

/** The identity a FHIR service uses now, as a request would name it; undefined when it has none usable. */
export function identityOf(resource: FhirServiceResource): RequestedIdentity | undefined {
  const type = currentIdentityType(resource);
  if (type === "SystemAssigned") return { type: "SystemAssigned" };
  const assigned = Object.keys(resource.identity?.userAssignedIdentities ?? {});
  if (type === "UserAssigned" && assigned.length === 1) return { type: "UserAssigned", userAssignedIdentityId: assigned[0]! };
  return undefined;
}

function refuse(request: Pick<PreflightRequest, "fromCurrentKey">, failure: CheckResult): Resolution {
  return { kind: "refused", report: completeReport(request, [failure], "the request cannot be checked further"), failure };
}

/**
 * The key, identity and service every check is about, for any operation. SetKey and CreateService name
 * them; RotateKey and RecoverKeyAccess start from what the FHIR service uses now (RotateKey's checks
 * look at the key's newest version, whose type and size a rotation keeps).
 */
export async function resolvePreflightRequest(adapters: AzureAdapters, body: ChangeRequest): Promise<Resolution> {
  switch (body.operation) {
    case "SetKey":
      return {
        kind: "resolved",
        request: {
          fhirServiceId: body.fhirServiceId,
          keyEncryptionKeyUrl: body.keyEncryptionKeyUrl,
          identity: body.identity,
          ...(body.acknowledgeIdentityTypeChange !== undefined ? { acknowledgeIdentityTypeChange: body.acknowledgeIdentityTypeChange } : {}),
        },
      };
    case "CreateService":
      return {
        kind: "resolved",
        request: { fhirServiceId: body.fhirServiceId, keyEncryptionKeyUrl: body.keyEncryptionKeyUrl, identity: body.identity, create: { location: body.location } },
      };
    case "RotateKey":
    case "RecoverKeyAccess": {
      const base = { fromCurrentKey: true } as const;
      const ref = parseFhirServiceId(body.fhirServiceId)!;
      const current = await adapters.fhirServices.read(ref);
      const name = ref.fhirService;
      if (!current) {
        return refuse(base, failed("FhirServiceExists", `FHIR service ${name} was not found.`, "Check the fhirServiceId (subscription, resource group, workspace and service name)."));
      }
      const keyUrl = currentKeyUrl(current);
      const key = keyUrl ? parseKeyUrl(keyUrl) : undefined;
      if (!key) {
        return refuse(
          base,
          failed("CustomerManagedKeyConfigured", `FHIR service ${name} uses a Microsoft-managed key.`, `Set a customer-managed key first with a SetKey request; ${body.operation} starts from the key the service uses.`),
        );
      }
      const identity = identityOf(current);
      if (!identity) {
        return refuse(
          base,
          failed("IdentitySingleType", `FHIR service ${name} has identity ${currentIdentityType(current)}, not exactly one identity.`, "Send a SetKey request with the one identity the service should use."),
        );
      }
      let url = key.url;
      if (body.operation === "RotateKey") url = await adapters.keyVault.latestVersionUrl(key).catch(() => key.url);
      return { kind: "resolved", current, request: { ...base, fhirServiceId: body.fhirServiceId, keyEncryptionKeyUrl: url, identity } };
    }
  }
}
