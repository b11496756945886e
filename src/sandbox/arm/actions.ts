/** What ARM's RBAC check asks of a request: the action its path and method name, or none. */

/** Path forms of ARM's own `Microsoft.Resources` operations that have no `/providers/` segment. */
const RESOURCE_MANAGER_TYPES: readonly [RegExp, string][] = [
  [/^\/subscriptions\/[^/]+$/i, "Microsoft.Resources/subscriptions"],
  [/^\/subscriptions\/[^/]+\/resources$/i, "Microsoft.Resources/subscriptions/resources"],
  [/^\/subscriptions\/[^/]+\/resourcegroups(?:\/[^/]+)?$/i, "Microsoft.Resources/subscriptions/resourceGroups"],
  [/^\/subscriptions\/[^/]+\/resourcegroups\/[^/]+\/resources$/i, "Microsoft.Resources/subscriptions/resourceGroups/resources"],
  [/^\/subscriptions\/[^/]+\/providers(?:\/[^/]+)?$/i, "Microsoft.Resources/subscriptions/providers"],
];

function verbOf(method: string): string {
  return method === "GET" || method === "HEAD" ? "read" : method === "DELETE" ? "delete" : "write";
}

/**
 * The RBAC action a request needs, derived from its path the way ARM names operations:
 * `{namespace}/{type}[/{childType}]/{read|write|delete|<name>/action}`.
 */
export function requiredAction(method: string, path: string): string | undefined {
  const trimmed = path.replace(/\/+$/, "");
  const resourceManagerType = RESOURCE_MANAGER_TYPES.find(([pattern]) => pattern.test(trimmed))?.[1];
  if (resourceManagerType) return `${resourceManagerType}/${verbOf(method)}`;
  const segments = path.split("/").filter((segment) => segment !== "");
  const providersAt = segments.map((segment) => segment.toLowerCase()).lastIndexOf("providers");
  if (providersAt < 0 || providersAt + 1 >= segments.length) return undefined;
  const namespace = segments[providersAt + 1] as string;
  const types = segments.slice(providersAt + 2).filter((_, index) => index % 2 === 0);
  if (method === "POST") return [namespace, ...types, "action"].join("/");
  return [namespace, ...types, verbOf(method)].join("/");
}

/**
 * Reads ARM answers for any signed-in principal, whatever its roles: the tenant's resource providers
 * and their operations, the built-in role definitions at the root scope, the tenant and subscription
 * lists (which show only what the caller may see), and the caller's own permissions at a scope.
 */
export function isOpenRead(method: string, path: string): boolean {
  if (method !== "GET") return false;
  if (/\/providers\/microsoft\.authorization\/permissions$/i.test(path.replace(/\/+$/, ""))) return true;
  const segments = path.toLowerCase().split("/").filter((segment) => segment !== "");
  if (segments.length === 1 && (segments[0] === "tenants" || segments[0] === "subscriptions")) return true;
  if (segments[0] !== "providers") return false;
  if (segments.length <= 2 || (segments.length === 3 && segments[2] === "operations")) return true;
  return segments[1] === "microsoft.authorization" && segments[2] === "roledefinitions" && segments.length <= 4;
}
