import { SandboxClock } from "./clock.js";
import type { TokenService } from "./entra/tokens.js";
import { EventGridEmulator } from "./events/event-grid.js";
import { FaultInjector } from "./faults.js";
import { RequestLog } from "./request-log.js";
import { Throttling, type ThrottleOptions } from "./throttling.js";
import { createSeedWorld, type World } from "./world.js";

/** A token the Entra ID endpoint issued: the JWT and its claims. */
export interface IssuedToken {
  token: string;
  claims: Record<string, unknown>;
}

/**
 * The token endpoint's settings beyond the seed: shorter lifetimes for some audiences, and a listener told
 * of every token issued before the client gets it (a test standing in for a resource such as Azure's
 * Redis learns the tokens it must accept).
 */
export interface EntraOptions {
  /** Lifetime (seconds) of tokens issued for an audience, e.g. `{ "https://redis.azure.com": 40 }`; default 3599. */
  tokenLifetimeSeconds?: Record<string, number>;
  onTokenIssued?(issued: IssuedToken): void | Promise<void>;
}

export interface SandboxLogger {
  info(message: string): void;
  warn(message: string): void;
}

/** Everything the emulated services share: the world, token keys, faults, throttling and the request log. */
export interface SandboxRuntime {
  world: World;
  readonly tokens: TokenService;
  readonly faults: FaultInjector;
  readonly throttling: Throttling;
  readonly requestLog: RequestLog;
  readonly logger: SandboxLogger;
  /** The emulator's time: what every module reads instead of `Date.now()` (`POST /_sandbox/clock` moves it). */
  readonly clock: SandboxClock;
  readonly entra: EntraOptions;
  /** Event Grid's webhook subscriptions and deliveries of Key Vault events (`PUT /_sandbox/event-subscriptions`). */
  readonly events: EventGridEmulator;
  /** Duration of an emulated ARM write: the fault configuration's override, else the configured value. */
  lroMs(): number;
  /** Back to the seed: world, operations, faults, throttling buckets, request log and event subscriptions (the clock keeps its time). */
  reset(): void;
}

export interface RuntimeOptions {
  tokens: TokenService;
  lroMs: number;
  throttle?: ThrottleOptions;
  /** Where seed key material is kept between runs; absent: memory only. */
  keyCacheDir?: string;
  logger: SandboxLogger;
  entra?: EntraOptions;
  /** Real-time interval at which Event Grid looks for due retries and key dates (default 200 ms). */
  eventTickMs?: number;
}

export function createRuntime(options: RuntimeOptions): SandboxRuntime {
  const clock = new SandboxClock();
  const runtime: SandboxRuntime = {
    world: createSeedWorld(options.keyCacheDir),
    tokens: options.tokens,
    faults: new FaultInjector(),
    throttling: new Throttling(options.throttle, () => clock.now()),
    requestLog: new RequestLog(),
    logger: options.logger,
    clock,
    entra: options.entra ?? {},
    events: new EventGridEmulator({ clock, world: () => runtime.world, logger: options.logger, ...(options.eventTickMs ? { tickMs: options.eventTickMs } : {}) }),
    lroMs: () => runtime.faults.lroDurationMs ?? options.lroMs,
    reset() {
      runtime.world = createSeedWorld(options.keyCacheDir);
      runtime.faults.clear();
      runtime.throttling.clear();
      runtime.requestLog.clear();
      runtime.events.reset();
    },
  };
  return runtime;
}
