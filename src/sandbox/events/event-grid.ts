import { randomUUID } from "node:crypto";
import type { SandboxClock } from "../clock.js";
import type { KeyRecord, KeyVersionRecord, ManagedHsmRecord, VaultRecord, World } from "../world.js";
import { eventGridTime, inSchema, keyEvent, NEAR_EXPIRY_SECONDS, subscriptionValidationEvent, type KeyEvent, type KeyEventType } from "./key-vault-events.js";
import type { DeliverySchema, SubscriptionSpec } from "./subscriptions.js";

/**
 * Event Grid for the emulated vaults' Key Vault events (api-contract v1.1, Compliance): webhook event
 * subscriptions, the validation handshake when they are registered, then one delivery per event and
 * subscription, asynchronous and at least once, retried like Event Grid.
 *
 * - Handshake (learn.microsoft.com/azure/event-grid/webhook-event-delivery and
 *   end-point-validation-cloud-events-schema): Event Grid schema, a POST of
 *   `Microsoft.EventGrid.SubscriptionValidationEvent` that must be answered 200 with `{ validationResponse }`;
 *   CloudEvents 1.0, the abuse-protection `OPTIONS` with `WebHook-Request-Origin: eventgrid.azure.net`
 *   that must be answered with `WebHook-Allowed-Origin` naming that origin or `*` (CloudEvents
 *   http-webhook.md section 4). The subscription's delivery headers go with the handshake too (Event
 *   Grid validates with them: delivery-properties.md).
 * - Deliveries: one event per request (Event Grid's default, no batching): the Event Grid schema as a
 *   JSON array of one event, CloudEvents as one `application/cloudevents+json` event, with the `aeg-*`
 *   headers. 200-204 is delivered; anything else is retried after Event Grid's schedule (10 s, 30 s,
 *   1 min, 5 min, 10 min, 30 min, 1 h, then hourly), never sooner than its status asks (400/401/403/404:
 *   5 min, 408: 2 min, 503: 30 s; delivery-and-retry.md), until the subscription's
 *   `maxDeliveryAttempts` or `eventTimeToLiveInMinutes`; then the event is dropped (no dead-lettering).
 *   Event Grid's random jitter is left out, so tests can count attempts.
 * - Delays run on the emulator's clock: `POST /_sandbox/clock` makes a retry due at once.
 * - Near expiry and expiry: Key Vault's rule, for the current version of each key in a vault, 30 days
 *   before `exp` and at `exp`, when the emulator's clock crosses the date (a tick every `tickMs`, and at
 *   once after the clock is moved). Managed HSMs publish no Event Grid events (the system topic type is
 *   `Microsoft.KeyVault.vaults`).
 *
 * One set of subscriptions covers every vault (Azure has a system topic per vault; the emulator's
 * subscriptions stand for one on each).
 */

export interface DeliveryAttempt {
  attempt: number;
  /** The emulator's clock when the attempt was made. */
  time: string;
  /** The endpoint's status, or the error when it did not answer. */
  status?: number;
  error?: string;
}

export type DeliveryState = "Pending" | "Delivered" | "Dropped";

interface Delivery {
  id: string;
  eventId: string;
  eventType: KeyEventType;
  subject: string;
  keyVersion: string;
  subscription: string;
  endpointUrl: string;
  schema: DeliverySchema;
  state: DeliveryState;
  dropReason?: "MaxDeliveryAttemptsExceeded" | "TimeToLiveExceeded" | "SubscriptionDeleted";
  attempts: DeliveryAttempt[];
  nextAttemptMs: number;
  expiresMs: number;
  inFlight: boolean;
  body: string;
}

interface Subscription extends SubscriptionSpec {
  validatedTime: string;
}

export interface HandshakeFailure {
  name: string;
  endpointUrl: string;
  reason: string;
}

export interface EventGridOptions {
  clock: SandboxClock;
  world: () => World;
  logger: { warn(message: string): void };
  /** How often due retries and key dates are looked at (real time). */
  tickMs?: number;
  /** How long an endpoint may take to answer (Event Grid waits 30 s). */
  attemptTimeoutMs?: number;
}

/** Event Grid's retry schedule after the n-th failed attempt (delivery-and-retry.md). */
const SCHEDULE_SECONDS = [10, 30, 60, 300, 600, 1800, 3600];
/** The least wait a status asks for (delivery-and-retry.md, "Failure codes"). */
function statusMinimumSeconds(status: number | undefined): number {
  if (status === 400 || status === 401 || status === 403 || status === 404) return 300;
  if (status === 408) return 120;
  if (status === 503) return 30;
  return 10;
}

