import type { PipelinePolicy, PipelineResponse } from "@azure/core-rest-pipeline";

/** ARM's request kinds, as it budgets them per subscription and principal. */
export type ArmRequestKind = "reads" | "writes";

/**
 * A budget of ARM requests per subscription shared by every process of the deployment (the job store's
 * token buckets in Redis, job-store/arm-budget.ts).
 */
export interface ArmBudget {
  /** Waits for this request's slot in the subscription's budget. */
  take(subscriptionId: string, kind: ArmRequestKind): Promise<void>;
  /** What ARM said is left (x-ms-ratelimit-remaining-subscription-*), and after a 429 how long to wait. */
  observe(subscriptionId: string, kind: ArmRequestKind, remaining: number | undefined, retryAfterMs: number | undefined): Promise<void>;
  /** Below this many remaining tokens ARM's count is worth telling the shared bucket. */
  readonly lowWater: Record<ArmRequestKind, number>;
}

/** What one process's pacing saw, for logs, metrics and the fleet benchmark. */
export interface ArmPacingStats {
  throttled: number;
  requests: Record<ArmRequestKind, number>;
}

/**
 * The pacing every ARM request of the process goes through (one pipeline policy in every adapter's SDK
 * client). A budget is bound where a job store exists (the worker); unbound, requests go straight out.
 */
export class ArmPacing {
  private budget: ArmBudget | undefined;
  readonly stats: ArmPacingStats = { throttled: 0, requests: { reads: 0, writes: 0 } };

  use(budget: ArmBudget | undefined): void {
    this.budget = budget;
  }

  get current(): ArmBudget | undefined {
    return this.budget;
  }
}

/** How often one request is sent again after 429s before the 429 is left to the caller (with a budget, never in practice). */
const MAX_THROTTLED_ATTEMPTS = 30;
// Leading slashes, not one: the SDK's getById joins the endpoint and a full ARM id into `//subscriptions/…`.
const SUBSCRIPTION_OF_PATH = /^\/+subscriptions\/([0-9a-fA-F-]{36})(?:\/|$)/;

/** Seconds or an HTTP date, as ARM and the SDK's throttling policy read it; undefined when absent or unreadable. */
export function retryAfterMs(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, date - now) : undefined;
}

function remainingOf(response: PipelineResponse, kind: ArmRequestKind): number | undefined {
  const value = response.headers.get(`x-ms-ratelimit-remaining-subscription-${kind}`);
  const parsed = value === undefined ? NaN : Number(value);
  return Number.isFinite(parsed) ? parsed : undefined;
}

/**
 * A `perRetry` pipeline policy: each ARM request (host `armHost`) waits for its slot in its
 * subscription's budget, tells the budget when ARM says little is left, and on 429 waits its Retry-After
 * (the budget pushes every later slot past it) and is sent again, so no change fails because of
 * throttling. Requests outside a subscription (tenant level) share the budget named `tenant`.
 */
export function armPacingPolicy(pacing: ArmPacing, armHost: string): PipelinePolicy {
  return {
    name: "cmkArmPacing",
    async sendRequest(request, next) {
      const url = new URL(request.url);
      if (url.host.toLowerCase() !== armHost.toLowerCase()) return next(request);
      const subscriptionId = SUBSCRIPTION_OF_PATH.exec(url.pathname)?.[1]?.toLowerCase() ?? "tenant";
      const kind: ArmRequestKind = request.method === "GET" || request.method === "HEAD" ? "reads" : "writes";
      for (let attempt = 1; ; attempt += 1) {
        const budget = pacing.current;
        // The budget lives in Redis: when it cannot be reached the request goes out unpaced, never stuck.
        await budget?.take(subscriptionId, kind).catch(() => undefined);
        pacing.stats.requests[kind] += 1;
        const response = await next(request);
        const wait = response.status === 429 ? (retryAfterMs(response.headers.get("retry-after")) ?? 1000) : undefined;
        const remaining = remainingOf(response, kind);
        if (budget && (wait !== undefined || (remaining !== undefined && remaining < budget.lowWater[kind]))) {
          await budget.observe(subscriptionId, kind, remaining, wait).catch(() => undefined);
        }
        if (wait === undefined || attempt >= MAX_THROTTLED_ATTEMPTS) return response;
        pacing.stats.throttled += 1;
        // Without a budget to hold the next slot back, wait here.
        if (!budget) await new Promise((resolve) => setTimeout(resolve, wait));
      }
    },
  };
}
