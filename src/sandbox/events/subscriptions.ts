import { isRecord } from "../http/responses.js";

/**
 * `PUT /_sandbox/event-subscriptions` (api-contract v1.1, Compliance): the Event Grid event subscriptions
 * (webhook destinations) that receive the emulated vaults' Key Vault events.
 *
 * `{ "subscriptions": [ { "endpointUrl", "schema": "EventGridSchema" | "CloudEventSchemaV1_0", "headers"?: {...},
 *    "name"?, "retryPolicy"?: { "maxDeliveryAttempts"?, "eventTimeToLiveInMinutes"? } } ] }`
 *
 * Limits are Event Grid's: up to 10 delivery headers of at most 4,096 bytes each, names without the
 * reserved `aeg-` prefix (learn.microsoft.com/azure/event-grid/delivery-properties); retry policy
 * 1-30 attempts (default 30) and a time to live of 1-1440 minutes (default 1440)
 * (learn.microsoft.com/azure/event-grid/delivery-and-retry). `name` (default `sandbox-{n}`) is this
 * emulator's addition: Event Grid names every event subscription and sends it as `aeg-subscription-name`.
 */

export type DeliverySchema = "EventGridSchema" | "CloudEventSchemaV1_0";

export interface SubscriptionSpec {
  name: string;
  endpointUrl: string;
  schema: DeliverySchema;
  headers: Record<string, string>;
  maxDeliveryAttempts: number;
  eventTimeToLiveMinutes: number;
}

export class SubscriptionValidationError extends Error {}

const SCHEMAS: DeliverySchema[] = ["EventGridSchema", "CloudEventSchemaV1_0"];
const MAX_SUBSCRIPTIONS = 10;
const MAX_HEADERS = 10;
const MAX_HEADER_VALUE_BYTES = 4096;
/** RFC 9110 token characters: what an HTTP field name may hold. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/;
/** Fields the delivery itself sets: a subscription may not replace them. */
const RESERVED_HEADERS = ["content-type", "content-length", "host", "webhook-request-origin", "transfer-encoding", "connection"];
const NAME = /^[A-Za-z0-9-]{3,64}$/;

function integerIn(value: unknown, path: string, minimum: number, maximum: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || (value as number) < minimum || (value as number) > maximum) {
    throw new SubscriptionValidationError(`${path} must be an integer from ${minimum} to ${maximum}`);
  }
  return value as number;
}

function parseHeaders(value: unknown, path: string): Record<string, string> {
  if (value === undefined) return {};
  if (!isRecord(value)) throw new SubscriptionValidationError(`${path} must be an object of header names and string values`);
  const entries = Object.entries(value);
  if (entries.length > MAX_HEADERS) throw new SubscriptionValidationError(`${path} may hold at most ${MAX_HEADERS} headers (Event Grid's limit)`);
  const headers: Record<string, string> = {};
  for (const [name, headerValue] of entries) {
    if (!HEADER_NAME.test(name)) throw new SubscriptionValidationError(`${path}: '${name}' is not a valid header name`);
    const lower = name.toLowerCase();
    if (lower.startsWith("aeg-") || RESERVED_HEADERS.includes(lower)) throw new SubscriptionValidationError(`${path}: '${name}' is set by Event Grid itself and cannot be configured`);
    if (typeof headerValue !== "string" || /[\r\n\0]/.test(headerValue)) throw new SubscriptionValidationError(`${path}.${name} must be a string without line breaks`);
    if (Buffer.byteLength(headerValue) > MAX_HEADER_VALUE_BYTES) throw new SubscriptionValidationError(`${path}.${name} is longer than ${MAX_HEADER_VALUE_BYTES} bytes (Event Grid's limit)`);
    headers[lower] = headerValue;
  }
  return headers;
}

function parseEndpoint(value: unknown, path: string): string {
  if (typeof value !== "string") throw new SubscriptionValidationError(`${path} is required: the webhook's absolute URL`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new SubscriptionValidationError(`${path} must be an absolute URL`);
  }
  // Event Grid takes https only; the emulator also takes http so a service on a laptop can be the target.
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new SubscriptionValidationError(`${path} must be an http or https URL`);
  if (url.username || url.password) throw new SubscriptionValidationError(`${path} must not carry a user or password; send credentials in headers`);
  return url.toString();
}

/** Checks the whole body; the first problem is thrown with the path of the field. */
export function parseSubscriptions(body: unknown): SubscriptionSpec[] {
  if (!isRecord(body)) throw new SubscriptionValidationError("body must be an object: { \"subscriptions\": [...] }");
  const unknown = Object.keys(body).filter((name) => name !== "subscriptions");
  if (unknown.length > 0) throw new SubscriptionValidationError(`unknown properties: ${unknown.join(", ")} (use subscriptions)`);
  const list = body.subscriptions;
  if (!Array.isArray(list)) throw new SubscriptionValidationError("subscriptions must be an array (empty removes every subscription)");
  if (list.length > MAX_SUBSCRIPTIONS) throw new SubscriptionValidationError(`subscriptions may hold at most ${MAX_SUBSCRIPTIONS} entries`);
  const specs = list.map((entry: unknown, index): SubscriptionSpec => {
    const path = `subscriptions[${index}]`;
    if (!isRecord(entry)) throw new SubscriptionValidationError(`${path} must be an object`);
    const { endpointUrl, schema, headers, name, retryPolicy, ...extra } = entry;
    if (Object.keys(extra).length > 0) {
      throw new SubscriptionValidationError(`${path} has unknown properties: ${Object.keys(extra).join(", ")} (use endpointUrl, schema, headers, name, retryPolicy)`);
    }
    if (!SCHEMAS.includes(schema as DeliverySchema)) throw new SubscriptionValidationError(`${path}.schema must be one of ${SCHEMAS.join(", ")}`);
    if (name !== undefined && (typeof name !== "string" || !NAME.test(name))) throw new SubscriptionValidationError(`${path}.name must be 3-64 letters, digits and dashes`);
    if (retryPolicy !== undefined && !isRecord(retryPolicy)) throw new SubscriptionValidationError(`${path}.retryPolicy must be an object`);
    const policy = (retryPolicy ?? {}) as Record<string, unknown>;
    const extraPolicy = Object.keys(policy).filter((field) => field !== "maxDeliveryAttempts" && field !== "eventTimeToLiveInMinutes");
    if (extraPolicy.length > 0) throw new SubscriptionValidationError(`${path}.retryPolicy has unknown properties: ${extraPolicy.join(", ")}`);
    return {
      name: (name as string | undefined) ?? `sandbox-${index}`,
      endpointUrl: parseEndpoint(endpointUrl, `${path}.endpointUrl`),
      schema: schema as DeliverySchema,
      headers: parseHeaders(headers, `${path}.headers`),
      maxDeliveryAttempts: integerIn(policy.maxDeliveryAttempts, `${path}.retryPolicy.maxDeliveryAttempts`, 1, 30, 30),
      eventTimeToLiveMinutes: integerIn(policy.eventTimeToLiveInMinutes, `${path}.retryPolicy.eventTimeToLiveInMinutes`, 1, 1440, 1440),
    };
  });
  const names = specs.map((spec) => spec.name.toLowerCase());
  const duplicate = names.find((name, index) => names.indexOf(name) !== index);
  if (duplicate) throw new SubscriptionValidationError(`two subscriptions are named '${duplicate}'`);
  return specs;
}
