import { parseFhirServiceId, parseUserAssignedIdentityId } from "../domain/arm-ids.js";
import type { FhirServiceFacts, KeyFacts, PrincipalFacts, RoleAssignmentFacts, VaultFacts } from "../domain/checks/facts.js";
import type { PreflightFacts, PreflightRequest } from "../domain/checks/preflight-report.js";
import type { FhirServiceResource } from "../domain/fhir-resource.js";
import { isManagedHsmKey, parseKeyUrl } from "../domain/key-url.js";
import type { GatheredFact } from "../azure/arm-facts.js";
import { readFact } from "../azure/arm-facts.js";
import type { FhirServicesAdapter } from "../azure/fhir-services.js";
import type { IdentitiesAdapter } from "../azure/identities.js";
import type { KeyVaultAdapter } from "../azure/key-vault.js";
import type { ManagedHsmsAdapter } from "../azure/managed-hsms.js";
import type { RoleAssignmentsAdapter } from "../azure/role-assignments.js";
import type { VaultsAdapter } from "../azure/vaults.js";

export interface PreflightAdapters {
  fhirServices: FhirServicesAdapter;
  keyVault: KeyVaultAdapter;
  vaults: VaultsAdapter;
  managedHsms: ManagedHsmsAdapter;
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
 * Reads everything the checks need in one round of concurrent requests: the FHIR service, the key, the
 * vault, a user-assigned identity and the role assignments in the FHIR service's subscription (which
 * holds the vault: key-, vault-, group- and subscription-scoped ones, and those inherited from above).
 * The role assignments are listed for every principal and the principal's picked out once the FHIR
 * service or the identity has named it, so the principal does not cost a second round trip.
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
  // A Managed HSM key: the HSM is read as Microsoft.KeyVault/managedHSMs, and who may use its keys is in its
  // own local RBAC, on its data plane, not in ARM's role assignments.
  const hsm = isManagedHsmKey(key);
  const vaultPromise = hsm ? adapters.managedHsms.managedHsmFacts(key.vaultName, [ref.subscriptionId]) : adapters.vaults.vaultFacts(key.vaultName, [ref.subscriptionId]);

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

  // The vault is only looked for in the FHIR service's subscription (above), so that subscription's scope
  // covers every assignment that can grant access to the key. A service created with a system-assigned
  // identity has no principal yet: nothing is listed unless the service turns out to exist already.
  const principalId = principalPromise.then((principal) => (principal.status === "found" ? principal.value.principalId : undefined));
  const subscriptionScope = `/subscriptions/${ref.subscriptionId}`;
  const rolesFor = (id: string | undefined | PromiseLike<string | undefined>) =>
    hsm ? adapters.managedHsms.localRoleAssignments(key.vaultUrl, id) : adapters.roleAssignments.forPrincipal(ref.subscriptionId, subscriptionScope, id);
  const rolesPromise = request.create && identity.type === "SystemAssigned" ? principalId.then(rolesFor) : rolesFor(principalId);

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
