import type { DiscoveryAdapter } from "../../azure/discovery.js";
import { missingAuthorization, refusalReason } from "../../azure/azure-errors.js";
import type { FleetService } from "../../domain/fleet-plan.js";
import type { NotListedSubscription } from "../../schemas/jobs.js";

/** What listing found, for a step's message. */
export interface DiscoveryTally {
  subscriptions: number;
  /** Subscriptions listed so far. */
  done: number;
  workspaces: number;
  listed: number;
  /** Services `keep` kept. */
  kept: number;
  /** Subscriptions the identity may not list (or that do not exist): why, and what to grant. */
  notListed: NotListedSubscription[];
}

/**
 * A subscription whose workspaces could not be listed (403 or 404): the permission and scope ARM names,
 * and the fix. ARM answers 404 for a subscription the identity holds no role in.
 */
export function notListed(subscriptionId: string, error: unknown): NotListedSubscription {
  const { statusCode, message } = (error ?? {}) as { statusCode?: number; message?: string };
  const action = statusCode === 403 ? missingAuthorization(message)?.action : undefined;
  const scope = `/subscriptions/${subscriptionId}`;
  const role = "the role in deploy/cmk-service-role.json (or deploy/cmk-service-reader-role.json for scans only)";
  const assign = `az role assignment create --assignee-object-id <service principal> --role "CMK Service Operator" --scope ${scope}`;
  return {
    subscriptionId,
    reason: refusalReason(error),
    remediation:
      statusCode === 404
        ? `Check the subscription id, and that the service's identity holds ${role} at ${scope}.`
        : action
          ? `Give the service's identity '${action}' at ${scope}: assign it ${role} there (${assign}).`
          : `Assign the service's identity ${role} at ${scope} (${assign}).`,
  };
}

/** The step message's part about subscriptions not listed, empty when every one was. */
export function describeNotListed(tally: Pick<DiscoveryTally, "notListed">): string {
  return tally.notListed.length ? `; not listed: ${tally.notListed.map((entry) => `${entry.subscriptionId}: ${entry.reason}`).join("; ")}` : "";
}

/**
 * Every FHIR service of the subscriptions, by ARM's list calls (workspaces of each subscription, the FHIR
 * services of each workspace, every page followed; each request paced by the ARM budget policy). `keep`
 * picks the services to return (all by default); `progress` hears after each workspace. A subscription the
 * service may not list (403) or that does not exist (404) is named in the tally, not fatal.
 */
export async function discoverServices(
  discovery: Pick<DiscoveryAdapter, "workspaces" | "fhirServices">,
  subscriptions: readonly string[],
  options: { keep?: (service: FleetService) => boolean; progress?: (fraction: number, tally: DiscoveryTally) => Promise<void> } = {},
): Promise<{ services: FleetService[]; tally: DiscoveryTally }> {
  const services: FleetService[] = [];
  const tally: DiscoveryTally = { subscriptions: subscriptions.length, done: 0, workspaces: 0, listed: 0, kept: 0, notListed: [] };
  for (const [index, subscriptionId] of subscriptions.entries()) {
    tally.done = index;
    let found;
    try {
      found = await discovery.workspaces(subscriptionId);
    } catch (error) {
      const status = (error as { statusCode?: number }).statusCode;
      if (status !== 403 && status !== 404) throw error;
      tally.notListed.push(notListed(subscriptionId, error));
      continue;
    }
    for (const [w, workspace] of found.entries()) {
      const listed = await discovery.fhirServices(workspace);
      tally.workspaces += 1;
      tally.listed += listed.length;
      const kept = options.keep ? listed.filter(options.keep) : listed;
      tally.kept += kept.length;
      services.push(...kept);
      await options.progress?.((index + (w + 1) / found.length) / Math.max(1, subscriptions.length), tally);
    }
  }
  tally.done = subscriptions.length;
  return { services, tally };
}
