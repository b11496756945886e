import type { FhirServiceRef } from "../domain/arm-ids.js";
import { diagnoseEncryption, type EncryptionHealth } from "../domain/encryption.js";
import { currentKeyUrl, type FhirServiceResource } from "../domain/fhir-resource.js";
import { parseKeyUrl } from "../domain/key-url.js";
import type { AzureAdapters } from "../azure/adapters.js";
import { gatherFacts } from "./gather-facts.js";
import { identityOf } from "./resolve-request.js";

/**
 * Diagnoses whether a FHIR service can use its key: the key and identity facts the pre-flight gathers,
 * whether a missing key sits soft-deleted, and what the FHIR data plane answers, all read concurrently.
 */
export async function diagnoseKeyAccess(
  adapters: AzureAdapters,
  ref: FhirServiceRef,
  resource: FhirServiceResource,
  settings: { propagationWindowMs: number },
): Promise<EncryptionHealth> {
  const url = currentKeyUrl(resource);
  const key = url ? parseKeyUrl(url) : undefined;
  const identity = identityOf(resource);
  const dataPlane = adapters.fhirDataPlane.metadataStatus(ref);
  if (!key || !identity) {
    const facts = { key: { status: "missing" }, vault: { status: "missing" }, principal: { status: "missing" }, roleAssignments: { status: "missing" } } as const;
    return diagnoseEncryption(ref, resource, identity, { ...facts, dataPlane: await dataPlane }, { now: new Date(), ...settings });
  }
  const [facts, plane] = await Promise.all([gatherFacts(adapters, { fhirServiceId: ref.id, keyEncryptionKeyUrl: key.url, identity }), dataPlane]);
  const deletedKey = facts.key.status === "missing" ? await adapters.keyVault.deletedKey(key) : undefined;
  return diagnoseEncryption(ref, resource, identity, { ...facts, ...(deletedKey ? { deletedKey } : {}), dataPlane: plane }, { now: new Date(), ...settings });
}
