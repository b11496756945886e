import type { FastifyBaseLogger } from "fastify";
import { AzureUnavailableError } from "../errors.js";
import type { AzureAdapters } from "../azure/adapters.js";
import type { ChangeRequest } from "../schemas/change-requests.js";
import type { ValidationReport } from "../schemas/validations.js";
import { runPreflight } from "../preflight/run-preflight.js";
import { resolvePreflightRequest } from "../preflight/resolve-request.js";
import { transientFacts } from "../preflight/gather-facts.js";

/** Every pre-flight check for a would-be change, now: reads Azure, changes nothing, makes no job. */
export interface ValidationsService {
  validate(body: ChangeRequest, log: FastifyBaseLogger): Promise<ValidationReport>;
}

export function createValidationsService({ azure, propagationWindowMs }: { azure: AzureAdapters; propagationWindowMs: number }): ValidationsService {
  return {
    async validate(body, log) {
      const resolution = await resolvePreflightRequest(azure, body).catch((error: unknown) => {
        log.warn({ err: (error as Error).message }, "could not read the FHIR service");
        throw new AzureUnavailableError("the FHIR service");
      });
      if (resolution.kind === "refused") return resolution.report;
      const { report, facts } = await runPreflight(azure, resolution.request, { propagationWindowMs });
      // A report built on lookups Azure did not answer would look better than it is.
      const unavailable = facts ? transientFacts(facts) : [];
      if (unavailable.length > 0) throw new AzureUnavailableError(unavailable.join("; "));
      return report;
    },
  };
}
