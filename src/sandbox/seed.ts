/**
 * The fixed world the sandbox starts with (api-contract.md, "Seed"). Tests and examples import these
 * constants instead of repeating ids. `world.ts` turns the declarative parts into live records.
 */

export const TENANT_ID = "11111111-1111-1111-1111-111111111111";
export const SUBSCRIPTION_ID = "22222222-2222-2222-2222-222222222222";
export const RESOURCE_GROUP = "rg-sandbox";
export const LOCATION = "westus3";
export const WORKSPACE = "wssandbox";

/** The second subscription (api-contract v1.1, "Seed additions"): cross-subscription cases. */
export const OTHER_SUBSCRIPTION_ID = "33333333-3333-3333-3333-333333333333";
export const OTHER_RESOURCE_GROUP = "rg-other";
export const OTHER_WORKSPACE = "wsother";
export const SUBSCRIPTION_IDS: readonly string[] = [SUBSCRIPTION_ID, OTHER_SUBSCRIPTION_ID];

export const FHIR_SYS = "fhir-sys";
export const FHIR_UAMI = "fhir-uami";
export const FHIR_NOROLE = "fhir-norole";
export const FHIR_OTHER = "fhir-other";

export const UAMI_SANDBOX = "uami-sandbox";
export const UAMI_NOROLE = "uami-norole";
export const UAMI_OTHER = "uami-other";

export const KV_SANDBOX = "kvsandbox";
export const KV_NOPURGE = "kvnopurge";
export const KV_EAST = "kveast";
export const KV_FIREWALL = "kvfirewall";

export const KEY_RSA_2048 = "cmk-rsa-2048";
export const KEY_RSA_3072 = "cmk-rsa-3072";
export const KEY_RSA_4096 = "cmk-rsa-4096";
export const KEY_EC = "cmk-ec";
export const KEY_DISABLED = "cmk-disabled";
export const KEY_EXPIRED = "cmk-expired";
export const KEY_NOWRAP = "cmk-nowrap";
/** `kvsandbox` + this name is 95 characters, one over the FHIR limit of 94. */
export const KEY_LONG_NAME = `cmk-${"a".repeat(82)}`;

/** The Managed HSM (issue 14): RSA-HSM 3072 key `cmk-hsm-3072`, local RBAC. */
export const MANAGED_HSM = "hsmsandbox";
export const KEY_HSM_3072 = "cmk-hsm-3072";

export const VERSION_1 = "00000000000000000000000000000001";
export const VERSION_2 = "00000000000000000000000000000002";

/** Built-in role definition ids (azure-contracts.md 6.1). */
export const ROLE = {
  owner: "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
  contributor: "b24988ac-6180-42a0-ab88-20f7382dd24c",
  reader: "acdd72a7-3385-48ef-bd42-f606fba81ae7",
  userAccessAdministrator: "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
  keyVaultAdministrator: "00482a5a-887f-4fb3-b363-3b7fe8e74483",
  keyVaultReader: "21090545-7ca7-4776-b22c-e363652d74d2",
  keyVaultCryptoOfficer: "14b46e9e-c2b7-41b4-b07b-48a6ebf60603",
  keyVaultCryptoUser: "12338af0-0e69-4776-bea7-57ae8d297424",
  keyVaultCryptoServiceEncryptionUser: "e147488a-f6f5-4113-8e2d-b22465e65bf6",
} as const;

/**
 * Managed HSM local RBAC built-in role definition ids (MicrosoftDocs azure-security-docs
 * `articles/key-vault/managed-hsm/built-in-roles.md`; azure-contracts.md 5.2).
 */
export const HSM_ROLE = {
  administrator: "a290e904-7015-4bba-90c8-60543313cdb4",
  cryptoOfficer: "515eb02d-2335-4d2d-92f2-b1cbdf9c3778",
  cryptoUser: "21dbd100-6940-42c2-9190-5d6cb909625b",
  policyAdministrator: "4bd23610-cdcf-4971-bdee-bdc562cc28e4",
  cryptoAuditor: "2c18b078-7c48-4d3a-af88-5a3a1b3f82b3",
  cryptoServiceEncryptionUser: "33413926-3206-4cdd-b39a-83574fe37a17",
  cryptoServiceReleaseUser: "21dbd100-6940-42c2-9190-5d6cb909625c",
  backup: "7b127d3c-77bd-4e3e-bbe0-dbb8971fa7f8",
  restore: "6efe6056-5259-49d2-8b3d-d3d73544b20b",
} as const;

