/**
 * ARM deployment templates (and parameters files) that make a change request's change, for teams that
 * deploy through their own pipelines instead of the service's jobs. Pure: no I/O; the caller passes the
 * FHIR service as ARM has it now.
 *
 * The FHIR service resource in a template is the full body the job would PUT (buildKeyChangeBody /
 * buildCreateBody in the wire form of toArmResource): a deployment is a PUT, so a template that only
 * declared identity and encryption (as the documentation's samples do) would wipe every other setting.
 */
import type { AzureCloud } from "../azure/cloud.js";
import type { FhirServiceRef } from "./arm-ids.js";
import { parseFhirServiceId, parseUserAssignedIdentityId } from "./arm-ids.js";
import {
  buildCreateBody,
  buildKeyChangeBody,
  currentIdentityType,
  currentKeyUrl,
  toArmResource,
  type FhirServiceResource,
  type RequestedIdentity,
} from "./fhir-resource.js";
import { parseKeyUrl, type KeyUrl } from "./key-url.js";
import { CRYPTO_SERVICE_ENCRYPTION_USER } from "./checks/identity-checks.js";
import type { TemplateRequest } from "../schemas/templates.js";

export const DEPLOYMENT_TEMPLATE_SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#";
export const DEPLOYMENT_PARAMETERS_SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#";
export const CONTENT_VERSION = "1.0.0.0";

/**
 * api-versions of the resources the templates declare. fhirservices and workspaces use the version
 * @azure/arm-healthcareapis 3.0.0 sends (2023-11-01), so a deployment carries the same body the job's
 * PUT does; the others are the current stable versions.
 */
export const API_VERSIONS = {
  fhirServices: "2023-11-01",
  workspaces: "2023-11-01",
  vaults: "2023-07-01",
  keys: "2023-07-01",
  userAssignedIdentities: "2023-01-31",
  roleAssignments: "2022-04-01",
} as const;

export const RESOURCE_TYPES = {
  fhirServices: "Microsoft.HealthcareApis/workspaces/fhirservices",
  workspaces: "Microsoft.HealthcareApis/workspaces",
  vaults: "Microsoft.KeyVault/vaults",
  keys: "Microsoft.KeyVault/vaults/keys",
  userAssignedIdentities: "Microsoft.ManagedIdentity/userAssignedIdentities",
  roleAssignments: "Microsoft.Authorization/roleAssignments",
  roleDefinitions: "Microsoft.Authorization/roleDefinitions",
} as const;

/**
 * Key Vault Crypto Service Encryption User: keys read, wrap and unwrap, exactly what the FHIR service
 * needs and what the documentation's text asks for. The documentation's user-assigned sample template
 * assigns Key Vault Crypto Officer (14b46e9e-c2b7-41b4-b07b-48a6ebf60603) instead, which may also
 * create, delete and purge keys: we do not copy that.
 */
export const CRYPTO_SERVICE_ENCRYPTION_USER_ROLE_ID = CRYPTO_SERVICE_ENCRYPTION_USER;

export type TemplateParameterType = "string" | "securestring" | "int" | "bool" | "object" | "secureObject" | "array";

export interface TemplateParameter {
  type: TemplateParameterType;
  defaultValue?: unknown;
  metadata?: { description: string };
}

export interface TemplateResource {
  type: string;
  apiVersion: string;
  name: string;
  [member: string]: unknown;
}

export interface ArmTemplate {
  $schema: string;
  contentVersion: string;
  parameters: Record<string, TemplateParameter>;
  variables?: Record<string, unknown>;
  resources: TemplateResource[];
  outputs?: Record<string, { type: TemplateParameterType; value: unknown }>;
}

export interface ArmParametersFile {
  $schema: string;
  contentVersion: string;
  parameters: Record<string, { value: unknown }>;
}

export interface RenderedTemplate {
  template: ArmTemplate;
  parameters: ArmParametersFile;
  /** What the caller should know before deploying: the role used, what the template cannot do. */
  notes: string[];
}

/** Options of CreateService templates: what else the template creates besides the FHIR service. */
export interface CreateServiceTemplateOptions {
  createWorkspace?: boolean;
  createKeyVault?: boolean;
  createIdentity?: boolean;
  createRoleAssignment?: boolean;
}

/** Why a template cannot be made; `path` names the request field when one is to blame. */
export interface TemplateRefusal {
  path?: string;
  message: string;
}

