/**
 * What the pre-flight checks look at, gathered from Azure by the adapters. Each fact says whether it
 * was found, is missing, or could not be read by the service's own credential (and why), so a check can
 * answer Warning or Skipped instead of failing on what it could not see.
 */
export type Fact<T> =
  | { status: "found"; value: T }
  | { status: "missing"; detail?: string }
  | { status: "unreadable"; reason: string; cause?: UnreadableCause };

/** Why a fact could not be read: a firewall in the way, no permission, or Azure not answering. */
export type UnreadableCause = "firewall" | "permission" | "unavailable";

export interface KeyFacts {
  kid: string;
  keyType: string;
  /** Modulus length in bits for RSA keys. */
  keySize?: number;
  curve?: string;
  enabled: boolean;
  notBefore?: Date;
  expiresOn?: Date;
  keyOps: string[];
  recoveryLevel?: string;
  recoverableDays?: number;
}

export interface VaultFacts {
  /** Set for a Managed HSM, read as `Microsoft.KeyVault/managedHSMs`: local RBAC, soft delete always on. */
  managedHsm?: boolean;
  name: string;
  id: string;
  location: string;
  enableSoftDelete: boolean;
  enablePurgeProtection: boolean;
  softDeleteRetentionInDays?: number;
  enableRbacAuthorization: boolean;
  publicNetworkAccess: string;
  networkAcls?: { defaultAction?: string; bypass?: string };
}

export interface FhirServiceFacts {
  id: string;
  location: string;
  identityType: string;
  keyUrl?: string;
  systemPrincipalId?: string;
  userAssignedIdentityIds: string[];
}

/** The principal that will reach the key: the FHIR service's system identity or a user-assigned one. */
export interface PrincipalFacts {
  kind: "SystemAssigned" | "UserAssigned";
  /** Undefined when the system identity does not exist yet (the change creates it). */
  principalId?: string;
  userAssignedIdentityId?: string;
}

export interface RoleAssignmentFacts {
  id: string;
  scope: string;
  roleDefinitionId: string;
  roleName?: string;
  dataActions: string[];
  notDataActions: string[];
  createdOn?: Date;
}
