import { JobError } from "../../errors.js";
import { failedChecks, type CheckResult } from "../../domain/checks/check-result.js";
import { checkKeyUrl } from "../../domain/checks/key-url-checks.js";
import type { SetKeyRequest } from "../../schemas/change-requests.js";
import type { WorkerDependencies } from "../worker-dependencies.js";
import type { StepOutcome } from "../job-steps.js";

/** Step 1 of every change: the pre-flight checks. A failed check ends the job with PreflightFailed. */
export async function preflight(deps: WorkerDependencies, request: SetKeyRequest): Promise<StepOutcome<CheckResult[]>> {
  const checks = checkKeyUrl(request.keyEncryptionKeyUrl, deps.cloud);
  const failures = failedChecks(checks);
  if (failures.length > 0) {
    throw new JobError({
      code: "PreflightFailed",
      message: `${failures.length} pre-flight check(s) failed: ${failures.map((check) => check.id).join(", ")}.`,
      target: request.fhirServiceId,
      details: failures.map((check) => ({ code: check.id, message: `${check.message} ${check.remediation ?? ""}`.trim() })),
    });
  }
  const warnings = checks.filter((check) => check.status === "Warning");
  return {
    message: `${checks.length} checks passed${warnings.length ? `, ${warnings.length} warning(s): ${warnings.map((w) => w.message).join(" ")}` : ""}.`,
    output: checks,
  };
}
