import { ClientSecretCredential } from "@azure/identity";
import type { HttpClient } from "@azure/core-rest-pipeline";
import { mkdtemp, rm } from "node:fs/promises";
import type { IncomingHttpHeaders } from "node:http";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AzureContext } from "../../src/azure/azure-context.js";
import { AZURE_PUBLIC_CLOUD } from "../../src/azure/cloud.js";
import { createSandboxHttpClient } from "../../src/azure/sandbox-routing.js";
import * as seedModule from "../../src/sandbox/seed.js";

/** A body's JSON, or undefined when it is empty or not JSON (tests look at `text` then). */
export function parseJsonText(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
import { startSandbox, type RunningSandbox, type SandboxOptions } from "../../src/sandbox/index.js";

interface TeardownTarget {
  teardown(fn: () => unknown): void;
}

/**
 * Starts a sandbox on a free port with a CA in a fresh temp dir; closes it (and removes the dir) in
 * `t.teardown`. Default LRO duration is short so SDK pollers finish quickly. Seed key material is
 * cached in one shared temp directory, so only the first test process pays for RSA key generation.
 */
export async function startTestSandbox(
  t: TeardownTarget,
  opts: { lroMs?: number; throttle?: SandboxOptions["throttle"]; entra?: SandboxOptions["entra"]; managedIdentityEndpoint?: boolean } = {},
): Promise<RunningSandbox & { caFile: string }> {
  const dir = await mkdtemp(join(tmpdir(), "cmk-sandbox-"));
  const caFile = join(dir, "ca.pem");
  const sandbox = await startSandbox({
    port: 0,
    caFile,
    lroMs: opts.lroMs ?? 300,
    keyCacheDir: join(tmpdir(), "cmk-sandbox-seed-keys"),
    ...(opts.throttle ? { throttle: opts.throttle } : {}),
    ...(opts.entra ? { entra: opts.entra } : {}),
    ...(opts.managedIdentityEndpoint ? { managedIdentityEndpoint: true } : {}),
  });
  t.teardown(async () => {
    await sandbox.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { ...sandbox, caFile };
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** Parsed JSON body, or undefined when the body is empty or not JSON. */
  json: unknown;
}

export interface RawRequest {
  method?: string;
  path: string;
  /** Production host to send in `Host` (e.g. `management.azure.com`); default: the emulator's own address. */
  host?: string;
  headers?: Record<string, string>;
  body?: unknown;
}

/** One HTTPS request to the sandbox, trusting only its CA (TLS verification stays on). */
export function sandboxRequest(sandbox: RunningSandbox, options: RawRequest): Promise<RawResponse> {
  const target = new URL(sandbox.url);
  const host = options.host ?? target.host;
  const payload =
    options.body === undefined ? undefined : typeof options.body === "string" ? options.body : JSON.stringify(options.body);
  const headers: Record<string, string> = { host, ...options.headers };
  if (payload !== undefined) {
    headers["content-type"] ??= "application/json";
    headers["content-length"] = String(Buffer.byteLength(payload));
  }
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        hostname: target.hostname,
        port: target.port,
        path: options.path,
        method: options.method ?? "GET",
        headers,
        ca: sandbox.caPem,
        servername: host.replace(/:\d+$/, "").replace(/^\d+\.\d+\.\d+\.\d+$/, ""),
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: parseJsonText(text) });
        });
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}

/** The routing `httpClient` for Azure SDK clients (production host names → this sandbox). */
export function sandboxHttpClient(sandbox: RunningSandbox): HttpClient {
  return createSandboxHttpClient({ sandboxUrl: sandbox.url, caPem: sandbox.caPem });
}

export interface Exchange {
  method: string;
  url: string;
  status: number;
  /** `performance.now()` when the request was handed to the network, and when its response arrived. */
  sentAt: number;
  receivedAt: number;
}

/**
 * The routing `httpClient`, recording every exchange the SDK pipeline makes with a timestamp, so that
 * tests can measure e.g. how long the SDK waited before retrying.
 */
export function recordingHttpClient(sandbox: RunningSandbox): { httpClient: HttpClient; exchanges: Exchange[] } {
  const inner = sandboxHttpClient(sandbox);
  const exchanges: Exchange[] = [];
  return {
    exchanges,
    httpClient: {
      async sendRequest(request) {
        const sentAt = performance.now();
        const response = await inner.sendRequest(request);
        exchanges.push({ method: request.method, url: request.url, status: response.status, sentAt, receivedAt: performance.now() });
        return response;
      },
    },
  };
}

/**
 * An Azure context like the service's sandbox context whose SDK clients record every exchange (sign-ins
 * excluded: the credential has a client of its own), for tests that count or order Azure requests.
 */
export function recordingAzureContext(sandbox: RunningSandbox): { context: AzureContext; exchanges: Exchange[] } {
  const { httpClient, exchanges } = recordingHttpClient(sandbox);
  const context: AzureContext = {
    credential: sandboxCredential(sandbox),
    cloud: AZURE_PUBLIC_CLOUD,
    clientOptions: { httpClient, userAgentOptions: { userAgentPrefix: "cmk-test" } },
    mode: "sandbox",
  };
  return { context, exchanges };
}

/**
 * Milliseconds between the first response with `status` and the SDK's next attempt at the same
 * request (same method and URL); undefined when there was no such retry.
 */
export function retryDelay(exchanges: Exchange[], status: number): number | undefined {
  const index = exchanges.findIndex((exchange) => exchange.status === status);
  const failed = exchanges[index];
  if (!failed) return undefined;
  const retry = exchanges.slice(index + 1).find((exchange) => exchange.method === failed.method && exchange.url === failed.url);
  return retry ? retry.sentAt - failed.receivedAt : undefined;
}

/**
 * Node timers count from the event loop's cached clock, which can lag the moment the response was
 * recorded by a few milliseconds; a retry this much earlier than Retry-After still honoured it.
 */
export const TIMER_SLACK_MS = 10;

/** A `ClientSecretCredential` for a seed app (default: the service's own identity) against the sandbox. */
export function sandboxCredential(sandbox: RunningSandbox, app: seedModule.SeedApp = seedModule.SERVICE_APP, secret = app.clientSecret): ClientSecretCredential {
  return new ClientSecretCredential(seedModule.TENANT_ID, app.clientId, secret, {
    authorityHost: "https://login.microsoftonline.com",
    disableInstanceDiscovery: true,
    httpClient: sandboxHttpClient(sandbox),
  });
}

/** A bearer token for ARM, straight from the token endpoint. */
export async function armToken(sandbox: RunningSandbox, app: seedModule.SeedApp = seedModule.SERVICE_APP): Promise<string> {
  const token = await sandboxCredential(sandbox, app).getToken("https://management.azure.com/.default");
  return token.token;
}

/** Every item of an SDK list, every page followed. */
export async function listAll<T>(items: AsyncIterable<T>): Promise<T[]> {
  const found: T[] = [];
  for await (const item of items) found.push(item);
  return found;
}