export type TemplateOutcome = { rendered: RenderedTemplate } | { refused: TemplateRefusal };

// ---------------------------------------------------------------------------------------------
// Expressions. ARM reads a string "[...]" as an expression; "[[" starts a literal "[".

const literal = (value: string) => `'${value.replace(/'/g, "''")}'`;
const parameter = (name: string) => `parameters(${literal(name)})`;
const variable = (name: string) => `variables(${literal(name)})`;
const expression = (body: string) => `[${body}]`;
const concat = (...parts: string[]) => `concat(${parts.join(", ")})`;

/** Escapes every literal string (and member name) ARM would otherwise evaluate as an expression. */
export function escapeLiterals(value: unknown): unknown {
  if (typeof value === "string") return value.startsWith("[") && value.endsWith("]") ? `[${value}` : value;
  if (Array.isArray(value)) return value.map(escapeLiterals);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([member, inner]) => [escapeLiterals(member) as string, escapeLiterals(inner)]));
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// Parameters: one list gives both the template's declarations and the parameters file.

interface ParameterSpec {
  name: string;
  description: string;
  /** The request's value: the template's default and the parameters file's value. */
  value?: string;
  /** A default expression for when the request has no value (e.g. the subscription's tenant). */
  defaultExpression?: string;
}

function declareParameters(specs: ParameterSpec[]): { declarations: Record<string, TemplateParameter>; file: ArmParametersFile } {
  const declarations: Record<string, TemplateParameter> = {};
  const values: Record<string, { value: unknown }> = {};
  for (const spec of specs) {
    const defaultValue = spec.value !== undefined ? escapeLiterals(spec.value) : spec.defaultExpression;
    declarations[spec.name] = { type: "string", ...(defaultValue !== undefined ? { defaultValue } : {}), metadata: { description: spec.description } };
    // Parameters-file values are never evaluated: no escaping.
    if (spec.value !== undefined) values[spec.name] = { value: spec.value };
  }
  return { declarations, file: { $schema: DEPLOYMENT_PARAMETERS_SCHEMA, contentVersion: CONTENT_VERSION, parameters: values } };
}

function assemble(
  specs: ParameterSpec[],
  resources: TemplateResource[],
  notes: string[],
  extra: { variables?: Record<string, unknown>; outputs?: ArmTemplate["outputs"] } = {},
): RenderedTemplate {
  const { declarations, file } = declareParameters(specs);
  const template: ArmTemplate = {
    $schema: DEPLOYMENT_TEMPLATE_SCHEMA,
    contentVersion: CONTENT_VERSION,
    parameters: declarations,
    ...(extra.variables ? { variables: extra.variables } : {}),
    resources,
    ...(extra.outputs ? { outputs: extra.outputs } : {}),
  };
  return { template, parameters: file, notes };
}

const FHIR_SERVICE_NAME = expression(concat(parameter("workspaceName"), literal("/"), parameter("fhirServiceName")));
const FHIR_SERVICE_ID = expression(`resourceId(${literal(RESOURCE_TYPES.fhirServices)}, ${parameter("workspaceName")}, ${parameter("fhirServiceName")})`);
const FHIR_SERVICE_OUTPUTS: ArmTemplate["outputs"] = { fhirServiceId: { type: "string", value: FHIR_SERVICE_ID } };

function serviceParameters(ref: FhirServiceRef): ParameterSpec[] {
  return [
    { name: "workspaceName", description: "The Azure Health Data Services workspace.", value: ref.workspace },
    { name: "fhirServiceName", description: "The FHIR service.", value: ref.fhirService },
  ];
}

/**
 * The writable `properties` of a FHIR service at api-version 2023-11-01 (FhirServiceProperties without
 * its read-only members). The SDK's serializer sends nothing else, so neither does a template: a GET
 * also answers members such as `accessPolicies` that the job's PUT never carries.
 */
export const FHIR_SERVICE_WRITABLE_PROPERTIES = [
  "acrConfiguration",
  "authenticationConfiguration",
  "corsConfiguration",
  "exportConfiguration",
  "publicNetworkAccess",
  "resourceVersionPolicyConfiguration",
  "importConfiguration",
  "implementationGuidesConfiguration",
  "encryption",
] as const;

