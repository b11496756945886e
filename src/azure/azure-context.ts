import { ClientSecretCredential, DefaultAzureCredential } from "@azure/identity";
import type { TokenCredential } from "@azure/core-auth";
import type { HttpClient, PipelinePolicy } from "@azure/core-rest-pipeline";
import { AZURE_PUBLIC_CLOUD, type AzureCloud } from "./cloud.js";
import { createSandboxHttpClient } from "./sandbox-routing.js";

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
  const credential = new ClientSecretCredential(SANDBOX_SIGN_IN.tenantId, SANDBOX_SIGN_IN.clientId, SANDBOX_SIGN_IN.clientSecret, {
    authorityHost: AZURE_PUBLIC_CLOUD.authorityHost,
    disableInstanceDiscovery: true,
    httpClient,
  });
  return { credential, cloud: AZURE_PUBLIC_CLOUD, clientOptions: { httpClient, userAgentOptions }, mode: "sandbox" };
}

/** Azure mode: DefaultAzureCredential signing in at the cloud's authority host; every client talks to the cloud's endpoints. */
export function createAzureContext(cloud: AzureCloud = AZURE_PUBLIC_CLOUD): AzureContext {
  return { credential: new DefaultAzureCredential({ authorityHost: cloud.authorityHost }), cloud, clientOptions: { userAgentOptions }, mode: "azure" };
}
