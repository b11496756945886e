import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createAdminHandler } from "./admin/index.js";
import { createArmService } from "./arm/index.js";
import { settleOperations } from "./arm/lro.js";
import { createEntraHandler } from "./entra/index.js";
import { createFhirDataPlaneHandler, FHIR_HOST_SUFFIX } from "./fhir-data-plane/index.js";
import type { SandboxRequest, SandboxResponse } from "./http/types.js";
import { createKeyVaultService, KEY_VAULT_HOST_SUFFIXES } from "./key-vault/index.js";
import type { RouteDescription } from "./http/router.js";
import type { SandboxRuntime } from "./runtime.js";

/**
 * One HTTPS port for every emulated host. Requests are routed by the `Host` header (port ignored):
 * the production names go to their service; any other host — the emulator's own address — serves
 * ARM (`/subscriptions`, `/providers`, `/tenants`), the admin API (`/_sandbox`) and Entra ID (everything else),
 * whose paths do not collide.
 */

const MAX_BODY_BYTES = 10 * 1024 * 1024;

type Service = "arm" | "entra" | "keyvault" | "fhir" | "admin";

function isOneLabelUnder(host: string, suffix: string): boolean {
  return host.endsWith(suffix) && host.length > suffix.length && !host.slice(0, -suffix.length).includes(".");
}

export function serviceFor(host: string, path: string): Service {
  if (host === "management.azure.com") return "arm";
  if (host === "login.microsoftonline.com") return "entra";
  if (KEY_VAULT_HOST_SUFFIXES.some((suffix) => isOneLabelUnder(host, suffix))) return "keyvault";
  if (isOneLabelUnder(host, FHIR_HOST_SUFFIX)) return "fhir";
  const first = path.split("/")[1]?.toLowerCase();
  if (first === "_sandbox") return "admin";
  if (first === "subscriptions" || first === "providers" || first === "tenants") return "arm";
  return "entra";
}

function hostnameOf(hostHeader: string): string {
  // "[::1]:8443" → "::1"; "name:8443" → "name"
  const bracketed = /^\[([^\]]+)\]/.exec(hostHeader);
  if (bracketed) return (bracketed[1] as string).toLowerCase();
  return hostHeader.replace(/:\d+$/, "").toLowerCase();
}

async function readBody(message: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of message) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > MAX_BODY_BYTES) throw new Error("request body too large");
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

async function toSandboxRequest(message: IncomingMessage): Promise<SandboxRequest> {
  const hostHeader = message.headers.host ?? "localhost";
  // A leading `//` (ARM SDKs joining "/" + a scope that starts with "/") would parse as a host name.
  const url = new URL((message.url ?? "/").replace(/^\/{2,}/, "/"), "https://sandbox.invalid");
  return {
    method: (message.method ?? "GET").toUpperCase(),
    host: hostnameOf(hostHeader),
    hostHeader,
    origin: `https://${hostHeader}`,
    path: url.pathname,
    query: url.searchParams,
    headers: message.headers,
    body: await readBody(message),
    remoteAddress: message.socket.remoteAddress ?? "127.0.0.1",
  };
}

function send(res: ServerResponse, request: SandboxRequest | undefined, response: SandboxResponse): void {
  const headers: Record<string, string> = { "x-ms-request-id": randomUUID(), ...response.headers };
  const clientRequestId = request?.headers["x-ms-client-request-id"];
  if (typeof clientRequestId === "string") headers["x-ms-client-request-id"] = clientRequestId;
  let payload: Buffer | undefined;
  if (Buffer.isBuffer(response.body)) payload = response.body;
  else if (typeof response.body === "string") payload = Buffer.from(response.body);
  else if (response.body !== undefined) {
    payload = Buffer.from(JSON.stringify(response.body));
    headers["Content-Type"] ??= "application/json; charset=utf-8";
  }
  if (response.status !== 204 && response.status !== 304) headers["Content-Length"] = String(payload?.length ?? 0);
  res.writeHead(response.status, headers);
  res.end(payload);
}

export interface TlsMaterial {
  key: string;
  cert: string;
}

/** The routes of the emulated Azure APIs: ARM's providers, and the Key Vault / Managed HSM data plane. */
export interface SandboxRoutes {
  arm: readonly RouteDescription[];
  keyVault: readonly RouteDescription[];
}

export function createSandboxServer(runtime: SandboxRuntime, tls: TlsMaterial): { server: Server; routes: SandboxRoutes } {
  const arm = createArmService(runtime);
  const keyVault = createKeyVaultService(runtime);
  const handlers: Record<Service, (request: SandboxRequest) => Promise<SandboxResponse>> = {
    arm: (request) => arm.handle(request),
    entra: createEntraHandler(runtime),
    keyvault: (request) => keyVault.handle(request),
    fhir: createFhirDataPlaneHandler(runtime),
    admin: createAdminHandler(runtime),
  };

  const server = createServer({ key: tls.key, cert: tls.cert }, (message, res) => {
    void (async () => {
      let request: SandboxRequest | undefined;
      let service: Service | undefined;
      let response: SandboxResponse;
      try {
        request = await toSandboxRequest(message);
        service = serviceFor(request.host, request.path);
        // Time-driven progress is lazy: operations whose time is up end, then deployments move on.
        settleOperations(runtime.world, runtime.clock.now());
        await arm.advanceDeployments();
        response = await handlers[service](request);
      } catch (error) {
        runtime.logger.warn(`sandbox: ${message.method} ${message.url} failed: ${(error as Error).stack ?? String(error)}`);
        response = { status: 500, body: { error: { code: "InternalServerError", message: "The sandbox failed to process the request." } } };
      }
      if (request && service !== "admin") {
        runtime.requestLog.record({ method: request.method, host: request.host, path: request.path, status: response.status });
      }
      send(res, request, response);
    })();
  });
  return { server, routes: { arm: arm.routes, keyVault: keyVault.routes } };
}