/** The members of `body`'s properties that the api-version does not define (and the SDK does not send). */
export function undeclaredProperties(body: FhirServiceResource): string[] {
  const wire = toArmResource(body);
  return Object.keys((wire.properties ?? {}) as object).filter((name) => !(FHIR_SERVICE_WRITABLE_PROPERTIES as readonly string[]).includes(name));
}

/**
 * The FHIR service resource: the job's wire body with literals escaped, then the request's values
 * replaced by expressions over the parameters (location, identity, key URL).
 */
function fhirServiceResource(
  body: FhirServiceResource,
  values: { identityId?: string; keyEncryptionKeyUrl: string; authority?: string; audience?: string },
  dependsOn: string[] = [],
): TemplateResource {
  const wire = escapeLiterals(toArmResource(body)) as Record<string, unknown>;
  const undeclared = new Set(undeclaredProperties(body));
  const properties = Object.fromEntries(
    Object.entries(structuredClone((wire.properties ?? {}) as Record<string, Record<string, unknown>>)).filter(([name]) => !undeclared.has(name)),
  );
  const encryption = properties.encryption ?? {};
  properties.encryption = { ...encryption, customerManagedKeyEncryption: { keyEncryptionKeyUrl: values.keyEncryptionKeyUrl } };
  if (values.authority || values.audience) {
    properties.authenticationConfiguration = {
      ...properties.authenticationConfiguration,
      ...(values.authority ? { authority: values.authority } : {}),
      ...(values.audience ? { audience: values.audience } : {}),
    };
  }
  const identity = values.identityId
    ? { ...(wire.identity as object), userAssignedIdentities: { [values.identityId]: {} } }
    : wire.identity;
  return {
    type: RESOURCE_TYPES.fhirServices,
    apiVersion: API_VERSIONS.fhirServices,
    name: FHIR_SERVICE_NAME,
    ...(dependsOn.length > 0 ? { dependsOn } : {}),
    ...wire,
    ...(wire.location !== undefined ? { location: expression(parameter("region")) } : {}),
    ...(identity !== undefined ? { identity } : {}),
    properties,
  };
}

const ROLE_NOTE =
  `The role for key access is Key Vault Crypto Service Encryption User (${CRYPTO_SERVICE_ENCRYPTION_USER_ROLE_ID}: keys read, wrapKey, unwrapKey), ` +
  "the role the documentation's text asks for; its sample template assigns Key Vault Crypto Officer (14b46e9e-c2b7-41b4-b07b-48a6ebf60603), " +
  "which could also delete and purge keys, and is not used here.";

const API_VERSIONS_NOTE =
  `api-versions: fhirservices and workspaces ${API_VERSIONS.fhirServices} (what the service's own SDK sends), vaults and keys ${API_VERSIONS.vaults}, ` +
  `userAssignedIdentities ${API_VERSIONS.userAssignedIdentities}, roleAssignments ${API_VERSIONS.roleAssignments}.`;

function deployNote(ref: FhirServiceRef): string {
  return `Deploy to resource group ${ref.resourceGroup} of subscription ${ref.subscriptionId}: az deployment group create --subscription ${ref.subscriptionId} --resource-group ${ref.resourceGroup} --template-file template.json --parameters @parameters.json`;
}

// ---------------------------------------------------------------------------------------------
// SetKey (and the SetKey that RotateKey and RecoverKeyAccess amount to).

export interface KeyChange {
  keyEncryptionKeyUrl: string;
  identity: RequestedIdentity;
}

/**
 * The template that sets `change` on the existing FHIR service `current`: one fhirservices resource
 * with every writable property of `current` (a deployment is a PUT), the identity and key from the
 * parameters. Deploying it sends exactly the body a SetKey job PUTs.
 */
export function renderKeyChangeTemplate(ref: FhirServiceRef, current: FhirServiceResource, change: KeyChange, notes: string[] = []): RenderedTemplate {
  const userAssigned = change.identity.type === "UserAssigned" ? change.identity.userAssignedIdentityId : undefined;
  const specs: ParameterSpec[] = [
    ...serviceParameters(ref),
    ...(current.location !== undefined ? [{ name: "region", description: "The FHIR service's region (it cannot move).", value: current.location }] : []),
    { name: "keyEncryptionKeyUrl", description: "Versioned key identifier: https://{vault}.vault.azure.net/keys/{name}/{version}.", value: change.keyEncryptionKeyUrl },
    ...(userAssigned ? [{ name: "userAssignedIdentityId", description: "ARM id of the user-assigned identity that reaches the key.", value: userAssigned }] : []),
  ];
  const body = buildKeyChangeBody(current, change);
  const resource = fhirServiceResource(body, {
    keyEncryptionKeyUrl: expression(parameter("keyEncryptionKeyUrl")),
    // The literal id (a parameter), so the deployed value is the job's whatever group the identity is in.
    ...(userAssigned ? { identityId: expression(parameter("userAssignedIdentityId")) } : {}),
  });
  return assemble(specs, [resource], [...notes, ...keyChangeNotes(ref, current, body, change)], { outputs: FHIR_SERVICE_OUTPUTS });
}

