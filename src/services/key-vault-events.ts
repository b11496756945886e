import type { FastifyBaseLogger } from "fastify";
import { readDelivery, sourceSubscription, type KeyVersionEvent } from "../domain/key-vault-events.js";
import { ValidationFailedError } from "../errors.js";
import type { KeyVaultEventStore } from "../job-store/key-vault-events.js";
import type { JobStore } from "../job-store/job-store.js";
import { followLatestVersion } from "../job-store/follow-latest.js";
import { newVersionMoves } from "../domain/compliance/follow.js";
import type { ApprovalPolicy } from "../domain/governance.js";
import type { CloudEvent, EventGridEvent, KeyVaultEventsAccepted } from "../schemas/compliance.js";
import { maySubscription, type Principal } from "../security/principal.js";

export type DeliveryAnswer = { validationResponse: string } | KeyVaultEventsAccepted;

/**
 * `POST /v1/events/key-vault`: Event Grid's deliveries of Key Vault events. The validation handshake is
 * answered; each key event is claimed once (Event Grid delivers at least once, so a duplicate or a
 * replay is counted and nothing more), and the new ones go to `onKeyVersionEvent`.
 */
export class KeyVaultEventService {
  constructor(
    private readonly store: KeyVaultEventStore,
    private readonly log: Pick<FastifyBaseLogger, "info" | "warn">,
    /** CMK_FOLLOW_LATEST_KEY_VERSION: the job store to start RotateKeys in, and CMK_APPROVALS for them. */
    private readonly follow?: { jobStore: JobStore; approvals: ApprovalPolicy },
  ) {}

  async accept(body: EventGridEvent[] | CloudEvent | CloudEvent[], principal: Principal, receivedAt: Date): Promise<DeliveryAnswer> {
    const read = readDelivery(body, receivedAt);
    if (read.kind === "invalid") throw new ValidationFailedError(read.errors);
    if (read.kind === "validation") return { validationResponse: read.validationCode };
    // A vault outside the credential's subscriptions is not the caller's to report on.
    const allowed = read.keyEvents.filter((event) => {
      const subscription = sourceSubscription(event.source);
      return subscription === undefined ? principal.subscriptions === undefined : maySubscription(principal, subscription);
    });
    const claims = await this.store.claim(allowed);
    const fresh = allowed.filter((_, i) => claims[i]);
    try {
      await this.onKeyVersionEvent(fresh);
    } catch (error) {
      // Not recorded: give the claims back so Event Grid's retry of this delivery is not taken for a duplicate.
      await this.store.release(fresh).catch(() => undefined);
      throw error;
    }
    return { received: read.received, recorded: fresh.length, duplicates: allowed.length - fresh.length, ignored: read.ignored + read.keyEvents.length - allowed.length };
  }

  /**
   * New Key Vault key events (first delivery of each): recorded in the job store per versionless key and,
   * with CMK_FOLLOW_LATEST_KEY_VERSION, a KeyNewVersionCreated moves every service the latest report has on
   * that key to the new version (one RotateKey each, job-store/follow-latest.ts: never two for the same
   * service and version, whether the scan or an event asks first).
   */
  async onKeyVersionEvent(events: readonly KeyVersionEvent[]): Promise<void> {
    if (events.length === 0) return;
    await this.store.record(events);
    for (const event of events) this.log.info({ eventId: event.eventId, type: event.type, keyId: event.keyId }, "key vault event recorded");
    if (!this.follow || !events.some((event) => event.type === "Microsoft.KeyVault.KeyNewVersionCreated")) return;
    const report = await this.follow.jobStore.compliance.latest();
    const moves = report ? newVersionMoves(report, events) : [];
    if (moves.length === 0) return;
    const outcome = await followLatestVersion(this.follow.jobStore, moves, this.follow.approvals);
    this.log.info({ ...outcome, moves: moves.length }, "following the latest key version: RotateKey jobs started");
  }
}