export interface SeedApp {
  name: string;
  clientId: string;
  clientSecret: string;
  /** Object id of the app's service principal: the `oid` claim and the principal of role assignments. */
  objectId: string;
  /** App roles carried in tokens for audience `api://cmk-service`. */
  roles: string[];
}

export const SERVICE_APP: SeedApp = {
  name: "cmk-service",
  clientId: "44444444-4444-4444-4444-444444444444",
  clientSecret: "sandbox-service-secret",
  objectId: "c0000000-0000-4000-8000-000000000004",
  roles: [],
};
export const READER_APP: SeedApp = {
  name: "portal-reader",
  clientId: "55555555-5555-5555-5555-555555555555",
  clientSecret: "sandbox-reader-secret",
  objectId: "c0000000-0000-4000-8000-000000000005",
  roles: ["CMK.Reader"],
};
export const OPERATOR_APP: SeedApp = {
  name: "portal-operator",
  clientId: "66666666-6666-6666-6666-666666666666",
  clientSecret: "sandbox-operator-secret",
  objectId: "c0000000-0000-4000-8000-000000000006",
  roles: ["CMK.Operator"],
};
export const ADMIN_APP: SeedApp = {
  name: "portal-admin",
  clientId: "77777777-7777-7777-7777-777777777777",
  clientSecret: "sandbox-admin-secret",
  objectId: "c0000000-0000-4000-8000-000000000007",
  roles: ["CMK.Admin"],
};
/** Carries `CMK.Approver` (api-contract v1.1): approves and rejects changes that wait for approval. */
export const APPROVER_APP: SeedApp = {
  name: "portal-approver",
  clientId: "88888888-8888-8888-8888-888888888888",
  clientSecret: "sandbox-approver-secret",
  objectId: "c0000000-0000-4000-8000-000000000008",
  roles: ["CMK.Approver"],
};
export const APPS: readonly SeedApp[] = [SERVICE_APP, READER_APP, OPERATOR_APP, ADMIN_APP, APPROVER_APP];

/** The API the caller apps get tokens for (`api://cmk-service/.default`). */
export const SERVICE_API_AUDIENCE = "api://cmk-service";

/** Stable object ids of the seed managed identities. */
export const FHIR_SYS_PRINCIPAL_ID = "a0000000-0000-4000-8000-000000000001";
export const FHIR_NOROLE_PRINCIPAL_ID = "a0000000-0000-4000-8000-000000000002";
export const UAMI_SANDBOX_PRINCIPAL_ID = "b0000000-0000-4000-8000-000000000001";
export const UAMI_SANDBOX_CLIENT_ID = "b0000000-0000-4000-8000-0000000000c1";
export const UAMI_NOROLE_PRINCIPAL_ID = "b0000000-0000-4000-8000-000000000002";
export const UAMI_NOROLE_CLIENT_ID = "b0000000-0000-4000-8000-0000000000c2";
export const FHIR_OTHER_PRINCIPAL_ID = "a0000000-0000-4000-8000-000000000003";
export const UAMI_OTHER_PRINCIPAL_ID = "b0000000-0000-4000-8000-000000000003";
export const UAMI_OTHER_CLIENT_ID = "b0000000-0000-4000-8000-0000000000c3";

// ---------------------------------------------------------------------------------------------
// Helpers for ids and URLs.

export function resourceGroupId(resourceGroup = RESOURCE_GROUP, subscriptionId = SUBSCRIPTION_ID): string {
  return `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}`;
}

export function workspaceId(workspace = WORKSPACE, resourceGroup = RESOURCE_GROUP, subscriptionId = SUBSCRIPTION_ID): string {
  return `${resourceGroupId(resourceGroup, subscriptionId)}/providers/Microsoft.HealthcareApis/workspaces/${workspace}`;
}

export function fhirServiceId(name: string, workspace = WORKSPACE, resourceGroup = RESOURCE_GROUP, subscriptionId = SUBSCRIPTION_ID): string {
  return `${workspaceId(workspace, resourceGroup, subscriptionId)}/fhirservices/${name}`;
}

/** ARM id of a user-assigned identity; the service itself writes `resourcegroups` in lowercase. */
export function userAssignedIdentityId(name: string, resourceGroup = RESOURCE_GROUP, subscriptionId = SUBSCRIPTION_ID): string {
  return `/subscriptions/${subscriptionId}/resourcegroups/${resourceGroup}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${name}`;
}