function keyChangeNotes(ref: FhirServiceRef, current: FhirServiceResource, body: FhirServiceResource, change: KeyChange): string[] {
  const notes = [
    `The FHIR service resource carries every current setting of ${ref.fhirService} (a deployment replaces the resource, like the job's PUT): ` +
      "deploy it soon, and get a new template if the service's settings change meanwhile, or the deployment puts the old ones back.",
    deployNote(ref),
  ];
  const undeclared = undeclaredProperties(body);
  if (undeclared.length > 0) {
    notes.push(`Left out, as the job's PUT leaves them out: ${undeclared.join(", ")} (read from Azure, not FHIR service properties at api-version ${API_VERSIONS.fhirServices}).`);
  }
  const from = currentIdentityType(current);
  if (from.toLowerCase() !== change.identity.type.toLowerCase()) {
    notes.push(
      `The identity type changes from ${from} to ${change.identity.type}: export and import jobs that use the old identity may be affected.` +
        (change.identity.type === "SystemAssigned"
          ? " A new system-assigned identity has no key access yet: enable it first (portal Identity page or a PATCH), grant it the role below, then deploy."
          : ""),
    );
  }
  notes.push(
    change.identity.type === "SystemAssigned"
      ? `The service's system-assigned identity must hold Key Vault Crypto Service Encryption User (${CRYPTO_SERVICE_ENCRYPTION_USER_ROLE_ID}) on the key or its vault; this template does not grant it.`
      : `The user-assigned identity must hold Key Vault Crypto Service Encryption User (${CRYPTO_SERVICE_ENCRYPTION_USER_ROLE_ID}) on the key or its vault; this template does not grant it.`,
    ROLE_NOTE,
    API_VERSIONS_NOTE,
  );
  return notes;
}

export interface CurrentKeyChangeRequest {
  operation: "RotateKey" | "RecoverKeyAccess";
  useLatestExistingVersion?: boolean;
  recoverDeletedKey?: boolean;
  options?: { keyEncryptionKeyUrl?: string };
}

/**
 * RotateKey and RecoverKeyAccess as templates: each is a SetKey with the service's current identity
 * (`identity`: its one identity, undefined when it has none or both kinds).
 * RecoverKeyAccess re-applies the current key; RotateKey moves to the version in
 * `options.keyEncryptionKeyUrl` or, with useLatestExistingVersion, to `latestKeyUrl`. What only Key
 * Vault's data plane can do (make a key version, recover a deleted key) no template can: refused.
 */
