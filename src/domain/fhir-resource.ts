/**
 * The FHIR service resource as the service reads and writes it (the SDK's flattened model: the
 * `properties.*` members sit at the top level). Pure: no I/O.
 */

export type IdentityType = "SystemAssigned" | "UserAssigned";

export interface ManagedIdentity {
  type: string;
  principalId?: string;
  tenantId?: string;
  userAssignedIdentities?: Record<string, { principalId?: string; clientId?: string }>;
}

export interface FhirServiceResource {
  id?: string;
  name?: string;
  type?: string;
  location?: string;
  tags?: Record<string, string>;
  etag?: string;
  kind?: string;
  identity?: ManagedIdentity;
  provisioningState?: string;
  encryption?: { customerManagedKeyEncryption?: { keyEncryptionKeyUrl?: string } };
  [property: string]: unknown;
}

export type RequestedIdentity =
  | { type: "SystemAssigned" }
  | { type: "UserAssigned"; userAssignedIdentityId: string };

/** Members ARM fills in and ignores on PUT; leaving them out makes the body exactly what is sent. */
const READ_ONLY_MEMBERS = ["id", "name", "type", "systemData", "provisioningState", "privateEndpointConnections", "eventState"] as const;

/** The identity block to send for a requested identity. */
export function identityBody(identity: RequestedIdentity): ManagedIdentity {
  return identity.type === "SystemAssigned"
    ? { type: "SystemAssigned" }
    : { type: "UserAssigned", userAssignedIdentities: { [identity.userAssignedIdentityId]: {} } };
}

/**
 * The full PUT body that sets the key and identity on an existing FHIR service: every writable property
 * of `current` is kept (PUT replaces the resource; PATCH cannot carry the key), the identity and
 * `encryption.customerManagedKeyEncryption.keyEncryptionKeyUrl` are replaced.
 */
export function buildKeyChangeBody(
  current: FhirServiceResource,
  change: { keyEncryptionKeyUrl: string; identity: RequestedIdentity },
): FhirServiceResource {
  const body: FhirServiceResource = structuredClone(current);
  for (const member of READ_ONLY_MEMBERS) delete body[member];
  body.identity = identityBody(change.identity);
  body.encryption = { ...body.encryption, customerManagedKeyEncryption: { keyEncryptionKeyUrl: change.keyEncryptionKeyUrl } };
  return body;
}

/** provisioningState values that mean ARM is still working on the resource. */
const IN_PROGRESS_STATES = ["accepted", "creating", "updating", "deleting", "verifying", "moving"];

export function isOperationInProgress(resource: FhirServiceResource): boolean {
  return IN_PROGRESS_STATES.includes((resource.provisioningState ?? "").toLowerCase());
}

export function currentKeyUrl(resource: FhirServiceResource): string | undefined {
  return resource.encryption?.customerManagedKeyEncryption?.keyEncryptionKeyUrl || undefined;
}

/** `SystemAssigned`, `UserAssigned`, `None`, or the combined form, as ARM reports it. */
export function currentIdentityType(resource: FhirServiceResource): string {
  return resource.identity?.type ?? "None";
}

/** True when the resource has exactly the requested identity (one type; for UserAssigned, that one identity). */
export function identityMatches(resource: FhirServiceResource, requested: RequestedIdentity): boolean {
  const identity = resource.identity;
  if (!identity || identity.type.toLowerCase() !== requested.type.toLowerCase()) return false;
  if (requested.type === "SystemAssigned") return true;
  const assigned = Object.keys(identity.userAssignedIdentities ?? {}).map((id) => id.toLowerCase());
  return assigned.length === 1 && assigned[0] === requested.userAssignedIdentityId.toLowerCase();
}

/** True when the resource already has the requested key and identity: a PUT would change nothing. */
export function hasKeyAndIdentity(resource: FhirServiceResource, change: { keyEncryptionKeyUrl: string; identity: RequestedIdentity }): boolean {
  return currentKeyUrl(resource) === change.keyEncryptionKeyUrl && identityMatches(resource, change.identity);
}

/** Members of a FHIR service that ARM keeps at the top level; everything else sits under `properties`. */
const TOP_LEVEL_MEMBERS = ["id", "name", "type", "location", "tags", "etag", "kind", "identity", "systemData"];

/**
 * The wire (ARM JSON) form of a resource in the SDK's flattened model: what a PUT sends, and what an
 * ARM template's resource declares.
 */
export function toArmResource(resource: FhirServiceResource): Record<string, unknown> {
  const wire: Record<string, unknown> = {};
  const properties: Record<string, unknown> = {};
  for (const [member, value] of Object.entries(resource)) {
    if (value === undefined) continue;
    if (TOP_LEVEL_MEMBERS.includes(member)) wire[member] = value;
    else properties[member] = value;
  }
  if (Object.keys(properties).length > 0) wire.properties = properties;
  return wire;
}

export interface NewServiceSettings {
  location: string;
  kind?: string;
  tags?: Record<string, string>;
  keyEncryptionKeyUrl: string;
  userAssignedIdentityId: string;
  /** Entra ID tenant of the service's users: the FHIR service's token authority. */
  tenantId: string;
  authorityHost: string;
  workspace: string;
  fhirService: string;
  fhirSuffix: string;
}

/** The audience Azure gives a FHIR service by default: its own URL. */
export function fhirServiceUrl(workspace: string, fhirService: string, fhirSuffix: string): string {
  return `https://${workspace}-${fhirService}.${fhirSuffix}`;
}

/**
 * The PUT body of a new FHIR service with CMK from the start, as the portal's Security tab makes it:
 * user-assigned identity, FHIR R4, authority and audience derived as Azure derives them.
 */
export function buildCreateBody(settings: NewServiceSettings): FhirServiceResource {
  return {
    location: settings.location.toLowerCase().replace(/\s+/g, ""),
    ...(settings.tags ? { tags: settings.tags } : {}),
    kind: settings.kind ?? "fhir-R4",
    identity: identityBody({ type: "UserAssigned", userAssignedIdentityId: settings.userAssignedIdentityId }),
    authenticationConfiguration: {
      authority: `${settings.authorityHost}/${settings.tenantId}`,
      audience: fhirServiceUrl(settings.workspace, settings.fhirService, settings.fhirSuffix),
      smartProxyEnabled: false,
    },
    encryption: { customerManagedKeyEncryption: { keyEncryptionKeyUrl: settings.keyEncryptionKeyUrl } },
  };
}
