import t, { type Test } from "tap";
import {
  API_VERSIONS,
  CRYPTO_SERVICE_ENCRYPTION_USER_ROLE_ID,
  RESOURCE_TYPES,
  planCurrentKeyChange,
  renderCreateServiceTemplate,
  renderKeyChangeTemplate,
  renderTemplate,
  type CreateServiceTemplateInput,
  type RenderedTemplate,
  type TemplateOutcome,
} from "../../src/domain/arm-template.js";
import { fhirServiceRef } from "../../src/domain/arm-ids.js";
import { buildCreateBody, buildKeyChangeBody, toArmResource, type FhirServiceResource } from "../../src/domain/fhir-resource.js";
import { AZURE_PUBLIC_CLOUD } from "../../src/azure/cloud.js";
import { createHash } from "node:crypto";
import { deploy, deployedOfType, deterministicGuid, type DeployedResource, type Deployment, type DeploymentContext } from "../../src/sandbox/arm/template-evaluator.js";
import { sdkPutBody } from "../helpers/sdk-wire.js";
import { checkTemplateFormat, validateTemplate } from "../helpers/arm-template-format.js";

const SUB = "22222222-2222-2222-2222-222222222222";
const TENANT = "11111111-1111-1111-1111-111111111111";
const RG = "rg-sandbox";
const ref = fhirServiceRef(SUB, RG, "wssandbox", "fhir-sys");
const newRef = fhirServiceRef(SUB, RG, "wssandbox", "fhir-new");
const UAMI = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uami-sandbox`;
const KEY_V1 = "https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048/00000000000000000000000000000001";
const KEY_V2 = "https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048/00000000000000000000000000000002";
const VAULT_ID = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.KeyVault/vaults/kvsandbox`;
const UAMI_PRINCIPAL = "b0000000-0000-4000-8000-000000000001";
/** What reference() sees of the identities and keys a template makes (the emulator's deployments read the real ones). */
function stubState(resource: DeployedResource): Record<string, unknown> {
  const type = resource.type.toLowerCase();
  if (type === "microsoft.managedidentity/userassignedidentities") {
    return { principalId: deterministicGuid("principal", resource.id), clientId: deterministicGuid("client", resource.id), tenantId: TENANT };
  }
  if (type === "microsoft.keyvault/vaults/keys") {
    const [vault, key] = resource.name.split("/");
    const keyUri = `https://${vault}.vault.azure.net/keys/${key}`;
    return { keyUri, keyUriWithVersion: `${keyUri}/${createHash("md5").update(resource.id).digest("hex")}` };
  }
  return (resource.body.properties as Record<string, unknown> | undefined) ?? {};
}
const context: DeploymentContext = { subscriptionId: SUB, resourceGroup: RG, tenantId: TENANT, existing: { [UAMI]: { principalId: UAMI_PRINCIPAL, tenantId: TENANT } }, runtimeState: stubState };

/** A FHIR service as ARM answers a GET: read-only members, every kind of writable setting, a tag that looks like an expression. */
const current: FhirServiceResource = {
  id: ref.id,
  name: "wssandbox/fhir-sys",
  type: RESOURCE_TYPES.fhirServices,
  location: "westus3",
  etag: '"df00-1"',
  kind: "fhir-R4",
  tags: { team: "health", note: "[not an expression]" },
  identity: { type: "SystemAssigned", principalId: "a0000000-0000-4000-8000-000000000001", tenantId: TENANT },
  provisioningState: "Succeeded",
  systemData: { createdBy: "x" },
  eventState: "Disabled",
  privateEndpointConnections: [],
  accessPolicies: [],
  acrConfiguration: { loginServers: [] },
  authenticationConfiguration: { authority: `https://login.microsoftonline.com/${TENANT}`, audience: "https://wssandbox-fhir-sys.fhir.azurehealthcareapis.com", smartProxyEnabled: false },
  corsConfiguration: { origins: ["https://app"], headers: [], methods: ["GET"], maxAge: 600, allowCredentials: false },
  exportConfiguration: { storageAccountName: "exports" },
  resourceVersionPolicyConfiguration: { default: "versioned" },
  publicNetworkAccess: "Enabled",
};

