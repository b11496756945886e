export type Role = "reader" | "operator" | "admin";

/** A capability beside the ordered roles (api-contract v1.1 "Roles"): deciding on changes that wait for approval. */
export type Capability = "approver";

/** What a credential may hold: the ordered roles, and `approver`. */
export type Grant = Role | Capability;

/** Each role includes the ones before it. */
export const ROLE_RANK: Record<Role, number> = { reader: 1, operator: 2, admin: 3 };

export interface Principal {
  /**
   * Who this is, independent of display names: `apiKey:<entry name>` or `token:<client id or object id>`.
   * Four-eyes approval compares these (a token's display name can be anything).
   */
  id: string;
  /** API key name or token subject; recorded as `createdBy` and in the audit trail. */
  name: string;
  kind: "apiKey" | "token";
  /** Undefined for a token that carries none of the service's app roles (403, not 401). */
  role: Role | undefined;
  /** May approve and reject changes that wait for approval (`approver`, or admin). */
  approver: boolean;
  /** Lower-case subscription ids this credential may act on; undefined: every subscription. */
  subscriptions?: readonly string[];
}

export function highestRole(roles: readonly Role[]): Role | undefined {
  return roles.reduce<Role | undefined>((best, role) => (best === undefined || ROLE_RANK[role] > ROLE_RANK[best] ? role : best), undefined);
}

/**
 * The role and capability a set of grants gives. Admin includes approver. An approver without an ordered
 * role may read (GET, validations): judging a change means reading its job; it writes nothing else.
 */
export function resolveGrants(grants: readonly Grant[]): { role: Role | undefined; approver: boolean } {
  const approver = grants.includes("approver") || grants.includes("admin");
  const role = highestRole(grants.filter((grant): grant is Role => grant !== "approver")) ?? (approver ? "reader" : undefined);
  return { role, approver };
}

export function hasRole(principal: Principal, required: Role): boolean {
  return principal.role !== undefined && ROLE_RANK[principal.role] >= ROLE_RANK[required];
}

/** Whether `principal` holds `required`, a role or the approver capability. */
export function hasGrant(principal: Principal, required: Grant): boolean {
  return required === "approver" ? principal.approver : hasRole(principal, required);
}

export function maySubscription(principal: Principal, subscriptionId: string): boolean {
  return principal.subscriptions === undefined || principal.subscriptions.includes(subscriptionId.toLowerCase());
}
