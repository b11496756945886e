import { HealthcareApisManagementClient, type FhirService } from "@azure/arm-healthcareapis";
import type { FhirServiceRef } from "../domain/arm-ids.js";
import { isOperationInProgress, type FhirServiceResource, type ManagedIdentity } from "../domain/fhir-resource.js";
import type { AzureContext } from "./azure-context.js";
import { perSubscription, readFact, type GatheredFact } from "./arm-facts.js";

/** A long-running ARM write, as much of it as a later attempt needs to follow it without a second PUT. */
export interface ArmOperation {
  /** The SDK poller's serialized state (`poller.toString()`), accepted by `resumeFrom`. */
  pollerState: string;
}

export interface FhirServicesAdapter {
  /** The resource, or undefined when ARM answers 404. */
  get(ref: FhirServiceRef): Promise<FhirServiceResource | undefined>;
  /** The workspace a FHIR service belongs to, as a pre-flight fact. */
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
export function createFhirServicesAdapter(context: AzureContext, options: { pollIntervalMs: number }): FhirServicesAdapter {
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

  return {
    get,

    workspace: (ref) =>
      readFact(async () => {
        const workspace = await client(ref.subscriptionId).workspaces.get(ref.resourceGroup, ref.workspace);
        return { location: workspace.location ?? "" };
      }),

    async updateIdentity(ref, identity) {
      // Note the SDK's argument order for update: service name before workspace name.
      return (await client(ref.subscriptionId).fhirServices.beginUpdateAndWait(ref.resourceGroup, ref.fhirService, ref.workspace, { identity }, {
        updateIntervalInMs: options.pollIntervalMs,
      })) as FhirServiceResource;
    },

    async waitUntilSettled(ref, onPoll) {
      for (;;) {
        const resource = await get(ref);
        if (!resource || !isOperationInProgress(resource)) return resource;
        onPoll();
        await new Promise((resolve) => setTimeout(resolve, options.pollIntervalMs));
      }
    },

    async startPut(ref, body) {
      const poller = await client(ref.subscriptionId).fhirServices.beginCreateOrUpdate(
        ref.resourceGroup,
        ref.workspace,
        ref.fhirService,
        body as FhirService,
        { updateIntervalInMs: options.pollIntervalMs },
      );
      return { pollerState: poller.toString() };
    },

    async follow(ref, body, operation, onPoll) {
      const poller = await client(ref.subscriptionId).fhirServices.beginCreateOrUpdate(
        ref.resourceGroup,
        ref.workspace,
        ref.fhirService,
        body as FhirService,
        { updateIntervalInMs: options.pollIntervalMs, resumeFrom: operation.pollerState },
      );
      poller.onProgress(onPoll);
      return (await poller.pollUntilDone()) as FhirServiceResource;
    },
  };
}
