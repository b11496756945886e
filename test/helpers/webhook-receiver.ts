import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { parseJsonText } from "./sandbox.js";

/** One request the receiver got. */
export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  text: string;
  json: unknown;
}

export type Answer = (request: ReceivedRequest, response: ServerResponse) => void;

/**
 * A plain HTTP endpoint on a free loopback port that records every request and answers as `answer`
 * says (changeable while it runs): the webhook target of the sandbox's Event Grid in tests.
 */
export async function startWebhookReceiver(t: { teardown(fn: () => unknown): void }, answer: Answer): Promise<{ url: string; received: ReceivedRequest[]; answer: Answer; setAnswer(next: Answer): void }> {
  const received: ReceivedRequest[] = [];
  const state = { answer };
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const entry = { method: request.method ?? "", path: request.url ?? "", headers: request.headers, text, json: parseJsonText(text) };
      received.push(entry);
      state.answer(entry, response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received,
    answer,
    setAnswer(next) {
      state.answer = next;
    },
  };
}

/** Answers as a well-behaved Event Grid endpoint: the validation handshake of either schema, then 200. */
export const eventGridEndpoint: Answer = (request, response) => {
  if (request.method === "OPTIONS") {
    response.writeHead(200, { "webhook-allowed-origin": String(request.headers["webhook-request-origin"] ?? ""), allow: "POST, OPTIONS" });
    response.end();
    return;
  }
  const first = Array.isArray(request.json) ? (request.json[0] as { eventType?: string; data?: { validationCode?: string } } | undefined) : undefined;
  if (first?.eventType === "Microsoft.EventGrid.SubscriptionValidationEvent") {
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify({ validationResponse: first.data?.validationCode }));
    return;
  }
  response.writeHead(200);
  response.end();
};
