import type { RouteParams, SandboxResponse } from "../http/types.js";
import { resourceGroupKey, type World } from "../world.js";
import { resourceGroupNotFound, subscriptionNotFound } from "./errors.js";

/** ARM's own checks before a resource provider sees a request: the subscription and resource group exist. */
export function inSubscription(subscriptionId: string | undefined): (record: { subscriptionId: string }) => boolean {
  return (record) => record.subscriptionId.toLowerCase() === subscriptionId?.toLowerCase();
}

/** A record in the resource group the route names (subscription included). */
export function inResourceGroup(params: RouteParams): (record: { subscriptionId: string; resourceGroup: string }) => boolean {
  return (record) => inSubscription(params.subscriptionId)(record) && record.resourceGroup.toLowerCase() === params.resourceGroup?.toLowerCase();
}

export function checkSubscription(world: World, subscriptionId: string | undefined): SandboxResponse | undefined {
  return world.subscriptions.has(subscriptionId?.toLowerCase() ?? "") ? undefined : subscriptionNotFound(subscriptionId ?? "");
}

export function checkResourceGroup(world: World, params: RouteParams): SandboxResponse | undefined {
  const subscriptionError = checkSubscription(world, params.subscriptionId);
  if (subscriptionError) return subscriptionError;
  const resourceGroup = params.resourceGroup ?? "";
  return world.resourceGroups.has(resourceGroupKey(params.subscriptionId ?? "", resourceGroup)) ? undefined : resourceGroupNotFound(resourceGroup);
}
