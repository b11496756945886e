import type { Principal } from "../security/principal.js";
import type { AuditRecord } from "../schemas/audit.js";

/** Why a refused change request gets no audit entry of its own. */
export type UnauditedRefusal = "unauthenticated" | "rateLimited";

/** Principals (anonymous included) and addresses one period tracks at most; more are counted, not named. */
const MAX_PRINCIPALS = 100;
const MAX_ADDRESSES = 1000;
const TOP_ADDRESSES = 5;
const OTHERS = { name: "other principals" } as const;

interface Tally {
  principal: AuditRecord["principal"];
  unauthenticated: number;
  rateLimited: number;
  clients: Map<string, number>;
}

/**
 * Change requests refused without a valid credential (401) or over the rate limit (429): anyone can send
 * those as fast as the network allows, so each one writing an entry would let an anonymous client push
 * real entries out of the capped trail. They are counted here instead, per principal, and written as one
 * `RefusedSummary` entry per principal and period. Pure: no I/O, bounded memory.
 */
export class RefusalTally {
  private tallies = new Map<string, Tally>();

  constructor(private since: Date) {}

  add(principal: Principal | null, reason: UnauditedRefusal, ip: string): void {
    let key = principal ? `${principal.kind}:${principal.name}` : "anonymous";
    let tally = this.tallies.get(key);
    if (!tally && this.tallies.size >= MAX_PRINCIPALS) {
      key = "others";
      tally = this.tallies.get(key);
    }
    if (!tally) {
      const named = key === "others" ? OTHERS : principal ? { name: principal.name.slice(0, 200), kind: principal.kind } : { name: "anonymous", kind: "anonymous" as const };
      tally = { principal: named, unauthenticated: 0, rateLimited: 0, clients: new Map() };
      this.tallies.set(key, tally);
    }
    tally[reason] += 1;
    const address = ip.slice(0, 100);
    const seen = tally.clients.get(address);
    if (seen !== undefined || tally.clients.size < MAX_ADDRESSES) tally.clients.set(address, (seen ?? 0) + 1);
  }

  /** One summary per principal counted since the last drain (none when nothing was refused); starts a new period. */
  drain(now: Date): AuditRecord[] {
    const records = [...this.tallies.values()].map(
      (tally): AuditRecord => ({
        dateTime: now.toISOString(),
        outcome: "RefusedSummary",
        principal: tally.principal,
        summary: {
          since: this.since.toISOString(),
          count: tally.unauthenticated + tally.rateLimited,
          unauthenticated: tally.unauthenticated,
          rateLimited: tally.rateLimited,
          clients: [...tally.clients]
            .sort(([, a], [, b]) => b - a)
            .slice(0, TOP_ADDRESSES)
            .map(([ip, count]) => ({ ip, count })),
        },
      }),
    );
    this.tallies = new Map();
    this.since = now;
    return records;
  }
}
