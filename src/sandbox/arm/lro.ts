import type { SandboxRequest } from "../http/types.js";
import { armTime, newOperationId } from "../ids.js";
import type { SandboxRuntime } from "../runtime.js";
import { idKey, type OperationError, type OperationRecord, type World } from "../world.js";

/**
 * Bookkeeping for emulated ARM async operations (azure-contracts.md 1.9). An operation runs for the
 * sandbox's LRO duration; it is settled lazily, at the start of every request, so there are no timers
 * to clean up and a GET always sees a consistent world.
 */

export interface OperationStart {
  subscriptionId: string;
  location: string;
  resourceId: string;
  method: OperationRecord["method"];
  apply: OperationRecord["apply"];
  rollback: OperationRecord["rollback"];
  injectedError?: OperationError;
}

export function startOperation(runtime: SandboxRuntime, start: OperationStart, now = runtime.clock.now()): OperationRecord {
  const operation: OperationRecord = {
    id: newOperationId(),
    subscriptionId: start.subscriptionId,
    location: start.location,
    resourceId: start.resourceId,
    method: start.method,
    startedAt: now,
    startTime: armTime(now),
    durationMs: runtime.lroMs(),
    status: "Running",
    apply: start.apply,
    rollback: start.rollback,
  };
  if (start.injectedError) operation.injectedError = start.injectedError;
  runtime.world.operations.set(operation.id, operation);
  return operation;
}

/** The operation still running on a resource, if any: a second write must wait for it. */
export function runningOperationOn(world: World, resourceId: string): OperationRecord | undefined {
  const key = idKey(resourceId);
  for (const operation of world.operations.values()) {
    if (operation.status === "Running" && idKey(operation.resourceId) === key) return operation;
  }
  return undefined;
}

/** Completes every operation whose time is up (`now`: the emulator clock), in start order. */
export function settleOperations(world: World, now: number): void {
  for (const operation of world.operations.values()) {
    if (operation.status !== "Running" || now < operation.startedAt + operation.durationMs) continue;
    const error = operation.injectedError ?? operation.apply();
    if (error) {
      operation.rollback(error);
      operation.status = "Failed";
      operation.error = error;
    } else {
      operation.status = "Succeeded";
    }
    operation.endedAt = now;
  }
}

/** Subscription-scoped operation URL, as HealthcareApis returns it (no resource group, no resource path). */
export function operationPath(operation: OperationRecord, provider = "Microsoft.HealthcareApis"): string {
  return `/subscriptions/${operation.subscriptionId}/providers/${provider}/locations/${operation.location}/operationresults/${operation.id}`;
}

/** `Azure-AsyncOperation` (and, for DELETE, `Location`) headers pointing at `origin`. */
export function asyncOperationHeaders(origin: string, operation: OperationRecord, apiVersion: string, withLocation: boolean): Record<string, string> {
  const url = `${origin}${operationPath(operation)}?api-version=${encodeURIComponent(apiVersion)}`;
  const headers: Record<string, string> = { "Azure-AsyncOperation": url };
  if (withLocation) headers.Location = `${url}&operationResultResponseType=Location`;
  return headers;
}

/**
 * The poll body. Real traffic shows only `{id,name,status,startTime}`, without `endTime` even when
 * terminal; a Failed body is unconfirmed (azure-contracts.md 12.4), so it follows ARM convention and
 * adds `error{code,message}`, which is what @azure/core-lro reads.
 */
export function operationStatusBody(operation: OperationRecord): Record<string, unknown> {
  const body: Record<string, unknown> = {
    id: operationPath(operation),
    name: operation.id,
    status: operation.status,
    startTime: operation.startTime,
  };
  if (operation.error) body.error = { ...operation.error };
  return body;
}

/** The error an `outcome` fault rule (status < 400) injects into the operation this request starts or polls. */
export function injectedFailure(runtime: SandboxRuntime, request: SandboxRequest): OperationError | undefined {
  const rule = runtime.faults.fire("arm", request, "outcome");
  if (!rule) return undefined;
  return { code: rule.errorCode ?? "InternalServerError", message: "The operation failed because of a fault injected by the sandbox." };
}
