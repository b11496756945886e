import {
  composeFhirService,
  composeWorkspace,
  systemData,
  type FhirServiceResource,
  type ServiceIdentity,
  type WorkspaceResource,
} from "./arm/healthcare-apis-model.js";
import type { DeploymentRecord } from "./arm/deployments.js";
import { lazyKeyMaterial, type KeyMaterial } from "./key-vault/key-material.js";
import * as seed from "./seed.js";

/**
 * The emulated Azure estate: everything ARM, Key Vault and the FHIR data plane read and write.
 * Plain records in maps keyed by lower-cased ids (Azure ids and names are case-insensitive).
 */

export interface KeyVersionRecord {
  version: string;
  kty: string;
  keySize?: number;
  crv?: string;
  keyOps: string[];
  enabled: boolean;
  /** Unix seconds. */
  nbf?: number;
  exp?: number;
  created: number;
  updated: number;
  tags: Record<string, string>;
  material: () => Promise<KeyMaterial>;
}

export interface RotationPolicyRecord {
  lifetimeActions: unknown[];
  expiryTime?: string;
  created: number;
  updated: number;
}

export interface KeyRecord {
  name: string;
  /** Oldest first; the last one is the current version. */
  versions: KeyVersionRecord[];
  rotationPolicy?: RotationPolicyRecord;
}

export interface DeletedKeyRecord {
  key: KeyRecord;
  /** Unix seconds. */
  deletedDate: number;
  scheduledPurgeDate: number;
}

export interface NetworkAcls {
  bypass: "AzureServices" | "None";
  defaultAction: "Allow" | "Deny";
  ipRules: { value: string }[];
  virtualNetworkRules: unknown[];
}

export interface VaultRecord {
  name: string;
  subscriptionId: string;
  resourceGroup: string;
  location: string;
  tenantId: string;
  purgeProtection: boolean;
  softDeleteRetentionInDays: number;
  publicNetworkAccess: "Enabled" | "Disabled";
  networkAcls?: NetworkAcls;
  createdAt: string;
  keys: Map<string, KeyRecord>;
  deletedKeys: Map<string, DeletedKeyRecord>;
}

/** A Managed HSM local role assignment: data-plane RBAC kept by the HSM itself, not by ARM. */
export interface LocalRoleAssignmentRecord {
  name: string;
  /** `/`, `/keys` or `/keys/{name}`. */
  scope: string;
  /** The role definition's GUID. */
  roleId: string;
  principalId: string;
}

/** A Managed HSM: a key store like a vault (same keys data plane), authorized by local RBAC. */
export interface ManagedHsmRecord extends VaultRecord {
  localRoleAssignments: Map<string, LocalRoleAssignmentRecord>;
}

export interface UserAssignedIdentityRecord {
  name: string;
  subscriptionId: string;
  resourceGroup: string;
  location: string;
  tenantId: string;
  principalId: string;
  clientId: string;
  tags: Record<string, string>;
}

export interface RoleAssignmentRecord {
  name: string;
  /** ARM scope without a trailing slash; `/` is the root scope. */
  scope: string;
  /** As sent (subscription-scoped form in real traffic). */
  roleDefinitionId: string;
  principalId: string;
  principalType: string;
  description: string | null;
  condition: string | null;
  conditionVersion: string | null;
  createdOn: string;
  updatedOn: string;
  createdBy: string | null;
  updatedBy: string | null;
}

export interface OperationError {
  code: string;
  message: string;
}

export type OperationStatus = "Running" | "Succeeded" | "Failed" | "Canceled";

export interface OperationRecord {
  id: string;
  subscriptionId: string;
  location: string;
  /** The resource the operation writes; only one operation per resource runs at a time. */
  resourceId: string;
  method: "PUT" | "PATCH" | "DELETE";
  startedAt: number;
  /** 7 fractional digits, as HealthcareApis reports it. */
  startTime: string;
  durationMs: number;
  status: OperationStatus;
  endedAt?: number;
  error?: OperationError;
  /** Set by a fault rule: the operation ends Failed with this error. */
  injectedError?: OperationError;
  /** Applies the write when the operation's time is up; an error makes the operation fail. */
  apply: () => OperationError | undefined;
  /** Undoes what the operation showed while running, after a failure. */
  rollback: (error: OperationError) => void;
}

/** A resource of the generic provider (arm/generic-resources.ts): what was PUT, as sent. */
export interface GenericResourceRecord {
  /** As the first PUT spelled it. */
  id: string;
  type: string;
  subscriptionId: string;
  resourceGroup: string;
  /** Tracked types only. */
  location?: string;
  tags?: Record<string, string>;
  /** The body's other members (sku, kind, identity, zones, properties), as sent. */
  body: Record<string, unknown>;
  createdAt: string;
  changedAt: string;
}

export interface ResourceGroupRecord {
  subscriptionId: string;
  name: string;
  location: string;
  /** Absent: none set (ARM then leaves `tags` out). */
  tags?: Record<string, string>;
}