/** `fhir-other` and `uami-other`, in the second subscription. */
export const FHIR_OTHER_ID = fhirServiceId(FHIR_OTHER, OTHER_WORKSPACE, OTHER_RESOURCE_GROUP, OTHER_SUBSCRIPTION_ID);
export const UAMI_OTHER_ID = userAssignedIdentityId(UAMI_OTHER, OTHER_RESOURCE_GROUP, OTHER_SUBSCRIPTION_ID);

export function vaultId(vault: string): string {
  return `${resourceGroupId()}/providers/Microsoft.KeyVault/vaults/${vault}`;
}

export function vaultUrl(vault: string): string {
  return `https://${vault}.vault.azure.net`;
}

export function keyUrl(vault: string, key: string, version?: string): string {
  return `${vaultUrl(vault)}/keys/${key}${version ? `/${version}` : ""}`;
}

export function managedHsmId(name = MANAGED_HSM): string {
  return `${resourceGroupId()}/providers/Microsoft.KeyVault/managedHSMs/${name}`;
}

export function managedHsmUrl(name = MANAGED_HSM): string {
  return `https://${name}.managedhsm.azure.net`;
}

export function hsmKeyUrl(name: string, key: string, version?: string): string {
  return `${managedHsmUrl(name)}/keys/${key}${version ? `/${version}` : ""}`;
}

export function fhirServiceUrl(name: string, workspace = WORKSPACE): string {
  return `https://${workspace}-${name}.fhir.azurehealthcareapis.com`;
}

export function roleDefinitionId(roleId: string, subscriptionId = SUBSCRIPTION_ID): string {
  return `/subscriptions/${subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${roleId}`;
}

// ---------------------------------------------------------------------------------------------
// Declarative seed consumed by world.ts.

/** Seed keys were "created" at a fixed time so that state dumps are stable. 2025-01-01T00:00:00Z. */
export const SEED_CREATED = 1_735_689_600;

export interface KeyVersionSeed {
  version: string;
  kty: "RSA" | "RSA-HSM" | "EC" | "EC-HSM";
  keySize?: number;
  crv?: string;
  keyOps?: string[];
  enabled?: boolean;
  /** Unix seconds. */
  exp?: number;
  created?: number;
}

export interface KeySeed {
  name: string;
  /** Oldest first; the last one is the current version. */
  versions: KeyVersionSeed[];
}

export interface VaultSeed {
  name: string;
  location: string;
  purgeProtection: boolean;
  publicNetworkAccess: "Enabled" | "Disabled";
  /** `networkAcls` as ARM reports it; absent means none configured. */
  networkAcls?: { bypass: "AzureServices" | "None"; defaultAction: "Allow" | "Deny"; ipRules: { value: string }[]; virtualNetworkRules: unknown[] };
  keys: KeySeed[];
}

const rsa2048 = (name: string, extra: Partial<KeyVersionSeed> = {}): KeySeed => ({
  name,
  versions: [{ version: VERSION_1, kty: "RSA", keySize: 2048, ...extra }],
});

export const SEED_VAULTS: readonly VaultSeed[] = [
  {
    name: KV_SANDBOX,
    location: LOCATION,
    purgeProtection: true,
    publicNetworkAccess: "Enabled",
    keys: [
      {
        name: KEY_RSA_2048,
        versions: [
          { version: VERSION_1, kty: "RSA", keySize: 2048, created: SEED_CREATED },
          { version: VERSION_2, kty: "RSA", keySize: 2048, created: SEED_CREATED + 86_400 },
        ],
      },
      { name: KEY_RSA_3072, versions: [{ version: VERSION_1, kty: "RSA", keySize: 3072 }] },
      { name: KEY_RSA_4096, versions: [{ version: VERSION_1, kty: "RSA", keySize: 4096 }] },
      { name: KEY_EC, versions: [{ version: VERSION_1, kty: "EC", crv: "P-256" }] },
      rsa2048(KEY_DISABLED, { enabled: false }),
      rsa2048(KEY_EXPIRED, { exp: SEED_CREATED + 30 * 86_400 }),
      rsa2048(KEY_NOWRAP, { keyOps: ["sign", "verify"] }),
      rsa2048(KEY_LONG_NAME),
    ],
  },
  { name: KV_NOPURGE, location: LOCATION, purgeProtection: false, publicNetworkAccess: "Enabled", keys: [rsa2048(KEY_RSA_2048)] },
  { name: KV_EAST, location: "eastus", purgeProtection: true, publicNetworkAccess: "Enabled", keys: [rsa2048(KEY_RSA_2048)] },
  {
    name: KV_FIREWALL,
    location: LOCATION,
    purgeProtection: true,
    publicNetworkAccess: "Disabled",
    networkAcls: { bypass: "None", defaultAction: "Deny", ipRules: [], virtualNetworkRules: [] },
    keys: [rsa2048(KEY_RSA_2048)],
  },
];

