/**
 * The emulator's time (api-contract v1.1, `POST /_sandbox/clock`). Every module reads it instead of
 * `Date.now()`: operation progress, key `nbf`/`exp`, the `iat`/`exp` of issued tokens and the expiry
 * checks on them, role-assignment ages, throttling refills. It runs with the wall clock, plus whatever
 * it was moved forward by; it never goes back (not even on reset), so nothing it stamped lies ahead of it.
 *
 * Clients keep their own clocks: a service that compares the emulator's timestamps with its own (a
 * role assignment's `createdOn`, a key's `exp`) does not see the advance.
 */
export class SandboxClock {
  private offsetMs = 0;

  /** Milliseconds since the epoch, like `Date.now()`. */
  now(): number {
    return Date.now() + this.offsetMs;
  }

  /** Unix seconds, as Key Vault attributes and token claims carry time. */
  nowSeconds(): number {
    return Math.floor(this.now() / 1000);
  }

  /** Moves the clock forward; a negative or non-finite amount is refused. */
  advance(seconds: number): void {
    if (!Number.isFinite(seconds) || seconds < 0) throw new RangeError("the clock only moves forward: 'advanceSeconds' must be a non-negative number");
    this.offsetMs += Math.round(seconds * 1000);
  }

  /** How far ahead of the wall clock the emulator is, in milliseconds. */
  get advancedMs(): number {
    return this.offsetMs;
  }
}
