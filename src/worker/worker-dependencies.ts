import type { AzureAdapters } from "../azure/adapters.js";

/** What job steps use: Azure, and the settings that shape the checks. Built once per worker process. */
export interface WorkerDependencies extends AzureAdapters {
  propagationWindowMs: number;
}
