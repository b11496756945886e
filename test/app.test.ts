import { connect } from "node:net";
import { Writable } from "node:stream";
import pino from "pino";
import t, { type Test } from "tap";
import type { FastifyInstance } from "fastify";
import { buildApp } from "../src/app.js";
import { loggerOptions } from "../src/logging.js";
import { createAzureAdapters } from "../src/azure/adapters.js";
import { createSandboxContext } from "../src/azure/azure-context.js";
import type { AuditEntry } from "../src/schemas/audit.js";
import { KEYS, testConfig } from "./helpers/app.js";
import { setKey } from "./helpers/requests.js";

const nowhere = () => createAzureAdapters(createSandboxContext({ url: "https://127.0.0.1:1", caPem: "" }), { pollIntervalMs: 100 });

/** The API with every log line it writes (trace level) kept in `lines`. */
async function loggedApp(t: Test): Promise<{ app: FastifyInstance; lines: string[] }> {
  const lines: string[] = [];
  const sink = new Writable({ write: (chunk, _encoding, done) => (lines.push(String(chunk)), done()) });
  const config = testConfig(t);
  const app = await buildApp(config, { apiKeys: config.apiKeys ?? [], azure: nowhere(), logger: pino(loggerOptions("trace"), sink) });
  t.teardown(() => app.close());
  await app.ready();
  return { app, lines };
}

/** Audit entries are written after the answer: wait for `count`. */
async function auditEntries(app: FastifyInstance, count: number): Promise<AuditEntry[]> {
  let entries: AuditEntry[] = [];
  for (let i = 0; i < 100; i++) {
    entries = (await app.inject({ method: "GET", url: "/v1/audit?top=100", headers: { "x-api-key": KEYS.admin } })).json().value as AuditEntry[];
    if (entries.length >= count) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return entries;
}

/** Sends raw bytes to the listening app and returns everything it answers before closing the connection. */
function rawExchange(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let answer = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (answer += chunk));
    socket.on("error", (error: NodeJS.ErrnoException) => (error.code === "ECONNRESET" || error.code === "EPIPE" ? resolve(answer) : reject(error)));
    socket.on("close", () => resolve(answer));
    socket.write(bytes);
  });
}

function parseRaw(answer: string): { status: number; headers: Record<string, string>; body: string } {
  const split = answer.indexOf("\r\n\r\n");
  const [statusLine, ...headerLines] = answer.slice(0, split).split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of headerLines) headers[line.slice(0, line.indexOf(":")).toLowerCase()] = line.slice(line.indexOf(":") + 1).trim();
  return { status: Number(statusLine!.split(" ")[1]), headers, body: answer.slice(split + 4) };
}

t.test("a credential sent in the query string is neither echoed in the answer nor logged", async (t) => {
  const { app, lines } = await loggedApp(t);
  const secret = "Sup3rS3cretQueryKeyValue";
  const other = "an0therS3cretInAPath";
  const answers = [];
  for (const name of ["api-key", "x-api-key", "code", "access_token", "token", "sig", "anything"]) {
    answers.push(await app.inject({ method: "POST", url: `/v1/change-requests?${name}=${secret}`, payload: setKey("fhir-sys") }));
    answers.push(await app.inject({ method: "GET", url: `/v1/jobs/00000000-0000-4000-8000-000000000000?${name}=${secret}` }));
    answers.push(await app.inject({ method: "GET", url: `/v1/jobs?${name}=${secret}`, headers: { "x-api-key": KEYS.reader } }));
    answers.push(await app.inject({ method: "GET", url: `/nowhere?${name}=${secret}` }));
  }
  answers.push(await app.inject({ method: "GET", url: `/v1/jobs/%E0%A4%A?api-key=${secret}` }));
  answers.push(await app.inject({ method: "GET", url: `/v1/jobs/${"a".repeat(200)}?api-key=${secret}` }));
  answers.push(await app.inject({ method: "GET", url: `/v1/jobs?status=Failed&top=5&key=${other}`, headers: { "x-api-key": KEYS.reader } }));
  await new Promise((resolve) => setTimeout(resolve, 100));
  for (const answer of answers) {
    t.ok(answer.statusCode >= 400, `refused: ${answer.statusCode}`);
    t.notOk(answer.body.includes(secret) || answer.body.includes(other), `the answer does not echo the key: ${answer.body.slice(0, 200)}`);
    t.notOk(JSON.stringify(answer.headers).includes(secret));
    if (answer.json().instance !== undefined) t.notMatch(answer.json().instance, /\?/, "instance is the path alone");
  }
  const log = lines.join("");
  t.ok(log.includes("incoming request") && log.includes("/v1/change-requests"), "the requests were logged");
  t.notOk(log.includes(secret), "no log line carries the key");
  t.notOk(log.includes(other), "no log line carries an undeclared query parameter's value");
  t.ok(log.includes("status=Failed&top=5"), "declared query parameters of the API are still logged");
});

