import { parseFhirServiceId, parseUserAssignedIdentityId } from "../../domain/arm-ids.js";
import { buildCreateBody, type FhirServiceResource } from "../../domain/fhir-resource.js";
import type { CreateServiceRequest } from "../../schemas/change-requests.js";
import type { JobResult } from "../../schemas/jobs.js";
import { JobError } from "../../errors.js";
import type { JobSteps } from "../job-steps.js";
import type { WorkerDependencies } from "../worker-dependencies.js";
import { preflight } from "../steps/preflight.js";
import { writeAndVerify } from "../steps/arm-update.js";

/** A new FHIR service, encrypted with the customer-managed key from its first moment. */
export async function runCreateService(steps: JobSteps, deps: WorkerDependencies, request: CreateServiceRequest): Promise<JobResult> {
  const ref = parseFhirServiceId(request.fhirServiceId)!;
  const identityRef = parseUserAssignedIdentityId(request.identity.userAssignedIdentityId)!;
  const change = { keyEncryptionKeyUrl: request.keyEncryptionKeyUrl, identity: request.identity };

  await steps.run("Preflight", (context) =>
    preflight(deps, { fhirServiceId: request.fhirServiceId, keyEncryptionKeyUrl: request.keyEncryptionKeyUrl, identity: request.identity, create: { location: request.location } }, context),
  );
  const body = await steps.run<FhirServiceResource>("BuildResource", async () => {
    // The service's users sign in at the identity's tenant: the FHIR service's token authority.
    const identity = await deps.identities.userAssignedIdentity(identityRef);
    if (identity.status !== "found" || !identity.value.tenantId) {
      throw new JobError({ code: "IdentityNotFound", message: `User-assigned identity ${identityRef.name} could not be read.`, target: request.identity.userAssignedIdentityId }, identity.status === "unreadable" && identity.transient === true);
    }
    const built = buildCreateBody({
      location: request.location,
      ...(request.kind ? { kind: request.kind } : {}),
      ...(request.tags ? { tags: request.tags } : {}),
      keyEncryptionKeyUrl: request.keyEncryptionKeyUrl,
      userAssignedIdentityId: request.identity.userAssignedIdentityId,
      tenantId: identity.value.tenantId,
      authorityHost: deps.cloud.authorityHost,
      workspace: ref.workspace,
      fhirService: ref.fhirService,
      fhirSuffix: deps.cloud.fhirSuffix,
    });
    return { message: `New ${built.kind} service in ${built.location} with audience ${(built.authenticationConfiguration as { audience: string }).audience}.`, output: built };
  });

  if (request.dryRun) {
    await steps.skipRemaining("Dry run: nothing was sent to Azure.");
    return steps.succeed({ keyEncryptionKeyUrl: request.keyEncryptionKeyUrl, identityType: "UserAssigned", provisioningState: "NotCreated", armWrites: 0, dryRun: true, resourceBody: body });
  }
  const { verified, wrote } = await writeAndVerify(steps, deps, ref, body, change, { creating: true });
  return steps.succeed({ ...verified, armWrites: wrote ? 1 : 0 });
}
