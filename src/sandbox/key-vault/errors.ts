import { json } from "../http/responses.js";
import type { SandboxResponse } from "../http/types.js";

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