export interface LocalRoleAssignmentSeed {
  name: string;
  /** `/`, `/keys` or `/keys/{name}`. */
  scope: string;
  roleId: string;
  principalId: string;
}

export interface ManagedHsmSeed extends VaultSeed {
  localRoleAssignments: readonly LocalRoleAssignmentSeed[];
}

/** Local role assignment names are GUIDs too; these are predictable. */
function seedLocalAssignmentName(index: number): string {
  return `e0000000-0000-4000-8000-${index.toString(16).padStart(12, "0")}`;
}

/**
 * `hsmsandbox` (westus3, purge protection on; soft delete is always on for Managed HSM) in `rg-sandbox`.
 * Local RBAC: the FHIR identities may use `cmk-hsm-3072` (Managed HSM Crypto Service Encryption User on
 * the key); `cmk-service` manages keys (Crypto User) and deleted keys and role assignments (Crypto Officer).
 */
export const SEED_MANAGED_HSMS: readonly ManagedHsmSeed[] = [
  {
    name: MANAGED_HSM,
    location: LOCATION,
    purgeProtection: true,
    publicNetworkAccess: "Enabled",
    keys: [{ name: KEY_HSM_3072, versions: [{ version: VERSION_1, kty: "RSA-HSM", keySize: 3072 }] }],
    localRoleAssignments: [
      { scope: `/keys/${KEY_HSM_3072}`, roleId: HSM_ROLE.cryptoServiceEncryptionUser, principalId: FHIR_SYS_PRINCIPAL_ID },
      { scope: `/keys/${KEY_HSM_3072}`, roleId: HSM_ROLE.cryptoServiceEncryptionUser, principalId: UAMI_SANDBOX_PRINCIPAL_ID },
      { scope: "/", roleId: HSM_ROLE.cryptoUser, principalId: SERVICE_APP.objectId },
      { scope: "/", roleId: HSM_ROLE.cryptoOfficer, principalId: SERVICE_APP.objectId },
    ].map((assignment, index) => ({ ...assignment, name: seedLocalAssignmentName(index + 1) })),
  },
];

/** Where a seed resource lives: a subscription and one of its resource groups (all in `westus3`). */
export interface SeedPlace {
  subscriptionId: string;
  resourceGroup: string;
}

export const HOME: SeedPlace = { subscriptionId: SUBSCRIPTION_ID, resourceGroup: RESOURCE_GROUP };
export const OTHER: SeedPlace = { subscriptionId: OTHER_SUBSCRIPTION_ID, resourceGroup: OTHER_RESOURCE_GROUP };

export const SEED_RESOURCE_GROUPS: readonly SeedPlace[] = [HOME, OTHER];

export interface WorkspaceSeed {
  place: SeedPlace;
  name: string;
}

export const SEED_WORKSPACES: readonly WorkspaceSeed[] = [
  { place: HOME, name: WORKSPACE },
  { place: OTHER, name: OTHER_WORKSPACE },
];

export interface IdentitySeed {
  /** Default: HOME. */
  place?: SeedPlace;
  name: string;
  principalId: string;
  clientId: string;
}

export const SEED_IDENTITIES: readonly IdentitySeed[] = [
  { name: UAMI_SANDBOX, principalId: UAMI_SANDBOX_PRINCIPAL_ID, clientId: UAMI_SANDBOX_CLIENT_ID },
  { name: UAMI_NOROLE, principalId: UAMI_NOROLE_PRINCIPAL_ID, clientId: UAMI_NOROLE_CLIENT_ID },
  { place: OTHER, name: UAMI_OTHER, principalId: UAMI_OTHER_PRINCIPAL_ID, clientId: UAMI_OTHER_CLIENT_ID },
];

export interface FhirServiceSeed {
  /** Default: HOME, workspace `wssandbox`. */
  place?: SeedPlace;
  workspace?: string;
  name: string;
  /** A user-assigned identity is named by its seed name, in the service's own place. */
  identity: { type: "SystemAssigned"; principalId: string } | { type: "UserAssigned"; identity: string };
  keyEncryptionKeyUrl?: string;
  tags?: Record<string, string>;
}

