import type { RouteParams, SandboxResponse } from "../http/types.js";
import { lower, type World } from "../world.js";
import { resourceGroupNotFound, subscriptionNotFound } from "./errors.js";

/** ARM's own checks before a resource provider sees a request: the subscription and resource group exist. */
export function checkSubscription(world: World, subscriptionId: string | undefined): SandboxResponse | undefined {
  return subscriptionId?.toLowerCase() === world.subscriptionId ? undefined : subscriptionNotFound(subscriptionId ?? "");
}

export function checkResourceGroup(world: World, params: RouteParams): SandboxResponse | undefined {
  const subscriptionError = checkSubscription(world, params.subscriptionId);
  if (subscriptionError) return subscriptionError;
  const resourceGroup = params.resourceGroup ?? "";
  return world.resourceGroups.has(lower(resourceGroup)) ? undefined : resourceGroupNotFound(resourceGroup);
}
