import type { Caller } from "../caller.js";
import type { SandboxRequest } from "../http/types.js";

/** An authenticated ARM request. */
export interface ArmRequest extends SandboxRequest {
  caller: Caller;
  apiVersion: string;
  /** Origin for URLs ARM returns: the production name when the caller used it, else the emulator's address. */
  armOrigin: string;
}

export const ARM_HOST = "management.azure.com";

export function armOrigin(request: SandboxRequest): string {
  return request.host === ARM_HOST ? `https://${ARM_HOST}` : request.origin;
}
