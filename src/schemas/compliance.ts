import { Type, type Static } from "@sinclair/typebox";
import { RecoverKeyAccessRequest, RotateKeyRequest, SetKeyRequest } from "./change-requests.js";
import { DateTime } from "./common.js";
import { SubscriptionId } from "./key-rotations.js";

/**
 * The compliance report (api-contract v1.1, Compliance) and the Azure Event Grid deliveries of Key Vault
 * events that `POST /v1/events/key-vault` takes. Field names and enums are the contract's.
 */

export const COMPLIANCE_RULES = ["MicrosoftManagedKey", "KeyVersionBehindLatest", "KeyVersionTooOld", "KeyExpiresSoon", "KeyExpired", "KeyAccessLost"] as const;
export const ComplianceRule = Type.Union(
  COMPLIANCE_RULES.map((rule) => Type.Literal(rule)),
  { description: "The rule a finding comes from." },
);
export type ComplianceRule = (typeof COMPLIANCE_RULES)[number];

export const SEVERITIES = ["High", "Medium", "Low"] as const;
export const Severity = Type.Union(
  SEVERITIES.map((severity) => Type.Literal(severity)),
  { description: "High, Medium or Low." },
);
export type Severity = (typeof SEVERITIES)[number];

export const ServiceHealth = Type.Union([Type.Literal("Healthy"), Type.Literal("KeyAccessLost"), Type.Literal("Degraded"), Type.Literal("Unknown")], {
  description: "The lost-key-access diagnosis (GET …/encryption/health); Unknown when it could not be made.",
});
export type ServiceHealth = Static<typeof ServiceHealth>;

/** A change request that fixes a finding: one of the change-request bodies, as `POST /v1/change-requests` takes it. */
export const RecommendedChange = Type.Union([Type.Ref(SetKeyRequest), Type.Ref(RotateKeyRequest), Type.Ref(RecoverKeyAccessRequest)], {
  description: "A change-request body (SetKey, RotateKey or RecoverKeyAccess) that fixes the finding; send it to POST /v1/change-requests.",
});
export type RecommendedChange = SetKeyRequest | RotateKeyRequest | RecoverKeyAccessRequest;

export const ComplianceFinding = Type.Object(
  {
    rule: ComplianceRule,
    severity: Severity,
    message: Type.String({ description: "What was found, naming the key, version and dates involved." }),
    recommendedChange: Type.Optional(RecommendedChange),
  },
  { $id: "ComplianceFinding", additionalProperties: false },
);
export type ComplianceFinding = Omit<Static<typeof ComplianceFinding>, "recommendedChange"> & { recommendedChange?: RecommendedChange };

export const ServiceCompliance = Type.Object(
  {
    fhirServiceId: Type.String({ description: "ARM id of the FHIR service." }),
    encryption: Type.Union([Type.Literal("CustomerManaged"), Type.Literal("MicrosoftManaged")]),
    keyEncryptionKeyUrl: Type.Optional(Type.String({ description: "The versioned key the service uses." })),
    keyVersionCreatedDateTime: Type.Optional(DateTime("When the service's key version was created.")),
    keyVersionAgeDays: Type.Optional(Type.Integer({ minimum: 0, description: "Whole days since the service's key version was created." })),
    latestKeyVersion: Type.Optional(Type.String({ description: "The key's newest enabled version." })),
    keyExpiresDateTime: Type.Optional(DateTime("The service's key version's expiry (exp), when it has one.")),
    health: ServiceHealth,
    findings: Type.Array(Type.Ref(ComplianceFinding)),
  },
  { $id: "ServiceCompliance", additionalProperties: false },
);
export type ServiceCompliance = Omit<Static<typeof ServiceCompliance>, "findings"> & { findings: ComplianceFinding[] };

export const FindingCounts = Type.Object(
  { High: Type.Integer({ minimum: 0 }), Medium: Type.Integer({ minimum: 0 }), Low: Type.Integer({ minimum: 0 }) },
  { additionalProperties: false, description: "Findings by severity." },
);

