import type { SandboxRequest } from "./http/types.js";
import { isRecord } from "./http/responses.js";

/**
 * Fault injection, configured through `PUT /_sandbox/faults`.
 *
 * A rule matches requests to one emulated service (`arm`, `keyvault`, `entra`), optionally narrowed by
 * HTTP method and a substring of the path (case-insensitive). Each match fires with `probability`
 * (0..1) and at most `times` times. What a firing rule does depends on its status:
 *
 * - `status` >= 400: the request is answered with that status and the service's own error body
 *   (ARM `{error:{code,message}}`, Key Vault `{error:{code,message}}`, Entra `{error,error_description,
 *   error_codes,...}`), `error.code` = `errorCode` or a typical code for the status. 429 and 503
 *   carry `Retry-After` (`retryAfterSeconds`, default 1).
 * - `status` < 400 (e.g. 200) on ARM: the request is served normally, but the async operation it
 *   starts (PUT/DELETE of a FHIR service) or polls (`operationresults`) ends `Failed` with
 *   `error.code` = `errorCode` (default `InternalServerError`). Example:
 *   `{service:"arm", pathContains:"operationresults", status:200, probability:1, times:1, errorCode:"InternalServerError"}`.
 *
 * `lroDurationMs` replaces the sandbox's LRO duration for operations started afterwards.
 */

export type FaultService = "arm" | "keyvault" | "entra";
const SERVICES: readonly FaultService[] = ["arm", "keyvault", "entra"];

export interface FaultRule {
  service: FaultService;
  method?: string;
  pathContains?: string;
  status: number;
  probability: number;
  times?: number;
  retryAfterSeconds?: number;
  errorCode?: string;
}

export interface FaultConfiguration {
  rules: FaultRule[];
  lroDurationMs?: number;
}

export class FaultValidationError extends Error {}

function parseRule(value: unknown, index: number): FaultRule {
  const where = `rules[${index}]`;
  if (!isRecord(value)) throw new FaultValidationError(`${where} must be an object`);
  const { service, method, pathContains, status, probability, times, retryAfterSeconds, errorCode, ...unknown } = value;
  const extra = Object.keys(unknown);
  if (extra.length > 0) throw new FaultValidationError(`${where} has unknown properties: ${extra.join(", ")}`);
  if (!SERVICES.includes(service as FaultService)) throw new FaultValidationError(`${where}.service must be one of ${SERVICES.join(", ")}`);
  if (!Number.isInteger(status) || (status as number) < 100 || (status as number) > 599) {
    throw new FaultValidationError(`${where}.status must be an HTTP status code`);
  }
  const chance = probability ?? 1;
  if (typeof chance !== "number" || chance < 0 || chance > 1) throw new FaultValidationError(`${where}.probability must be between 0 and 1`);
  const rule: FaultRule = { service: service as FaultService, status: status as number, probability: chance };
  if (method !== undefined) {
    if (typeof method !== "string") throw new FaultValidationError(`${where}.method must be a string`);
    rule.method = method.toUpperCase();
  }
  if (pathContains !== undefined) {
    if (typeof pathContains !== "string") throw new FaultValidationError(`${where}.pathContains must be a string`);
    rule.pathContains = pathContains;
  }
  if (times !== undefined) {
    if (!Number.isInteger(times) || (times as number) < 1) throw new FaultValidationError(`${where}.times must be a positive integer`);
    rule.times = times as number;
  }
  if (retryAfterSeconds !== undefined) {
    if (!Number.isInteger(retryAfterSeconds) || (retryAfterSeconds as number) < 0) {
      throw new FaultValidationError(`${where}.retryAfterSeconds must be a non-negative integer`);
    }
    rule.retryAfterSeconds = retryAfterSeconds as number;
  }
  if (errorCode !== undefined) {
    if (typeof errorCode !== "string" || errorCode === "") throw new FaultValidationError(`${where}.errorCode must be a string`);
    rule.errorCode = errorCode;
  }
  return rule;
}

export function parseFaultConfiguration(body: unknown): FaultConfiguration {
  if (!isRecord(body)) throw new FaultValidationError("body must be an object");
  const { rules, lroDurationMs, ...unknown } = body;
  const extra = Object.keys(unknown);
  if (extra.length > 0) throw new FaultValidationError(`unknown properties: ${extra.join(", ")}`);
  if (rules !== undefined && !Array.isArray(rules)) throw new FaultValidationError("rules must be an array");
  const configuration: FaultConfiguration = { rules: (rules ?? []).map(parseRule) };
  if (lroDurationMs !== undefined && lroDurationMs !== null) {
    if (!Number.isInteger(lroDurationMs) || (lroDurationMs as number) < 0) throw new FaultValidationError("lroDurationMs must be a non-negative integer");
    configuration.lroDurationMs = lroDurationMs as number;
  }
  return configuration;
}

interface ActiveRule extends FaultRule {
  fired: number;
}

export class FaultInjector {
  private rules: ActiveRule[] = [];
  lroDurationMs: number | undefined;

  configure(configuration: FaultConfiguration): void {
    this.rules = configuration.rules.map((rule) => ({ ...rule, fired: 0 }));
    this.lroDurationMs = configuration.lroDurationMs;
  }

  clear(): void {
    this.configure({ rules: [] });
  }

  snapshot(): FaultConfiguration & { rules: (FaultRule & { fired: number })[] } {
    const snapshot: FaultConfiguration & { rules: ActiveRule[] } = { rules: this.rules.map((rule) => ({ ...rule })) };
    if (this.lroDurationMs !== undefined) snapshot.lroDurationMs = this.lroDurationMs;
    return snapshot;
  }

  /**
   * The first rule of the given kind that fires for this request. `response` rules (status >= 400)
   * answer the request; `outcome` rules (status < 400) fail the async operation it starts or polls.
   */
  fire(service: FaultService, request: SandboxRequest, kind: "response" | "outcome"): FaultRule | undefined {
    for (const rule of this.rules) {
      if (rule.service !== service) continue;
      if ((rule.status >= 400) !== (kind === "response")) continue;
      if (rule.method && rule.method !== request.method) continue;
      if (rule.pathContains && !request.path.toLowerCase().includes(rule.pathContains.toLowerCase())) continue;
      if (rule.times !== undefined && rule.fired >= rule.times) continue;
      if (Math.random() >= rule.probability) continue;
      rule.fired++;
      return rule;
    }
    return undefined;
  }
}

/** `Retry-After` for injected 429 and 503 answers. */
export function faultRetryHeaders(rule: FaultRule): Record<string, string> {
  return rule.status === 429 || rule.status === 503 ? { "Retry-After": String(rule.retryAfterSeconds ?? 1) } : {};
}
