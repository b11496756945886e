import type { IncomingHttpHeaders } from "node:http";

/** A request as the emulator's handlers see it: body already read, host and query already parsed. */
export interface SandboxRequest {
  method: string;
  /** Lower-case host name without the port, e.g. `management.azure.com` or `127.0.0.1`. */
  host: string;
  /** The `Host` header as sent, port included. */
  hostHeader: string;
  /** `https://` + the Host header: the origin the caller used. */
  origin: string;
  /** Path without the query string, as sent (not percent-decoded). */
  path: string;
  /** Query with percent-decoded keys and values (`api%2Dversion` → `api-version`). */
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** Client address, for Key Vault's network info header. */
  remoteAddress: string;
}

/** What a handler answers. A `body` that is not a Buffer or string is sent as JSON. */
export interface SandboxResponse {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

export type RouteParams = Record<string, string>;
export type RouteHandler<R = SandboxRequest> = (request: R, params: RouteParams) => SandboxResponse | Promise<SandboxResponse>;
