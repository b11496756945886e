import { Type, type Static, type TObject, type TProperties } from "@sinclair/typebox";
import { CreateServiceRequest, RecoverKeyAccessRequest, RotateKeyRequest, SetKeyRequest } from "./change-requests.js";
import { KeyUrl } from "./common.js";
import { TEMPLATE_REQUEST_EXAMPLES } from "./examples.js";

const createOption = (description: string) => Type.Optional(Type.Boolean({ default: false, description }));

export const CreateServiceTemplateOptions = Type.Object(
  {
    createWorkspace: createOption("Also declare the workspace (only when it does not exist: its settings would be reset)."),
    createKeyVault: createOption("Also declare the vault (soft delete, purge protection, RBAC) and the key (RSA 2048, wrapKey/unwrapKey)."),
    createIdentity: createOption("Also declare the user-assigned identity (it must be in the FHIR service's resource group)."),
    createRoleAssignment: createOption("Also grant the identity Key Vault Crypto Service Encryption User on the key (the vault must be in the FHIR service's resource group)."),
  },
  { additionalProperties: false, description: "What the template declares besides the FHIR service." },
);

export const RotateKeyTemplateOptions = Type.Object(
  {
    keyEncryptionKeyUrl: Type.Optional({
      ...KeyUrl,
      description: "The new version of the service's key, made beforehand (az keyvault key rotate): a template cannot make key versions.",
    }),
  },
  { additionalProperties: false },
);

const NoOptions = Type.Object({}, { additionalProperties: false, description: "This operation has no template options." });

/**
 * A change request member plus `options`: the same body POST /v1/change-requests takes, so a portal can
 * send either. Registered (`$id`) like the members it extends, for the discriminator to map to.
 */
function withOptions<P extends TProperties, O extends TObject>(member: TObject<P>, options: O, title: string, example: object) {
  return Type.Object({ ...member.properties, options: Type.Optional(options) }, { $id: `${title}Request`, additionalProperties: false, title, example });
}

export const SetKeyTemplateRequest = withOptions(SetKeyRequest, NoOptions, "SetKeyTemplate", TEMPLATE_REQUEST_EXAMPLES.SetKey.value);
export const CreateServiceTemplateRequest = withOptions(CreateServiceRequest, CreateServiceTemplateOptions, "CreateServiceTemplate", TEMPLATE_REQUEST_EXAMPLES.CreateService.value);
export const RotateKeyTemplateRequest = withOptions(RotateKeyRequest, RotateKeyTemplateOptions, "RotateKeyTemplate", TEMPLATE_REQUEST_EXAMPLES.RotateKey.value);
export const RecoverKeyAccessTemplateRequest = withOptions(RecoverKeyAccessRequest, NoOptions, "RecoverKeyAccessTemplate", TEMPLATE_REQUEST_EXAMPLES.RecoverKeyAccess.value);

export type SetKeyTemplateRequest = Static<typeof SetKeyTemplateRequest>;
export type CreateServiceTemplateRequest = Static<typeof CreateServiceTemplateRequest>;
export type RotateKeyTemplateRequest = Static<typeof RotateKeyTemplateRequest>;
export type RecoverKeyAccessTemplateRequest = Static<typeof RecoverKeyAccessTemplateRequest>;
export type TemplateRequest = SetKeyTemplateRequest | CreateServiceTemplateRequest | RotateKeyTemplateRequest | RecoverKeyAccessTemplateRequest;

/** Resolved by `operation` (OpenAPI discriminator), like the change request it extends; inline for its named examples. */
export const TemplateRequest = Type.Unsafe<TemplateRequest>({
  type: "object",
  oneOf: [Type.Ref(SetKeyTemplateRequest), Type.Ref(CreateServiceTemplateRequest), Type.Ref(RotateKeyTemplateRequest), Type.Ref(RecoverKeyAccessTemplateRequest)],
  discriminator: { propertyName: "operation" },
  description: "A change request (as for POST /v1/change-requests) plus template `options`.",
  "x-examples": TEMPLATE_REQUEST_EXAMPLES,
});

const Json = Type.Unknown({ description: "Any JSON value." });

export const ArmTemplate = Type.Object(
  {
    $schema: Type.String({ description: "The deployment template schema (2019-04-01)." }),
    contentVersion: Type.String({ example: "1.0.0.0" }),
    parameters: Type.Record(Type.String(), Json),
    variables: Type.Optional(Type.Record(Type.String(), Json)),
    resources: Type.Array(Type.Record(Type.String(), Json)),
    outputs: Type.Optional(Type.Record(Type.String(), Json)),
  },
  { $id: "ArmTemplate", additionalProperties: true, description: "An ARM deployment template (resource-group scope)." },
);

export const ArmParametersFile = Type.Object(
  {
    $schema: Type.String({ description: "The deployment parameters schema (2019-04-01)." }),
    contentVersion: Type.String({ example: "1.0.0.0" }),
    parameters: Type.Record(Type.String(), Type.Object({ value: Json })),
  },
  { $id: "ArmParametersFile", description: "The parameters file with the request's values." },
);

export const TemplateResponse = Type.Object(
  {
    template: Type.Ref(ArmTemplate),
    parameters: Type.Ref(ArmParametersFile),
    notes: Type.Array(Type.String(), { description: "What to know before deploying: the role granted, what the template cannot do, how to deploy." }),
  },
  { $id: "TemplateResponse" },
);
export type TemplateResponse = Static<typeof TemplateResponse>;

export const templateSchemas = [SetKeyTemplateRequest, CreateServiceTemplateRequest, RotateKeyTemplateRequest, RecoverKeyAccessTemplateRequest, ArmTemplate, ArmParametersFile, TemplateResponse];
