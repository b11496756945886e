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
  };
}
