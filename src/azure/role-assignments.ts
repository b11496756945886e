import { AuthorizationManagementClient, getContinuationToken, type RoleAssignment } from "@azure/arm-authorization";
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
   * identity): the assignments at the scope are then listed at once, for every principal, and the
   * principal's picked out when it is known, so reading the principal does not hold the list back by a
   * round trip. Where they do not fit in ARM's first page, the principal's are asked for with
   * `principalId eq` once it is known instead of paging through them all: one round trip more, never
   * a subscription's thousands. A principal that turns out not to exist gives `missing`; a plain
   * `undefined` lists nothing.
   */
  forPrincipal(subscriptionId: string, scope: string, principalId: string | undefined | PromiseLike<string | undefined>): Promise<GatheredFact<RoleAssignmentFacts[]>>;
  /**
   * Every role assignment at, above and below `scope` (every page), by lower-case principal id, each
   * with its role definition's data actions: a fleet rotation reads its key's vault scope once for all
   * of its services.
   */
  allAtScope(subscriptionId: string, scope: string): Promise<GatheredFact<Map<string, RoleAssignmentFacts[]>>>;
}

/** One listed assignment, before its role definition is looked up. */
interface ListedAssignment {
  id: string;
  scope: string;
  roleDefinitionId: string;
  createdOn?: Date;
}

/** Every assignment at a scope by lower-cased principal id, or `undefined` when they fill more than one page. */
interface ScopeListing {
  byPrincipal?: Map<string, ListedAssignment[]>;
}

const NO_PRINCIPAL: GatheredFact<RoleAssignmentFacts[]> = { status: "missing", detail: "no principal to look up" };

function toListed(assignment: RoleAssignment, scope: string): ListedAssignment | undefined {
  if (!assignment.roleDefinitionId || !assignment.principalId) return undefined;
  return {
    id: assignment.id ?? "",
    scope: assignment.scope ?? scope,
    roleDefinitionId: assignment.roleDefinitionId,
    ...(assignment.createdOn ? { createdOn: assignment.createdOn } : {}),
  };
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
  // The SDK's URL template is "/{scope}/providers/...": the scope goes in without its leading slash.
  const relative = (scope: string) => scope.replace(/^\/+/, "");

  /**
   * The first page of every assignment at, above and below `scope`, for every principal: ARM's list
   * without a `$filter` (`atScope()` would leave out the resource groups, vaults and keys below a
   * subscription; `principalId eq` needs the principal first). One cache entry per scope, whichever
   * principal asked, so concurrent pre-flights in a subscription share one request.
   */
  const listAtScope = (subscriptionId: string, scope: string): Promise<GatheredFact<ScopeListing>> =>
    cache.read(
      `roles:${subscriptionId}:${scope}`.toLowerCase(),
      () =>
        readFact(async (): Promise<ScopeListing> => {
          const first = await client(subscriptionId).roleAssignments.listForScope(relative(scope)).byPage().next();
          const page: RoleAssignment[] = first.done ? [] : first.value;
          if (getContinuationToken(page)) return {};
          const byPrincipal = new Map<string, ListedAssignment[]>();
          for (const assignment of page) {
            const entry = toListed(assignment, scope);
            if (!entry) continue;
            const principal = assignment.principalId!.toLowerCase();
            const mine = byPrincipal.get(principal);
            if (mine) mine.push(entry);
            else byPrincipal.set(principal, [entry]);
          }
          return { byPrincipal };
        }),
      keepAnswers,
    );

  /** ARM's exact filter for one principal, every page followed. */
  const listForPrincipal = (subscriptionId: string, scope: string, principalId: string): Promise<GatheredFact<ListedAssignment[]>> =>
    cache.read(
      `roles:${subscriptionId}:${scope}:${principalId}`.toLowerCase(),
      () =>
        readFact(async () => {
          const assignments: ListedAssignment[] = [];
          for await (const assignment of client(subscriptionId).roleAssignments.listForScope(relative(scope), { filter: `principalId eq '${principalId}'` })) {
            const entry = assignment.principalId?.toLowerCase() === principalId.toLowerCase() ? toListed(assignment, scope) : undefined;
            if (entry) assignments.push(entry);
          }
          return assignments;
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
    allAtScope: (subscriptionId, scope) =>
      readFact(async () => {
        const byPrincipal = new Map<string, ListedAssignment[]>();
        for await (const assignment of client(subscriptionId).roleAssignments.listForScope(relative(scope))) {
          const entry = toListed(assignment, scope);
          if (!entry) continue;
          const principal = assignment.principalId!.toLowerCase();
          byPrincipal.set(principal, [...(byPrincipal.get(principal) ?? []), entry]);
        }
        const resolved = new Map<string, RoleAssignmentFacts[]>();
        for (const [principal, assignments] of byPrincipal) {
          const facts = await withDefinitions(subscriptionId, assignments);
          if (facts.status !== "found") throw new Error(`role definitions of ${principal}: ${facts.status === "unreadable" ? facts.reason : "missing"}`);
          resolved.set(principal, facts.value);
        }
        return resolved;
      }),

    async forPrincipal(subscriptionId, scope, principal) {
      if (principal === undefined) return NO_PRINCIPAL;
      const listing = listAtScope(subscriptionId, scope);
      const principalId = await principal;
      if (!principalId) return NO_PRINCIPAL;
      const all = await listing;
      if (all.status !== "found") return all;
      if (all.value.byPrincipal) return withDefinitions(subscriptionId, all.value.byPrincipal.get(principalId.toLowerCase()) ?? []);
      const mine = await listForPrincipal(subscriptionId, scope, principalId);
      return mine.status === "found" ? withDefinitions(subscriptionId, mine.value) : mine;
    },
  };
}
