import { Type } from "@sinclair/typebox";
import { RESOURCE_GROUP_PATTERN, SERVICE_NAME_PATTERN, SUBSCRIPTION_ID_PATTERN } from "../domain/arm-ids.js";

export const FhirServiceParams = Type.Object({
  subscriptionId: Type.String({ pattern: SUBSCRIPTION_ID_PATTERN, description: "Subscription id." }),
  resourceGroup: Type.String({ pattern: RESOURCE_GROUP_PATTERN, description: "Resource group (not ending in a period)." }),
  workspace: Type.String({ pattern: SERVICE_NAME_PATTERN, description: "Health Data Services workspace." }),
  fhirService: Type.String({ pattern: SERVICE_NAME_PATTERN, description: "FHIR service name." }),
});

export const EncryptionState = Type.Object(
  {
    fhirServiceId: Type.String(),
    encryptionType: Type.Union([Type.Literal("CustomerManagedKey"), Type.Literal("MicrosoftManagedKey")]),
    keyEncryptionKeyUrl: Type.Optional(Type.String()),
    keyVaultName: Type.Optional(Type.String()),
    keyVaultUrl: Type.Optional(Type.String()),
    keyName: Type.Optional(Type.String()),
    keyVersion: Type.Optional(Type.String()),
    identityType: Type.String({ description: "SystemAssigned, UserAssigned, None, or the combined form." }),
    principalId: Type.Optional(Type.String({ description: "The principal that reaches the key." })),
    userAssignedIdentityIds: Type.Optional(Type.Array(Type.String())),
    provisioningState: Type.String(),
    location: Type.String(),
  },
  { $id: "EncryptionState", description: "How a FHIR service's data is encrypted now." },
);

export const EncryptionHealth = Type.Object(
  {
    status: Type.Union([Type.Literal("Healthy"), Type.Literal("KeyAccessLost"), Type.Literal("Degraded")], {
      description: "KeyAccessLost: the FHIR API answers 500 (or will) until key access is restored.",
    }),
    checks: Type.Array(
      Type.Object({
        id: Type.String({ description: "KeyExists, KeyEnabled, KeyNotExpired, KeyNotDeleted, IdentityPresent, IdentityKeyAccess, FhirDataPlane." }),
        status: Type.Union([Type.Literal("Passed"), Type.Literal("Failed"), Type.Literal("Warning"), Type.Literal("Skipped")]),
        message: Type.String(),
        remediation: Type.Optional(Type.String()),
      }),
    ),
    recommendedAction: Type.Optional(
      Type.Object({
        description: Type.String(),
        operation: Type.Optional(Type.String({ description: "The change request that restores access once the fix is done." })),
        request: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: "A change request body to send." })),
      }),
    ),
  },
  { $id: "EncryptionHealth", description: "Diagnosis of a FHIR service's access to its key." },
);

export const encryptionSchemas = [EncryptionState, EncryptionHealth];