export const SEED_FHIR_SERVICES: readonly FhirServiceSeed[] = [
  { name: FHIR_SYS, identity: { type: "SystemAssigned", principalId: FHIR_SYS_PRINCIPAL_ID }, tags: { environment: "sandbox" } },
  {
    name: FHIR_UAMI,
    identity: { type: "UserAssigned", identity: UAMI_SANDBOX },
    keyEncryptionKeyUrl: keyUrl(KV_SANDBOX, KEY_RSA_2048, VERSION_1),
  },
  { name: FHIR_NOROLE, identity: { type: "SystemAssigned", principalId: FHIR_NOROLE_PRINCIPAL_ID } },
  {
    place: OTHER,
    workspace: OTHER_WORKSPACE,
    name: FHIR_OTHER,
    identity: { type: "SystemAssigned", principalId: FHIR_OTHER_PRINCIPAL_ID },
    keyEncryptionKeyUrl: keyUrl(KV_SANDBOX, KEY_RSA_2048, VERSION_1),
  },
];

export interface RoleAssignmentSeed {
  name: string;
  scope: string;
  roleId: string;
  principalId: string;
}

const vaultNames = SEED_VAULTS.map((vault) => vault.name);

/** Role assignment names are GUIDs; the seed's are predictable so tests can address them. */
function seedAssignmentName(index: number): string {
  return `d0000000-0000-4000-8000-${index.toString(16).padStart(12, "0")}`;
}

export const SEED_ROLE_ASSIGNMENTS: readonly RoleAssignmentSeed[] = [
  { scope: `/subscriptions/${SUBSCRIPTION_ID}`, roleId: ROLE.contributor, principalId: SERVICE_APP.objectId },
  ...vaultNames.map((vault) => ({ scope: vaultId(vault), roleId: ROLE.keyVaultCryptoOfficer, principalId: SERVICE_APP.objectId })),
  ...vaultNames.flatMap((vault) =>
    [FHIR_SYS_PRINCIPAL_ID, UAMI_SANDBOX_PRINCIPAL_ID].map((principalId) => ({
      scope: vaultId(vault),
      roleId: ROLE.keyVaultCryptoServiceEncryptionUser,
      principalId,
    })),
  ),
  // The second subscription (appended, so the names above stay what tests address).
  { scope: `/subscriptions/${OTHER_SUBSCRIPTION_ID}`, roleId: ROLE.contributor, principalId: SERVICE_APP.objectId },
  ...[FHIR_OTHER_PRINCIPAL_ID, UAMI_OTHER_PRINCIPAL_ID].map((principalId) => ({
    scope: vaultId(KV_SANDBOX),
    roleId: ROLE.keyVaultCryptoServiceEncryptionUser,
    principalId,
  })),
].map((assignment, index) => ({ ...assignment, name: seedAssignmentName(index + 1) }));

// ---------------------------------------------------------------------------------------------
// Credentials of the service's own compute (issue 18): managed identity and AKS workload identity.

/** The AKS cluster's OIDC issuer the sandbox stands in for: it signs the pod's service account tokens. */
export const AKS_OIDC_ISSUER = `https://westus3.oic.prod-aks.azure.com/${TENANT_ID}/aks-sandbox/`;
/** The audience Entra requires of a federated token (AKS projects the token for it). */
export const TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange";
/** The service account the seed's federated credentials trust: namespace `cmk`, account `cmk-service`. */
export const WORKLOAD_SUBJECT = "system:serviceaccount:cmk:cmk-service";

export interface FederatedCredentialSeed {
  name: string;
  /** The app registration's or user-assigned identity's client id the credential belongs to. */
  clientId: string;
  issuer: string;
  subject: string;
  audiences: readonly string[];
}

/** Federated identity credentials: the service app's and uami-sandbox's trust the cluster's `cmk/cmk-service` account. */
export const FEDERATED_CREDENTIALS: readonly FederatedCredentialSeed[] = [
  { name: "aks-cmk-service", clientId: SERVICE_APP.clientId, issuer: AKS_OIDC_ISSUER, subject: WORKLOAD_SUBJECT, audiences: [TOKEN_EXCHANGE_AUDIENCE] },
  { name: "aks-cmk-service", clientId: UAMI_SANDBOX_CLIENT_ID, issuer: AKS_OIDC_ISSUER, subject: WORKLOAD_SUBJECT, audiences: [TOKEN_EXCHANGE_AUDIENCE] },
];
