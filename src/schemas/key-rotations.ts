import { Type, type Static } from "@sinclair/typebox";
import { Schedule, Ticket } from "./common.js";
import { SEED_EXAMPLES } from "./examples.js";

export const SubscriptionId = Type.String({
  pattern: "^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$",
  description: "Subscription id (a GUID).",
  example: "22222222-2222-2222-2222-222222222222",
});

/** `POST /v1/key-rotations`: move every FHIR service on a key to one version of it. */
export const KeyRotationRequest = Type.Object(
  {
    keyUrl: Type.String({
      minLength: 1,
      maxLength: 400,
      description:
        "Versionless key identifier, exactly as Key Vault shows it: https://{vault}.vault.azure.net/keys/{name} (or a Managed HSM's). " +
        "Every FHIR service whose key URL names this key (any version) is moved to the target version.",
      example: SEED_EXAMPLES.keyUrl.replace(/\/[0-9a-f]{32}$/, ""),
    }),
    targetVersion: Type.Optional(
      Type.String({ pattern: "^[0-9a-zA-Z]{32}$", description: "The version to move every service to; default: the key's newest enabled version." }),
    ),
    createNewVersion: Type.Optional(
      Type.Boolean({ default: false, description: "First make one new version of the key in Key Vault (az keyvault key rotate), then move every service to it. Not with targetVersion." }),
    ),
    subscriptions: Type.Optional(
      Type.Array(SubscriptionId, {
        minItems: 1,
        maxItems: 100,
        uniqueItems: true,
        description: "Subscriptions to look for FHIR services in; default: CMK_SUBSCRIPTIONS, or every subscription the service can list; always within the caller's allow-list.",
      }),
    ),
    dryRun: Type.Optional(Type.Boolean({ default: false, description: "Discover and pre-flight, list what would change, write nothing." })),
    ticket: Type.Optional(Type.Ref(Ticket)),
    callbackUrl: Type.Optional(
      Type.String({ format: "uri", pattern: "^https?://", maxLength: 2000, description: "Signed webhook target, called once when the fleet rotation (the last child) ends." }),
    ),
    // The parent waits for its window (and its approval) as any change does.
    schedule: Type.Optional(Type.Ref(Schedule)),
  },
  {
    additionalProperties: false,
    title: "KeyRotation",
    example: { keyUrl: SEED_EXAMPLES.keyUrl.replace(/\/[0-9a-f]{32}$/, ""), createNewVersion: true, ticket: { system: "servicenow", id: "CHG0012345" } },
  },
);
export type KeyRotationRequest = Static<typeof KeyRotationRequest>;

/** What a fleet rotation's parent job counts when it ends (`result.services`). */
export const FleetServiceCounts = Type.Object(
  {
    total: Type.Integer({ minimum: 0, description: "FHIR services found on the key." }),
    succeeded: Type.Integer({ minimum: 0 }),
    failed: Type.Integer({ minimum: 0 }),
    skipped: Type.Integer({ minimum: 0, description: "Already on the target version." }),
    canceled: Type.Integer({ minimum: 0 }),
  },
  { $id: "FleetServiceCounts", description: "Services of a fleet rotation by outcome." },
);
export type FleetServiceCounts = Static<typeof FleetServiceCounts>;

/** The parent job's request as stored with it: the body, plus the caller's allow-list when it had one. */
export interface FleetJobRequest extends KeyRotationRequest {
  operation: "RotateFleet";
  /** A fleet names no one service; present (undefined) so code reading any job's request can ask. */
  fhirServiceId?: undefined;
}

/** Registered once with Fastify (the request body is inline in its route, as change requests' is). */
export const keyRotationSchemas = [FleetServiceCounts];