export function retryDelaySeconds(failedAttempt: number, status: number | undefined): number {
  const scheduled = SCHEDULE_SECONDS[failedAttempt - 1] ?? 3600;
  return Math.max(scheduled, statusMinimumSeconds(status));
}

const ORIGIN = "eventgrid.azure.net";
/** Deliveries kept for `GET /_sandbox/event-subscriptions` (the oldest finished ones go first). */
const MAX_KEPT = 2000;

function isManagedHsm(vault: VaultRecord | ManagedHsmRecord): boolean {
  return "localRoleAssignments" in vault;
}

export class EventGridEmulator {
  private subscriptions: Subscription[] = [];
  private deliveries: Delivery[] = [];
  /** Key dates up to this time (emulator seconds) have been looked at. */
  private watchedUntil: number;
  private timer: NodeJS.Timeout | undefined;
  private readonly aborts = new Set<AbortController>();
  /** Bumped on reset and close: answers to requests sent before are ignored. */
  private generation = 0;
  private readonly tickMs: number;
  private readonly attemptTimeoutMs: number;

  constructor(private readonly options: EventGridOptions) {
    this.watchedUntil = options.clock.nowSeconds();
    this.tickMs = options.tickMs ?? 200;
    this.attemptTimeoutMs = options.attemptTimeoutMs ?? 30_000;
  }

  /**
   * Replaces the subscriptions after each new one passed its handshake (in parallel). Any failure
   * changes nothing and names the endpoints that failed, as Event Grid refuses to create a
   * subscription whose handshake fails.
   */
  async configure(specs: SubscriptionSpec[]): Promise<{ ok: true } | { ok: false; failures: HandshakeFailure[] }> {
    const generation = this.generation;
    const results = await Promise.all(specs.map(async (spec) => ({ spec, reason: await this.handshake(spec) })));
    if (generation !== this.generation) return { ok: false, failures: specs.map((spec) => ({ name: spec.name, endpointUrl: spec.endpointUrl, reason: "the sandbox was reset meanwhile" })) };
    const failures = results.filter((result) => result.reason !== undefined).map(({ spec, reason }) => ({ name: spec.name, endpointUrl: spec.endpointUrl, reason: reason! }));
    if (failures.length > 0) return { ok: false, failures };
    const validatedTime = eventGridTime(this.options.clock.now());
    this.subscriptions = specs.map((spec) => ({ ...spec, validatedTime }));
    for (const delivery of this.deliveries) {
      if (delivery.state === "Pending") Object.assign(delivery, { state: "Dropped", dropReason: "SubscriptionDeleted" });
    }
    // Only what happens from now on is published.
    this.watchedUntil = this.options.clock.nowSeconds();
    this.schedule();
    return { ok: true };
  }

  /** Data-plane create, import and rotate, and ARM's key create: `Microsoft.KeyVault.KeyNewVersionCreated`. */
  keyVersionCreated(vault: VaultRecord | ManagedHsmRecord, key: KeyRecord, version: KeyVersionRecord): void {
    if (isManagedHsm(vault)) return;
    this.publish(keyEvent("Microsoft.KeyVault.KeyNewVersionCreated", vault, key, version, this.options.clock.now()));
  }

  /** Looks at key dates the clock has passed and sends what is due. Also run after `POST /_sandbox/clock`. */
  tick(): void {
    this.watchKeyDates();
    this.pump();
  }

  reset(): void {
    this.generation++;
    for (const abort of this.aborts) abort.abort();
    this.subscriptions = [];
    this.deliveries = [];
    this.watchedUntil = this.options.clock.nowSeconds();
    this.schedule();
  }

