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
import { writeAndVerify } from "../steps/arm-update.js";

/**
 * Moves a FHIR service to a new version of its key: made now in Key Vault (as `az keyvault key rotate`),
 * or the newest existing one. The previous version stays enabled: data encrypted with it needs it.
 */
export async function runRotateKey(steps: JobSteps, deps: WorkerDependencies, request: RotateKeyRequest): Promise<JobResult> {
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
