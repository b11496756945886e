import type { SandboxRequest, SandboxResponse } from "./types.js";

export function json(status: number, body: unknown, headers: Record<string, string> = {}): SandboxResponse {
  return { status, body, headers };
}

export function empty(status: number, headers: Record<string, string> = {}): SandboxResponse {
  return { status, headers };
}

/** Adds headers to a response without overwriting the ones it already has. */
export function withHeaders(response: SandboxResponse, headers: Record<string, string>): SandboxResponse {
  return { ...response, headers: { ...headers, ...response.headers } };
}

export class BodyParseError extends Error {}

/** The request body as JSON; an empty body is `undefined`. Throws BodyParseError on malformed JSON. */
/** The request's JSON body (undefined when empty); `dialect` turns a looser notation into JSON first (e.g. jsoncToJson). */
export function jsonBody(request: SandboxRequest, dialect: (text: string) => string = (text) => text): unknown {
  const text = request.body.toString("utf8").trim();
  if (text === "") return undefined;
  try {
    return JSON.parse(dialect(text)) as unknown;
  } catch (error) {
    throw new BodyParseError((error as Error).message);
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
