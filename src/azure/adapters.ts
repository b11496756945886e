import type { AzureCloud } from "./cloud.js";
import type { AzureContext } from "./azure-context.js";
import { createFhirServicesAdapter, type FhirServicesAdapter } from "./fhir-services.js";
import { createFhirDataPlaneAdapter, type FhirDataPlaneAdapter } from "./fhir-data-plane.js";
import { createIdentitiesAdapter, type IdentitiesAdapter } from "./identities.js";
import { createKeyVaultAdapter, type KeyVaultAdapter } from "./key-vault.js";
import { createManagedHsmsAdapter, type ManagedHsmsAdapter } from "./managed-hsms.js";
import { createRoleAssignmentsAdapter, type RoleAssignmentsAdapter } from "./role-assignments.js";
import { createVaultsAdapter, type VaultsAdapter } from "./vaults.js";
import { createReadCache } from "./read-cache.js";
import { ArmPacing, armPacingPolicy } from "./arm-pacing.js";
import { createDiscoveryAdapter, type DiscoveryAdapter } from "./discovery.js";
import { createPermissionsAdapter, type PermissionsAdapter } from "./permissions.js";

export interface SignInStatus {
  ok: boolean;
  /** The member that gave the token; on failure the credential as configured. Absent for a bare credential. */
  credential?: string;
  /** Why no token came. */
  error?: string;
}

/** Every Azure service the API and the worker talk to, built from one context. */
export interface AzureAdapters {
  cloud: AzureCloud;
  fhirServices: FhirServicesAdapter;
  keyVault: KeyVaultAdapter;
  vaults: VaultsAdapter;
  managedHsms: ManagedHsmsAdapter;
  identities: IdentitiesAdapter;
  roleAssignments: RoleAssignmentsAdapter;
  fhirDataPlane: FhirDataPlaneAdapter;
  discovery: DiscoveryAdapter;
  /** What the service's own identity may do (the self-check). */
  permissions: PermissionsAdapter;
  /** The pacing of every ARM request these adapters send (a budget is bound where a job store exists). */
  armPacing: ArmPacing;
  /**
   * Whether the service's credential can get an ARM token now (readiness in azure mode), the credential
   * that gave it, or why none came (one line, no secret).
   */
  signInStatus(timeoutMs: number): Promise<SignInStatus>;
}

/** `readCacheMs`: how long facts read for checks and reports are kept (CMK_READ_CACHE_MS; 0, the default here: not kept). */
export function createAzureAdapters(base: AzureContext, options: { pollIntervalMs: number; readCacheMs?: number }): AzureAdapters {
  // One cache for the process, so the API and an in-process worker see each other's writes at once.
  const cache = createReadCache(options.readCacheMs ?? 0);
  // Every SDK client gets the pacing policy; it acts on ARM's host only.
  const armPacing = new ArmPacing();
  const policy = { policy: armPacingPolicy(armPacing, new URL(base.cloud.resourceManager).host), position: "perRetry" as const };
  const context: AzureContext = { ...base, clientOptions: { ...base.clientOptions, additionalPolicies: [...(base.clientOptions.additionalPolicies ?? []), policy] } };
  return {
    armPacing,
    discovery: createDiscoveryAdapter(context),
    permissions: createPermissionsAdapter(context),
    cloud: context.cloud,
    fhirServices: createFhirServicesAdapter(context, options, cache),
    keyVault: createKeyVaultAdapter(context, cache),
    vaults: createVaultsAdapter(context, cache),
    managedHsms: createManagedHsmsAdapter(context, cache),
    identities: createIdentitiesAdapter(context, cache),
    roleAssignments: createRoleAssignmentsAdapter(context, cache),
    fhirDataPlane: createFhirDataPlaneAdapter(context),
    async signInStatus(timeoutMs) {
      // The credential caches tokens, so a ready service answers this from memory.
      const scope = `${context.cloud.resourceManager}/.default`;
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs)));
      const token = context.credential.getToken(scope).then((value) => (value !== null ? "ok" : "none"), () => "failed" as const);
      let outcome: "ok" | "none" | "failed" | "timeout";
      try {
        outcome = await Promise.race([token, deadline]);
      } finally {
        clearTimeout(timer);
      }
      const status = context.credentialStatus?.();
      if (outcome === "ok") return { ok: true, ...(status?.answered ? { credential: status.answered } : {}) };
      const error = outcome === "timeout" ? `no token within ${timeoutMs} ms` : outcome === "none" ? "the credential returned no token" : (status?.lastError ?? "the credential failed");
      return { ok: false, ...(status ? { credential: status.configured } : {}), error };
    },
  };
}