export interface World {
  tenantId: string;
  /** The first seed subscription (the default for role definition ids and admin conveniences). */
  subscriptionId: string;
  /** Every subscription ARM knows, lower case; any other answers 404 SubscriptionNotFound. */
  subscriptions: Set<string>;
  /** Keyed by `resourceGroupKey`. */
  resourceGroups: Map<string, ResourceGroupRecord>;
  workspaces: Map<string, WorkspaceResource>;
  fhirServices: Map<string, FhirServiceResource>;
  vaults: Map<string, VaultRecord>;
  /** Keyed by lower-cased name, like vaults. */
  managedHsms: Map<string, ManagedHsmRecord>;
  identities: Map<string, UserAssignedIdentityRecord>;
  roleAssignments: Map<string, RoleAssignmentRecord>;
  operations: Map<string, OperationRecord>;
  /** Principals whose identity was disabled (scenario `disableIdentity`): they cannot reach any key. */
  disabledPrincipals: Set<string>;
  /** Template deployments (`Microsoft.Resources/deployments`), keyed by their lower-cased id. */
  deployments: Map<string, DeploymentRecord>;
  /** Custom role definitions (scenario `defineRole`, or a role definition PUT), keyed by lower-case GUID. */
  customRoles: Map<string, RoleDefinition>;
  /** Resources of the generic provider (Container Apps, Redis Enterprise, Event Grid system topics), keyed by `idKey`. */
  genericResources: Map<string, GenericResourceRecord>;
}

/** An Azure role definition as the emulator evaluates it (built-in or custom). */
export interface RoleDefinition {
  id: string;
  roleName: string;
  description: string;
  actions: string[];
  notActions: string[];
  dataActions: string[];
  notDataActions: string[];
  /** Custom roles only; built-in roles are assignable everywhere. */
  assignableScopes?: string[];
}

export function lower(id: string): string {
  return id.toLowerCase();
}

/** Canonical map key for an ARM id: lower case, `resourcegroups` spelling irrelevant. */
export function idKey(id: string): string {
  return id.toLowerCase().replace(/\/+$/, "");
}

/** The subscription an ARM scope lies in; `fallback` for scopes above subscriptions (`/`). */
export function subscriptionOfScope(scope: string, fallback: string): string {
  return /^\/subscriptions\/([^/]+)/i.exec(scope)?.[1] ?? fallback;
}

/** Resource group names are unique per subscription only. */
export function resourceGroupKey(subscriptionId: string, resourceGroup: string): string {
  return idKey(`/subscriptions/${subscriptionId}/resourcegroups/${resourceGroup}`);
}

function seedKeyVersion(vault: string, key: string, spec: seed.KeyVersionSeed, keyCacheDir: string | undefined): KeyVersionRecord {
  const created = spec.created ?? seed.SEED_CREATED;
  const record: KeyVersionRecord = {
    version: spec.version,
    kty: spec.kty,
    keyOps: spec.keyOps ?? ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"],
    enabled: spec.enabled ?? true,
    created,
    updated: created,
    tags: {},
    material: lazyKeyMaterial(spec, { name: `${vault}/${key}/${spec.version}`, ...(keyCacheDir ? { dir: keyCacheDir } : {}) }),
  };
  if (spec.keySize !== undefined) record.keySize = spec.keySize;
  if (spec.crv !== undefined) record.crv = spec.crv;
  if (spec.exp !== undefined) record.exp = spec.exp;
  return record;
}

function seedVault(spec: seed.VaultSeed, keyCacheDir: string | undefined): VaultRecord {
  const vault: VaultRecord = {
    name: spec.name,
    subscriptionId: seed.SUBSCRIPTION_ID,
    resourceGroup: seed.RESOURCE_GROUP,
    location: spec.location,
    tenantId: seed.TENANT_ID,
    purgeProtection: spec.purgeProtection,
    softDeleteRetentionInDays: 90,
    publicNetworkAccess: spec.publicNetworkAccess,
    createdAt: new Date(seed.SEED_CREATED * 1000).toISOString(),
    keys: new Map(),
    deletedKeys: new Map(),
  };
  if (spec.networkAcls) vault.networkAcls = structuredClone(spec.networkAcls);
  for (const key of spec.keys) {
    vault.keys.set(lower(key.name), {
      name: key.name,
      versions: key.versions.map((version) => seedKeyVersion(spec.name, key.name, version, keyCacheDir)),
    });
  }
  return vault;
}

