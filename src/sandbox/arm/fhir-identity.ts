import { isRecord } from "../http/responses.js";
import type { SandboxResponse } from "../http/types.js";
import { newGuid } from "../ids.js";
import type { SandboxRuntime } from "../runtime.js";
import { idKey } from "../world.js";
import { armError, invalidRequestContent } from "./errors.js";
import type { ServiceIdentity } from "./healthcare-apis-model.js";

type IdentityResult = { identity: ServiceIdentity | undefined } | { error: SandboxResponse };

/**
 * Normalizes a requested `identity`. The FHIR service supports one identity type and at most one
 * user-assigned identity (azure-contracts.md 10.2); the RP's rejection codes for the combined type and
 * for several UAMIs are undocumented, so `InvalidIdentityType` and `InvalidUserAssignedIdentities`
 * are the sandbox's choice.
 */
export function resolveIdentity(runtime: SandboxRuntime, value: unknown, existing: ServiceIdentity | undefined): IdentityResult {
  if (value === undefined || value === null) return { identity: undefined };
  if (!isRecord(value) || typeof value.type !== "string") {
    return { error: invalidRequestContent("The request content was invalid: 'identity.type' is required and must be a string.") };
  }
  const type = value.type.replace(/\s+/g, "").toLowerCase();
  if (type === "none") return { identity: { type: "None" } };
  if (type === "systemassigned,userassigned" || type === "userassigned,systemassigned") {
    return {
      error: armError(400, "InvalidIdentityType", "The FHIR service supports a single identity type: either 'SystemAssigned' or 'UserAssigned', not both."),
    };
  }
  if (type === "systemassigned") {
    const principalId = existing?.type === "SystemAssigned" && existing.principalId ? existing.principalId : newGuid();
    return { identity: { type: "SystemAssigned", principalId, tenantId: runtime.world.tenantId } };
  }
  if (type !== "userassigned") {
    return { error: invalidRequestContent(`The request content was invalid: identity type '${value.type}' is not one of None, SystemAssigned, UserAssigned.`) };
  }
  const requested = value.userAssignedIdentities;
  const ids = isRecord(requested) ? Object.keys(requested).filter((id) => requested[id] !== null) : [];
  if (ids.length !== 1) {
    return {
      error: armError(
        400,
        "InvalidUserAssignedIdentities",
        `Identity type 'UserAssigned' requires exactly one user-assigned identity in 'userAssignedIdentities'; ${ids.length} were given.`,
      ),
    };
  }
  const uamiId = ids[0] as string;
  const uami = runtime.world.identities.get(idKey(uamiId));
  if (!uami) {
    return {
      error: armError(
        400,
        "FailedIdentityOperation",
        `Identity operation for resource failed: the user-assigned identity '${uamiId}' was not found.`,
      ),
    };
  }
  return { identity: { type: "UserAssigned", userAssignedIdentities: { [uamiId]: { principalId: uami.principalId, clientId: uami.clientId } } } };
}
