import { HealthcareApisManagementClient, type FhirService } from "@azure/arm-healthcareapis";
import type { FhirServiceRef } from "../domain/arm-ids.js";
import { isOperationInProgress, type FhirServiceResource, type ManagedIdentity } from "../domain/fhir-resource.js";
import type { AzureContext } from "./azure-context.js";
import { perSubscription, readFact, keepAnswers, type GatheredFact } from "./arm-facts.js";
import { retryAfterMs } from "./arm-pacing.js";
import { createReadCache, type ReadCache } from "./read-cache.js";

/** A long-running ARM write, as much of it as a later attempt needs to follow it without a second PUT. */
export interface ArmOperation {
  /** The SDK poller's serialized state (`poller.toString()`), accepted by `resumeFrom`. */
  pollerState: string;
  /** When ARM accepted the write (ms since the epoch). */
  acceptedAt?: number;
  /** The Retry-After ARM sent with the write or its first poll (ms). */
  retryAfterMs?: number;
}

export interface FhirServicesAdapter {
  /** The resource as ARM has it now, or undefined when ARM answers 404. Jobs read with this, never `read`. */
  get(ref: FhirServiceRef): Promise<FhirServiceResource | undefined>;
  /**
   * Like `get`, through the read cache (a few seconds old at most, and never older than this process's
   * own last write to it): for checks and reports, never for what a write is based on or verified with.
   */
  read(ref: FhirServiceRef): Promise<FhirServiceResource | undefined>;
  /** The workspace a FHIR service belongs to, as a pre-flight fact (cached). */
  workspace(ref: FhirServiceRef): Promise<GatheredFact<{ location: string }>>;
  /** PATCH of the identity alone (PATCH carries tags and identity only); waits until ARM is done. */
  updateIdentity(ref: FhirServiceRef, identity: ManagedIdentity): Promise<FhirServiceResource>;
  /** Sends the PUT and returns as soon as ARM has accepted it. */
  startPut(ref: FhirServiceRef, body: FhirServiceResource): Promise<ArmOperation>;
  /** Polls the resource until no operation runs on it (e.g. one an earlier attempt started); returns it. */
  waitUntilSettled(ref: FhirServiceRef, onPoll: () => void): Promise<FhirServiceResource | undefined>;
  /** Polls an accepted PUT until it is terminal; returns the final resource or throws the LRO error. */
  follow(ref: FhirServiceRef, body: FhirServiceResource, operation: ArmOperation, onPoll: () => void): Promise<FhirServiceResource>;
  /**
   * Follows an accepted PUT by reading the resource itself (ARM's Body mode), paced to spend few reads:
   * the first read when operations like it have taken (learned in this process; at first the poll
   * interval, doubling) or ARM's Retry-After, whichever is later. Done when no operation runs on it;
   * a write that did not take (provisioningState Failed) is followed through its operation for ARM's
   * error. The resource read last is the result, so verifying it needs no further read.
   */
  followPaced(ref: FhirServiceRef, body: FhirServiceResource, operation: ArmOperation, onPoll: () => void): Promise<FhirServiceResource>;
}

/**
 * How long this process's ARM updates took, from acceptance to the read that found them done: the next
 * operation's first read waits about that long: the 90th percentile of the recent ones, so nearly every
 * operation is over at its first read (a read saved is worth more than a moment waited), and one slow
 * operation does not make every later one wait.
 */
export class OperationDurations {
  private readonly recent: number[] = [];

  record(ms: number): void {
    this.recent.push(ms);
    if (this.recent.length > 25) this.recent.shift();
  }

  /** The expected duration, or undefined before any operation was seen. */
  expected(): number | undefined {
    if (this.recent.length === 0) return undefined;
    const sorted = [...this.recent].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.9))];
  }
}

