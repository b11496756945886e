import { ClientSecretCredential } from "@azure/identity";
import type { TokenCredential } from "@azure/core-auth";
import type { HttpClient, PipelinePolicy } from "@azure/core-rest-pipeline";
import { AZURE_PUBLIC_CLOUD, type AzureCloud } from "./cloud.js";
import type { AzureCredentialSettings } from "./credential-config.js";
import { createSandboxHttpClient } from "./sandbox-routing.js";
import { createServiceCredential, RecordingCredential, type CredentialStatus } from "./service-credential.js";

/**
 * One credential and one HTTP setup, shared by every Azure adapter. In sandbox mode the service signs in
 * as the seed's `cmk-service` application with a client secret, the same code path as a secret in azure
 * mode; its requests reach the emulator through the sandbox routing client.
 */
export interface AzureContext {
  credential: TokenCredential;
  cloud: AzureCloud;
  /** Options every SDK client gets (HTTP client, retries). */
  clientOptions: { httpClient?: HttpClient; userAgentOptions: { userAgentPrefix: string }; additionalPolicies?: Array<{ policy: PipelinePolicy; position: "perCall" | "perRetry" }> };
  mode: "sandbox" | "azure";
  /** Which credential gave the last token, and why the last attempt failed (readiness); absent for a bare credential. */
  credentialStatus?: () => CredentialStatus;
}

export interface SandboxConnection {
  url: string;
  caPem: string;
}

/**
 * The seed application the service signs in as in sandbox mode (api-contract: Seed). Kept here, not
 * imported from the emulator, because an external emulator (CMK_SANDBOX_URL) has the same seed.
 */
export const SANDBOX_SIGN_IN = {
  tenantId: "11111111-1111-1111-1111-111111111111",
  clientId: "44444444-4444-4444-4444-444444444444",
  clientSecret: "sandbox-service-secret",
} as const;

const userAgentOptions = { userAgentPrefix: "cmk-service/0.1" };

export function createSandboxContext(sandbox: SandboxConnection): AzureContext {
  const httpClient = createSandboxHttpClient({ sandboxUrl: sandbox.url, caPem: sandbox.caPem });
  const secret = new ClientSecretCredential(SANDBOX_SIGN_IN.tenantId, SANDBOX_SIGN_IN.clientId, SANDBOX_SIGN_IN.clientSecret, {
    authorityHost: AZURE_PUBLIC_CLOUD.authorityHost,
    disableInstanceDiscovery: true,
    httpClient,
  });
  const credential = new RecordingCredential("ClientSecretCredential", [{ name: "ClientSecretCredential", credential: secret }]);
  return { credential, cloud: AZURE_PUBLIC_CLOUD, clientOptions: { httpClient, userAgentOptions }, mode: "sandbox", credentialStatus: () => credential.status() };
}

/**
 * Azure mode: the configured credential (CMK_AZURE_CREDENTIAL; DefaultAzureCredential's chain by default)
 * signing in at the cloud's authority host; every client talks to the cloud's endpoints. `httpClient`: tests
 * only, the sandbox routing client for the credential's and the clients' requests.
 */
export function createAzureContext(
  cloud: AzureCloud = AZURE_PUBLIC_CLOUD,
  settings: AzureCredentialSettings = { kind: "default", managedIdentityClientId: undefined, workload: undefined },
  options: { httpClient?: HttpClient; logger?: { info(obj: object, message: string): void } } = {},
): AzureContext {
  const credential = createServiceCredential(settings, { authorityHost: cloud.authorityHost, ...options });
  const clientOptions = { userAgentOptions, ...(options.httpClient ? { httpClient: options.httpClient } : {}) };
  return { credential, cloud, clientOptions, mode: "azure", credentialStatus: () => credential.status() };
}
