import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { ValidationFailedError } from "../../../errors.js";
import { ANY_V1_ROUTE, RATE_LIMIT_HEADERS, WITH_BODY, problemResponses, responseHeaders } from "../../../schemas/common.js";
import { KeyVaultEventDelivery, KeyVaultEventsAccepted, SubscriptionValidationResponse } from "../../../schemas/compliance.js";
import { PROBLEM_EXAMPLES as problems } from "../../../schemas/examples.js";

/**
 * Azure Event Grid's webhook for Key Vault events (api-contract v1.1, Compliance). Event Grid
 * authenticates with the API's own credentials: a delivery property (custom header) `x-api-key` holding an
 * operator key (mark it secret), or, with Microsoft Entra ID authentication on the subscription, a bearer
 * token for this API whose app carries CMK.Operator. Event Grid sends both with its validation handshakes
 * too (learn.microsoft.com/azure/event-grid/delivery-properties, secure-webhook-delivery), so the
 * handshakes are authenticated like deliveries: an endpoint that answers them without a credential would
 * let anyone point Event Grid at it.
 */

const VAULT = "/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg-sandbox/providers/Microsoft.KeyVault/vaults/kvsandbox";
const KEY_DATA = {
  Id: "https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048/00000000000000000000000000000002",
  VaultName: "kvsandbox",
  ObjectType: "Key",
  ObjectName: "cmk-rsa-2048",
  Version: "00000000000000000000000000000002",
  NBF: null,
  EXP: null,
};
const EXAMPLES = {
  EventGridKeyNewVersionCreated: {
    summary: "Event Grid schema: a new version of cmk-rsa-2048 (az keyvault key rotate)",
    value: [
      {
        id: "6a1f2c3e-9f0b-4d5e-8c7a-1b2c3d4e5f60",
        topic: VAULT,
        subject: "cmk-rsa-2048",
        eventType: "Microsoft.KeyVault.KeyNewVersionCreated",
        eventTime: "2026-11-29T10:00:00.1234567Z",
        data: KEY_DATA,
        dataVersion: "1",
        metadataVersion: "1",
      },
    ],
  },
  EventGridSubscriptionValidation: {
    summary: "Event Grid schema: the subscription validation handshake (answered with validationResponse)",
    value: [
      {
        id: "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66",
        topic: "/subscriptions/22222222-2222-2222-2222-222222222222",
        subject: "",
        data: { validationCode: "512d38b6-c7b8-40c8-89fe-f46f9e9622b6" },
        eventType: "Microsoft.EventGrid.SubscriptionValidationEvent",
        eventTime: "2026-11-29T09:59:00.0000000Z",
        metadataVersion: "1",
        dataVersion: "1",
      },
    ],
  },
  CloudEventKeyNearExpiry: {
    summary: "CloudEvents 1.0: cmk-rsa-2048's current version expires in 30 days",
    value: {
      id: "0b5e9c1d-2f3a-4b6c-8d7e-9f0a1b2c3d4e",
      source: VAULT,
      specversion: "1.0",
      type: "Microsoft.KeyVault.KeyNearExpiry",
      subject: "cmk-rsa-2048",
      time: "2026-11-29T10:00:00.1234567Z",
      data: { ...KEY_DATA, EXP: 1_767_225_600 },
    },
  },
};

const eventsRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  // CloudEvents' structured media types are JSON.
  fastify.addContentTypeParser(["application/cloudevents+json", "application/cloudevents-batch+json"], { parseAs: "string" }, fastify.getDefaultJsonParser("error", "error"));

  fastify.post(
    "/events/key-vault",
    {
      config: { role: "operator" },
      schema: {
        tags: ["Compliance"],
        operationId: "receiveKeyVaultEvents",
        summary: "Event Grid webhook for Key Vault events",
        description:
          "The endpoint of an Azure Event Grid event subscription on a vault (system topic type `Microsoft.KeyVault.vaults`), " +
          "Event Grid schema or CloudEvents 1.0 (`application/cloudevents+json`, batches `application/cloudevents-batch+json`). " +
          "A `Microsoft.EventGrid.SubscriptionValidationEvent` is answered 200 with `{ validationResponse }`. " +
          "`Microsoft.KeyVault.KeyNewVersionCreated`, `KeyNearExpiry` and `KeyExpired` are recorded once each (Event Grid delivers " +
          "at least once: a duplicate or a replay, by source and event id, within 48 hours, counts in `duplicates` and starts nothing); other " +
          "event types, and vaults outside the credential's subscriptions, count in `ignored`. Authenticate Event Grid with a delivery " +
          "property `x-api-key` (an operator key, marked secret) or Microsoft Entra ID (a token for this API with CMK.Operator). Bodies " +
          "are limited to 64 KiB: keep the subscription's preferred batch size at 64 KB or less.",
        security: [{ apiKey: [] }, { bearer: [] }],
        body: { ...KeyVaultEventDelivery, "x-examples": EXAMPLES },
        response: {
          200: Type.Union([Type.Ref(SubscriptionValidationResponse), Type.Ref(KeyVaultEventsAccepted)], {
            description: "The validation code echoed (a handshake), or what was done with the events.",
            headers: responseHeaders(RATE_LIMIT_HEADERS),
          }),
          ...problemResponses(...ANY_V1_ROUTE, ...WITH_BODY, problems.bodyInvalid, problems.queueUnavailable),
        },
      },
    },
    async (request) => fastify.withRedis(() => fastify.keyVaultEvents.accept(request.body, request.principal!, new Date())),
  );

  // The CloudEvents abuse-protection handshake (CloudEvents http-webhook.md section 4, as Event Grid sends it).
  fastify.options(
    "/events/key-vault",
    {
      config: { role: "operator" },
      schema: {
        tags: ["Compliance"],
        operationId: "validateKeyVaultEventsWebhook",
        summary: "CloudEvents webhook validation (abuse protection)",
        description:
          "Event Grid's handshake for a CloudEvents 1.0 subscription: `WebHook-Request-Origin` (eventgrid.azure.net) is answered with " +
          "`WebHook-Allowed-Origin` naming it, `WebHook-Allowed-Rate` (the credential's requests per minute) and `Allow: POST, OPTIONS`. " +
          "Authenticated like deliveries.",
        security: [{ apiKey: [] }, { bearer: [] }],
        headers: Type.Object({
          "webhook-request-origin": Type.String({ minLength: 1, maxLength: 255, pattern: "^[A-Za-z0-9.*-]+$", description: "The sender asking for permission, e.g. eventgrid.azure.net." }),
          "webhook-request-rate": Type.Optional(Type.String({ pattern: "^[1-9][0-9]{0,9}$", description: "Requests per minute the sender asks for." })),
        }),
        response: {
          200: {
            description: "Permission to deliver: the origin, the rate and the methods.",
            headers: {
              ...responseHeaders(RATE_LIMIT_HEADERS),
              "WebHook-Allowed-Origin": Type.String({ description: "The origin allowed to deliver (the one asking)." }),
              "WebHook-Allowed-Rate": Type.String({ description: "Requests per minute allowed: CMK_RATE_LIMIT_PER_MINUTE." }),
              Allow: Type.String({ description: "POST, OPTIONS" }),
            },
            type: "null",
          },
          ...problemResponses(...ANY_V1_ROUTE, problems.headerInvalid),
        },
      },
    },
    async (request, reply) => {
      const origin = request.headers["webhook-request-origin"];
      if (typeof origin !== "string") throw new ValidationFailedError([{ path: "/headers/webhook-request-origin", message: "is required" }]);
      reply.header("webhook-allowed-origin", origin);
      reply.header("webhook-allowed-rate", String(fastify.config.CMK_RATE_LIMIT_PER_MINUTE));
      reply.header("allow", "POST, OPTIONS");
      return reply.code(200).send();
    },
  );
};

export default eventsRoutes;