export const ComplianceSummary = Type.Object(
  {
    services: Type.Integer({ minimum: 0, description: "FHIR services in the report." }),
    customerManaged: Type.Integer({ minimum: 0 }),
    microsoftManaged: Type.Integer({ minimum: 0 }),
    findings: FindingCounts,
  },
  { additionalProperties: false },
);
export type ComplianceSummary = Static<typeof ComplianceSummary>;

export const ComplianceReport = Type.Object(
  {
    scanId: Type.String({ description: "The scan (its job id) that made the report." }),
    scannedDateTime: DateTime("When the scan finished."),
    summary: ComplianceSummary,
    services: Type.Array(Type.Ref(ServiceCompliance)),
  },
  { $id: "ComplianceReport", additionalProperties: false, description: "The latest finished compliance scan's report." },
);
export type ComplianceReport = Omit<Static<typeof ComplianceReport>, "services"> & { services: ServiceCompliance[] };

/** `GET /v1/compliance` filters (they combine). */
export const ComplianceQuery = Type.Object(
  {
    rule: Type.Optional(ComplianceRule),
    severity: Type.Optional(Severity),
    subscriptionId: Type.Optional(Type.String({ pattern: "^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$", description: "Only the services of this subscription." })),
  },
  { additionalProperties: false },
);
export type ComplianceQuery = Static<typeof ComplianceQuery>;

/** `POST /v1/compliance-scans`: every field optional; no body at all is `{}`. */
export const ComplianceScanRequest = Type.Object(
  {
    subscriptions: Type.Optional(
      Type.Array(SubscriptionId, {
        minItems: 1,
        maxItems: 100,
        uniqueItems: true,
        description: "Subscriptions to scan; default: CMK_SUBSCRIPTIONS, or every subscription the service can list; always within the caller's allow-list.",
      }),
    ),
    callbackUrl: Type.Optional(Type.String({ format: "uri", pattern: "^https?://", maxLength: 2000, description: "Signed webhook target, called once when the scan ends." })),
  },
  { additionalProperties: false, title: "ComplianceScan", example: {} },
);
export type ComplianceScanRequest = Static<typeof ComplianceScanRequest>;

/** A scan's request as its job stores it. */
export interface ComplianceScanJobRequest extends ComplianceScanRequest {
  operation: "ComplianceScan";
  /** A scan names no one service, writes nothing and waits for no approval or window. */
  fhirServiceId?: undefined;
  dryRun?: undefined;
  ticket?: undefined;
  schedule?: undefined;
}

// --- Azure Event Grid deliveries (learn.microsoft.com/azure/event-grid/event-schema, cloud-event-schema,
// event-schema-key-vault, webhook-event-delivery). Unknown members are allowed: Event Grid may add some.

export const KEY_VAULT_EVENT_TYPES = ["Microsoft.KeyVault.KeyNewVersionCreated", "Microsoft.KeyVault.KeyNearExpiry", "Microsoft.KeyVault.KeyExpired"] as const;
export type KeyVaultEventType = (typeof KEY_VAULT_EVENT_TYPES)[number];
export const SUBSCRIPTION_VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent";

const EventId = Type.String({ minLength: 1, maxLength: 200, description: "Unique per event (with the source): duplicates are recognised by it." });

/** Key Vault's event data: PascalCase fields; NBF/EXP Unix seconds (numbers, or digits in a string as the documentation's example shows). */
export const KeyVaultEventData = Type.Object(
  {
    Id: Type.String({ minLength: 1, maxLength: 400, description: "The object's versioned id, e.g. https://{vault}.vault.azure.net/keys/{name}/{version}." }),
    VaultName: Type.String({ minLength: 1, maxLength: 100 }),
    ObjectType: Type.String({ minLength: 1, maxLength: 50, description: "Key, Secret or Certificate." }),
    ObjectName: Type.String({ minLength: 1, maxLength: 200 }),
    Version: Type.String({ minLength: 1, maxLength: 100 }),
    NBF: Type.Optional(Type.Union([Type.Number(), Type.String({ pattern: "^\\s*-?\\d+\\s*$" }), Type.Null()])),
    EXP: Type.Optional(Type.Union([Type.Number(), Type.String({ pattern: "^\\s*-?\\d+\\s*$" }), Type.Null()])),
  },
  { additionalProperties: true, description: "data of Microsoft.KeyVault.Key* events." },
);
export type KeyVaultEventData = Static<typeof KeyVaultEventData>;