function rendered(outcome: TemplateOutcome): RenderedTemplate {
  if ("refused" in outcome) throw new Error(`refused: ${outcome.refused.message}`);
  return outcome.rendered;
}

/** Deploys with the parameters file and with the template's defaults alone: both must give the same. */
function deployBoth(t: Test, template: RenderedTemplate, deploymentContext = context): Deployment {
  const withFile = deploy(template.template, template.parameters, deploymentContext);
  const withDefaults = deploy(template.template, undefined, deploymentContext);
  t.same(withDefaults.resources, withFile.resources, "the template's defaults are the parameters file's values");
  return withFile;
}

t.test("the format schema itself refuses what ARM would", async (t) => {
  const base = renderKeyChangeTemplate(ref, current, { keyEncryptionKeyUrl: KEY_V2, identity: { type: "SystemAssigned" } }).template;
  const broken = (change: (template: Record<string, unknown>) => void) => {
    const copy = structuredClone(base) as unknown as Record<string, unknown>;
    change(copy);
    return validateTemplate(copy);
  };
  const resource = (template: Record<string, unknown>) => (template.resources as Record<string, unknown>[])[0]!;
  t.ok(validateTemplate(base));
  t.notOk(broken((x) => (x.contentVersion = "1.0")), "contentVersion needs four parts");
  t.notOk(broken((x) => delete resource(x).apiVersion), "a resource needs apiVersion");
  t.notOk(broken((x) => (resource(x).apiVersion = "2023-11")), "apiVersion is a date");
  t.notOk(broken((x) => delete resource(x).name), "a resource needs a name");
  t.notOk(broken((x) => (resource(x).dependsOn = "x")), "dependsOn is an array of strings");
  t.notOk(broken((x) => ((x.parameters as Record<string, { type: string }>).region!.type = "text")), "parameter types are ARM's");
  t.notOk(broken((x) => (resource(x).propertes = {})), "a misspelt resource member");
  t.ok(broken((x) => (resource(x).apiVersion = "2023-06-01-preview")), "preview api-versions are allowed");
});

