import type { AzureAdapters } from "../azure/adapters.js";

/** What job steps use to reach Azure; built once per worker process. */
export type WorkerDependencies = AzureAdapters;
