import { HealthcareApisManagementClient, type FhirService } from "@azure/arm-healthcareapis";
import type { FhirServiceRef } from "../domain/arm-ids.js";
import { isOperationInProgress, type FhirServiceResource, type ManagedIdentity } from "../domain/fhir-resource.js";
import type { AzureContext } from "./azure-context.js";
import { perSubscription, readFact, keepAnswers, type GatheredFact } from "./arm-facts.js";
import { createReadCache, type ReadCache } from "./read-cache.js";

/** A long-running ARM write, as much of it as a later attempt needs to follow it without a second PUT. */
export interface ArmOperation {
  /** The SDK poller's serialized state (`poller.toString()`), accepted by `resumeFrom`. */
  pollerState: string;
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
  const putPoller = (ref: FhirServiceRef, body: FhirServiceResource, resumeFrom?: string) =>
    client(ref.subscriptionId).fhirServices.beginCreateOrUpdate(ref.resourceGroup, ref.workspace, ref.fhirService, body as FhirService, {
      updateIntervalInMs: options.pollIntervalMs,
      ...(resumeFrom ? { resumeFrom } : {}),
    });

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
      writing(ref, async () => ({ pollerState: (await putPoller(ref, body)).toString() })),

    follow: (ref, body, operation, onPoll) =>
      writing(ref, async () => {
        const poller = await putPoller(ref, body, operation.pollerState);
        poller.onProgress(onPoll);
        return (await poller.pollUntilDone()) as FhirServiceResource;
      }),
  };
}
