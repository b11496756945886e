/** Values from the sandbox seed, so every example in the OpenAPI document works against `npm start`. */
const subscription = "22222222-2222-2222-2222-222222222222";
const resourceGroup = `/subscriptions/${subscription}/resourceGroups/rg-sandbox`;

export const SEED_EXAMPLES = {
  fhirSys: `${resourceGroup}/providers/Microsoft.HealthcareApis/workspaces/wssandbox/fhirservices/fhir-sys`,
  fhirUami: `${resourceGroup}/providers/Microsoft.HealthcareApis/workspaces/wssandbox/fhirservices/fhir-uami`,
  fhirNew: `${resourceGroup}/providers/Microsoft.HealthcareApis/workspaces/wssandbox/fhirservices/fhir-new`,
  uamiSandbox: `${resourceGroup}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uami-sandbox`,
  keyUrl: "https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048/00000000000000000000000000000002",
  keyUrlV1: "https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048/00000000000000000000000000000001",
} as const;
