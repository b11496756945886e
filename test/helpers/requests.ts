/** Seed ids and request bodies the job tests share. */
export const SUB = "22222222-2222-2222-2222-222222222222";
export const fhirId = (name: string) => `/subscriptions/${SUB}/resourceGroups/rg-sandbox/providers/Microsoft.HealthcareApis/workspaces/wssandbox/fhirservices/${name}`;
export const uamiId = (name: string) => `/subscriptions/${SUB}/resourceGroups/rg-sandbox/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${name}`;
export const keyUrl = (vault: string, key: string, version = "00000000000000000000000000000001") => `https://${vault}.vault.azure.net/keys/${key}/${version}`;
export const KEY_V1 = keyUrl("kvsandbox", "cmk-rsa-2048");
export const KEY_V2 = keyUrl("kvsandbox", "cmk-rsa-2048", "00000000000000000000000000000002");

export function setKey(fhirService: string, key = KEY_V2, identity: object = { type: "SystemAssigned" }, extra: object = {}) {
  return { operation: "SetKey", fhirServiceId: fhirId(fhirService), keyEncryptionKeyUrl: key, identity, ...extra };
}