function seedFhirService(spec: seed.FhirServiceSeed, identities: Map<string, UserAssignedIdentityRecord>): FhirServiceResource {
  const place = spec.place ?? seed.HOME;
  let identity: ServiceIdentity;
  if (spec.identity.type === "SystemAssigned") {
    identity = { type: "SystemAssigned", principalId: spec.identity.principalId, tenantId: seed.TENANT_ID };
  } else {
    const uamiId = seed.userAssignedIdentityId(spec.identity.identity, place.resourceGroup, place.subscriptionId);
    const uami = identities.get(idKey(uamiId));
    if (!uami) throw new Error(`seed: unknown identity ${spec.identity.identity}`);
    identity = { type: "UserAssigned", userAssignedIdentities: { [uamiId]: { principalId: uami.principalId, clientId: uami.clientId } } };
  }
  const created = seed.SEED_CREATED * 1000;
  const properties: Record<string, unknown> = {
    corsConfiguration: { origins: [], headers: [], methods: [], allowCredentials: false },
    exportConfiguration: {},
  };
  if (spec.keyEncryptionKeyUrl) {
    properties.encryption = { customerManagedKeyEncryption: { keyEncryptionKeyUrl: spec.keyEncryptionKeyUrl } };
  }
  return composeFhirService({
    address: { ...place, workspace: spec.workspace ?? seed.WORKSPACE, name: spec.name },
    tenantId: seed.TENANT_ID,
    location: seed.LOCATION,
    kind: "fhir-R4",
    tags: { ...spec.tags },
    identity,
    properties,
    provisioningState: "Succeeded",
    systemData: systemData(seed.SERVICE_APP.objectId, undefined, created),
    nowMs: created,
  });
}

function seedWorkspace(spec: seed.WorkspaceSeed): WorkspaceResource {
  return composeWorkspace({
    address: { ...spec.place, workspace: spec.name },
    location: seed.LOCATION,
    tags: {},
    systemData: systemData(seed.SERVICE_APP.objectId, undefined, seed.SEED_CREATED * 1000),
    nowMs: seed.SEED_CREATED * 1000,
  });
}

/**
 * A fresh world equal to the seed. Seed key material is shared across calls and, with `keyCacheDir`,
 * kept on disk (see key-material.ts).
 */
export function createSeedWorld(keyCacheDir?: string): World {
  const world: World = {
    tenantId: seed.TENANT_ID,
    subscriptionId: seed.SUBSCRIPTION_ID,
    subscriptions: new Set(seed.SUBSCRIPTION_IDS.map(lower)),
    resourceGroups: new Map(
      seed.SEED_RESOURCE_GROUPS.map((place) => [
        resourceGroupKey(place.subscriptionId, place.resourceGroup),
        { subscriptionId: place.subscriptionId, name: place.resourceGroup, location: seed.LOCATION },
      ]),
    ),
    workspaces: new Map(),
    fhirServices: new Map(),
    vaults: new Map(),
    managedHsms: new Map(),
    identities: new Map(),
    roleAssignments: new Map(),
    operations: new Map(),
    disabledPrincipals: new Set(),
    deployments: new Map(),
    customRoles: new Map(),
    genericResources: new Map(),
  };
  for (const spec of seed.SEED_WORKSPACES) {
    const workspace = seedWorkspace(spec);
    world.workspaces.set(idKey(workspace.id), workspace);
  }
  for (const spec of seed.SEED_IDENTITIES) {
    const place = spec.place ?? seed.HOME;
    world.identities.set(idKey(seed.userAssignedIdentityId(spec.name, place.resourceGroup, place.subscriptionId)), {
      name: spec.name,
      ...place,
      location: seed.LOCATION,
      tenantId: seed.TENANT_ID,
      principalId: spec.principalId,
      clientId: spec.clientId,
      tags: {},
    });
  }
  for (const spec of seed.SEED_FHIR_SERVICES) {
    const resource = seedFhirService(spec, world.identities);
    world.fhirServices.set(idKey(resource.id), resource);
  }
  for (const spec of seed.SEED_VAULTS) world.vaults.set(lower(spec.name), seedVault(spec, keyCacheDir));
  for (const spec of seed.SEED_MANAGED_HSMS) {
    const localRoleAssignments = new Map(spec.localRoleAssignments.map(({ name, scope, roleId, principalId }) => [name, { name, scope, roleId, principalId }]));
    world.managedHsms.set(lower(spec.name), { ...seedVault(spec, keyCacheDir), localRoleAssignments });
  }
  const createdOn = new Date(seed.SEED_CREATED * 1000).toISOString();
  for (const spec of seed.SEED_ROLE_ASSIGNMENTS) {
    world.roleAssignments.set(lower(spec.name), {
      name: spec.name,
      scope: spec.scope,
      // As Azure reports it: scoped to the subscription the assignment lives in.
      roleDefinitionId: seed.roleDefinitionId(spec.roleId, subscriptionOfScope(spec.scope, seed.SUBSCRIPTION_ID)),
      principalId: spec.principalId,
      principalType: "ServicePrincipal",
      description: null,
      condition: null,
      conditionVersion: null,
      createdOn,
      updatedOn: createdOn,
      createdBy: seed.SERVICE_APP.objectId,
      updatedBy: seed.SERVICE_APP.objectId,
    });
  }
  return world;
}
