import type { ArmBudget, ArmRequestKind } from "../azure/arm-pacing.js";
import type { StoreContext } from "./store-context.js";

export interface ArmBudgetLimits {
  perSecond: number;
  burst: number;
}

/** The budget's limits as configured (CMK_ARM_*), the same in every process that sends ARM requests. */
export function armBudgetLimits(config: {
  CMK_ARM_WRITES_PER_SECOND: number;
  CMK_ARM_WRITE_BURST: number;
  CMK_ARM_READS_PER_SECOND: number;
  CMK_ARM_READ_BURST: number;
}): Record<ArmRequestKind, ArmBudgetLimits> {
  return {
    writes: { perSecond: config.CMK_ARM_WRITES_PER_SECOND, burst: config.CMK_ARM_WRITE_BURST },
    reads: { perSecond: config.CMK_ARM_READS_PER_SECOND, burst: config.CMK_ARM_READ_BURST },
  };
}

/** An idle bucket is gone after this long (it is full again by then anyway). */
const IDLE_MS = 10 * 60_000;

/**
 * ARM's per-subscription request budget as token buckets in Redis (scripts/arm-budget-1.lua), one per
 * subscription and kind, shared by every worker of the deployment: each ARM request reserves its slot
 * in one script call and waits for it, so the deployment as a whole sends at most `perSecond` (after a
 * burst of `burst`) per subscription, whatever the number of workers.
 */
export class RedisArmBudget implements ArmBudget {
  readonly lowWater: Record<ArmRequestKind, number>;

  constructor(
    private readonly store: StoreContext,
    private readonly limits: Record<ArmRequestKind, ArmBudgetLimits>,
  ) {
    // ARM's own count tells more than ours only when it is lower than a quarter of a burst.
    this.lowWater = { reads: limits.reads.burst / 4, writes: limits.writes.burst / 4 };
  }

  async take(subscriptionId: string, kind: ArmRequestKind): Promise<void> {
    const { perSecond, burst } = this.limits[kind];
    const [wait] = await this.store.redis.cmkArmBudget(this.store.keys.armBudget(subscriptionId, kind), burst, perSecond, "take", "", "", IDLE_MS);
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }

  async observe(subscriptionId: string, kind: ArmRequestKind, remaining: number | undefined, retryAfterMs: number | undefined): Promise<void> {
    const { perSecond, burst } = this.limits[kind];
    await this.store.redis.cmkArmBudget(
      this.store.keys.armBudget(subscriptionId, kind),
      burst,
      perSecond,
      "observe",
      remaining === undefined ? "" : String(remaining),
      retryAfterMs === undefined ? "" : String(Math.ceil(retryAfterMs)),
      IDLE_MS,
    );
  }
}
