export interface EventStreamLimits {
  /** Streams one credential may hold open in this process. */
  perCredential: number;
  /** Streams this process holds open at most. */
  total: number;
}

/** Which cap a refused stream ran into. */
export type EventStreamCap = { scope: "credential" | "process"; limit: number };

/**
 * Places for open event streams, per credential and per process: each stream holds a file descriptor
 * and buffers, and nothing else bounds how many one key opens. `take` returns the release (idempotent)
 * or the cap that is full; a route releases when its stream closes, however it closes.
 */
export class EventStreamSlots {
  private readonly held = new Map<string, number>();
  private total = 0;

  constructor(private readonly limits: EventStreamLimits) {}

  /** Streams open now. */
  get open(): number {
    return this.total;
  }

  take(credential: string): { release: () => void } | { full: EventStreamCap } {
    const held = this.held.get(credential) ?? 0;
    if (held >= this.limits.perCredential) return { full: { scope: "credential", limit: this.limits.perCredential } };
    if (this.total >= this.limits.total) return { full: { scope: "process", limit: this.limits.total } };
    this.held.set(credential, held + 1);
    this.total += 1;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.total -= 1;
        const left = (this.held.get(credential) ?? 1) - 1;
        if (left > 0) this.held.set(credential, left);
        else this.held.delete(credential);
      },
    };
  }
}