  close(): void {
    this.reset();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Subscriptions (delivery header values withheld, as Event Grid shows secret ones) and every delivery with its attempts. */
  snapshot(): Record<string, unknown> {
    return {
      subscriptions: this.subscriptions.map((subscription) => ({
        name: subscription.name,
        endpointUrl: subscription.endpointUrl,
        schema: subscription.schema,
        headerNames: Object.keys(subscription.headers),
        retryPolicy: { maxDeliveryAttempts: subscription.maxDeliveryAttempts, eventTimeToLiveInMinutes: subscription.eventTimeToLiveMinutes },
        provisioningState: "Succeeded",
        validatedTime: subscription.validatedTime,
      })),
      deliveries: this.deliveries.map((delivery) => ({
        eventId: delivery.eventId,
        eventType: delivery.eventType,
        subject: delivery.subject,
        version: delivery.keyVersion,
        subscription: delivery.subscription,
        endpointUrl: delivery.endpointUrl,
        schema: delivery.schema,
        state: delivery.state,
        ...(delivery.dropReason ? { dropReason: delivery.dropReason } : {}),
        attempts: delivery.attempts,
        ...(delivery.state === "Pending" ? { nextAttemptTime: eventGridTime(delivery.nextAttemptMs) } : {}),
      })),
    };
  }

  private schedule(): void {
    if (this.subscriptions.length > 0 && !this.timer) {
      this.timer = setInterval(() => this.tick(), this.tickMs);
      this.timer.unref();
    } else if (this.subscriptions.length === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private publish(event: KeyEvent): void {
    if (this.subscriptions.length === 0) return;
    const nowMs = this.options.clock.now();
    for (const subscription of this.subscriptions) {
      const body = inSchema(event, subscription.schema);
      this.deliveries.push({
        id: randomUUID(),
        eventId: event.id,
        eventType: event.type,
        subject: event.subject,
        keyVersion: event.data.Version,
        subscription: subscription.name,
        endpointUrl: subscription.endpointUrl,
        schema: subscription.schema,
        state: "Pending",
        attempts: [],
        nextAttemptMs: nowMs,
        expiresMs: nowMs + subscription.eventTimeToLiveMinutes * 60_000,
        inFlight: false,
        body: JSON.stringify(subscription.schema === "EventGridSchema" ? [body] : body),
      });
    }
    this.trim();
    this.pump();
  }

  private trim(): void {
    let excess = this.deliveries.length - MAX_KEPT;
    if (excess <= 0) return;
    this.deliveries = this.deliveries.filter((delivery) => {
      if (excess <= 0 || delivery.state === "Pending") return true;
      excess--;
      return false;
    });
  }

  /** Near expiry (30 days before `exp`, or at creation when that is later) and expiry of each vault key's current version, crossed since the last look. */
  private watchKeyDates(): void {
    const from = this.watchedUntil;
    const now = this.options.clock.nowSeconds();
    if (now <= from) return;
    this.watchedUntil = now;
    if (this.subscriptions.length === 0) return;
    for (const vault of this.options.world().vaults.values()) {
      for (const key of vault.keys.values()) {
        const version = key.versions[key.versions.length - 1];
        if (!version || version.exp === undefined) continue;
        const nearAt = Math.max(version.exp - NEAR_EXPIRY_SECONDS, version.created);
        const crossed = (at: number) => from < at && at <= now;
        if (nearAt < version.exp && crossed(nearAt)) this.publish(keyEvent("Microsoft.KeyVault.KeyNearExpiry", vault, key, version, this.options.clock.now()));
        if (crossed(version.exp)) this.publish(keyEvent("Microsoft.KeyVault.KeyExpired", vault, key, version, this.options.clock.now()));
      }
    }
  }

  private pump(): void {
    const now = this.options.clock.now();
    for (const delivery of this.deliveries) {
      if (delivery.state !== "Pending" || delivery.inFlight || delivery.nextAttemptMs > now) continue;
      if (now >= delivery.expiresMs) {
        Object.assign(delivery, { state: "Dropped", dropReason: "TimeToLiveExceeded" });
        continue;
      }
      void this.attempt(delivery);
    }
  }

  private async attempt(delivery: Delivery): Promise<void> {
    const subscription = this.subscriptions.find((candidate) => candidate.name === delivery.subscription);
    if (!subscription) return;
    const generation = this.generation;
    delivery.inFlight = true;
    const attempt = delivery.attempts.length + 1;
    const time = eventGridTime(this.options.clock.now());
    const contentType = delivery.schema === "EventGridSchema" ? "application/json; charset=utf-8" : "application/cloudevents+json; charset=utf-8";
    const headers: Record<string, string> = {
      ...subscription.headers,
      "content-type": contentType,
      "aeg-event-type": "Notification",
      "aeg-subscription-name": subscription.name.toUpperCase(),
      "aeg-delivery-count": String(attempt - 1),
      "aeg-data-version": "1",
      "aeg-metadata-version": "1",
      ...(delivery.schema === "CloudEventSchemaV1_0" ? { "webhook-request-origin": ORIGIN } : {}),
    };
    const outcome = await this.send(delivery.endpointUrl, { method: "POST", headers, body: delivery.body });
    if (generation !== this.generation) return;
    delivery.inFlight = false;
    delivery.attempts.push({ attempt, time, ...("status" in outcome ? { status: outcome.status } : { error: outcome.error }) });
    const status = "status" in outcome ? outcome.status : undefined;
    if (status !== undefined && status >= 200 && status <= 204) {
      delivery.state = "Delivered";
      return;
    }
    if (attempt >= subscription.maxDeliveryAttempts) {
      Object.assign(delivery, { state: "Dropped", dropReason: "MaxDeliveryAttemptsExceeded" });
      this.options.logger.warn(`sandbox: Event Grid dropped ${delivery.eventType} ${delivery.eventId} for ${delivery.endpointUrl} after ${attempt} attempts`);
      return;
    }
    delivery.nextAttemptMs = this.options.clock.now() + retryDelaySeconds(attempt, status) * 1000;
  }

  /** Why the endpoint did not accept the subscription, or undefined when it did. */
  private async handshake(spec: SubscriptionSpec): Promise<string | undefined> {
    if (spec.schema === "CloudEventSchemaV1_0") {
      const outcome = await this.send(spec.endpointUrl, { method: "OPTIONS", headers: { ...spec.headers, "webhook-request-origin": ORIGIN } });
      if ("error" in outcome) return `the OPTIONS validation request failed: ${outcome.error}`;
      const allowed = outcome.headers.get("webhook-allowed-origin");
      if (allowed !== ORIGIN && allowed !== "*") {
        return `the OPTIONS validation request was answered ${outcome.status} without WebHook-Allowed-Origin: ${ORIGIN} (or *)${allowed ? ` (got '${allowed}')` : ""}`;
      }
      return undefined;
    }
    const code = randomUUID().toUpperCase();
    const world = this.options.world();
    const event = subscriptionValidationEvent(`/subscriptions/${world.subscriptionId}`, code, this.options.clock.now());
    const outcome = await this.send(spec.endpointUrl, {
      method: "POST",
      headers: {
        ...spec.headers,
        "content-type": "application/json; charset=utf-8",
        "aeg-event-type": "SubscriptionValidation",
        "aeg-subscription-name": spec.name.toUpperCase(),
        "aeg-delivery-count": "0",
        "aeg-data-version": "1",
        "aeg-metadata-version": "1",
      },
      body: JSON.stringify([event]),
    });
    if ("error" in outcome) return `the validation event could not be delivered: ${outcome.error}`;
    // Event Grid takes 200 only: "HTTP 202 Accepted is not recognized as a valid ... validation response".
    if (outcome.status !== 200) return `the validation event was answered ${outcome.status}; Event Grid needs 200 with {"validationResponse": "<validationCode>"}`;
    let answer: unknown;
    try {
      answer = JSON.parse(outcome.text);
    } catch {
      return "the validation event's answer is not JSON; Event Grid needs {\"validationResponse\": \"<validationCode>\"}";
    }
    const echoed = (answer as { validationResponse?: unknown } | null)?.validationResponse;
    if (echoed !== code) return `the validation event's answer does not echo the validationCode (validationResponse: ${JSON.stringify(echoed ?? null)})`;
    return undefined;
  }

  private async send(
    url: string,
    init: { method: string; headers: Record<string, string>; body?: string },
  ): Promise<{ status: number; headers: Headers; text: string } | { error: string }> {
    const abort = new AbortController();
    this.aborts.add(abort);
    const timer = setTimeout(() => abort.abort(new Error(`no answer within ${this.attemptTimeoutMs} ms`)), this.attemptTimeoutMs);
    try {
      const response = await fetch(url, { ...init, signal: abort.signal, redirect: "manual" });
      const text = await response.text();
      return { status: response.status, headers: response.headers, text };
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const reason = abort.signal.aborted && abort.signal.reason instanceof Error ? abort.signal.reason.message : (cause?.code ?? cause?.message ?? (error as Error).message);
      return { error: reason };
    } finally {
      clearTimeout(timer);
      this.aborts.delete(abort);
    }
  }
}
