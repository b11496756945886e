import { AuthorizationManagementClient } from "@azure/arm-authorization";
import type { RoleAssignmentFacts } from "../domain/checks/facts.js";
import type { AzureContext } from "./azure-context.js";
import { keepAnswers, perSubscription, readFact, type GatheredFact } from "./arm-facts.js";
import { createReadCache, type ReadCache } from "./read-cache.js";

export interface RoleAssignmentsAdapter {
  /**
   * Role assignments of `principalId` that apply at `scope` (inherited ones included), each with its
   * role definition's data actions.
   */
  forPrincipal(subscriptionId: string, scope: string, principalId: string): Promise<GatheredFact<RoleAssignmentFacts[]>>;
}

/** `Microsoft.Authorization` role assignments and definitions through `@azure/arm-authorization`. */
export function createRoleAssignmentsAdapter(context: AzureContext, cache: ReadCache = createReadCache(0)): RoleAssignmentsAdapter {
  const client = perSubscription(
    (subscriptionId) => new AuthorizationManagementClient(context.credential, subscriptionId, { ...context.clientOptions, endpoint: context.cloud.resourceManager }),
  );
  // Role definitions hardly ever change; one lookup per definition id per process.
  const definitions = new Map<string, Promise<{ roleName?: string; dataActions: string[]; notDataActions: string[] }>>();
  const definition = (subscriptionId: string, roleDefinitionId: string) => {
    const key = roleDefinitionId.toLowerCase();
    let cached = definitions.get(key);
    if (!cached) {
      cached = client(subscriptionId)
        .roleDefinitions.getById(roleDefinitionId)
        .then((role) => ({
          ...(role.roleName ? { roleName: role.roleName } : {}),
          dataActions: (role.permissions ?? []).flatMap((permission) => permission.dataActions ?? []),
          notDataActions: (role.permissions ?? []).flatMap((permission) => permission.notDataActions ?? []),
        }));
      cached.catch(() => definitions.delete(key));
      definitions.set(key, cached);
    }
    return cached;
  };

  return {
    forPrincipal: (subscriptionId, scope, principalId) =>
      cache.read(`roles:${subscriptionId}:${scope}:${principalId}`.toLowerCase(), () => listForPrincipal(subscriptionId, scope, principalId), keepAnswers),
  };

  function listForPrincipal(subscriptionId: string, scope: string, principalId: string): Promise<GatheredFact<RoleAssignmentFacts[]>> {
    return readFact(async () => {
        const assignments: RoleAssignmentFacts[] = [];
        // The SDK's URL template is "/{scope}/providers/...": the scope goes in without its leading slash.
        const relativeScope = scope.replace(/^\/+/, "");
        for await (const assignment of client(subscriptionId).roleAssignments.listForScope(relativeScope, { filter: `principalId eq '${principalId}'` })) {
          if (!assignment.roleDefinitionId || assignment.principalId?.toLowerCase() !== principalId.toLowerCase()) continue;
          const role = await definition(subscriptionId, assignment.roleDefinitionId);
          assignments.push({
            id: assignment.id ?? "",
            scope: assignment.scope ?? scope,
            roleDefinitionId: assignment.roleDefinitionId,
            ...role,
            ...(assignment.createdOn ? { createdOn: assignment.createdOn } : {}),
          });
        }
        return assignments;
    });
  }
}
