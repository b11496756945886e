const SUBSCRIPTION_OF_ARM_ID = /^\/subscriptions\/([^/]+)\//i;

function subscriptionOf(armId: unknown): string | undefined {
  return typeof armId === "string" ? SUBSCRIPTION_OF_ARM_ID.exec(armId)?.[1] : undefined;
}

function field(container: unknown, name: string): unknown {
  return typeof container === "object" && container !== null ? (container as Record<string, unknown>)[name] : undefined;
}

/**
 * The subscriptions a (validated) request acts on or reads: every ARM id it names — the body's
 * `fhirServiceId` and `identity.userAssignedIdentityId`, the query's `fhirServiceId` — and a
 * `subscriptionId` path parameter, and a fleet rotation's `subscriptions`. Checked against the credential's allow-list before anything is read
 * from Azure, so a scoped caller cannot make the service look into another subscription. (A key URL names
 * a vault, not a subscription: pre-flight looks for the vault in these subscriptions only.)
 */
export function requestedSubscriptions(request: { body?: unknown; query?: unknown; params?: unknown }): string[] {
  const found = [
    subscriptionOf(field(request.body, "fhirServiceId")),
    subscriptionOf(field(field(request.body, "identity"), "userAssignedIdentityId")),
    subscriptionOf(field(request.query, "fhirServiceId")),
  ];
  // A fleet rotation names the subscriptions it may look in.
  const listed = field(request.body, "subscriptions");
  if (Array.isArray(listed)) found.push(...listed.filter((id): id is string => typeof id === "string"));
  const pathSubscription = field(request.params, "subscriptionId");
  if (typeof pathSubscription === "string") found.push(pathSubscription);
  return [...new Set(found.filter((id): id is string => id !== undefined).map((id) => id.toLowerCase()))];
}

/** The subscription of an ARM id, lower-case (for filtering records by allow-list). */
export function subscriptionOfArmId(armId: string | undefined): string | undefined {
  return subscriptionOf(armId)?.toLowerCase();
}
