import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import type { Test } from "tap";
import { sha256Hex } from "../../src/plugins/app/authentication.js";
import { API_KEYS, KEYS } from "./app.js";

/**
 * Credentials and helpers the governance tests share: an approver alone, an operator who may also
 * approve (a change advisory board's member submitting and deciding others' changes), and the usual
 * reader/operator/admin keys.
 */
export const GOVERNANCE_KEYS = {
  ...KEYS,
  approver: "test-approver-key",
  cab: "test-cab-key",
} as const;

export const GOVERNANCE_API_KEYS = JSON.stringify([
  ...API_KEYS,
  { name: "test-approver", sha256: sha256Hex(GOVERNANCE_KEYS.approver), roles: ["approver"] },
  { name: "test-cab", sha256: sha256Hex(GOVERNANCE_KEYS.cab), roles: ["operator", "approver"] },
]);

export type KeyName = keyof typeof GOVERNANCE_KEYS;

export const as = (key: KeyName) => ({ "x-api-key": GOVERNANCE_KEYS[key] });

export async function post(app: FastifyInstance, url: string, key: KeyName, payload?: object) {
  return app.inject({ method: "POST", url, headers: as(key), ...(payload ? { payload } : {}) });
}

export async function monitorOf(app: FastifyInstance, jobId: string) {
  return (await app.inject({ method: "GET", url: `/v1/jobs/${jobId}`, headers: as("reader") })).json();
}

export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A webhook receiver on a free loopback port that answers 200 and keeps what came. */
export async function startReceiver(t: Test) {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (body += chunk));
    req.on("end", () => {
      received.push({ headers: req.headers, body });
      res.writeHead(200).end("ok");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url: `http://${host}/hooks/cmk`, host, received };
}
