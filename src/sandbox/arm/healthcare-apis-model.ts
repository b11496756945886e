import { armTime, newEtag } from "../ids.js";

/** Wire shapes of Microsoft.HealthcareApis resources, as real traffic shows them (SUMMARY.md section 1). */

export const FHIR_SERVICE_TYPE = "Microsoft.HealthcareApis/workspaces/fhirservices";
export const WORKSPACE_TYPE = "Microsoft.HealthcareApis/workspaces";

export interface UserAssignedIdentityValue {
  principalId: string;
  clientId: string;
}

export interface ServiceIdentity {
  type: string;
  principalId?: string;
  tenantId?: string;
  userAssignedIdentities?: Record<string, UserAssignedIdentityValue>;
}

export interface SystemData {
  createdBy: string;
  createdByType: string;
  createdAt: string;
  lastModifiedBy: string;
  lastModifiedByType: string;
  lastModifiedAt: string;
}

export type FhirServiceProperties = Record<string, unknown> & {
  provisioningState: string;
  encryption?: { customerManagedKeyEncryption?: { keyEncryptionKeyUrl?: string } };
};

export interface FhirServiceResource {
  id: string;
  name: string;
  type: string;
  etag: string;
  location: string;
  kind: string;
  tags: Record<string, string>;
  properties: FhirServiceProperties;
  identity?: ServiceIdentity;
  systemData: SystemData;
}

export interface WorkspaceResource {
  id: string;
  name: string;
  type: string;
  etag: string;
  location: string;
  tags: Record<string, string>;
  properties: Record<string, unknown> & { provisioningState: string };
  systemData: SystemData;
}

export interface FhirServiceAddress {
  subscriptionId: string;
  resourceGroup: string;
  workspace: string;
  name: string;
}

export function fhirServiceResourceId(address: FhirServiceAddress): string {
  return `/subscriptions/${address.subscriptionId}/resourceGroups/${address.resourceGroup}/providers/Microsoft.HealthcareApis/workspaces/${address.workspace}/fhirservices/${address.name}`;
}

export function workspaceResourceId(address: Omit<FhirServiceAddress, "name">): string {
  return `/subscriptions/${address.subscriptionId}/resourceGroups/${address.resourceGroup}/providers/Microsoft.HealthcareApis/workspaces/${address.workspace}`;
}

/** `nowMs`: the emulator clock. */
export function systemData(principal: string, previous: SystemData | undefined, nowMs: number): SystemData {
  const at = armTime(nowMs);
  return {
    createdBy: previous?.createdBy ?? principal,
    createdByType: previous?.createdByType ?? "Application",
    createdAt: previous?.createdAt ?? at,
    lastModifiedBy: principal,
    lastModifiedByType: "Application",
    lastModifiedAt: at,
  };
}

export interface WorkspaceInput {
  address: Omit<FhirServiceAddress, "name">;
  location: string;
  tags: Record<string, string>;
  publicNetworkAccess?: unknown;
  systemData: SystemData;
  /** The emulator clock, for the etag. */
  nowMs: number;
}

/** A workspace as the RP stores it: provisioned at once (real traffic: PUT answers 201 with Succeeded). */
export function composeWorkspace(input: WorkspaceInput): WorkspaceResource {
  return {
    id: workspaceResourceId(input.address),
    name: input.address.workspace,
    type: WORKSPACE_TYPE,
    etag: newEtag(input.nowMs),
    location: input.location,
    tags: input.tags,
    properties: { privateEndpointConnections: [], publicNetworkAccess: input.publicNetworkAccess ?? "Enabled", provisioningState: "Succeeded" },
    systemData: input.systemData,
  };
}

export interface FhirServiceInput {
  address: FhirServiceAddress;
  tenantId: string;
  location: string;
  kind: string;
  tags: Record<string, string>;
  identity?: ServiceIdentity;
  /** Properties as requested; only writable ones are kept, defaults filled in. */
  properties: Record<string, unknown>;
  provisioningState: string;
  systemData: SystemData;
  /** The emulator clock, for the etag. */
  nowMs: number;
}

/**
 * The writable `FhirServiceProperties` of 2023-11-01. Anything else a request carries (read-only values
 * echoed back from a GET, names from other api-versions) is dropped, so responses only hold defined fields.
 */
const WRITABLE_PROPERTIES = new Set([
  "acrConfiguration",
  "authenticationConfiguration",
  "corsConfiguration",
  "encryption",
  "exportConfiguration",
  "implementationGuidesConfiguration",
  "importConfiguration",
  "publicNetworkAccess",
  "resourceVersionPolicyConfiguration",
]);

/**
 * Builds the stored body. The RP fills `accessPolicies`, `acrConfiguration`,
 * `resourceVersionPolicyConfiguration`, `eventState`, `privateEndpointConnections` and
 * `publicNetworkAccess` whether or not they were sent; the sandbox also defaults
 * `authenticationConfiguration` to the service's own audience.
 */
export function composeFhirService(input: FhirServiceInput): FhirServiceResource {
  const { address } = input;
  const requested: Record<string, unknown> = Object.fromEntries(Object.entries(input.properties).filter(([name]) => WRITABLE_PROPERTIES.has(name)));
  const properties: FhirServiceProperties = {
    accessPolicies: [],
    acrConfiguration: { loginServers: [] },
    authenticationConfiguration: {
      authority: `https://login.microsoftonline.com/${input.tenantId}`,
      audience: `https://${address.workspace}-${address.name}.fhir.azurehealthcareapis.com`,
      smartProxyEnabled: false,
    },
    ...requested,
    resourceVersionPolicyConfiguration: requested.resourceVersionPolicyConfiguration ?? { default: "versioned" },
    eventState: "Disabled",
    privateEndpointConnections: [],
    publicNetworkAccess: requested.publicNetworkAccess ?? "Enabled",
    provisioningState: input.provisioningState,
  };
  const resource: FhirServiceResource = {
    id: fhirServiceResourceId(address),
    // Real traffic names nested resources "workspace/service".
    name: `${address.workspace}/${address.name}`,
    type: FHIR_SERVICE_TYPE,
    etag: newEtag(input.nowMs),
    location: input.location,
    kind: input.kind,
    tags: input.tags,
    properties,
    systemData: input.systemData,
  };
  if (input.identity) resource.identity = input.identity;
  // Keep systemData last, as the service does.
  const { systemData: data, ...rest } = resource;
  return { ...rest, systemData: data };
}

export function keyEncryptionKeyUrlOf(resource: { properties: FhirServiceProperties }): string | undefined {
  return resource.properties.encryption?.customerManagedKeyEncryption?.keyEncryptionKeyUrl;
}

/** ARM normalizes locations: `West US 3` → `westus3`. */
export function normalizeLocation(location: string): string {
  return location.replace(/\s+/g, "").toLowerCase();
}
