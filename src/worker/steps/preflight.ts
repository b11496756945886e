import { JobError } from "../../errors.js";
import { failedChecks } from "../../domain/checks/check-result.js";
import { propagationEndsAt } from "../../domain/checks/identity-checks.js";
import type { PreflightRequest, ValidationReport } from "../../domain/checks/preflight-report.js";
import { parseKeyUrl } from "../../domain/key-url.js";
import { runPreflight, type PreflightOutcome } from "../../preflight/run-preflight.js";
import { transientFacts } from "../../preflight/gather-facts.js";
import type { WorkerDependencies } from "../worker-dependencies.js";
import type { StepContext, StepOutcome } from "../job-steps.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Step 1 of every change: all pre-flight checks. A failed check ends the job with PreflightFailed and one
 * detail per failed check; warnings stay in the step's message and do not block. When the only failure
 * is a role assignment too new to have reached Key Vault, the step waits for it, checking again with
 * backoff, instead of failing.
 */
export async function preflight(deps: WorkerDependencies, request: PreflightRequest, context: StepContext): Promise<StepOutcome<ValidationReport>> {
  const settings = { propagationWindowMs: deps.propagationWindowMs };
  let outcome = await runPreflight(deps, request, settings);
  for (let round = 0; ; round += 1) {
    const waitUntil = propagationWait(outcome, request, deps.propagationWindowMs);
    if (!waitUntil) break;
    const delay = Math.max(250, Math.min(waitUntil.getTime() - Date.now() + 250, 2 ** round * 1000, 60_000));
    await context.reportFraction(
      Math.min(0.9, round / 10),
      `Waiting for a new role assignment to reach Key Vault (until ${waitUntil.toISOString()}); checking again in ${Math.round(delay / 1000)} s.`,
    );
    await sleep(delay);
    outcome = await runPreflight(deps, request, settings);
  }
  return judge(outcome, request);
}

/** When the only failed check is key access and a granting assignment is still propagating: until when. */
export function propagationWait(outcome: PreflightOutcome, request: PreflightRequest, propagationWindowMs: number): Date | undefined {
  const failures = failedChecks(outcome.report.checks);
  const key = parseKeyUrl(request.keyEncryptionKeyUrl);
  if (!outcome.facts || !key || failures.length !== 1 || failures[0]!.id !== "IdentityKeyAccess") return undefined;
  const { roleAssignments, vault } = outcome.facts;
  return propagationEndsAt({ roleAssignments, vault, key, now: new Date(), propagationWindowMs });
}

/** The step's outcome from a report: retry when Azure did not answer, fail on a failed check, else the summary. */
export function judge({ report, facts }: PreflightOutcome, request: PreflightRequest): StepOutcome<ValidationReport> {
  const unavailable = facts ? transientFacts(facts) : [];
  if (unavailable.length > 0) {
    throw new JobError({ code: "AzureUnavailable", message: `Azure did not answer every pre-flight lookup (${unavailable.join("; ")}).`, target: request.fhirServiceId }, true);
  }
  if (facts?.fhir.status === "missing" && !request.create) {
    // Nothing else matters when the service is not there: say so with its own code.
    throw new JobError({ code: "FhirServiceNotFound", message: `FHIR service ${request.fhirServiceId.split("/").at(-1)} was not found: ${request.fhirServiceId}.`, target: request.fhirServiceId });
  }
  const failures = failedChecks(report.checks);
  if (failures.length > 0) {
    throw new JobError({
      code: "PreflightFailed",
      message: `${failures.length} pre-flight check(s) failed: ${failures.map((check) => check.id).join(", ")}.`,
      target: request.fhirServiceId,
      details: failures.map((check) => ({ code: check.id, message: [check.message, check.remediation].filter(Boolean).join(" "), target: request.keyEncryptionKeyUrl })),
    });
  }
  return { message: summarize(report), output: report };
}

export function summarize(report: ValidationReport): string {
  const count = (status: string) => report.checks.filter((check) => check.status === status);
  const warnings = count("Warning");
  const parts = [`${count("Passed").length} passed`];
  if (warnings.length) parts.push(`${warnings.length} warning(s): ${warnings.map((check) => `${check.id}: ${check.message}`).join(" ")}`);
  const skippedChecks = count("Skipped");
  if (skippedChecks.length) parts.push(`${skippedChecks.length} skipped (${skippedChecks.map((check) => check.id).join(", ")})`);
  // A warning's message ends with its own full stop.
  return `Pre-flight checks: ${parts.join("; ").replace(/\.$/, "")}.`;
}
