/**
 * DNS suffixes and endpoints of the Azure clouds the service can talk to (CMK_CLOUD). The table keeps every
 * host name in one place so key URL checks, the SDK clients and sandbox routing agree. Values: the clouds'
 * endpoint tables (`az cloud show --name <cloud>`; Azure Government's "endpoint mapping" and Azure China's
 * developer guide).
 */
export interface AzureCloud {
  name: AzureCloudName;
  /** ARM endpoint; also its token audience (`{resourceManager}/.default`). */
  resourceManager: string;
  /** Microsoft Entra ID sign-in host. */
  authorityHost: string;
  /** Key Vault first, Managed HSM second. */
  keyVaultSuffixes: readonly string[];
  /** FHIR data plane: `https://{workspace}-{fhir}.{fhirSuffix}`. */
  fhirSuffix: string;
}

export const AZURE_CLOUD_NAMES = ["AzurePublicCloud", "AzureUSGovernment", "AzureChinaCloud"] as const;
export type AzureCloudName = (typeof AZURE_CLOUD_NAMES)[number];

export const AZURE_PUBLIC_CLOUD: AzureCloud = {
  name: "AzurePublicCloud",
  resourceManager: "https://management.azure.com",
  authorityHost: "https://login.microsoftonline.com",
  keyVaultSuffixes: ["vault.azure.net", "managedhsm.azure.net"],
  fhirSuffix: "fhir.azurehealthcareapis.com",
};

export const AZURE_US_GOVERNMENT: AzureCloud = {
  name: "AzureUSGovernment",
  resourceManager: "https://management.usgovcloudapi.net",
  authorityHost: "https://login.microsoftonline.us",
  keyVaultSuffixes: ["vault.usgovcloudapi.net", "managedhsm.usgovcloudapi.net"],
  fhirSuffix: "fhir.azurehealthcareapis.us",
};

export const AZURE_CHINA_CLOUD: AzureCloud = {
  name: "AzureChinaCloud",
  resourceManager: "https://management.chinacloudapi.cn",
  authorityHost: "https://login.chinacloudapi.cn",
  keyVaultSuffixes: ["vault.azure.cn", "managedhsm.azure.cn"],
  // Unverified: no Azure China source found documents Azure Health Data Services' FHIR host there; this follows the .cn pattern.
  fhirSuffix: "fhir.azurehealthcareapis.cn",
};

const CLOUDS: Record<AzureCloudName, AzureCloud> = {
  AzurePublicCloud: AZURE_PUBLIC_CLOUD,
  AzureUSGovernment: AZURE_US_GOVERNMENT,
  AzureChinaCloud: AZURE_CHINA_CLOUD,
};

export function azureCloud(name: AzureCloudName): AzureCloud {
  return CLOUDS[name];
}

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
