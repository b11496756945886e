import { parseFhirServiceId, parseUserAssignedIdentityId } from "../domain/arm-ids.js";
import type { FhirServiceFacts, KeyFacts, PrincipalFacts, RoleAssignmentFacts, VaultFacts } from "../domain/checks/facts.js";
import type { PreflightFacts, PreflightRequest } from "../domain/checks/preflight-report.js";
import type { FhirServiceResource } from "../domain/fhir-resource.js";
import { parseKeyUrl } from "../domain/key-url.js";
import type { GatheredFact } from "../azure/arm-facts.js";
import { readFact } from "../azure/arm-facts.js";
import type { FhirServicesAdapter } from "../azure/fhir-services.js";
import type { IdentitiesAdapter } from "../azure/identities.js";
import type { KeyVaultAdapter } from "../azure/key-vault.js";
import type { RoleAssignmentsAdapter } from "../azure/role-assignments.js";
import type { VaultsAdapter } from "../azure/vaults.js";

export interface PreflightAdapters {
  fhirServices: FhirServicesAdapter;
  keyVault: KeyVaultAdapter;
  vaults: VaultsAdapter;
  identities: IdentitiesAdapter;
  roleAssignments: RoleAssignmentsAdapter;
}

/** PreflightFacts, each fact marked when it is missing only because Azure was briefly unavailable. */
export interface GatheredFacts extends PreflightFacts {
  fhir: GatheredFact<FhirServiceFacts>;
  key: GatheredFact<KeyFacts>;
  vault: GatheredFact<VaultFacts>;
  principal: GatheredFact<PrincipalFacts>;
  roleAssignments: GatheredFact<RoleAssignmentFacts[]>;
  workspace?: GatheredFact<{ location: string }>;
}

export function fhirServiceFacts(resource: FhirServiceResource): FhirServiceFacts {
  const identity = resource.identity;
  const key = resource.encryption?.customerManagedKeyEncryption?.keyEncryptionKeyUrl;
  return {
    id: resource.id ?? "",
    location: resource.location ?? "",
    identityType: identity?.type ?? "None",
    ...(key ? { keyUrl: key } : {}),
    ...(identity?.principalId ? { systemPrincipalId: identity.principalId } : {}),
    userAssignedIdentityIds: Object.keys(identity?.userAssignedIdentities ?? {}),
  };
}

/**
 * Reads everything the checks need, as concurrently as the dependencies allow: the FHIR service, the
 * key, the vault and a user-assigned identity at once; role assignments as soon as the principal is
 * known (listed at the subscription scope, which includes vault- and key-scoped ones).
 */
export async function gatherFacts(adapters: PreflightAdapters, request: PreflightRequest): Promise<GatheredFacts> {
  const ref = parseFhirServiceId(request.fhirServiceId);
  const key = parseKeyUrl(request.keyEncryptionKeyUrl);
  if (!ref || !key) throw new Error("gatherFacts needs a parsed FHIR service id and key URL");

  const fhirPromise = readFact(async () => {
    const resource = await adapters.fhirServices.read(ref);
    return resource ? fhirServiceFacts(resource) : undefined;
  });
  const workspacePromise = request.create ? adapters.fhirServices.workspace(ref) : undefined;
  const keyPromise = adapters.keyVault.keyFacts(key);
  // A key URL names a vault, not its subscription. The vault is looked for through ARM in the FHIR
  // service's subscription only: the one the caller's allow-list admitted, so no caller makes the service
  // read a vault, or role assignments at its scope, in a subscription it may not use. A vault elsewhere is
  // "not found through ARM": its checks are judged from the key or skipped, and IdentityKeyAccess finds no
  // grant in this subscription, so it fails closed.
  const vaultPromise = adapters.vaults.vaultFacts(key.vaultName, [ref.subscriptionId]);

  const identity = request.identity;
  const principalPromise: Promise<GatheredFact<PrincipalFacts>> =
    identity.type === "UserAssigned"
      ? (async () => {
          const uamiRef = parseUserAssignedIdentityId(identity.userAssignedIdentityId);
          if (!uamiRef) return { status: "missing", detail: "not a user-assigned identity id" };
          const uami = await adapters.identities.userAssignedIdentity(uamiRef);
          return uami.status === "found"
            ? { status: "found", value: { kind: "UserAssigned", principalId: uami.value.principalId, userAssignedIdentityId: uami.value.id } }
            : uami;
        })()
      : fhirPromise.then((fhir): GatheredFact<PrincipalFacts> => {
          if (fhir.status !== "found") return fhir.status === "missing" ? { status: "unreadable", reason: "the FHIR service was not found" } : fhir;
          const principalId = fhir.value.identityType.includes("SystemAssigned") ? fhir.value.systemPrincipalId : undefined;
          return { status: "found", value: { kind: "SystemAssigned", ...(principalId ? { principalId } : {}) } };
        });

  const rolesPromise = principalPromise.then(async (principal): Promise<GatheredFact<RoleAssignmentFacts[]>> => {
    if (principal.status !== "found" || !principal.value.principalId) return { status: "missing", detail: "no principal to look up" };
    const principalId = principal.value.principalId;
    const inFhirSubscription = await adapters.roleAssignments.forPrincipal(ref.subscriptionId, `/subscriptions/${ref.subscriptionId}`, principalId);
    const vault = await vaultPromise;
    const vaultSubscription = vault.status === "found" ? vault.value.id.split("/")[2] : undefined;
    if (vault.status !== "found" || !vaultSubscription || vaultSubscription.toLowerCase() === ref.subscriptionId.toLowerCase()) return inFhirSubscription;
    // The vault lives elsewhere: ask at its own scope (inherited assignments included).
    return adapters.roleAssignments.forPrincipal(vaultSubscription, vault.value.id, principalId);
  });

  const [fhir, keyFact, vault, principal, roleAssignments, workspace] = await Promise.all([
    fhirPromise,
    keyPromise,
    vaultPromise,
    principalPromise,
    rolesPromise,
    workspacePromise,
  ]);
  return { fhir, key: keyFact, vault, principal, roleAssignments, ...(workspace ? { workspace } : {}) };
}

/** Facts Azure did not give because it was briefly unavailable: a job retries instead of judging. */
export function transientFacts(facts: GatheredFacts): string[] {
  return Object.entries(facts)
    .filter(([, fact]) => fact.transient)
    .map(([name, fact]) => `${name}: ${fact.status === "unreadable" ? fact.reason : fact.status}`);
}
