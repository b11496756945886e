import { AuthorizationManagementClient } from "@azure/arm-authorization";
import type { RoleAssignmentFacts } from "../domain/checks/facts.js";
import type { AzureContext } from "./azure-context.js";
import { keepAnswers, perSubscription, readFact, type GatheredFact } from "./arm-facts.js";
import { createReadCache, type ReadCache } from "./read-cache.js";

export interface RoleAssignmentsAdapter {
  /**
   * Role assignments of a principal that apply at, above or below `scope` (what ARM's
   * `principalId eq` filter answers), each with its role definition's data actions.
   *
   * The principal may still be being read (the FHIR service's system identity, a user-assigned
   * identity): then every assignment at the scope is listed at once, for all principals, and the
   * principal's are picked out when it is known, so reading the principal does not hold the list back
   * by a round trip. A principal that turns out not to exist gives `missing`; a plain `undefined` lists
   * nothing.
   */
  forPrincipal(subscriptionId: string, scope: string, principalId: string | undefined | PromiseLike<string | undefined>): Promise<GatheredFact<RoleAssignmentFacts[]>>;
}

/** One listed assignment, before its role definition is looked up. */
interface ListedAssignment {
  id: string;
  scope: string;
  roleDefinitionId: string;
  createdOn?: Date;
}

/** Every assignment at a scope, by lower-cased principal id, so picking one principal's costs no scan. */
type AssignmentsByPrincipal = Map<string, ListedAssignment[]>;

const NO_PRINCIPAL: GatheredFact<RoleAssignmentFacts[]> = { status: "missing", detail: "no principal to look up" };

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

  /**
   * Every assignment at, above and below `scope`, for every principal: ARM's list without a `$filter`
   * (`atScope()` would leave out the resource groups, vaults and keys below a subscription; `principalId
   * eq` needs the principal first). Paged: the SDK's iterator follows `nextLink`. One cache entry per
   * scope, whichever principal asked, so concurrent pre-flights in a subscription share one list.
   */
  const listAtScope = (subscriptionId: string, scope: string): Promise<GatheredFact<AssignmentsByPrincipal>> =>
    cache.read(
      `roles:${subscriptionId}:${scope}`.toLowerCase(),
      () =>
        readFact(async () => {
          const byPrincipal: AssignmentsByPrincipal = new Map();
          // The SDK's URL template is "/{scope}/providers/...": the scope goes in without its leading slash.
          for await (const assignment of client(subscriptionId).roleAssignments.listForScope(scope.replace(/^\/+/, ""))) {
            if (!assignment.roleDefinitionId || !assignment.principalId) continue;
            const principal = assignment.principalId.toLowerCase();
            const listed: ListedAssignment = {
              id: assignment.id ?? "",
              scope: assignment.scope ?? scope,
              roleDefinitionId: assignment.roleDefinitionId,
              ...(assignment.createdOn ? { createdOn: assignment.createdOn } : {}),
            };
            const mine = byPrincipal.get(principal);
            if (mine) mine.push(listed);
            else byPrincipal.set(principal, [listed]);
          }
          return byPrincipal;
        }),
      keepAnswers,
    );

  /** The principal's assignments with their role definitions, looked up together (one round at most). */
  const withDefinitions = (subscriptionId: string, assignments: ListedAssignment[]): Promise<GatheredFact<RoleAssignmentFacts[]>> =>
    readFact(() =>
      Promise.all(
        assignments.map(async ({ createdOn, ...assignment }) => ({
          ...assignment,
          ...(await definition(subscriptionId, assignment.roleDefinitionId)),
          ...(createdOn ? { createdOn } : {}),
        })),
      ),
    );

  return {
    async forPrincipal(subscriptionId, scope, principal) {
      if (principal === undefined) return NO_PRINCIPAL;
      const listed = listAtScope(subscriptionId, scope);
      const principalId = await principal;
      if (!principalId) return NO_PRINCIPAL;
      const all = await listed;
      if (all.status !== "found") return all;
      return withDefinitions(subscriptionId, all.value.get(principalId.toLowerCase()) ?? []);
    },
  };
}
