import type { AzureCloud } from "./cloud.js";
import type { AzureContext } from "./azure-context.js";
import { createFhirServicesAdapter, type FhirServicesAdapter } from "./fhir-services.js";
import { createFhirDataPlaneAdapter, type FhirDataPlaneAdapter } from "./fhir-data-plane.js";
import { createIdentitiesAdapter, type IdentitiesAdapter } from "./identities.js";
import { createKeyVaultAdapter, type KeyVaultAdapter } from "./key-vault.js";
import { createRoleAssignmentsAdapter, type RoleAssignmentsAdapter } from "./role-assignments.js";
import { createVaultsAdapter, type VaultsAdapter } from "./vaults.js";

/** Every Azure service the API and the worker talk to, built from one context. */
export interface AzureAdapters {
  cloud: AzureCloud;
  fhirServices: FhirServicesAdapter;
  keyVault: KeyVaultAdapter;
  vaults: VaultsAdapter;
  identities: IdentitiesAdapter;
  roleAssignments: RoleAssignmentsAdapter;
  fhirDataPlane: FhirDataPlaneAdapter;
  /** True when the service's credential can get an ARM token now (readiness in azure mode). */
  canSignIn(timeoutMs: number): Promise<boolean>;
}

export function createAzureAdapters(context: AzureContext, options: { pollIntervalMs: number }): AzureAdapters {
  return {
    cloud: context.cloud,
    fhirServices: createFhirServicesAdapter(context, options),
    keyVault: createKeyVaultAdapter(context),
    vaults: createVaultsAdapter(context),
    identities: createIdentitiesAdapter(context),
    roleAssignments: createRoleAssignmentsAdapter(context),
    fhirDataPlane: createFhirDataPlaneAdapter(context),
    async canSignIn(timeoutMs) {
      // The credential caches tokens, so a ready service answers this from memory.
      const scope = `${context.cloud.resourceManager}/.default`;
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
      const token = context.credential.getToken(scope).then((value) => value !== null, () => false);
      try {
        return await Promise.race([token, deadline]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
