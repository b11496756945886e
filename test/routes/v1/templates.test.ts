import t, { type Test } from "tap";
import type { FastifyInstance } from "fastify";
import { KEYS, waitForJob } from "../../helpers/app.js";
import { startStack } from "../../helpers/stack.js";
import { fhirId, KEY_V1, KEY_V2, setKey, SUB, uamiId } from "../../helpers/requests.js";
import { deploy, deployedOfType, type DeploymentContext } from "../../../src/sandbox/arm/template-evaluator.js";
import { checkTemplateFormat } from "../../helpers/arm-template-format.js";
import { sdkPutBody } from "../../helpers/sdk-wire.js";
import { RESOURCE_TYPES, undeclaredProperties } from "../../../src/domain/arm-template.js";
import { toArmResource, type FhirServiceResource } from "../../../src/domain/fhir-resource.js";

const TENANT = "11111111-1111-1111-1111-111111111111";
const UAMI = uamiId("uami-sandbox");
const context: DeploymentContext = {
  subscriptionId: SUB,
  resourceGroup: "rg-sandbox",
  tenantId: TENANT,
  existing: { [UAMI]: { principalId: "b0000000-0000-4000-8000-000000000001", tenantId: TENANT } },
};

const templateFor = (app: FastifyInstance, body: object, key: string | null = KEYS.reader) =>
  app.inject({ method: "POST", url: "/v1/templates", payload: body, headers: key ? { "x-api-key": key } : {} });

/** The body the same request's job would PUT: a dry run's result.resourceBody (SDK model). */
async function dryRunBody(t: Test, app: FastifyInstance, body: object): Promise<FhirServiceResource> {
  const accepted = await app.inject({ method: "POST", url: "/v1/change-requests", payload: { ...body, dryRun: true }, headers: { "x-api-key": KEYS.operator } });
  status(t, accepted, 202);
  const { monitor } = await waitForJob(app, accepted.json().id);
  t.equal(monitor.status, "Succeeded", `dry run ${monitor.status} ${JSON.stringify(monitor.error ?? {})}`);
  return monitor.result.resourceBody as FhirServiceResource;
}

/** Says what was expected, or shows the body that was not. */
const status = (t: Test, response: { statusCode: number; body: string }, expected: number) =>
  t.equal(response.statusCode, expected, response.statusCode === expected ? `HTTP ${expected}` : response.body);

/**
 * Gets the template from the API, "deploys" it, and compares the FHIR service body ARM would receive
 * with what the same request's dry-run job would PUT: toArmResource of its body, which is also what
 * the SDK puts on the wire.
 */
async function compareWithJob(t: Test, app: FastifyInstance, body: { fhirServiceId: string; [member: string]: unknown }) {
  const response = await templateFor(app, body);
  status(t, response, 200);
  const answer = response.json();
  checkTemplateFormat(t, answer);
  const fhir = deployedOfType(deploy(answer.template, answer.parameters, context), RESOURCE_TYPES.fhirServices);
  t.equal(fhir.id.toLowerCase(), body.fhirServiceId.toLowerCase(), "deploys to the requested FHIR service");

  const jobBody = await dryRunBody(t, app, body);
  t.same(fhir.body, toArmResource(jobBody), "the deployed FHIR service is toArmResource(result.resourceBody) of the dry-run job");
  t.same(toArmResource(jobBody), await sdkPutBody(jobBody), "which is what the job's SDK puts on the wire");
  // Read through the SDK, the current service holds only what 2023-11-01 defines: the template drops nothing.
  t.same(undeclaredProperties(jobBody), []);
  return { answer, fhir };
}

