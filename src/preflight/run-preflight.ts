import { fullReport, staticReport, type PreflightRequest, type ValidationReport } from "../domain/checks/preflight-report.js";
import { gatherFacts, type GatheredFacts, type PreflightAdapters } from "./gather-facts.js";
import type { AzureCloud } from "../azure/cloud.js";

export interface PreflightOutcome {
  report: ValidationReport;
  /** Undefined when the request was refused before anything was fetched. */
  facts?: GatheredFacts;
}

/**
 * Every pre-flight check for a would-be change: the ones that need no Azure first (a failure there
 * means nothing is fetched from a host outside the allowed suffixes), then the facts, then the rest.
 * Used by POST /v1/validations and by every job's first step.
 */
export async function runPreflight(
  adapters: PreflightAdapters & { cloud: AzureCloud },
  request: PreflightRequest,
  settings: { propagationWindowMs: number },
  now: () => Date = () => new Date(),
): Promise<PreflightOutcome> {
  const refused = staticReport(request, adapters.cloud);
  if (!refused.valid) return { report: refused };
  const facts = await gatherFacts(adapters, request);
  return { report: fullReport(request, facts, { cloud: adapters.cloud, ...settings }, now()), facts };
}
