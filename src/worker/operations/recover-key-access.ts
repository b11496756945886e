import { parseFhirServiceId } from "../../domain/arm-ids.js";
import { buildKeyChangeBody, currentKeyUrl, type FhirServiceResource } from "../../domain/fhir-resource.js";
import { parseKeyUrl } from "../../domain/key-url.js";
import type { RecoverKeyAccessRequest } from "../../schemas/change-requests.js";
import type { JobResult } from "../../schemas/jobs.js";
import { JobError } from "../../errors.js";
import { identityOf } from "../../preflight/resolve-request.js";
import { requireCustomerManagedKey } from "../steps/read-fhir-service.js";
import type { JobSteps } from "../job-steps.js";
import type { WorkerDependencies } from "../worker-dependencies.js";
import { preflight } from "../steps/preflight.js";
import { readFhirService } from "../steps/read-fhir-service.js";
import { writeAndVerify } from "../steps/arm-update.js";

/**
 * Re-applies the key and identity the FHIR service has now (the docs' recovery advice: a full PUT that
 * matches the current properties), after the cause of lost access was fixed. Key Vault is changed only
 * when the request allows recovering a soft-deleted key; role assignments never. The result lists every
 * change made.
 */
export async function runRecoverKeyAccess(steps: JobSteps, deps: WorkerDependencies, request: RecoverKeyAccessRequest): Promise<JobResult> {
  const ref = parseFhirServiceId(request.fhirServiceId)!;
  // The service must have a customer-managed key and one identity: recovery re-applies them.
  const current = await steps.run("ReadFhirService", async () => {
    const read = await readFhirService(deps, ref);
    requireCustomerManagedKey(ref, read.output!);
    return read;
  });
  const key = parseKeyUrl(currentKeyUrl(current)!)!;
  const identity = identityOf(current)!;

  const change = { keyEncryptionKeyUrl: key.url, identity };
  const changes: string[] = [];

  const recovered = await steps.run<boolean>("RecoverDeletedKey", async () => {
    const facts = await deps.keyVault.keyFacts(key);
    if (facts.status !== "missing") return { status: "Skipped", message: "The key is not deleted.", output: false };
    const deleted = await deps.keyVault.deletedKey(key);
    if (deleted.status !== "found") {
      throw new JobError({ code: "KeyNotFound", message: `Key ${key.keyName} is neither in ${key.vaultName} nor soft-deleted there: it cannot be recovered.`, target: key.url });
    }
    if (!request.recoverDeletedKey || request.dryRun) {
      throw new JobError({
        code: "KeyDeleted",
        message: `Key ${key.keyName} is soft-deleted in ${key.vaultName}. ${request.dryRun ? "A dry run changes nothing in Key Vault." : "Send recoverDeletedKey: true to recover it, or run az keyvault key recover."}`,
        target: key.url,
      });
    }
    await deps.keyVault.recoverDeleted(key);
    return { message: `Recovered soft-deleted key ${key.keyName} in ${key.vaultName}.`, output: true };
  });
  if (recovered) changes.push(`Recovered soft-deleted key ${key.keyName} in vault ${key.vaultName}.`);

  await steps.run("Preflight", (context) => preflight(deps, { fhirServiceId: request.fhirServiceId, keyEncryptionKeyUrl: key.url, identity, fromCurrentKey: true }, context));
  const body = await steps.run<FhirServiceResource>("BuildResource", async () => ({
    message: `Full PUT body with the current key ${key.url} and identity ${identity.type}.`,
    output: buildKeyChangeBody(current, change),
  }));
  if (request.dryRun) {
    await steps.skipRemaining("Dry run: nothing was sent to Azure.");
    return steps.succeed({ keyEncryptionKeyUrl: key.url, identityType: identity.type, provisioningState: current.provisioningState ?? "Unknown", armWrites: 0, dryRun: true, resourceBody: body, changes });
  }
  const { verified } = await writeAndVerify(steps, deps, ref, body, change, { reapply: true });
  changes.push(`Re-applied key ${key.url} and identity ${identity.type} with a full ARM PUT.`);
  await steps.run("CheckFhirDataPlane", async () => {
    const plane = await deps.fhirDataPlane.metadataStatus(ref);
    if (plane.status !== undefined && plane.status >= 500) {
      throw new JobError({ code: "KeyAccessStillLost", message: `The FHIR API still answers ${plane.status} after the key was re-applied; see GET .../encryption/health.`, target: ref.id });
    }
    return { message: plane.detail };
  });
  return steps.succeed({ ...verified, armWrites: 1, changes });
}
