import { BodyParseError, isRecord, jsonBody } from "../http/responses.js";
import { jsoncToJson } from "../http/jsonc.js";
import type { SandboxRequest, SandboxResponse } from "../http/types.js";
import { invalidRequestContent } from "./errors.js";

/**
 * The JSON object an ARM write carries; anything else is ARM's 400 `InvalidRequestContent`. `jsonc`: read
 * it as the deployment service does (JSON.NET): comments, unquoted names and trailing commas allowed.
 */
export function parseArmBody(request: SandboxRequest, options: { jsonc?: boolean } = {}): { body: Record<string, unknown> } | { error: SandboxResponse } {
  let body: unknown;
  try {
    body = options.jsonc ? jsonBody(request, jsoncToJson) : jsonBody(request);
  } catch (error) {
    if (error instanceof BodyParseError) return { error: invalidRequestContent(`The request content was invalid and could not be deserialized: '${error.message}'.`) };
    throw error;
  }
  if (!isRecord(body)) return { error: invalidRequestContent("The request content was invalid and could not be deserialized: a JSON object is required.") };
  return { body };
}

/** `tags`: absent means none; otherwise a map of strings. Undefined when invalid. */
export function parseTags(value: unknown): Record<string, string> | undefined {
  if (value === undefined || value === null) return {};
  if (!isRecord(value) || Object.values(value).some((tag) => typeof tag !== "string")) return undefined;
  return value as Record<string, string>;
}