/** `Microsoft.HealthcareApis/workspaces/fhirservices` through `@azure/arm-healthcareapis`. */
export function createFhirServicesAdapter(context: AzureContext, options: { pollIntervalMs: number }, cache: ReadCache = createReadCache(0)): FhirServicesAdapter {
  const client = perSubscription(
    (subscriptionId) => new HealthcareApisManagementClient(context.credential, subscriptionId, { ...context.clientOptions, endpoint: context.cloud.resourceManager }),
  );

  const get = async (ref: FhirServiceRef): Promise<FhirServiceResource | undefined> => {
    try {
      return (await client(ref.subscriptionId).fhirServices.get(ref.resourceGroup, ref.workspace, ref.fhirService)) as FhirServiceResource;
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return undefined;
      throw error;
    }
  };

  const cacheKey = (ref: FhirServiceRef) => `fhir:${ref.id.toLowerCase()}`;
  /** A write makes every cached read of the service stale. */
  const writing = <T>(ref: FhirServiceRef, write: () => Promise<T>): Promise<T> => cache.writing(cacheKey(ref), write);
  /** The PUT's poller: a new operation, or (with the state saved when ARM accepted it) the one already running. */
  const putPoller = (ref: FhirServiceRef, body: FhirServiceResource, resumeFrom?: string, onRetryAfter?: (ms: number) => void) =>
    client(ref.subscriptionId).fhirServices.beginCreateOrUpdate(ref.resourceGroup, ref.workspace, ref.fhirService, body as FhirService, {
      updateIntervalInMs: options.pollIntervalMs,
      ...(resumeFrom ? { resumeFrom } : {}),
      // Every response of the operation (the PUT, its polls): a Retry-After says when to look again.
      ...(onRetryAfter
        ? {
            onResponse: (response: { headers: { get(name: string): string | undefined } }) => {
              const wait = retryAfterMs(response.headers.get("retry-after"));
              if (wait) onRetryAfter(wait);
            },
          }
        : {}),
    });
  const durations = new OperationDurations();
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  return {
    get,

    read: (ref) => cache.read(cacheKey(ref), () => get(ref)),

    workspace: (ref) =>
      cache.read(
        `workspace:${ref.id.toLowerCase().replace(/\/fhirservices\/[^/]+$/, "")}`,
        () =>
          readFact(async () => {
            const workspace = await client(ref.subscriptionId).workspaces.get(ref.resourceGroup, ref.workspace);
            return { location: workspace.location ?? "" };
          }),
        keepAnswers,
      ),

    updateIdentity: (ref, identity) =>
      writing(ref, async () => {
        // Note the SDK's argument order for update: service name before workspace name.
        return (await client(ref.subscriptionId).fhirServices.beginUpdateAndWait(ref.resourceGroup, ref.fhirService, ref.workspace, { identity }, {
          updateIntervalInMs: options.pollIntervalMs,
        })) as FhirServiceResource;
      }),

    async waitUntilSettled(ref, onPoll) {
      for (;;) {
        const resource = await get(ref);
        if (!resource || !isOperationInProgress(resource)) return resource;
        onPoll();
        await new Promise((resolve) => setTimeout(resolve, options.pollIntervalMs));
      }
    },

    startPut: (ref, body) =>
      writing(ref, async () => {
        let retryAfter: number | undefined;
        const acceptedAt = Date.now();
        const poller = await putPoller(ref, body, undefined, (ms) => (retryAfter = ms));
        return { pollerState: poller.toString(), acceptedAt, ...(retryAfter ? { retryAfterMs: retryAfter } : {}) };
      }),

    followPaced: (ref, body, operation, onPoll) =>
      writing(ref, async () => {
        const acceptedAt = operation.acceptedAt ?? Date.now();
        let delay = Math.max(options.pollIntervalMs, operation.retryAfterMs ?? 0, (durations.expected() ?? 0) - (Date.now() - acceptedAt));
        for (;;) {
          await sleep(delay);
          const resource = await get(ref);
          onPoll();
          if (!resource) throw Object.assign(new Error(`FHIR service ${ref.fhirService} disappeared during the update`), { statusCode: 404 });
          if (!isOperationInProgress(resource)) {
            if (resource.provisioningState !== "Succeeded") break;
            durations.record(Date.now() - acceptedAt);
            return resource;
          }
          // Not done yet: look again after half the time it has run so far, at least the poll interval.
          delay = Math.max(options.pollIntervalMs, Math.min(60_000, (Date.now() - acceptedAt) / 2));
        }
        // The write did not take: its operation says why (the poller throws ARM's error).
        const poller = await putPoller(ref, body, operation.pollerState);
        poller.onProgress(onPoll);
        return (await poller.pollUntilDone()) as FhirServiceResource;
      }),

    follow: (ref, body, operation, onPoll) =>
      writing(ref, async () => {
        const poller = await putPoller(ref, body, operation.pollerState);
        poller.onProgress(onPoll);
        return (await poller.pollUntilDone()) as FhirServiceResource;
      }),
  };
}
