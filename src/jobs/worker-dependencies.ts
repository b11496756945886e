import type { AzureCloud } from "../azure/cloud.js";
import type { FhirServicesAdapter } from "../azure/fhir-services.js";

/** What job steps use to reach Azure; built once per worker process. */
export interface WorkerDependencies {
  cloud: AzureCloud;
  fhirServices: FhirServicesAdapter;
}