export function planCurrentKeyChange(
  request: CurrentKeyChangeRequest,
  current: FhirServiceResource,
  identity: RequestedIdentity | undefined,
  latestKeyUrl?: string,
): { change: KeyChange; notes: string[] } | { refused: TemplateRefusal } {
  const currentUrl = currentKeyUrl(current);
  const currentKey = currentUrl ? parseKeyUrl(currentUrl) : undefined;
  if (!currentUrl || !currentKey) {
    return { refused: { message: `The FHIR service uses a Microsoft-managed key: there is no customer-managed key to ${request.operation === "RotateKey" ? "rotate" : "re-apply"}. Send a SetKey request instead.` } };
  }
  if (!identity) {
    return {
      refused: {
        message: `The FHIR service's identity is ${currentIdentityType(current)}; a template needs exactly one identity to reach the key. Send a SetKey request that names it.`,
      },
    };
  }
  const dataPlane = `--vault-name ${currentKey.vaultName} --name ${currentKey.keyName}`;
  if (request.operation === "RecoverKeyAccess") {
    if (request.recoverDeletedKey) {
      return {
        refused: {
          path: "/body/recoverDeletedKey",
          message: `Recovering a soft-deleted key is a Key Vault data-plane operation that no deployment template can do: run az keyvault key recover ${dataPlane}, then ask again without recoverDeletedKey (or submit the change request, whose job does both).`,
        },
      };
    }
    return {
      change: { keyEncryptionKeyUrl: currentUrl, identity },
      notes: ["RecoverKeyAccess: the template re-applies the key and identity the service has now. Fix the cause first (key disabled or deleted, identity without the role), or the deployment fails the same way."],
    };
  }
  const target = request.options?.keyEncryptionKeyUrl ?? (request.useLatestExistingVersion ? latestKeyUrl : undefined);
  if (!target) {
    return {
      refused: {
        path: "/body/options/keyEncryptionKeyUrl",
        message:
          `RotateKey makes a new key version, a Key Vault data-plane operation that no deployment template can do: run az keyvault key rotate ${dataPlane} ` +
          "and pass the new version's URL in options.keyEncryptionKeyUrl, or send useLatestExistingVersion: true to move to the newest existing version, or submit the change request.",
      },
    };
  }
  const next = parseKeyUrl(target);
  if (!next || next.host !== currentKey.host || next.keyName !== currentKey.keyName) {
    return { refused: { path: "/body/options/keyEncryptionKeyUrl", message: `A rotation stays on the service's key ${currentKey.vaultUrl}/keys/${currentKey.keyName}: give a version of that key.` } };
  }
  const notes = [`RotateKey: moves the service from ${currentUrl} to ${target}.`];
  if (target === currentUrl) notes.push("The service already uses this version: deploying changes nothing.");
  return { change: { keyEncryptionKeyUrl: target, identity }, notes };
}

// ---------------------------------------------------------------------------------------------
// CreateService.

export interface CreateServiceTemplateInput {
  ref: FhirServiceRef;
  location: string;
  keyEncryptionKeyUrl: string;
  userAssignedIdentityId: string;
  kind?: string;
  tags?: Record<string, string>;
  options?: CreateServiceTemplateOptions;
  /**
   * Tenant of the service's users (its token authority; the job takes the identity's) and of a vault
   * the template makes. Unknown (a new identity): the subscription's tenant, in the template.
   */
  tenantId?: string;
  /** With createRoleAssignment on an existing vault: its ARM id (the assignment must be deployed in its group). */
  existingVaultId?: string;
  cloud: Pick<AzureCloud, "authorityHost" | "fhirSuffix" | "keyVaultSuffixes">;
}

/** A refusal when the options cannot be honoured by one resource-group deployment. */
function refuseCreateOptions(input: CreateServiceTemplateInput, key: KeyUrl): TemplateRefusal | undefined {
  const options = input.options ?? {};
  const inGroup = (subscriptionId: string, resourceGroup: string) =>
    subscriptionId.toLowerCase() === input.ref.subscriptionId.toLowerCase() && resourceGroup.toLowerCase() === input.ref.resourceGroup.toLowerCase();
  const vaultSuffix = input.cloud.keyVaultSuffixes[0] ?? "vault.azure.net";
  const isVaultKey = key.host === `${key.vaultName}.${vaultSuffix}`;
  if (options.createKeyVault && !isVaultKey) {
    return { path: "/body/options/createKeyVault", message: `createKeyVault makes a Key Vault; ${key.host} is not a vault on ${vaultSuffix} (Managed HSM keys are made with the HSM's own tools).` };
  }
  if (options.createRoleAssignment && !isVaultKey) {
    return { path: "/body/options/createRoleAssignment", message: "Managed HSM keys use the HSM's local RBAC, which an ARM role assignment cannot grant: assign Managed HSM Crypto Service Encryption User with az keyvault role assignment create." };
  }
  if (options.createIdentity) {
    const identity = parseUserAssignedIdentityId(input.userAssignedIdentityId);
    if (!identity || !inGroup(identity.subscriptionId, identity.resourceGroup)) {
      return { path: "/body/options/createIdentity", message: `A template deploys into one resource group: the identity it makes must be in ${input.ref.resourceGroup} (subscription ${input.ref.subscriptionId}), like the FHIR service.` };
    }
  }
  if (options.createRoleAssignment && !options.createKeyVault) {
    const parts = input.existingVaultId?.split("/");
    if (!parts || parts.length < 5) {
      return { path: "/body/options/createRoleAssignment", message: `Vault ${key.vaultName} was not found in subscription ${input.ref.subscriptionId}: send createKeyVault: true to make it, or grant the role yourself.` };
    }
    if (!inGroup(parts[2]!, parts[4]!)) {
      return {
        path: "/body/options/createRoleAssignment",
        message: `Vault ${key.vaultName} is in resource group ${parts[4]}, not the FHIR service's ${input.ref.resourceGroup}; one template cannot assign a role there. Grant it with az role assignment create --role ${CRYPTO_SERVICE_ENCRYPTION_USER_ROLE_ID} --assignee-principal-type ServicePrincipal --scope ${input.existingVaultId}/keys/${key.keyName} --assignee-object-id <the identity's principal id>.`,
      };
    }
  }
  return undefined;
}

