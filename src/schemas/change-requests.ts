import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { FhirServiceId, KeyUrl, Ticket, UserAssignedIdentityId } from "./common.js";
import { SEED_EXAMPLES } from "./examples.js";

/**
 * A union that validators resolve by one property (OpenAPI `discriminator`), so a bad body gets the
 * errors of the branch it names instead of every branch's.
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
  { additionalProperties: false, title: "SystemAssignedIdentity" },
);

export const UserAssignedIdentity = Type.Object(
  {
    type: Type.Literal("UserAssigned"),
    userAssignedIdentityId: UserAssignedIdentityId,
  },
  { additionalProperties: false, title: "UserAssignedIdentity" },
);

export const Identity = Discriminated("type", [SystemAssignedIdentity, UserAssignedIdentity], {
  description: "The one managed identity the FHIR service uses to reach its key.",
});

const commonFields = {
  fhirServiceId: FhirServiceId,
  ticket: Type.Optional(Ticket),
  callbackUrl: Type.Optional(
    Type.String({ format: "uri", pattern: "^https?://", maxLength: 2000, description: "Signed webhook target, called when the job ends." }),
  ),
  dryRun: Type.Optional(Type.Boolean({ default: false, description: "Run the checks as a job and change nothing." })),
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
  {
    additionalProperties: false,
    title: "SetKey",
    example: {
      operation: "SetKey",
      fhirServiceId: SEED_EXAMPLES.fhirSys,
      keyEncryptionKeyUrl: SEED_EXAMPLES.keyUrl,
      identity: { type: "SystemAssigned" },
      ticket: { system: "servicenow", id: "CHG0012345" },
    },
  },
);
export type SetKeyRequest = Static<typeof SetKeyRequest>;

export const ChangeRequest = Discriminated("operation", [SetKeyRequest], {
  description: "A change to a FHIR service's customer-managed key, chosen by `operation`.",
});
export type ChangeRequest = SetKeyRequest;
export type Operation = ChangeRequest["operation"];
