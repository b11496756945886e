import { parseFhirServiceId } from "../../domain/arm-ids.js";
import { buildKeyChangeBody, currentKeyUrl, type FhirServiceResource } from "../../domain/fhir-resource.js";
import { parseKeyUrl } from "../../domain/key-url.js";
import type { RotateKeyRequest } from "../../schemas/change-requests.js";
import type { JobResult } from "../../schemas/jobs.js";
import { JobError } from "../../errors.js";
import { identityOf } from "../../preflight/resolve-request.js";
import { requireCustomerManagedKey } from "../steps/read-fhir-service.js";
import type { JobSteps } from "../job-steps.js";
import type { WorkerDependencies } from "../worker-dependencies.js";
import { preflight } from "../steps/preflight.js";
import { readFhirService, replacedSettings } from "../steps/read-fhir-service.js";
import { startArmUpdate, writeAndVerify } from "../steps/arm-update.js";
import { verifiedState } from "../steps/verify.js";
import { fleetPreflight } from "../steps/fleet-preflight.js";
import { findStep, type FleetMembership } from "../../domain/job-record.js";
import { namesKey } from "../../domain/fleet-plan.js";
import { isOperationInProgress } from "../../domain/fhir-resource.js";
import type { ArmUpdateStart } from "../steps/arm-update.js";
import type { JobContext } from "./index.js";

/**
 * Moves a FHIR service to a new version of its key: made now in Key Vault (as `az keyvault key rotate`),
 * or the newest existing one. The previous version stays enabled: data encrypted with it needs it.
 */
export async function runRotateKey(steps: JobSteps, deps: WorkerDependencies, request: RotateKeyRequest, job?: JobContext): Promise<JobResult> {
  if (job?.data.fleet) return runFleetRotateKey(steps, deps, request, job.data.fleet, job);
  const ref = parseFhirServiceId(request.fhirServiceId)!;
  // The service must have a customer-managed key and one identity: the rotation starts from them.
  const current = await steps.run("ReadFhirService", async () => {
    const read = await readFhirService(deps, ref);
    requireCustomerManagedKey(ref, read.output!);
    return read;
  });
  if (!request.dryRun) steps.noteReplaced(replacedSettings(current));
  const previous = parseKeyUrl(currentKeyUrl(current)!)!;
  const identity = identityOf(current)!;


  const newUrl = await steps.run<string>("PrepareKeyVersion", async () => {
    if (request.dryRun) {
      const latest = await deps.keyVault.latestVersionUrl(previous);
      return { status: "Skipped", message: `Dry run: no version made; the checks look at the newest existing version ${latest}.`, output: latest };
    }
    if (request.useLatestExistingVersion) {
      const latest = await deps.keyVault.latestVersionUrl(previous);
      if (latest === previous.url) {
        throw new JobError({ code: "NoNewerKeyVersion", message: `The service already uses the newest version of ${previous.keyName} (${previous.version}). Send RotateKey without useLatestExistingVersion to make a new one.`, target: previous.url });
      }
      return { message: `Newest existing version: ${latest}.`, output: latest };
    }
    const rotated = await deps.keyVault.rotate(previous);
    return { message: `Made a new version of ${previous.keyName} in ${previous.vaultName}: ${rotated}.`, output: rotated };
  });
  const change = { keyEncryptionKeyUrl: newUrl, identity };

  await steps.run("Preflight", (context) => preflight(deps, { fhirServiceId: request.fhirServiceId, keyEncryptionKeyUrl: newUrl, identity, fromCurrentKey: true }, context));
  const body = await steps.run<FhirServiceResource>("BuildResource", async () => ({
    message: `Full PUT body with key ${newUrl}.`,
    output: buildKeyChangeBody(current, change),
  }));
  if (request.dryRun) {
    await steps.skipRemaining("Dry run: nothing was sent to Azure.");
    return steps.succeed({ keyEncryptionKeyUrl: newUrl, previousKeyEncryptionKeyUrl: previous.url, identityType: identity.type, provisioningState: current.provisioningState ?? "Unknown", armWrites: 0, dryRun: true, resourceBody: body });
  }
  const { verified, wrote } = await writeAndVerify(steps, deps, ref, body, change);

  const previousEnabled = await steps.run<boolean>("CheckPreviousVersion", async () => {
    const facts = await deps.keyVault.keyFacts(previous);
    const enabled = facts.status === "found" && facts.value.enabled;
    return {
      message: enabled
        ? `Previous version ${previous.version} stays enabled: data encrypted before the rotation still needs it. Keep it enabled.`
        : `Previous version ${previous.version} is not enabled (${facts.status === "found" ? "disabled" : facts.status}): data encrypted with it may be unreadable. Enable it again.`,
      output: enabled,
    };
  });
  return steps.succeed({ ...verified, previousKeyEncryptionKeyUrl: previous.url, previousVersionEnabled: previousEnabled, armWrites: wrote ? 1 : 0 });
}

