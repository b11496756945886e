import type { Caller } from "../caller.js";
import { json } from "../http/responses.js";
import type { SandboxResponse } from "../http/types.js";
import type { VaultRecord } from "../world.js";

/** Key Vault error bodies: `{"error":{"code","message","innererror"?:{"code"}}}` (azure-contracts.md 3.5). */

export function kvError(status: number, code: string, message: string, innerCode?: string, headers: Record<string, string> = {}): SandboxResponse {
  const error: Record<string, unknown> = { code, message };
  if (innerCode) error.innererror = { code: innerCode };
  return json(status, { error }, headers);
}

export function keyNotFound(name: string, version?: string): SandboxResponse {
  return kvError(
    404,
    "KeyNotFound",
    `A key with (name/id) ${version ? `${name}/${version}` : name} was not found in this key vault. If you recently deleted this key you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`,
  );
}

export function deletedKeyNotFound(name: string): SandboxResponse {
  return kvError(404, "KeyNotFound", `Deleted Key not found: ${name}`);
}

export function badParameter(message: string): SandboxResponse {
  return kvError(400, "BadParameter", message);
}

export function defaultKeyVaultErrorCode(status: number): string {
  const codes: Record<number, string> = {
    400: "BadParameter",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    429: "Throttled",
    500: "InternalServerError",
    503: "ServiceUnavailable",
  };
  return codes[status] ?? (status >= 500 ? "InternalServerError" : "BadParameter");
}

export function callerLabel(caller: Caller): string {
  return `appid=${caller.appId};oid=${caller.objectId};iss=${caller.issuer}`;
}

/** 403 ForbiddenByRbac as Key Vault words it; a Managed HSM's wording is taken to be the same (unrecorded). */
export function forbiddenByRbac(caller: Caller, vault: VaultRecord, action: string, scope: string): SandboxResponse {
  return kvError(
    403,
    "Forbidden",
    `Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: ${callerLabel(caller)}\r\nAction: '${action}'\r\nResource: '${scope.toLowerCase()}'\r\nAssignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: null \r\nVault: ${vault.name};location=${vault.location}\r\n`,
    "ForbiddenByRbac",
  );
}

/** Sent with every answer RBAC allowed. */
export const RBAC_CACHE_HEADER = { "x-ms-keyvault-rbac-cache": "ra_age=10;da_age=10;rd_age=10;brd_age=10;ra_notif_age=10;dec_lev=1;" };
