export type Role = "reader" | "operator" | "admin";

/** Each role includes the ones before it. */
export const ROLE_RANK: Record<Role, number> = { reader: 1, operator: 2, admin: 3 };

export interface Principal {
  /** API key name or token subject; recorded as `createdBy` and in the audit trail. */
  name: string;
  kind: "apiKey" | "token";
  /** Undefined for a token that carries none of the service's app roles (403, not 401). */
  role: Role | undefined;
  /** Lower-case subscription ids this credential may act on; undefined: every subscription. */
  subscriptions?: readonly string[];
}

export function highestRole(roles: readonly Role[]): Role | undefined {
  return roles.reduce<Role | undefined>((best, role) => (best === undefined || ROLE_RANK[role] > ROLE_RANK[best] ? role : best), undefined);
}

export function hasRole(principal: Principal, required: Role): boolean {
  return principal.role !== undefined && ROLE_RANK[principal.role] >= ROLE_RANK[required];
}

export function maySubscription(principal: Principal, subscriptionId: string): boolean {
  return principal.subscriptions === undefined || principal.subscriptions.includes(subscriptionId.toLowerCase());
}