/**
 * A new FHIR service with CMK from the start (user-assigned identity), optionally with what it needs:
 * workspace, vault + key, identity and the role assignment, each ordered by dependsOn. The FHIR service
 * resource deploys exactly the body a CreateService job PUTs.
 */
export function renderCreateServiceTemplate(input: CreateServiceTemplateInput): TemplateOutcome {
  const options = input.options ?? {};
  const key = parseKeyUrl(input.keyEncryptionKeyUrl);
  if (!key) return { refused: { path: "/body/keyEncryptionKeyUrl", message: "is not a key URL: https://{vault}.vault.azure.net/keys/{name}/{version}." } };
  const refusal = refuseCreateOptions(input, key);
  if (refusal) return { refused: refusal };

  const { ref } = input;
  const region = input.location.toLowerCase().replace(/\s+/g, "");
  const identityName = parseUserAssignedIdentityId(input.userAssignedIdentityId)?.name ?? "";
  const specs: ParameterSpec[] = [
    ...serviceParameters(ref),
    { name: "region", description: "Region of the new resources; the key's vault must be in it.", value: region },
    {
      name: "tenantId",
      description: "Entra ID tenant of the FHIR service's users (its token authority) and of a vault the template makes.",
      ...(input.tenantId ? { value: input.tenantId } : { defaultExpression: expression("subscription().tenantId") }),
    },
    options.createIdentity
      ? { name: "userAssignedIdentityName", description: "The user-assigned identity to make in this resource group.", value: identityName }
      : { name: "userAssignedIdentityId", description: "ARM id of the user-assigned identity that reaches the key.", value: input.userAssignedIdentityId },
    ...(options.createKeyVault || options.createRoleAssignment
      ? [
          { name: "keyVaultName", description: "The key's vault.", value: key.vaultName },
          { name: "keyName", description: "The key.", value: key.keyName },
        ]
      : []),
    ...(options.createKeyVault ? [] : [{ name: "keyEncryptionKeyUrl", description: "Versioned key identifier of an existing key.", value: input.keyEncryptionKeyUrl }]),
  ];

  const identityId = variable("userAssignedIdentityId");
  const keyId = variable("keyResourceId");
  const roleAssignmentId = variable("roleAssignmentId");
  const variables: Record<string, string> = {
    userAssignedIdentityId: options.createIdentity
      ? expression(`resourceId(${literal(RESOURCE_TYPES.userAssignedIdentities)}, ${parameter("userAssignedIdentityName")})`)
      : expression(parameter("userAssignedIdentityId")),
  };
  if (options.createKeyVault || options.createRoleAssignment) {
    variables.keyResourceId = expression(`resourceId(${literal(RESOURCE_TYPES.keys)}, ${parameter("keyVaultName")}, ${parameter("keyName")})`);
  }
  const resources: TemplateResource[] = [];
  const fhirDependsOn: string[] = [];

  if (options.createIdentity) {
    resources.push({ type: RESOURCE_TYPES.userAssignedIdentities, apiVersion: API_VERSIONS.userAssignedIdentities, name: expression(parameter("userAssignedIdentityName")), location: expression(parameter("region")) });
    fhirDependsOn.push(expression(identityId));
  }
  if (options.createKeyVault) {
    const vaultId = expression(`resourceId(${literal(RESOURCE_TYPES.vaults)}, ${parameter("keyVaultName")})`);
    resources.push(
      {
        type: RESOURCE_TYPES.vaults,
        apiVersion: API_VERSIONS.vaults,
        name: expression(parameter("keyVaultName")),
        location: expression(parameter("region")),
        properties: {
          tenantId: expression(parameter("tenantId")),
          sku: { family: "A", name: "standard" },
          // What the FHIR service requires of a vault: soft delete and purge protection; RBAC so the role below applies.
          enableSoftDelete: true,
          softDeleteRetentionInDays: 90,
          enablePurgeProtection: true,
          enableRbacAuthorization: true,
          accessPolicies: [],
        },
      },
      {
        type: RESOURCE_TYPES.keys,
        apiVersion: API_VERSIONS.keys,
        name: expression(concat(parameter("keyVaultName"), literal("/"), parameter("keyName"))),
        dependsOn: [vaultId],
        properties: { kty: "RSA", keySize: 2048, keyOps: ["wrapKey", "unwrapKey"], attributes: { enabled: true } },
      },
    );
    fhirDependsOn.push(expression(keyId));
  }
  if (options.createRoleAssignment) {
    const roleDefinitionId = `subscriptionResourceId(${literal(RESOURCE_TYPES.roleDefinitions)}, ${literal(CRYPTO_SERVICE_ENCRYPTION_USER_ROLE_ID)})`;
    variables.roleDefinitionId = expression(roleDefinitionId);
    // Deterministic name: redeploying finds the same assignment instead of a RoleAssignmentExists conflict.
    variables.roleAssignmentName = expression(`guid(${keyId}, ${identityId}, ${variable("roleDefinitionId")})`);
    variables.roleAssignmentId = expression(`extensionResourceId(${keyId}, ${literal(RESOURCE_TYPES.roleAssignments)}, ${variable("roleAssignmentName")})`);
    resources.push({
      type: RESOURCE_TYPES.roleAssignments,
      apiVersion: API_VERSIONS.roleAssignments,
      name: expression(variable("roleAssignmentName")),
      // On the key alone: least privilege (Key Vault supports per-key assignments).
      scope: expression(concat(literal("Microsoft.KeyVault/vaults/"), parameter("keyVaultName"), literal("/keys/"), parameter("keyName"))),
      ...(options.createKeyVault || options.createIdentity
        ? { dependsOn: [...(options.createKeyVault ? [expression(keyId)] : []), ...(options.createIdentity ? [expression(identityId)] : [])] }
        : {}),
      properties: {
        roleDefinitionId: expression(variable("roleDefinitionId")),
        principalId: expression(`reference(${identityId}, ${literal(API_VERSIONS.userAssignedIdentities)}).principalId`),
        // A new identity may not have replicated in Entra ID yet; ServicePrincipal skips that lookup.
        principalType: "ServicePrincipal",
        description: "FHIR service customer-managed key: Key Vault Crypto Service Encryption User on the key.",
      },
    });
    fhirDependsOn.push(expression(roleAssignmentId));
  }
  if (options.createWorkspace) {
    resources.push({ type: RESOURCE_TYPES.workspaces, apiVersion: API_VERSIONS.workspaces, name: expression(parameter("workspaceName")), location: expression(parameter("region")), properties: {} });
    fhirDependsOn.push(expression(`resourceId(${literal(RESOURCE_TYPES.workspaces)}, ${parameter("workspaceName")})`));
  }

  const body = buildCreateBody({
    location: region,
    ...(input.kind ? { kind: input.kind } : {}),
    ...(input.tags ? { tags: input.tags } : {}),
    keyEncryptionKeyUrl: input.keyEncryptionKeyUrl,
    userAssignedIdentityId: input.userAssignedIdentityId,
    // Unknown tenant: the authority below is an expression over the tenantId parameter anyway.
    tenantId: input.tenantId ?? "",
    authorityHost: input.cloud.authorityHost,
    workspace: ref.workspace,
    fhirService: ref.fhirService,
    fhirSuffix: input.cloud.fhirSuffix,
  });
  resources.push(
    fhirServiceResource(
      body,
      {
        identityId: expression(identityId),
        keyEncryptionKeyUrl: options.createKeyVault
          ? expression(`reference(${keyId}, ${literal(API_VERSIONS.keys)}).keyUriWithVersion`)
          : expression(parameter("keyEncryptionKeyUrl")),
        authority: expression(concat(literal(`${input.cloud.authorityHost}/`), parameter("tenantId"))),
        audience: expression(concat(literal("https://"), parameter("workspaceName"), literal("-"), parameter("fhirServiceName"), literal(`.${input.cloud.fhirSuffix}`))),
      },
      fhirDependsOn,
    ),
  );
  return { rendered: assemble(specs, resources, createServiceNotes(input, key), { variables, outputs: FHIR_SERVICE_OUTPUTS }) };
}

