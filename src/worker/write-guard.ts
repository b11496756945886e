import type { AzureAdapters } from "../azure/adapters.js";

/**
 * Adapter methods that only read. Every other method of the Azure adapters counts as a write and is
 * guarded, so a write method added later is guarded without anyone remembering to.
 */
const READ_METHODS: Record<string, ReadonlySet<string>> = {
  fhirServices: new Set(["get", "read", "workspace", "waitUntilSettled", "follow", "followPaced"]),
  keyVault: new Set(["keyFacts", "latestVersionUrl", "keyVersions", "deletedKey"]),
  vaults: new Set(["vaultFacts"]),
  managedHsms: new Set(["managedHsmFacts", "localRoleAssignments"]),
  identities: new Set(["userAssignedIdentity"]),
  roleAssignments: new Set(["forPrincipal", "allAtScope"]),
  discovery: new Set(["subscriptions", "workspaces", "fhirServices"]),
  fhirDataPlane: new Set(["metadataStatus"]),
};

/**
 * The adapters with `beforeWrite` run (and awaited) before any write method is called: every Azure write
 * first checks, atomically, that the job was not canceled (job-store/cancel.ts).
 */
export function guardAzureWrites<T extends AzureAdapters>(deps: T, beforeWrite: () => Promise<void>): T {
  const guarded: Record<string, unknown> = { ...(deps as object) };
  for (const [name, adapter] of Object.entries(deps)) {
    if (typeof adapter !== "object" || adapter === null || name === "cloud" || name === "armPacing") continue;
    const reads = READ_METHODS[name] ?? new Set<string>();
    guarded[name] = new Proxy(adapter as object, {
      get(target, property, receiver) {
        const value: unknown = Reflect.get(target, property, receiver);
        if (typeof value !== "function" || typeof property !== "string" || reads.has(property)) return value;
        return async (...args: unknown[]) => {
          await beforeWrite();
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
  }
  return guarded as T;
}
