/**
 * DNS suffixes and endpoints of the Azure clouds the service can talk to. Only the public cloud is
 * wired today; the table keeps every host name in one place so key URL checks and sandbox routing agree.
 */
export interface AzureCloud {
  name: string;
  resourceManager: string;
  authorityHost: string;
  keyVaultSuffixes: readonly string[];
  fhirSuffix: string;
}

export const AZURE_PUBLIC_CLOUD: AzureCloud = {
  name: "AzurePublicCloud",
  resourceManager: "https://management.azure.com",
  authorityHost: "https://login.microsoftonline.com",
  keyVaultSuffixes: ["vault.azure.net", "managedhsm.azure.net"],
  fhirSuffix: "fhir.azurehealthcareapis.com",
};

/** Host names that the sandbox emulates, in the form `hostMatches` understands. */
export function emulatedHosts(cloud: AzureCloud): string[] {
  return [
    new URL(cloud.resourceManager).hostname,
    new URL(cloud.authorityHost).hostname,
    ...cloud.keyVaultSuffixes.map((suffix) => `*.${suffix}`),
    `*.${cloud.fhirSuffix}`,
  ];
}

/** True when `hostname` equals `pattern`, or is one label deeper than a `*.suffix` pattern. */
export function hostMatches(hostname: string, pattern: string): boolean {
  const host = hostname.toLowerCase();
  if (!pattern.startsWith("*.")) return host === pattern.toLowerCase();
  const suffix = pattern.slice(1).toLowerCase();
  return host.endsWith(suffix) && host.length > suffix.length && !host.slice(0, -suffix.length).includes(".");
}