function createServiceNotes(input: CreateServiceTemplateInput, key: KeyUrl): string[] {
  const options = input.options ?? {};
  const notes = [deployNote(input.ref)];
  if (!input.tenantId) notes.push("tenantId defaults to the subscription's tenant ([subscription().tenantId]): the FHIR service's token authority is https://login.microsoftonline.com/{tenantId}.");
  if (options.createWorkspace) notes.push("The workspace resource declares no properties: deploying over an existing workspace resets its settings. Leave createWorkspace off when it exists.");
  else notes.push(`Workspace ${input.ref.workspace} must exist already (createWorkspace: true makes it).`);
  if (options.createKeyVault) {
    notes.push(
      `Vault ${key.vaultName} is made with soft delete, purge protection and RBAC authorization: deploying over an existing vault replaces its access policies and network rules. Leave createKeyVault off when it exists.`,
      `Key ${key.keyName} (RSA 2048, wrapKey/unwrapKey) is made on the first deployment; later ones leave an existing key unchanged. The service gets the key's current version (keyUriWithVersion), not the version in the request.`,
    );
  }
  if (options.createRoleAssignment) {
    notes.push(ROLE_NOTE, "A new role assignment can take a few minutes to reach Key Vault: if the FHIR service deployment fails for lack of key access, deploy again.");
  } else {
    notes.push(
      `The user-assigned identity must hold Key Vault Crypto Service Encryption User (${CRYPTO_SERVICE_ENCRYPTION_USER_ROLE_ID}) on the key or its vault before deployment (createRoleAssignment: true grants it on the key).`,
    );
  }
  notes.push(API_VERSIONS_NOTE);
  return notes;
}