t.test("X-Request-Id: the server's own id identifies a request; a client's id is kept apart, only when it is short and plain", async (t) => {
  const { app, lines } = await loggedApp(t);
  const long = "a".repeat(3 * 1024);
  const crlf = "abc\r\n{\"level\":60,\"msg\":\"forged\"}";
  const shared = "portal-7f3a:retry.1";
  const sent = [long, crlf, shared, shared];
  const answers = [];
  for (const id of sent) {
    answers.push(await app.inject({ method: "POST", url: "/v1/change-requests", payload: { operation: "SetKey" }, headers: { "x-api-key": KEYS.operator, "x-request-id": id } }));
  }
  for (const answer of answers) t.equal(answer.statusCode, 400);
  const entries = (await auditEntries(app, 4)).filter((entry) => entry.outcome === "Refused");
  t.equal(entries.length, 4);
  const serverIds = entries.map((entry) => entry.requestId);
  t.equal(new Set(serverIds).size, 4, "every request has its own server id, also when clients send the same one");
  for (const id of serverIds) t.match(id, /^[0-9a-f-]{36}$/, "a server id (UUID)");
  const [second, first, crlfEntry, longEntry] = entries as [AuditEntry, AuditEntry, AuditEntry, AuditEntry];
  t.equal(first.clientRequestId, shared, "a valid client id is kept as clientRequestId");
  t.equal(second.clientRequestId, shared);
  t.notOk(crlfEntry.clientRequestId, "an id with CR/LF is ignored");
  t.notOk(longEntry.clientRequestId, "a 3 KB id is ignored");

  const log = lines.join("");
  t.notOk(log.includes("a".repeat(200)), "the 3 KB id is not logged");
  t.notOk(log.includes("forged"), "the CR/LF id is not logged");
  const parsed = lines.map((line) => JSON.parse(line) as { reqId?: string; clientRequestId?: string; msg: string });
  const withShared = parsed.filter((line) => line.clientRequestId === shared);
  t.ok(withShared.length >= 4, "log lines of requests with a valid id carry it as clientRequestId");
  t.equal(new Set(withShared.map((line) => line.reqId)).size, 2, "...next to two different server ids");
  t.notOk(parsed.some((line) => line.reqId === shared), "the client's id is never the request id");
  for (const answer of answers) t.notOk(String(answer.headers["x-request-id"] ?? "").includes("\n"));
});

t.test("Cache-Control: no-store on every /v1 answer and every answer to a request with a credential", async (t) => {
  const { app } = await loggedApp(t);
  const job = "00000000-0000-4000-8000-000000000000";
  const accepted = await app.inject({ method: "POST", url: "/v1/change-requests", payload: setKey("fhir-sys"), headers: { "x-api-key": KEYS.operator } });
  t.equal(accepted.statusCode, 202);
  const answers = [
    accepted,
    await app.inject({ method: "GET", url: `/v1/jobs/${accepted.json().id}`, headers: { "x-api-key": KEYS.reader } }),
    await app.inject({ method: "GET", url: "/v1/jobs", headers: { "x-api-key": KEYS.reader } }),
    await app.inject({ method: "GET", url: `/v1/jobs/${job}`, headers: { "x-api-key": KEYS.reader } }),
    await app.inject({ method: "GET", url: `/v1/jobs/${job}` }),
    await app.inject({ method: "GET", url: "/v1/audit", headers: { "x-api-key": KEYS.reader } }),
    await app.inject({ method: "GET", url: "/v1/nothing-here" }),
    await app.inject({ method: "GET", url: "/v1/jobs/%E0%A4%A" }),
    await app.inject({ method: "GET", url: "/healthz", headers: { "x-api-key": KEYS.reader } }),
    await app.inject({ method: "GET", url: "/metrics", headers: { authorization: "Bearer x.y.z" } }),
  ];
  t.same(
    answers.map((answer) => answer.statusCode),
    [202, 200, 200, 404, 401, 403, 404, 400, 200, 200],
  );
  for (const answer of answers) t.equal(answer.headers["cache-control"], "no-store", `${answer.statusCode} ${answer.body.slice(0, 80)}`);
});

t.test("Node's own refusals (bad framing, oversized headers) are problem+json with the API's security headers", async (t) => {
  const { app } = await loggedApp(t);
  await app.listen({ port: 0, host: "127.0.0.1" });
  const port = (app.server.address() as { port: number }).port;
  const reference = await app.inject({ method: "GET", url: "/v1/jobs/x" });

  const badFraming = parseRaw(await rawExchange(port, "GET /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"));
  const garbage = parseRaw(await rawExchange(port, "\x00\x01 not http at all\r\n\r\n"));
  const oversized = parseRaw(await rawExchange(port, `GET /v1/jobs HTTP/1.1\r\nHost: x\r\nx-api-key: ${"k".repeat(20_000)}\r\nX-Big: ${"b".repeat(20_000)}\r\n\r\n`));
  for (const [answer, status, code] of [
    [badFraming, 400, "BadRequest"],
    [garbage, 400, "BadRequest"],
    [oversized, 431, "RequestHeaderFieldsTooLarge"],
  ] as const) {
    t.equal(answer.status, status, code);
    t.match(answer.headers["content-type"], /^application\/problem\+json/);
    const problem = JSON.parse(answer.body);
    t.match(problem, { status, code, type: `https://cmk-service.dev/problems/${code}`, title: String, detail: String });
    t.equal(Number(answer.headers["content-length"]), Buffer.byteLength(answer.body));
    t.equal(answer.headers["cache-control"], "no-store");
    t.equal(answer.headers.connection, "close");
    for (const name of ["content-security-policy", "x-content-type-options", "x-frame-options", "referrer-policy", "cross-origin-resource-policy"]) {
      t.equal(answer.headers[name], reference.headers[name], `${code}: ${name} as on every API answer`);
    }
    t.notOk(answer.body.includes("kkkk"), "nothing of the request is echoed");
  }
});
