/** Parsing of the ARM ids the API accepts. Pure: no I/O. */

export interface FhirServiceRef {
  subscriptionId: string;
  resourceGroup: string;
  workspace: string;
  fhirService: string;
  /** The id as ARM spells it, from the parts. */
  id: string;
}

export interface UserAssignedIdentityRef {
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  id: string;
}

const GUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";
/**
 * Azure's rule: 1-90 letters, digits, `_`, `-`, `(`, `)` and periods, not ending in a period. So `.` and
 * `..` (which would rewrite the ARM path) are never a resource group; `%`, spaces and controls neither.
 */
const RESOURCE_GROUP = "[-a-zA-Z0-9_.()]{0,89}[-a-zA-Z0-9_()]";
const SERVICE_NAME = "[a-zA-Z0-9][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]";

/** Patterns of single path segments (route parameters), from the same parts as the ids below. */
export const SUBSCRIPTION_ID_PATTERN = `^${GUID}$`;
export const RESOURCE_GROUP_PATTERN = `^${RESOURCE_GROUP}$`;
export const SERVICE_NAME_PATTERN = `^${SERVICE_NAME}$`;

/** A literal path segment matched case-insensitively (JSON-schema patterns have no `i` flag). */
function anyCase(literal: string): string {
  return [...literal].map((c) => (/[a-z]/i.test(c) ? `[${c.toLowerCase()}${c.toUpperCase()}]` : c === "." ? "\\." : c)).join("");
}

/** JSON-schema patterns, so TypeBox schemas and parsers agree on what an id is. ARM ids ignore case. */
export const FHIR_SERVICE_ID_PATTERN =
  `^/${anyCase("subscriptions")}/${GUID}/${anyCase("resourceGroups")}/${RESOURCE_GROUP}/${anyCase("providers")}/${anyCase("Microsoft.HealthcareApis")}/${anyCase("workspaces")}/${SERVICE_NAME}/${anyCase("fhirservices")}/${SERVICE_NAME}$`;
export const USER_ASSIGNED_IDENTITY_ID_PATTERN =
  `^/${anyCase("subscriptions")}/${GUID}/${anyCase("resourceGroups")}/${RESOURCE_GROUP}/${anyCase("providers")}/${anyCase("Microsoft.ManagedIdentity")}/${anyCase("userAssignedIdentities")}/[a-zA-Z0-9][a-zA-Z0-9_-]{2,127}$`;

const fhirServiceIdRegex = new RegExp(FHIR_SERVICE_ID_PATTERN, "i");
const identityIdRegex = new RegExp(USER_ASSIGNED_IDENTITY_ID_PATTERN, "i");

export function parseFhirServiceId(id: string): FhirServiceRef | undefined {
  if (!fhirServiceIdRegex.test(id)) return undefined;
  const parts = id.split("/");
  return fhirServiceRef(parts[2]!, parts[4]!, parts[8]!, parts[10]!);
}

export function fhirServiceRef(subscriptionId: string, resourceGroup: string, workspace: string, fhirService: string): FhirServiceRef {
  return {
    subscriptionId,
    resourceGroup,
    workspace,
    fhirService,
    id: `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.HealthcareApis/workspaces/${workspace}/fhirservices/${fhirService}`,
  };
}

export function parseUserAssignedIdentityId(id: string): UserAssignedIdentityRef | undefined {
  if (!identityIdRegex.test(id)) return undefined;
  const parts = id.split("/");
  return { subscriptionId: parts[2]!, resourceGroup: parts[4]!, name: parts[8]!, id };
}

/** ARM ids are case-insensitive: one canonical form for comparisons and Redis keys. */
export function canonicalArmId(id: string): string {
  return id.toLowerCase().replace(/\/+$/, "");
}

export function sameArmId(a: string, b: string): boolean {
  return canonicalArmId(a) === canonicalArmId(b);
}