/**
 * A fleet rotation's child: the same steps as RotateKey, moving the service to the version its parent
 * resolved, spending as few ARM reads as a change can. The service is read once (ReadFhirService), the
 * checks use the key, vault and role assignments the parent read once for the fleet, the PUT goes out
 * on that read (read again only when an earlier attempt may have written), the operation is followed by
 * reading the resource when operations like it are over, and that read is what Verify judges. The
 * previous versions are checked once by the parent.
 */
async function runFleetRotateKey(steps: JobSteps, deps: WorkerDependencies, request: RotateKeyRequest, fleet: FleetMembership, job: JobContext): Promise<JobResult> {
  const ref = parseFhirServiceId(request.fhirServiceId)!;
  const target = fleet.targetKeyEncryptionKeyUrl;
  // A PUT may go out on this attempt's own read only: an earlier attempt's read may be stale, or it may have written.
  let readNow = false;
  const current = await steps.run("ReadFhirService", async () => {
    const read = await readFhirService(deps, ref);
    requireCustomerManagedKey(ref, read.output!);
    // Moved to another key since the parent found it: not the fleet's to change.
    if (!namesKey(parseKeyUrl(target)!, currentKeyUrl(read.output!))) {
      throw new JobError({ code: "KeyChanged", message: `FHIR service ${ref.fhirService} no longer uses the fleet's key: it uses ${currentKeyUrl(read.output!)}. It was not changed.`, target: ref.id });
    }
    readNow = true;
    return read;
  });
  steps.noteReplaced(replacedSettings(current));
  const previous = currentKeyUrl(current)!;
  const identity = identityOf(current)!;
  const change = { keyEncryptionKeyUrl: target, identity };
  await steps.run("PrepareKeyVersion", async () => ({ status: "Skipped", message: `The fleet rotation ${fleet.parentJobId} chose the version: ${target}.`, output: target }));
  await steps.run("Preflight", (context) => fleetPreflight(deps, job.fleets, fleet, { fhirServiceId: request.fhirServiceId, keyEncryptionKeyUrl: target, identity, fromCurrentKey: true }, current, context));
  const body = await steps.run<FhirServiceResource>("BuildResource", async () => ({ message: `Full PUT body with key ${target}.`, output: buildKeyChangeBody(current, change) }));
  const result = { keyEncryptionKeyUrl: target, previousKeyEncryptionKeyUrl: previous, identityType: identity.type };
  const notChecked = "The fleet rotation checks its services' previous versions once, when every child has ended.";

  const resumed = findStep(steps.record, "StartArmUpdate")?.status === "Running";
  const start = await steps.run<ArmUpdateStart>("StartArmUpdate", async (context) => {
    if (!readNow || resumed || isOperationInProgress(current)) return startArmUpdate(deps, ref, body, change, context);
    if (current.provisioningState === "Succeeded" && previous === target) {
      return { status: "Skipped", message: "The service already uses the target version: no write sent.", output: { kind: "alreadyApplied" } };
    }
    return { message: "ARM accepted the update.", output: { kind: "started", operation: await deps.fhirServices.startPut(ref, body) } };
  });
  let final: FhirServiceResource | undefined;
  if (start.kind === "started") {
    final = await steps.run<FhirServiceResource>("FollowOperation", async (context) => {
      let polls = 0;
      const resource = await deps.fhirServices.followPaced(ref, body, start.operation, () => {
        polls += 1;
      });
      await context.reportFraction(0.99);
      return { message: `Operation finished; ${polls} read(s) of the service while it ran: provisioningState ${resource.provisioningState ?? "unknown"}.`, output: resource };
    });
  } else {
    await steps.skip(["FollowOperation"], "No operation to follow.");
  }
  // The follow's last read is the resource as ARM has it after the write; without a write, read it now.
  const verified = await steps.run("Verify", async () => verifiedState(ref, final ?? (await deps.fhirServices.get(ref)), change));
  await steps.skip(["CheckPreviousVersion"], notChecked);
  return steps.succeed({ ...result, ...verified, armWrites: start.kind === "started" ? 1 : 0 });
}
