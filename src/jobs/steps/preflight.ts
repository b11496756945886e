import { JobError } from "../../errors.js";
import { failedChecks } from "../../domain/checks/check-result.js";
import type { ValidationReport } from "../../domain/checks/preflight-report.js";
import { runPreflight } from "../../preflight/run-preflight.js";
import { transientFacts } from "../../preflight/gather-facts.js";
import type { SetKeyRequest } from "../../schemas/change-requests.js";
import type { WorkerDependencies } from "../worker-dependencies.js";
import type { StepOutcome } from "../job-steps.js";

/**
 * Step 1 of every change: all pre-flight checks. A failed check ends the job with PreflightFailed and one
 * detail per failed check; warnings stay in the step's message and do not block.
 */
export async function preflight(deps: WorkerDependencies, request: SetKeyRequest): Promise<StepOutcome<ValidationReport>> {
  const { report, facts } = await runPreflight(deps, request);
  const unavailable = facts ? transientFacts(facts) : [];
  if (unavailable.length > 0) {
    throw new JobError({ code: "AzureUnavailable", message: `Azure did not answer every pre-flight lookup (${unavailable.join("; ")}).`, target: request.fhirServiceId }, true);
  }
  if (facts?.fhir.status === "missing") {
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
  return `Pre-flight checks: ${parts.join("; ")}.`;
}