t.test("POST /v1/templates against the sandbox", async (t) => {
  const { app } = await startStack(t);

  t.test("SetKey fhir-sys, system-assigned, cmk-rsa-2048 version 2", async (t) => {
    const { answer, fhir } = await compareWithJob(t, app, setKey("fhir-sys", KEY_V2));
    t.match(fhir.body, { location: "westus3", tags: { environment: "sandbox" }, identity: { type: "SystemAssigned" }, properties: { encryption: { customerManagedKeyEncryption: { keyEncryptionKeyUrl: KEY_V2 } } } });
    t.ok((fhir.body.properties as Record<string, unknown>).authenticationConfiguration, "the service's other settings are kept");
    t.match(answer.notes.join("\n"), /e147488a-f6f5-4113-8e2d-b22465e65bf6/);
  });

  t.test("SetKey fhir-uami with uami-sandbox", async (t) => {
    const { fhir } = await compareWithJob(t, app, setKey("fhir-uami", KEY_V2, { type: "UserAssigned", userAssignedIdentityId: UAMI }));
    t.same(fhir.body.identity, { type: "UserAssigned", userAssignedIdentities: { [UAMI]: {} } });
  });

  t.test("CreateService fhir-new with uami-sandbox", async (t) => {
    const body = { operation: "CreateService", fhirServiceId: fhirId("fhir-new"), location: "westus3", keyEncryptionKeyUrl: KEY_V2, identity: { type: "UserAssigned", userAssignedIdentityId: UAMI } };
    const { answer, fhir } = await compareWithJob(t, app, body);
    t.same(answer.parameters.parameters.tenantId, { value: TENANT }, "the identity's tenant, as the job takes it");
    t.match(fhir.body, { properties: { authenticationConfiguration: { authority: `https://login.microsoftonline.com/${TENANT}`, audience: "https://wssandbox-fhir-new.fhir.azurehealthcareapis.com" } } });

    t.test("with a role assignment on the existing vault", async (t) => {
      const response = await templateFor(app, { ...body, options: { createRoleAssignment: true } });
      status(t, response, 200);
      const answer = response.json();
      checkTemplateFormat(t, answer);
      const deployment = deploy(answer.template, answer.parameters, context);
      t.match(deployedOfType(deployment, RESOURCE_TYPES.roleAssignments), {
        id: new RegExp(`/vaults/kvsandbox/keys/cmk-rsa-2048/providers/Microsoft.Authorization/roleAssignments/`),
        body: { properties: { roleDefinitionId: /e147488a-f6f5-4113-8e2d-b22465e65bf6$/, principalType: "ServicePrincipal", principalId: "b0000000-0000-4000-8000-000000000001" } },
      });
    });
  });

  t.test("RotateKey (newest existing version) and RecoverKeyAccess: the SetKey their jobs send", async (t) => {
    const rotate = await compareWithJob(t, app, { operation: "RotateKey", fhirServiceId: fhirId("fhir-uami"), useLatestExistingVersion: true });
    t.match(rotate.fhir.body, { properties: { encryption: { customerManagedKeyEncryption: { keyEncryptionKeyUrl: KEY_V2 } } } });
    const recover = await compareWithJob(t, app, { operation: "RecoverKeyAccess", fhirServiceId: fhirId("fhir-uami") });
    t.match(recover.fhir.body, { properties: { encryption: { customerManagedKeyEncryption: { keyEncryptionKeyUrl: KEY_V1 } } } });
  });

  t.test("problems are problem+json with stable codes", async (t) => {
    const problem = async (body: object, expected: number, code: string, key: string | null = KEYS.reader) => {
      const response = await templateFor(app, body, key);
      status(t, response, expected);
      t.match(response.headers["content-type"], /^application\/problem\+json/);
      t.match(response.json(), { code, status: expected });
      return response.json();
    };
    await problem(setKey("fhir-sys"), 401, "Unauthorized", null);
    t.match(await problem(setKey("fhir-missing"), 404, "FhirServiceNotFound"), { fhirServiceId: fhirId("fhir-missing"), detail: /fhir-missing was not found in workspace wssandbox/ });
    await problem({ operation: "CreateService", fhirServiceId: fhirId("fhir-sys"), location: "westus3", keyEncryptionKeyUrl: KEY_V2, identity: { type: "UserAssigned", userAssignedIdentityId: UAMI } }, 409, "FhirServiceExists");
    t.match(await problem({ operation: "RotateKey", fhirServiceId: fhirId("fhir-uami") }, 400, "ValidationFailed"), {
      errors: [{ path: "/body/options/keyEncryptionKeyUrl", message: /az keyvault key rotate/ }],
    });
    t.match(await problem({ operation: "RecoverKeyAccess", fhirServiceId: fhirId("fhir-uami"), recoverDeletedKey: true }, 400, "ValidationFailed"), { errors: [{ path: "/body/recoverDeletedKey" }] });
    t.match(await problem({ operation: "RecoverKeyAccess", fhirServiceId: fhirId("fhir-sys") }, 409, "TemplateNotPossible"), { detail: /Microsoft-managed key/ });
    t.match(await problem(setKey("fhir-sys", "https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048"), 400, "ValidationFailed"), { errors: [{ path: "/body/keyEncryptionKeyUrl", message: /KeyUrlVersioned/ }] });
    t.match(await problem({ ...setKey("fhir-sys"), options: { createKeyVault: true } }, 400, "ValidationFailed"), { errors: [{ path: "/body/options/createKeyVault" }] });
    t.match(
      await problem({ operation: "CreateService", fhirServiceId: fhirId("fhir-new"), location: "westus3", keyEncryptionKeyUrl: KEY_V2, identity: { type: "UserAssigned", userAssignedIdentityId: uamiId("uami-nowhere") } }, 400, "ValidationFailed"),
      { errors: [{ path: "/body/identity/userAssignedIdentityId", message: /createIdentity/ }] },
    );
  });
});
