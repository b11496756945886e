import { createDefaultHttpClient, type HttpClient, type PipelineRequest } from "@azure/core-rest-pipeline";
import { AZURE_PUBLIC_CLOUD, emulatedHosts, hostMatches, type AzureCloud } from "./cloud.js";

export interface SandboxRoutingOptions {
  /** The emulator's own origin, e.g. `https://127.0.0.1:8443`. */
  sandboxUrl: string;
  /** PEM of the sandbox CA: the only certificate authority trusted for rerouted requests. */
  caPem: string;
  cloud?: AzureCloud;
}

/**
 * An Azure SDK `httpClient` that sends requests for Azure host names to the sandbox emulator.
 *
 * The request keeps its production `Host` header (so TLS SNI and the emulator's routing see the real
 * name) and its URL is restored afterwards, because Key Vault's challenge policy compares the request
 * URL with the vault host. TLS verification stays on: only the sandbox CA is trusted.
 */
export function createSandboxHttpClient(options: SandboxRoutingOptions): HttpClient {
  const inner = createDefaultHttpClient();
  const target = new URL(options.sandboxUrl);
  const hosts = emulatedHosts(options.cloud ?? AZURE_PUBLIC_CLOUD);
  // One object, so the default client caches one keep-alive agent for it.
  const tlsSettings = { ca: options.caPem };

  return {
    async sendRequest(request: PipelineRequest) {
      const original = new URL(request.url);
      if (original.protocol !== "https:" || !hosts.some((pattern) => hostMatches(original.hostname, pattern))) {
        return inner.sendRequest(request);
      }
      const originalUrl = request.url;
      const originalTls = request.tlsSettings;
      // Concatenate: a path such as "//subscriptions/..." must not be read as a protocol-relative URL.
      request.url = `${target.origin}${original.pathname}${original.search}`;
      request.headers.set("host", original.host);
      request.tlsSettings = tlsSettings;
      try {
        return await inner.sendRequest(request);
      } finally {
        request.url = originalUrl;
        request.tlsSettings = originalTls;
        request.headers.delete("host");
      }
    },
  };
}
