import { Value } from "@sinclair/typebox/value";
import { KEY_VAULT_EVENT_TYPES, KeyVaultEventData, SUBSCRIPTION_VALIDATION_EVENT, type CloudEvent, type EventGridEvent, type KeyVaultEventType } from "../schemas/compliance.js";
import { parseKeyUrl } from "./key-url.js";

/**
 * Azure Event Grid deliveries of Key Vault events, read into one shape whichever schema carried them
 * (learn.microsoft.com/azure/event-grid/event-schema-key-vault). Pure.
 */

/** A Key Vault key event as the service keeps it. */
export interface KeyVersionEvent {
  /** Event Grid's event id. */
  eventId: string;
  /** The vault's ARM id (`topic` / `source`). */
  source: string;
  type: KeyVaultEventType;
  /** When it happened (the event's own time). */
  eventTime: string;
  /** `https://{vault}.vault.azure.net/keys/{name}` (no version): what services on any version of the key share. */
  versionlessKeyUrl: string;
  /** The versioned key id the event is about. */
  keyId: string;
  version: string;
  /** Unix seconds, when the version has them. */
  notBefore?: number;
  expires?: number;
  /** When this service received it. */
  receivedDateTime: string;
}

export type ReadDelivery =
  /** The Event Grid schema's validation handshake: answer `{ validationResponse: validationCode }`. */
  | { kind: "validation"; validationCode: string }
  | { kind: "events"; received: number; keyEvents: KeyVersionEvent[]; ignored: number }
  | { kind: "invalid"; errors: Array<{ path: string; message: string }> };

/** NBF/EXP: numbers, or digits in a string as the documentation's example sends them. */
function unixSeconds(value: unknown): number | undefined {
  if (typeof value === "number" && Number.isFinite(value)) return value;
  if (typeof value === "string" && /^\s*-?\d+\s*$/.test(value)) return Number(value);
  return undefined;
}

interface Envelope {
  id: string;
  source: string;
  type: string;
  time: string;
  data: unknown;
}

function envelopes(body: EventGridEvent[] | CloudEvent | CloudEvent[]): Envelope[] {
  const list: Array<EventGridEvent | CloudEvent> = Array.isArray(body) ? body : [body];
  return list.map((event) =>
    "eventType" in event && typeof event.eventType === "string"
      ? { id: event.id, source: event.topic ?? "", type: event.eventType, time: event.eventTime, data: event.data }
      : { id: event.id, source: String((event as CloudEvent).source), type: String((event as CloudEvent).type), time: (event as CloudEvent).time ?? "", data: event.data },
  );
}

/**
 * What a delivery asks for: the validation handshake, or events, of which the Key Vault key events
 * (`KeyNewVersionCreated`, `KeyNearExpiry`, `KeyExpired` with `ObjectType: Key`) are kept and every other
 * one counted as ignored. A key event whose data is not Key Vault's makes the delivery invalid, naming it.
 */
export function readDelivery(body: EventGridEvent[] | CloudEvent | CloudEvent[], receivedAt: Date): ReadDelivery {
  const events = envelopes(body);
  const validation = events.find((event) => event.type === SUBSCRIPTION_VALIDATION_EVENT);
  if (validation) {
    const code = (validation.data as { validationCode?: unknown } | undefined)?.validationCode;
    const index = events.indexOf(validation);
    if (typeof code !== "string" || code === "") return { kind: "invalid", errors: [{ path: `/body/${index}/data/validationCode`, message: "must be the validation code to echo" }] };
    return { kind: "validation", validationCode: code };
  }
  const keyEvents: KeyVersionEvent[] = [];
  const errors: Array<{ path: string; message: string }> = [];
  let ignored = 0;
  events.forEach((event, index) => {
    const path = Array.isArray(body) ? `/body/${index}` : "/body";
    if (!(KEY_VAULT_EVENT_TYPES as readonly string[]).includes(event.type)) {
      ignored++;
      return;
    }
    if (!Value.Check(KeyVaultEventData, event.data)) {
      const first = Value.Errors(KeyVaultEventData, event.data).First();
      errors.push({ path: `${path}/data${first?.path ?? ""}`, message: `${first?.message ?? "is not Key Vault event data"} (Key Vault's data has Id, VaultName, ObjectType, ObjectName, Version, NBF, EXP)` });
      return;
    }
    const data = event.data as KeyVaultEventData;
    const key = parseKeyUrl(data.Id.trim());
    if (data.ObjectType !== "Key") {
      ignored++;
      return;
    }
    if (!key?.version) {
      errors.push({ path: `${path}/data/Id`, message: "must be a versioned key id: https://{vault}.vault.azure.net/keys/{name}/{version}" });
      return;
    }
    const notBefore = unixSeconds(data.NBF);
    const expires = unixSeconds(data.EXP);
    keyEvents.push({
      eventId: event.id,
      source: event.source,
      type: event.type as KeyVaultEventType,
      eventTime: event.time,
      versionlessKeyUrl: `${key.vaultUrl}/keys/${key.keyName}`,
      keyId: key.url,
      version: key.version,
      ...(notBefore !== undefined ? { notBefore } : {}),
      ...(expires !== undefined ? { expires } : {}),
      receivedDateTime: receivedAt.toISOString(),
    });
  });
  if (errors.length > 0) return { kind: "invalid", errors };
  return { kind: "events", received: events.length, keyEvents, ignored };
}

/** The subscription of an event's source (`/subscriptions/{id}/...`), lower-cased, if it names one. */
export function sourceSubscription(source: string): string | undefined {
  return /^\/subscriptions\/([^/]+)/i.exec(source)?.[1]?.toLowerCase();
}