export const EventGridEvent = Type.Object(
  {
    id: EventId,
    topic: Type.Optional(Type.String({ maxLength: 1000, description: "The source's ARM id (Event Grid sets it)." })),
    subject: Type.String({ maxLength: 1000 }),
    eventType: Type.String({ minLength: 1, maxLength: 200 }),
    eventTime: Type.String({ minLength: 1, maxLength: 64 }),
    data: Type.Optional(Type.Unknown()),
    dataVersion: Type.String({ maxLength: 50 }),
    metadataVersion: Type.Optional(Type.String({ maxLength: 50 })),
  },
  { $id: "EventGridEvent", additionalProperties: true, description: "An event in the Event Grid schema." },
);
export type EventGridEvent = Static<typeof EventGridEvent>;

export const CloudEvent = Type.Object(
  {
    id: EventId,
    source: Type.String({ minLength: 1, maxLength: 1000 }),
    specversion: Type.Literal("1.0"),
    type: Type.String({ minLength: 1, maxLength: 200 }),
    subject: Type.Optional(Type.String({ maxLength: 1000 })),
    time: Type.Optional(Type.String({ maxLength: 64 })),
    datacontenttype: Type.Optional(Type.String({ maxLength: 200 })),
    dataschema: Type.Optional(Type.String({ maxLength: 1000 })),
    data: Type.Optional(Type.Unknown()),
  },
  { $id: "CloudEvent", additionalProperties: true, description: "A CloudEvents 1.0 event (structured mode)." },
);
export type CloudEvent = Static<typeof CloudEvent>;

/** Up to Event Grid's largest batch (5,000 events); the body limit of the route bounds it in bytes too. */
const MAX_BATCH = 5000;

/** What `POST /v1/events/key-vault` takes: Event Grid always sends an array; CloudEvents one event, or an array in batch mode. */
export const KeyVaultEventDelivery = Type.Union(
  [
    Type.Array(Type.Ref(EventGridEvent), { minItems: 1, maxItems: MAX_BATCH, title: "EventGridSchema", description: "Event Grid schema: an array of events (one unless batching is on)." }),
    Type.Ref(CloudEvent, { title: "CloudEvent", description: "CloudEvents 1.0, one event (application/cloudevents+json)." }),
    Type.Array(Type.Ref(CloudEvent), { minItems: 1, maxItems: MAX_BATCH, title: "CloudEventBatch", description: "CloudEvents 1.0 batch (application/cloudevents-batch+json)." }),
  ],
  { description: "An Azure Event Grid delivery of Key Vault events, in the Event Grid schema or CloudEvents 1.0." },
);

export const SubscriptionValidationResponse = Type.Object(
  { validationResponse: Type.String({ description: "The validationCode of the SubscriptionValidationEvent, echoed: Event Grid then delivers to this endpoint." }) },
  { $id: "SubscriptionValidationResponse", additionalProperties: false },
);

export const KeyVaultEventsAccepted = Type.Object(
  {
    received: Type.Integer({ minimum: 0, description: "Events in the delivery." }),
    recorded: Type.Integer({ minimum: 0, description: "Key Vault key events recorded for the services on that key (new this time)." }),
    duplicates: Type.Integer({ minimum: 0, description: "Events seen before (Event Grid delivers at least once): ignored." }),
    ignored: Type.Integer({ minimum: 0, description: "Events of other types (secrets, certificates, access policies): ignored." }),
  },
  { $id: "KeyVaultEventsAccepted", additionalProperties: false },
);
export type KeyVaultEventsAccepted = Static<typeof KeyVaultEventsAccepted>;

/** Registered once with Fastify: the Event Grid webhook's. */
export const complianceSchemas = [EventGridEvent, CloudEvent, SubscriptionValidationResponse, KeyVaultEventsAccepted];
/** The report's, to register with the route that answers it (GET /v1/compliance, with the scan). */
export const complianceReportSchemas = [ComplianceFinding, ServiceCompliance, ComplianceReport];
