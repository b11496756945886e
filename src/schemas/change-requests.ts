import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { FhirServiceId, KeyUrl, PlainText, Schedule, Ticket, UserAssignedIdentityId } from "./common.js";
import { CHANGE_REQUEST_EXAMPLES } from "./examples.js";

/**
 * A union that validators resolve by one property (OpenAPI `discriminator`), so a bad body gets the
 * errors of the branch it names instead of every branch's. Members are registered schemas referenced by
 * $ref, so the document names each one (components) and its discriminator can map to it.
 */
function Discriminated<T extends TSchema[]>(propertyName: string, members: [...T], options: Record<string, unknown> = {}) {
  return Type.Unsafe<Static<ReturnType<typeof Type.Union<T>>>>({
    type: "object",
    oneOf: members,
    discriminator: { propertyName },
    ...options,
  });
}

export const SystemAssignedIdentity = Type.Object(
  { type: Type.Literal("SystemAssigned", { description: "The FHIR service's own identity." }) },
  { $id: "SystemAssignedIdentity", additionalProperties: false, title: "SystemAssignedIdentity" },
);

export const UserAssignedIdentity = Type.Object(
  {
    type: Type.Literal("UserAssigned"),
    userAssignedIdentityId: UserAssignedIdentityId,
  },
  { $id: "UserAssignedIdentity", additionalProperties: false, title: "UserAssignedIdentity" },
);

export const Identity = Discriminated("type", [Type.Ref(SystemAssignedIdentity), Type.Ref(UserAssignedIdentity)], {
  description: "The one managed identity the FHIR service uses to reach its key.",
});

const commonFields = {
  fhirServiceId: FhirServiceId,
  ticket: Type.Optional(Type.Ref(Ticket)),
  callbackUrl: Type.Optional(
    Type.String({ format: "uri", pattern: "^https?://", maxLength: 2000, description: "Signed webhook target, called when the job ends." }),
  ),
  dryRun: Type.Optional(Type.Boolean({ default: false, description: "Run the checks as a job and change nothing." })),
  schedule: Type.Optional(Type.Ref(Schedule)),
};

export const SetKeyRequest = Type.Object(
  {
    operation: Type.Literal("SetKey", { description: "Set or change the key (and identity) of an existing FHIR service." }),
    ...commonFields,
    keyEncryptionKeyUrl: KeyUrl,
    identity: Identity,
    acknowledgeIdentityTypeChange: Type.Optional(
      Type.Boolean({ default: false, description: "Must be true when the identity type changes (it can disturb export/import jobs)." }),
    ),
  },
  { $id: "SetKeyRequest", additionalProperties: false, title: "SetKey", example: CHANGE_REQUEST_EXAMPLES.SetKey.value },
);
export type SetKeyRequest = Static<typeof SetKeyRequest>;

export const CreateServiceRequest = Type.Object(
  {
    operation: Type.Literal("CreateService", { description: "Create a FHIR service encrypted with a customer-managed key from the start (user-assigned identity, as the portal's Security tab)." }),
    ...commonFields,
    location: Type.String({ minLength: 2, maxLength: 40, pattern: "^[A-Za-z0-9 ]+$", description: "Azure region of the new service; the key's vault must be in it.", example: "westus3" }),
    keyEncryptionKeyUrl: KeyUrl,
    identity: Type.Ref(UserAssignedIdentity),
    kind: Type.Optional(Type.Union([Type.Literal("fhir-R4"), Type.Literal("fhir-Stu3")], { default: "fhir-R4", description: "FHIR version." })),
    tags: Type.Optional(
      Type.Record(PlainText({ description: "Tag name." }), PlainText({ maxLength: 256, description: "Tag value." }), {
        // Names are keys: one outside the pattern is an additional property, refused.
        additionalProperties: false,
        description: "Resource tags (names and values without control or bidirectional formatting characters).",
      }),
    ),
  },
  { $id: "CreateServiceRequest", additionalProperties: false, title: "CreateService", example: CHANGE_REQUEST_EXAMPLES.CreateService.value },
);
export type CreateServiceRequest = Static<typeof CreateServiceRequest>;

export const RotateKeyRequest = Type.Object(
  {
    operation: Type.Literal("RotateKey", { description: "Make a new version of the service's current key and move the service to it." }),
    ...commonFields,
    useLatestExistingVersion: Type.Optional(
      Type.Boolean({ default: false, description: "Move to the newest existing version instead of creating one (az keyvault key rotate)." }),
    ),
  },
  { $id: "RotateKeyRequest", additionalProperties: false, title: "RotateKey", example: CHANGE_REQUEST_EXAMPLES.RotateKey.value },
);
export type RotateKeyRequest = Static<typeof RotateKeyRequest>;

export const RecoverKeyAccessRequest = Type.Object(
  {
    operation: Type.Literal("RecoverKeyAccess", { description: "Re-apply the key and identity the service has now, after its key access was lost and the cause fixed." }),
    ...commonFields,
    recoverDeletedKey: Type.Optional(
      Type.Boolean({ default: false, description: "When the key is soft-deleted, recover it in Key Vault first. Nothing in Key Vault changes unless this is true." }),
    ),
  },
  { $id: "RecoverKeyAccessRequest", additionalProperties: false, title: "RecoverKeyAccess", example: CHANGE_REQUEST_EXAMPLES.RecoverKeyAccess.value },
);
export type RecoverKeyAccessRequest = Static<typeof RecoverKeyAccessRequest>;

/** Inline (not registered): it carries the named examples of the routes that take it (@fastify/swagger's x-examples). */
export const ChangeRequest = Discriminated(
  "operation",
  [Type.Ref(SetKeyRequest), Type.Ref(CreateServiceRequest), Type.Ref(RotateKeyRequest), Type.Ref(RecoverKeyAccessRequest)],
  { description: "A change to a FHIR service's customer-managed key, chosen by `operation`.", "x-examples": CHANGE_REQUEST_EXAMPLES },
);
export type ChangeRequest = SetKeyRequest | CreateServiceRequest | RotateKeyRequest | RecoverKeyAccessRequest;
export type Operation = ChangeRequest["operation"];

/** Registered once with Fastify: the union members above refer to them by $ref. */
export const changeRequestSchemas = [SystemAssignedIdentity, UserAssignedIdentity, SetKeyRequest, CreateServiceRequest, RotateKeyRequest, RecoverKeyAccessRequest];
