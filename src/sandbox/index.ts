import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { issueServerCertificate, loadOrCreateCertificateAuthority } from "./certificates.js";
import { startManagedIdentityEndpoint, type ManagedIdentityEndpoint } from "./entra/managed-identity.js";
import { TokenService } from "./entra/tokens.js";
import { processRsaKey } from "./process-keys.js";
import { createRuntime, type EntraOptions, type SandboxLogger } from "./runtime.js";
import { createSandboxServer, type SandboxRoutes } from "./server.js";
import type { ThrottleOptions } from "./throttling.js";

/**
 * The Azure emulator ("sandbox"): Entra ID, ARM (HealthcareApis, Key Vault, Managed Identity,
 * Authorization), the Key Vault keys data plane and a FHIR data-plane probe, on one HTTPS port.
 * Clients connect to `url` and send the production `Host` header (see src/azure/sandbox-routing.ts).
 */

export interface SandboxOptions {
  /** 0 picks a free port. */
  port: number;
  /** Default "127.0.0.1". */
  host?: string;
  /** CA certificate PEM path; the CA key is kept next to it (`<caFile minus .pem>-key.pem`). */
  caFile: string;
  /** How long an emulated ARM write runs (CMK_SANDBOX_LRO_MS, default 3000). */
  lroMs: number;
  /** ARM token-bucket limits per subscription + principal; defaults to ARM's (reads 250/25 s⁻¹, writes and deletes 200/10 s⁻¹). */
  throttle?: ThrottleOptions;
  /**
   * Directory where the seed keys' private material is kept so it survives restarts (default: a
   * `seed-keys` directory next to `caFile`; `false`: memory only).
   */
  keyCacheDir?: string | false;
  logger?: SandboxLogger;
  /** Token lifetimes per audience and a listener for issued tokens (tests). */
  entra?: EntraOptions;
  /** Also serve a managed identity endpoint as App Service / Container Apps do (plain HTTP on a free loopback port). */
  managedIdentityEndpoint?: boolean;
}

export interface RunningSandbox {
  /** "https://127.0.0.1:<port>" */
  url: string;
  port: number;
  /** CA certificate PEM. */
  caPem: string;
  /** The Azure routes it serves (tests check each against Microsoft's REST definitions). */
  routes: SandboxRoutes;
  /** With `managedIdentityEndpoint`: the values of `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`. */
  managedIdentity?: { url: string; header: string };
  close(): Promise<void>;
}

const silentLogger: SandboxLogger = { info: () => {}, warn: () => {} };

export async function startSandbox(options: SandboxOptions): Promise<RunningSandbox> {
  const host = options.host ?? "127.0.0.1";
  const logger = options.logger ?? silentLogger;
  const [ca, tokens] = await Promise.all([loadOrCreateCertificateAuthority(options.caFile), TokenService.create(), processRsaKey("tls-server")]);
  const certificate = await issueServerCertificate(ca);
  const keyCacheDir = options.keyCacheDir === false ? undefined : (options.keyCacheDir ?? join(dirname(options.caFile), "seed-keys"));
  const runtime = createRuntime({
    tokens,
    lroMs: options.lroMs,
    logger,
    ...(options.throttle ? { throttle: options.throttle } : {}),
    ...(keyCacheDir ? { keyCacheDir } : {}),
    ...(options.entra ? { entra: options.entra } : {}),
  });
  const { server, routes } = createSandboxServer(runtime, { key: certificate.keyPem, cert: certificate.certPem });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const identityEndpoint: ManagedIdentityEndpoint | undefined = options.managedIdentityEndpoint ? await startManagedIdentityEndpoint(runtime) : undefined;
  const urlHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
  const url = `https://${urlHost}:${port}`;
  logger.info(`sandbox: listening on ${url}`);

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    caPem: ca.certPem,
    routes,
    ...(identityEndpoint ? { managedIdentity: { url: identityEndpoint.url, header: identityEndpoint.header } } : {}),
    close() {
      runtime.events.close();
      void identityEndpoint?.close();
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // SDK clients keep connections alive; do not wait for them to time out.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

export * as seed from "./seed.js";
export type { EntraOptions, IssuedToken, SandboxLogger } from "./runtime.js";
export type { ThrottleOptions } from "./throttling.js";
export type { SandboxRoutes } from "./server.js";
export type { RouteDescription } from "./http/router.js";
