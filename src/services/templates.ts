import type { FastifyBaseLogger } from "fastify";
import { AzureUnavailableError, FhirServiceExistsError, FhirServiceNotFoundError, TemplateNotPossibleError, ValidationFailedError } from "../errors.js";
import { parseFhirServiceId, parseUserAssignedIdentityId, type FhirServiceRef } from "../domain/arm-ids.js";
import { needsExistingVault, renderTemplate, type TemplateFacts } from "../domain/arm-template.js";
import { failedChecks } from "../domain/checks/check-result.js";
import { checkKeyUrl } from "../domain/checks/key-url-checks.js";
import { currentKeyUrl } from "../domain/fhir-resource.js";
import { parseKeyUrl } from "../domain/key-url.js";
import { identityOf } from "../preflight/resolve-request.js";
import type { AzureAdapters } from "../azure/adapters.js";
import type { AzureCloud } from "../azure/cloud.js";
import type { TemplateRequest, TemplateResponse, CreateServiceTemplateRequest } from "../schemas/templates.js";

/** The key URL a template would deploy, as the request gives it, and where in the request it sits. */
function requestedKeyUrl(body: TemplateRequest): { url: string; path: string } | undefined {
  if (body.operation === "SetKey" || body.operation === "CreateService") return { url: body.keyEncryptionKeyUrl, path: "/body/keyEncryptionKeyUrl" };
  if (body.operation === "RotateKey" && body.options?.keyEncryptionKeyUrl) return { url: body.options.keyEncryptionKeyUrl, path: "/body/options/keyEncryptionKeyUrl" };
  return undefined;
}

/** The same URL checks a change request gets before anything is fetched. */
function refuseBadKeyUrl(body: TemplateRequest, cloud: AzureCloud): void {
  const key = requestedKeyUrl(body);
  if (!key) return;
  const refused = failedChecks(checkKeyUrl(key.url, cloud));
  if (refused.length > 0) {
    throw new ValidationFailedError(refused.map((check) => ({ path: key.path, message: `${check.id}: ${check.message} ${check.remediation ?? ""}`.trim() })));
  }
}

/** Reads Azure; anything but an answer is AzureUnavailable (503, retry), never a 5xx of ours. */
async function readAzure<T>(log: FastifyBaseLogger, what: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    log.warn({ err: (error as Error).message }, `could not read ${what}`);
    throw new AzureUnavailableError(what);
  }
}

/** What a CreateService template needs from Azure: the identity's tenant, and the vault for a role assignment. */
async function createServiceFacts(azure: AzureAdapters, ref: FhirServiceRef, body: CreateServiceTemplateRequest): Promise<Partial<TemplateFacts>> {
  const facts: Partial<TemplateFacts> = {};
  if (!body.options?.createIdentity) {
    // The job takes the service's token authority from the identity's tenant: so does the template.
    const identity = await azure.identities.userAssignedIdentity(parseUserAssignedIdentityId(body.identity.userAssignedIdentityId)!);
    if (identity.status === "missing") {
      throw new ValidationFailedError([{ path: "/body/identity/userAssignedIdentityId", message: "was not found: make it first, or send options.createIdentity: true." }]);
    }
    if (identity.status === "unreadable" && identity.transient) throw new AzureUnavailableError("the user-assigned identity");
    if (identity.status === "found" && identity.value.tenantId) facts.tenantId = identity.value.tenantId;
  }
  if (needsExistingVault(body.options)) {
    const key = parseKeyUrl(body.keyEncryptionKeyUrl)!;
    const vault = await azure.vaults.vaultFacts(key.vaultName, [ref.subscriptionId]);
    if (vault.status === "unreadable" && vault.transient) throw new AzureUnavailableError(`vault ${key.vaultName}`);
    if (vault.status === "found") facts.existingVaultId = vault.value.id;
  }
  return facts;
}

/**
 * ARM deployment templates for teams that deploy through their own pipelines: the route's service. Reads
 * the FHIR service (and, for CreateService, the identity's tenant and the vault); rendering is pure
 * (domain/arm-template.ts).
 */
export interface TemplatesService {
  /** The ARM deployment template and parameters that make the requested change; reads Azure, changes nothing. */
  render(body: TemplateRequest, log: FastifyBaseLogger): Promise<TemplateResponse>;
}

export function createTemplatesService({ azure, cloud }: { azure: AzureAdapters; cloud: AzureCloud }): TemplatesService {
  return {
    async render(body, log) {
      const ref = parseFhirServiceId(body.fhirServiceId)!;
      refuseBadKeyUrl(body, cloud);
      const current = await readAzure(log, "the FHIR service", () => azure.fhirServices.read(ref));
      const facts: TemplateFacts = { cloud };

      if (body.operation === "CreateService") {
        // A template for an existing service would replace every setting it has.
        if (current) throw new FhirServiceExistsError(ref);
        Object.assign(facts, await createServiceFacts(azure, ref, body));
      } else {
        if (!current) throw new FhirServiceNotFoundError(ref);
        facts.current = current;
        const identity = identityOf(current);
        if (identity) facts.currentIdentity = identity;
        const key = parseKeyUrl(currentKeyUrl(current) ?? "");
        if (body.operation === "RotateKey" && body.useLatestExistingVersion && !body.options?.keyEncryptionKeyUrl && key) {
          facts.latestKeyUrl = await readAzure(log, `the newest version of key ${key.keyName}`, () => azure.keyVault.latestVersionUrl(key));
        }
      }

      const outcome = renderTemplate(body, facts);
      if ("refused" in outcome) {
        const { path, message } = outcome.refused;
        throw path ? new ValidationFailedError([{ path, message }]) : new TemplateNotPossibleError(message);
      }
      return outcome.rendered;
    },
  };
}
