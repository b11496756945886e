import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { SandboxRuntime } from "../runtime.js";
import { SEED_IDENTITIES, SERVICE_APP, type SeedApp } from "../seed.js";
import { issueAccessToken, issuerFor, PRODUCTION_AUTHORITY_HOST } from "./index.js";

/**
 * The managed identity endpoint App Service and Container Apps give a process (`IDENTITY_ENDPOINT`,
 * `IDENTITY_HEADER`), as MSAL's AppService source calls it: `GET {endpoint}?api-version=2019-08-01&resource=...`
 * with `X-IDENTITY-HEADER`, and `client_id`, `object_id` or `mi_res_id` for a user-assigned identity. Like the
 * real one it is plain HTTP on loopback. It stands for the compute the service runs on: its system-assigned
 * identity is the seed's `cmk-service` principal and every seed user-assigned identity is attached to it.
 */

const API_VERSION = "2019-08-01";
const LIFETIME_SECONDS = 86_399;

export interface ManagedIdentityEndpoint {
  /** `IDENTITY_ENDPOINT`, e.g. `http://127.0.0.1:41234/msi/token`. */
  url: string;
  /** `IDENTITY_HEADER`: the secret the caller sends as `X-IDENTITY-HEADER`. */
  header: string;
  close(): Promise<void>;
}

interface Answer {
  status: number;
  body: object;
}

/** App Service's error body: `{statusCode, message, correlationId}`. */
function failure(status: number, message: string): Answer {
  return { status, body: { statusCode: status, message, correlationId: randomUUID() } };
}

function send(res: ServerResponse, { status, body }: Answer): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Content-Length": String(Buffer.byteLength(payload)) });
  res.end(payload);
}

/** The identity a request names: system-assigned when it names none. */
function identityOf(query: URLSearchParams): SeedApp | undefined {
  const clientId = query.get("client_id")?.toLowerCase();
  const objectId = query.get("object_id")?.toLowerCase();
  const resourceId = query.get("mi_res_id")?.toLowerCase();
  // The system-assigned identity is the seed's cmk-service principal, so the seed's role assignments apply to it.
  if (!clientId && !objectId && !resourceId) return SERVICE_APP;
  const identity = SEED_IDENTITIES.find(
    (candidate) => candidate.clientId === clientId || candidate.principalId === objectId || (resourceId !== undefined && resourceId.endsWith(`/userassignedidentities/${candidate.name}`)),
  );
  return identity ? { name: identity.name, clientId: identity.clientId, clientSecret: "", objectId: identity.principalId, roles: [] } : undefined;
}

async function handle(runtime: SandboxRuntime, header: string, message: IncomingMessage, url: URL): Promise<Answer> {
  if (message.method !== "GET" || url.pathname !== "/msi/token") return failure(404, "Not found.");
  if (message.headers["x-identity-header"] !== header) return failure(401, "The X-IDENTITY-HEADER header is missing or does not match IDENTITY_HEADER.");
  if (url.searchParams.get("api-version") !== API_VERSION) return failure(400, `Unsupported api-version; use ${API_VERSION}.`);
  const resource = url.searchParams.get("resource");
  if (!resource) return failure(400, "The resource parameter is required.");
  const identity = identityOf(url.searchParams);
  // App Service's answer for an identity that is not assigned to the app (a wrong client id).
  if (!identity) return failure(400, "Unable to load the proper Managed Identity.");
  const audience = resource.replace(/\/\.default$/, "").replace(/\/$/, "");
  const issuer = issuerFor(`https://${PRODUCTION_AUTHORITY_HOST}`, runtime.world.tenantId);
  const { token, claims } = issueAccessToken(runtime, { app: identity, audience, issuer, lifetimeSeconds: LIFETIME_SECONDS });
  await runtime.entra.onTokenIssued?.({ token, claims });
  return { status: 200, body: { access_token: token, expires_on: String(claims.exp), resource, token_type: "Bearer", client_id: identity.clientId } };
}

/** Starts the endpoint on a free loopback port. */
export async function startManagedIdentityEndpoint(runtime: SandboxRuntime): Promise<ManagedIdentityEndpoint> {
  const header = randomBytes(16).toString("hex");
  const server: Server = createServer((message, res) => {
    const url = new URL(message.url ?? "/", "http://localhost");
    void handle(runtime, header, message, url)
      .catch((error: Error) => failure(500, `The sandbox failed to process the request: ${error.message}`))
      .then((answer) => {
        runtime.requestLog.record({ method: message.method ?? "GET", host: "managed-identity", path: url.pathname, status: answer.status });
        send(res, answer);
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/msi/token`,
    header,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