t.test("SetKey, system-assigned: the full body the job PUTs, from parameters", async (t) => {
  const change = { keyEncryptionKeyUrl: KEY_V2, identity: { type: "SystemAssigned" } } as const;
  const result = renderKeyChangeTemplate(ref, current, change);
  checkTemplateFormat(t, result);
  const { template, parameters } = result;
  t.equal(template.resources.length, 1);
  const resource = template.resources[0]!;
  t.match(resource, {
    type: "Microsoft.HealthcareApis/workspaces/fhirservices",
    apiVersion: "2023-11-01",
    name: "[concat(parameters('workspaceName'), '/', parameters('fhirServiceName'))]",
    location: "[parameters('region')]",
    identity: { type: "SystemAssigned" },
    properties: { encryption: { customerManagedKeyEncryption: { keyEncryptionKeyUrl: "[parameters('keyEncryptionKeyUrl')]" } } },
  });
  t.same(resource.tags, { team: "health", note: "[[not an expression]" }, "a literal that looks like an expression is escaped");
  t.same(parameters.parameters, {
    workspaceName: { value: "wssandbox" },
    fhirServiceName: { value: "fhir-sys" },
    region: { value: "westus3" },
    keyEncryptionKeyUrl: { value: KEY_V2 },
  });

  const deployment = deployBoth(t, result);
  const fhir = deployedOfType(deployment, RESOURCE_TYPES.fhirServices);
  t.equal(fhir.id, ref.id, "deploys to the FHIR service's own id");
  const jobBody = buildKeyChangeBody(current, change);
  t.same(fhir.body, await sdkPutBody(jobBody), "what ARM receives is what the job's SDK puts on the wire, every setting kept");
  const { accessPolicies, ...declared } = toArmResource(jobBody).properties as Record<string, unknown>;
  t.same(accessPolicies, [], "a raw GET body may hold members 2023-11-01 does not define (accessPolicies)…");
  t.same(fhir.body, { ...toArmResource(jobBody), properties: declared }, "…so the template leaves it out, as the SDK does");
  t.match(result.notes.join("\n"), /Left out, as the job's PUT leaves them out: accessPolicies/);
  t.equal(deployment.outputs.fhirServiceId, ref.id);
  t.match(result.notes.join("\n"), /every current setting/);
  t.match(result.notes.join("\n"), new RegExp(CRYPTO_SERVICE_ENCRYPTION_USER_ROLE_ID));
});

t.test("SetKey, user-assigned: the identity id comes from a parameter and deploys as the job sends it", async (t) => {
  const change = { keyEncryptionKeyUrl: KEY_V2, identity: { type: "UserAssigned", userAssignedIdentityId: UAMI } } as const;
  const result = renderKeyChangeTemplate(ref, current, change);
  checkTemplateFormat(t, result);
  t.same(result.template.resources[0]!.identity, { type: "UserAssigned", userAssignedIdentities: { "[parameters('userAssignedIdentityId')]": {} } });
  t.same(result.parameters.parameters.userAssignedIdentityId, { value: UAMI });
  const fhir = deployedOfType(deployBoth(t, result), RESOURCE_TYPES.fhirServices);
  t.same(fhir.body, await sdkPutBody(buildKeyChangeBody(current, change)));
  t.same(fhir.body.identity, { type: "UserAssigned", userAssignedIdentities: { [UAMI]: {} } });
  t.match(result.notes.join("\n"), /identity type changes from SystemAssigned to UserAssigned/);
});

t.test("a parameters file with another value changes only that value", async (t) => {
  const result = renderKeyChangeTemplate(ref, current, { keyEncryptionKeyUrl: KEY_V2, identity: { type: "SystemAssigned" } });
  const file = structuredClone(result.parameters);
  file.parameters.keyEncryptionKeyUrl = { value: KEY_V1 };
  const fhir = deployedOfType(deploy(result.template, file, context), RESOURCE_TYPES.fhirServices);
  t.same(fhir.body, await sdkPutBody(buildKeyChangeBody(current, { keyEncryptionKeyUrl: KEY_V1, identity: { type: "SystemAssigned" } })));
  t.throws(() => deploy(result.template, { ...file, parameters: { ...file.parameters, colour: { value: "blue" } } }, context), /does not declare/);
});

const createInput = (options: CreateServiceTemplateInput["options"] = {}, extra: Partial<CreateServiceTemplateInput> = {}): CreateServiceTemplateInput => ({
  ref: newRef,
  location: "West US 3",
  keyEncryptionKeyUrl: KEY_V2,
  userAssignedIdentityId: UAMI,
  tenantId: TENANT,
  options,
  cloud: AZURE_PUBLIC_CLOUD,
  ...extra,
});

const buildCreateBodyFor = (keyEncryptionKeyUrl = KEY_V2, tenantId = TENANT) =>
  buildCreateBody({
    location: "West US 3",
    keyEncryptionKeyUrl,
    userAssignedIdentityId: UAMI,
    tenantId,
    authorityHost: AZURE_PUBLIC_CLOUD.authorityHost,
    workspace: "wssandbox",
    fhirService: "fhir-new",
    fhirSuffix: AZURE_PUBLIC_CLOUD.fhirSuffix,
  });
const createBody = (keyEncryptionKeyUrl = KEY_V2, tenantId = TENANT) => toArmResource(buildCreateBodyFor(keyEncryptionKeyUrl, tenantId));

t.test("CreateService alone: one FHIR service, the body a CreateService job PUTs", async (t) => {
  const result = rendered(renderCreateServiceTemplate(createInput()));
  checkTemplateFormat(t, result);
  t.equal(result.template.resources.length, 1);
  t.notOk(result.template.resources[0]!.dependsOn, "nothing to wait for");
  const fhir = deployedOfType(deployBoth(t, result), RESOURCE_TYPES.fhirServices);
  t.equal(fhir.id, newRef.id);
  t.same(fhir.body, createBody());
  t.same(fhir.body, await sdkPutBody(buildCreateBodyFor()), "toArmResource of a new service's body is the SDK's wire body");
  t.same(result.parameters.parameters.region, { value: "westus3" }, "the region as ARM spells it");

  t.test("without a known tenant, the subscription's is the default", async (t) => {
    const result = rendered(renderCreateServiceTemplate(createInput({}, { tenantId: undefined })));
    t.equal(result.template.parameters.tenantId!.defaultValue, "[subscription().tenantId]");
    t.notOk(result.parameters.parameters.tenantId, "the parameters file leaves it to the default");
    const otherTenant = "33333333-3333-3333-3333-333333333333";
    const fhir = deployedOfType(deploy(result.template, result.parameters, { ...context, tenantId: otherTenant }), RESOURCE_TYPES.fhirServices);
    t.same(fhir.body, createBody(KEY_V2, otherTenant));
  });
});

t.test("CreateService with everything: identity, vault, key, role assignment, workspace", async (t) => {
  const result = rendered(renderCreateServiceTemplate(createInput({ createWorkspace: true, createKeyVault: true, createIdentity: true, createRoleAssignment: true })));
  checkTemplateFormat(t, result);
  const { template } = result;
  t.same(
    template.resources.map((resource) => [resource.type, resource.apiVersion]),
    [
      [RESOURCE_TYPES.userAssignedIdentities, "2023-01-31"],
      [RESOURCE_TYPES.vaults, "2023-07-01"],
      [RESOURCE_TYPES.keys, "2023-07-01"],
      [RESOURCE_TYPES.roleAssignments, "2022-04-01"],
      [RESOURCE_TYPES.workspaces, "2023-11-01"],
      [RESOURCE_TYPES.fhirServices, "2023-11-01"],
    ],
  );
  t.same(Object.values(API_VERSIONS).sort(), ["2022-04-01", "2023-01-31", "2023-07-01", "2023-07-01", "2023-11-01", "2023-11-01"]);

  const deployment = deployBoth(t, result);
  const order = deployment.resources.map((resource) => resource.type);
  const before = (a: string, b: string) => t.ok(order.indexOf(a) < order.indexOf(b), `${a.split("/").at(-1)} before ${b.split("/").at(-1)}`);
  before(RESOURCE_TYPES.vaults, RESOURCE_TYPES.keys);
  before(RESOURCE_TYPES.keys, RESOURCE_TYPES.roleAssignments);
  before(RESOURCE_TYPES.userAssignedIdentities, RESOURCE_TYPES.roleAssignments);
  for (const type of [RESOURCE_TYPES.roleAssignments, RESOURCE_TYPES.workspaces, RESOURCE_TYPES.keys, RESOURCE_TYPES.userAssignedIdentities]) before(type, RESOURCE_TYPES.fhirServices);

  const identity = deployedOfType(deployment, RESOURCE_TYPES.userAssignedIdentities);
  t.equal(identity.id, UAMI, "the identity made is the one the request names");
  t.same(identity.body, { location: "westus3" });

  const vault = deployedOfType(deployment, RESOURCE_TYPES.vaults);
  t.equal(vault.id, VAULT_ID);
  t.same(vault.body.properties, {
    tenantId: TENANT,
    sku: { family: "A", name: "standard" },
    enableSoftDelete: true,
    softDeleteRetentionInDays: 90,
    enablePurgeProtection: true,
    enableRbacAuthorization: true,
    accessPolicies: [],
  });
  const key = deployedOfType(deployment, RESOURCE_TYPES.keys);
  t.equal(key.id, `${VAULT_ID}/keys/cmk-rsa-2048`);
  t.same(key.body.properties, { kty: "RSA", keySize: 2048, keyOps: ["wrapKey", "unwrapKey"], attributes: { enabled: true } });

  const assignment = deployedOfType(deployment, RESOURCE_TYPES.roleAssignments);
  t.match(assignment.id, new RegExp(`^${VAULT_ID}/keys/cmk-rsa-2048/providers/Microsoft.Authorization/roleAssignments/[0-9a-f-]{36}$`), "on the key alone");
  t.match(assignment.name, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  t.same(assignment.body, {
    properties: {
      roleDefinitionId: `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/${CRYPTO_SERVICE_ENCRYPTION_USER_ROLE_ID}`,
      principalId: deterministicGuid("principal", UAMI),
      principalType: "ServicePrincipal",
      description: "FHIR service customer-managed key: Key Vault Crypto Service Encryption User on the key.",
    },
  }, "reference() gives the principal of the identity made here (the evaluator's stub)");
  const again = deployedOfType(deploy(rendered(renderCreateServiceTemplate(createInput({ createKeyVault: true, createIdentity: true, createRoleAssignment: true }))).template, undefined, context), RESOURCE_TYPES.roleAssignments);
  t.equal(again.name, assignment.name, "the assignment's name is stable: a redeployment finds it");

  t.same(deployedOfType(deployment, RESOURCE_TYPES.workspaces).body, { location: "westus3", properties: {} });

  const fhir = deployedOfType(deployment, RESOURCE_TYPES.fhirServices);
  const madeKeyUrl = (fhir.body.properties as { encryption: { customerManagedKeyEncryption: { keyEncryptionKeyUrl: string } } }).encryption.customerManagedKeyEncryption.keyEncryptionKeyUrl;
  t.match(madeKeyUrl, /^https:\/\/kvsandbox\.vault\.azure\.net\/keys\/cmk-rsa-2048\/[0-9a-f]{32}$/, "the key's own current version");
  t.same(fhir.body, createBody(madeKeyUrl), "the FHIR service is the job's body with the key made here");
  t.match(result.notes.join("\n"), /Crypto Service Encryption User .*documentation's text.*Crypto Officer/s);
});

t.test("CreateService granting the role on an existing vault to an existing identity", async (t) => {
  const result = rendered(renderCreateServiceTemplate(createInput({ createRoleAssignment: true }, { existingVaultId: VAULT_ID })));
  checkTemplateFormat(t, result);
  const deployment = deployBoth(t, result);
  const assignment = deployedOfType(deployment, RESOURCE_TYPES.roleAssignments);
  t.equal((assignment.body.properties as { principalId: string }).principalId, UAMI_PRINCIPAL, "reference() of the existing identity");
  t.notOk(result.template.resources.find((resource) => resource.type === RESOURCE_TYPES.roleAssignments)!.dependsOn, "nothing made here to wait for");
  t.same(deployedOfType(deployment, RESOURCE_TYPES.fhirServices).body, createBody());
  t.same(deployedOfType(deployment, RESOURCE_TYPES.fhirServices).dependsOn, [assignment.id.toLowerCase()]);
});

t.test("the evaluator holds the template to its dependsOn", async (t) => {
  const result = rendered(renderCreateServiceTemplate(createInput({ createKeyVault: true, createIdentity: true, createRoleAssignment: true })));
  const withoutDependencies = structuredClone(result.template);
  delete withoutDependencies.resources.find((resource) => resource.type === RESOURCE_TYPES.roleAssignments)!.dependsOn;
  t.throws(() => deploy(withoutDependencies, result.parameters, context), /does not depend on it/);
  const unknownFunction = structuredClone(result.template);
  unknownFunction.resources[0]!.location = "[resourceGroup().location]";
  t.throws(() => deploy(unknownFunction, result.parameters, context), /no member location/);
});

t.test("CreateService options one resource-group deployment cannot honour are refused, naming the option", async (t) => {
  const refused = (outcome: TemplateOutcome) => ("refused" in outcome ? outcome.refused : undefined);
  t.match(refused(renderCreateServiceTemplate(createInput({ createRoleAssignment: true }))), { path: "/body/options/createRoleAssignment", message: /not found/ });
  t.match(refused(renderCreateServiceTemplate(createInput({ createRoleAssignment: true }, { existingVaultId: VAULT_ID.replace(RG, "rg-keys") }))), {
    path: "/body/options/createRoleAssignment",
    message: /rg-keys.*az role assignment create/s,
  });
  t.match(refused(renderCreateServiceTemplate(createInput({ createIdentity: true }, { userAssignedIdentityId: UAMI.replace(RG, "rg-identities") }))), { path: "/body/options/createIdentity" });
  const hsmKey = "https://hsm1.managedhsm.azure.net/keys/cmk/00000000000000000000000000000001";
  t.match(refused(renderCreateServiceTemplate(createInput({ createKeyVault: true }, { keyEncryptionKeyUrl: hsmKey }))), { path: "/body/options/createKeyVault" });
  t.match(refused(renderCreateServiceTemplate(createInput({ createRoleAssignment: true }, { keyEncryptionKeyUrl: hsmKey, existingVaultId: VAULT_ID }))), {
    path: "/body/options/createRoleAssignment",
    message: /local RBAC/,
  });
});

t.test("RotateKey and RecoverKeyAccess are the SetKey they amount to", async (t) => {
  const uami = { type: "UserAssigned", userAssignedIdentityId: UAMI } as const;
  const cmk: FhirServiceResource = { ...current, identity: { type: "UserAssigned", userAssignedIdentities: { [UAMI]: { principalId: UAMI_PRINCIPAL } } }, encryption: { customerManagedKeyEncryption: { keyEncryptionKeyUrl: KEY_V1 } } };

  t.test("RotateKey to a version made beforehand, or the newest existing one", async (t) => {
    const given = planCurrentKeyChange({ operation: "RotateKey", options: { keyEncryptionKeyUrl: KEY_V2 } }, cmk, uami);
    t.same("change" in given && given.change, { keyEncryptionKeyUrl: KEY_V2, identity: uami });
    const latest = planCurrentKeyChange({ operation: "RotateKey", useLatestExistingVersion: true }, cmk, uami, KEY_V2);
    t.same("change" in latest && latest.change, { keyEncryptionKeyUrl: KEY_V2, identity: uami });
    const same = planCurrentKeyChange({ operation: "RotateKey", useLatestExistingVersion: true }, cmk, uami, KEY_V1);
    t.match("notes" in same && same.notes.join(" "), /already uses this version/);

    const result = rendered(renderTemplate({ operation: "RotateKey", fhirServiceId: ref.id, options: { keyEncryptionKeyUrl: KEY_V2 } }, { current: cmk, currentIdentity: uami, cloud: AZURE_PUBLIC_CLOUD }));
    checkTemplateFormat(t, result);
    t.same(deployedOfType(deployBoth(t, result), RESOURCE_TYPES.fhirServices).body, await sdkPutBody(buildKeyChangeBody(cmk, { keyEncryptionKeyUrl: KEY_V2, identity: uami })));
    t.match(result.notes[0], /RotateKey: moves the service from .*01 to .*02/);
  });

  t.test("RotateKey needing a new version is refused: only Key Vault makes versions", async (t) => {
    const plan = planCurrentKeyChange({ operation: "RotateKey" }, cmk, uami);
    t.match(plan, { refused: { path: "/body/options/keyEncryptionKeyUrl", message: /az keyvault key rotate --vault-name kvsandbox --name cmk-rsa-2048/ } });
    const otherKey = planCurrentKeyChange({ operation: "RotateKey", options: { keyEncryptionKeyUrl: "https://kvsandbox.vault.azure.net/keys/cmk-rsa-3072/00000000000000000000000000000001" } }, cmk, uami);
    t.match(otherKey, { refused: { path: "/body/options/keyEncryptionKeyUrl", message: /stays on the service's key/ } });
  });

  t.test("RecoverKeyAccess re-applies what the service has; recovering a deleted key is refused", async (t) => {
    const result = rendered(renderTemplate({ operation: "RecoverKeyAccess", fhirServiceId: ref.id }, { current: cmk, currentIdentity: uami, cloud: AZURE_PUBLIC_CLOUD }));
    checkTemplateFormat(t, result);
    t.same(deployedOfType(deployBoth(t, result), RESOURCE_TYPES.fhirServices).body, await sdkPutBody(buildKeyChangeBody(cmk, { keyEncryptionKeyUrl: KEY_V1, identity: uami })));
    t.match(planCurrentKeyChange({ operation: "RecoverKeyAccess", recoverDeletedKey: true }, cmk, uami), { refused: { path: "/body/recoverDeletedKey", message: /az keyvault key recover/ } });
  });

  t.test("a Microsoft-managed key, or no single identity, leaves nothing to rotate or re-apply", async (t) => {
    t.match(planCurrentKeyChange({ operation: "RecoverKeyAccess" }, current, { type: "SystemAssigned" }), { refused: { message: /Microsoft-managed key/ } });
    t.match(planCurrentKeyChange({ operation: "RotateKey", options: { keyEncryptionKeyUrl: KEY_V2 } }, { ...cmk, identity: { type: "SystemAssigned,UserAssigned" } }, undefined), {
      refused: { message: /exactly one identity/ },
    });
  });
});
