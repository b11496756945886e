import type { CallbackDelivery } from "../schemas/jobs.js";
import type { StoreContext } from "./store-context.js";

/** Deliveries kept per job (the newest ones). */
const MAX_DELIVERIES = 100;

/** Each attempt to deliver a job's webhook, kept beside the job and shown in its status monitor. */
export class WebhookDeliveries {
  constructor(private readonly store: StoreContext) {}

  async record(jobId: string, delivery: CallbackDelivery): Promise<void> {
    const key = this.store.keys.callback(jobId);
    await this.store.redis.multi().rpush(key, JSON.stringify(delivery)).ltrim(key, -MAX_DELIVERIES, -1).pexpire(key, this.store.keepMs).exec();
  }
}

/** The stored attempts (oldest first); malformed ones are left out. */
export function parseDeliveries(texts: readonly string[]): CallbackDelivery[] {
  return texts.flatMap((text) => {
    try {
      return [JSON.parse(text) as CallbackDelivery];
    } catch {
      return [];
    }
  });
}
