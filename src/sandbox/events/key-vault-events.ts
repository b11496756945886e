import { randomUUID } from "node:crypto";
import type { KeyRecord, KeyVersionRecord, VaultRecord } from "../world.js";
import type { DeliverySchema } from "./subscriptions.js";

/**
 * Key Vault's Event Grid events, shaped as Azure sends them (learn.microsoft.com/azure/event-grid/event-schema-key-vault,
 * MicrosoftDocs/azure-docs articles/event-grid/event-schema-key-vault.md; the data fields as the SDK models
 * them in @azure/eventgrid's KeyVaultKeyNewVersionCreatedEventData): the vault's ARM id as `topic`
 * (CloudEvents: `source`), the key's name as `subject`, and `data` with PascalCase `Id`, `VaultName`,
 * `ObjectType`, `ObjectName`, `Version`, `NBF`, `EXP`. `NBF`/`EXP` are Unix seconds as numbers (the
 * documentation's table; its example quotes them), `null` when the version has none.
 */

export type KeyEventType = "Microsoft.KeyVault.KeyNewVersionCreated" | "Microsoft.KeyVault.KeyNearExpiry" | "Microsoft.KeyVault.KeyExpired";

/** What Key Vault reports: "Triggered when the current version of a key is about to expire (30 days before the expiration date)". */
export const NEAR_EXPIRY_SECONDS = 30 * 86_400;

/** The publisher-neutral event: one per Key Vault occurrence, sent to each subscription in its schema. */
export interface KeyEvent {
  id: string;
  type: KeyEventType;
  /** ARM id of the vault. */
  source: string;
  subject: string;
  /** The emulator clock, ms. */
  timeMs: number;
  data: KeyEventData;
}

export interface KeyEventData {
  Id: string;
  VaultName: string;
  ObjectType: "Key";
  ObjectName: string;
  Version: string;
  NBF: number | null;
  EXP: number | null;
}

export function vaultArmId(vault: VaultRecord): string {
  return `/subscriptions/${vault.subscriptionId}/resourceGroups/${vault.resourceGroup}/providers/Microsoft.KeyVault/vaults/${vault.name}`;
}

export function keyEvent(type: KeyEventType, vault: VaultRecord, key: KeyRecord, version: KeyVersionRecord, nowMs: number): KeyEvent {
  return {
    id: randomUUID(),
    type,
    source: vaultArmId(vault),
    subject: key.name,
    timeMs: nowMs,
    data: {
      Id: `https://${vault.name}.vault.azure.net/keys/${key.name}/${version.version}`,
      VaultName: vault.name,
      ObjectType: "Key",
      ObjectName: key.name,
      Version: version.version,
      NBF: version.nbf ?? null,
      EXP: version.exp ?? null,
    },
  };
}

/** Event Grid writes times with seven fractional digits (`2019-07-25T01:08:33.1036736Z`). */
export function eventGridTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$10000Z");
}

/** The event in the subscription's delivery schema: an Event Grid event, or a CloudEvents 1.0 event. */
export function inSchema(event: KeyEvent, schema: DeliverySchema): Record<string, unknown> {
  if (schema === "CloudEventSchemaV1_0") {
    return { id: event.id, source: event.source, specversion: "1.0", type: event.type, subject: event.subject, time: eventGridTime(event.timeMs), data: event.data };
  }
  return {
    id: event.id,
    topic: event.source,
    subject: event.subject,
    eventType: event.type,
    eventTime: eventGridTime(event.timeMs),
    data: event.data,
    dataVersion: "1",
    metadataVersion: "1",
  };
}

/**
 * The validation event of the Event Grid schema (learn.microsoft.com/azure/event-grid/webhook-event-delivery):
 * the endpoint must answer 200 with `{ "validationResponse": validationCode }`. The manual handshake
 * (`validationUrl`) is not emulated, so the field is left out.
 */
export function subscriptionValidationEvent(topic: string, validationCode: string, nowMs: number): Record<string, unknown> {
  return {
    id: randomUUID(),
    topic,
    subject: "",
    data: { validationCode },
    eventType: "Microsoft.EventGrid.SubscriptionValidationEvent",
    eventTime: eventGridTime(nowMs),
    metadataVersion: "1",
    dataVersion: "1",
  };
}