/** Whether a CreateService template needs the existing vault's id (for a role assignment on it). */
export function needsExistingVault(options: CreateServiceTemplateOptions | undefined): boolean {
  return options?.createRoleAssignment === true && options.createKeyVault !== true;
}

// ---------------------------------------------------------------------------------------------
// Any change request.

export interface TemplateFacts {
  /** SetKey, RotateKey, RecoverKeyAccess: the FHIR service as ARM has it now. */
  current?: FhirServiceResource;
  /** RotateKey, RecoverKeyAccess: the current service's one identity, as a request would name it. */
  currentIdentity?: RequestedIdentity;
  /** RotateKey with useLatestExistingVersion: the newest version of the service's key. */
  latestKeyUrl?: string;
  /** CreateService with createRoleAssignment on an existing vault: the vault's ARM id, if found. */
  existingVaultId?: string;
  /** CreateService: the user-assigned identity's tenant, when it exists. */
  tenantId?: string;
  cloud: CreateServiceTemplateInput["cloud"];
}

/** The template for a change request, from what the caller read of Azure (`facts`). */
export function renderTemplate(request: TemplateRequest, facts: TemplateFacts): TemplateOutcome {
  const ref = parseFhirServiceId(request.fhirServiceId);
  if (!ref) return { refused: { path: "/body/fhirServiceId", message: "is not a FHIR service id." } };
  if (request.operation === "CreateService") {
    return renderCreateServiceTemplate({
      ref,
      location: request.location,
      keyEncryptionKeyUrl: request.keyEncryptionKeyUrl,
      userAssignedIdentityId: request.identity.userAssignedIdentityId,
      ...(request.kind ? { kind: request.kind } : {}),
      ...(request.tags ? { tags: request.tags } : {}),
      ...(request.options ? { options: request.options } : {}),
      ...(facts.tenantId ? { tenantId: facts.tenantId } : {}),
      ...(facts.existingVaultId ? { existingVaultId: facts.existingVaultId } : {}),
      cloud: facts.cloud,
    });
  }
  const current = facts.current;
  if (!current) throw new Error(`a ${request.operation} template is built on the current FHIR service`);
  if (request.operation === "SetKey") {
    return { rendered: renderKeyChangeTemplate(ref, current, { keyEncryptionKeyUrl: request.keyEncryptionKeyUrl, identity: request.identity }) };
  }
  const plan = planCurrentKeyChange(request, current, facts.currentIdentity, facts.latestKeyUrl);
  if ("refused" in plan) return plan;
  return { rendered: renderKeyChangeTemplate(ref, current, plan.change, plan.notes) };
}
