import { HealthcareApisManagementClient } from "@azure/arm-healthcareapis";
import { SubscriptionClient } from "@azure/arm-resources-subscriptions";
import type { FleetService } from "../domain/fleet-plan.js";
import type { AzureContext } from "./azure-context.js";
import { perSubscription } from "./arm-facts.js";

export interface WorkspaceRef {
  subscriptionId: string;
  resourceGroup: string;
  workspace: string;
}

/** Finding FHIR services by list calls (every page followed): what a fleet rotation starts from. */
export interface DiscoveryAdapter {
  /** Every subscription the service's identity can list. */
  subscriptions(): Promise<string[]>;
  /** The Health Data Services workspaces of a subscription. */
  workspaces(subscriptionId: string): Promise<WorkspaceRef[]>;
  /** The FHIR services of a workspace, with the key each uses and its user-assigned identities. */
  fhirServices(workspace: WorkspaceRef): Promise<FleetService[]>;
}

const WORKSPACE_ID = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.HealthcareApis\/workspaces\/([^/]+)$/i;

/** Workspaces and FHIR services through `@azure/arm-healthcareapis`, subscriptions through `@azure/arm-resources-subscriptions`. */
export function createDiscoveryAdapter(context: AzureContext): DiscoveryAdapter {
  const healthcare = perSubscription(
    (subscriptionId) => new HealthcareApisManagementClient(context.credential, subscriptionId, { ...context.clientOptions, endpoint: context.cloud.resourceManager }),
  );
  let subscriptionClient: SubscriptionClient | undefined;
  return {
    async subscriptions() {
      subscriptionClient ??= new SubscriptionClient(context.credential, { ...context.clientOptions, endpoint: context.cloud.resourceManager });
      const found: string[] = [];
      for await (const subscription of subscriptionClient.subscriptions.list()) {
        if (subscription.subscriptionId && (subscription.state ?? "Enabled") === "Enabled") found.push(subscription.subscriptionId);
      }
      return found;
    },
    async workspaces(subscriptionId) {
      const found: WorkspaceRef[] = [];
      for await (const workspace of healthcare(subscriptionId).workspaces.listBySubscription()) {
        const match = WORKSPACE_ID.exec(workspace.id ?? "");
        if (match) found.push({ subscriptionId: match[1]!, resourceGroup: match[2]!, workspace: match[3]! });
      }
      return found;
    },
    async fhirServices(workspace) {
      const found: FleetService[] = [];
      for await (const service of healthcare(workspace.subscriptionId).fhirServices.listByWorkspace(workspace.resourceGroup, workspace.workspace)) {
        if (!service.id) continue;
        const keyEncryptionKeyUrl = service.encryption?.customerManagedKeyEncryption?.keyEncryptionKeyUrl;
        const userAssigned = Object.keys(service.identity?.userAssignedIdentities ?? {});
        found.push({
          id: service.id,
          ...(keyEncryptionKeyUrl ? { keyEncryptionKeyUrl } : {}),
          ...(userAssigned.length ? { userAssignedIdentityIds: userAssigned } : {}),
          ...(service.location ? { location: service.location } : {}),
          ...(service.identity?.type ? { identityType: service.identity.type } : {}),
          ...(service.identity?.principalId ? { principalId: service.identity.principalId } : {}),
        });
      }
      return found;
    },
  };
}

/**
 * The subscriptions a fleet rotation, compliance scan or self-check covers: the ones asked for, else CMK_SUBSCRIPTIONS,
 * else every subscription the service can list; within `scope` (the caller's allow-list fixed with the job)
 * when there is one. Lower case, each once.
 */
export async function coveredSubscriptions(
  discovery: Pick<DiscoveryAdapter, "subscriptions">,
  requested: readonly string[] | undefined,
  configured: readonly string[] | undefined,
  scope: readonly string[] | undefined,
): Promise<string[]> {
  const allowed = scope?.map((id) => id.toLowerCase());
  const base = (requested ?? configured ?? (await discovery.subscriptions())).map((id) => id.toLowerCase());
  return [...new Set(allowed ? base.filter((id) => allowed.includes(id)) : base)];
}
