import { request } from "node:http";
import type { AddressInfo } from "node:net";
import t, { type Test } from "tap";
import type { FastifyInstance } from "fastify";
import { buildTestApp, KEYS, testConfig, waitForJob } from "../helpers/app.js";
import { startStack } from "../helpers/stack.js";
import { lastSeq, sandboxRequests, sandboxState } from "../helpers/sandbox-admin.js";
import { fhirId, KEY_V2, setKey, SUB, uamiId } from "../helpers/requests.js";

/**
 * Input that must be canonical (issue 12): key URLs, ARM ids and free text are taken only as the one
 * spelling the service checks and sends on, never something that becomes it after normalization.
 * Each bad form is a 400 naming the field, and the emulator sees no request for it.
 */

const V2 = "00000000000000000000000000000002";
const HOST = "kvsandbox.vault.azure.net";
const PATH = `/keys/cmk-rsa-2048/${V2}`;

/** Key URLs that name KEY_V2 in some spelling other than its own. */
const NON_CANONICAL_KEY_URLS: Array<[string, string]> = [
  ["backslash and fullwidth dot", `https:/\\kvsandbox\uff0evault.azure.net${PATH}`],
  ["leading spaces", `  ${KEY_V2}`],
  ["trailing NUL", `${KEY_V2}\u0000`],
  ["trailing newline", `${KEY_V2}\r\n`],
  ["explicit :443", `https://${HOST}:443${PATH}`],
  ["dot segments", `https://${HOST}/secrets/x/../../keys/cmk-rsa-2048/${V2}`],
  ["percent-encoded name", `https://${HOST}/keys/cmk%2Drsa-2048/${V2}`],
  ["percent-encoded dot segments", `https://${HOST}/secrets/%2e%2e/keys/cmk-rsa-2048/${V2}`],
  ["userinfo", `https://ops@${HOST}${PATH}`],
  ["query", `${KEY_V2}?api-version=7.4`],
  ["fragment", `${KEY_V2}#x`],
  ["upper-case host", `https://KVSANDBOX.vault.azure.net${PATH}`],
  ["upper-case scheme", `HTTPS://${HOST}${PATH}`],
  ["trailing slash", `${KEY_V2}/`],
  ["trailing dot in the host", `https://${HOST}.${PATH}`],
];

const problemOf = (response: { statusCode: number; body: string; headers: Record<string, unknown> }) => ({
  status: response.statusCode,
  type: String(response.headers["content-type"]),
  problem: JSON.parse(response.body) as { code: string; errors?: Array<{ path: string; message: string }> },
});

/** A 400 ValidationFailed whose errors name `path` (and only fields under /body, /query or /params). */
function refused(t: Test, response: Parameters<typeof problemOf>[0], path: string, message?: RegExp, label = path) {
  const { status, type, problem } = problemOf(response);
  t.equal(status, 400, `${label}: ${response.body.slice(0, 300)}`);
  t.match(type, /^application\/problem\+json/, label);
  t.equal(problem.code, "ValidationFailed", label);
  const error = problem.errors?.find((candidate) => candidate.path === path || candidate.path.startsWith(`${path}/`));
  t.ok(error, `${label}: an error names ${path} (${JSON.stringify(problem.errors)})`);
  if (message && error) t.match(error.message, message, label);
}

/** A GET over a real connection with the path exactly as given: no client-side normalization of dot segments. */
function rawRequest(port: number, path: string, headers: Record<string, string>): Promise<{ statusCode: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    request({ host: "127.0.0.1", port, path, headers, agent: false }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => resolve({ statusCode: response.statusCode ?? 0, body, headers: response.headers }));
    })
      .on("error", reject)
      .end();
  });
}

const post = (app: FastifyInstance, url: string, payload: object, key: string = KEYS.operator) =>
  app.inject({ method: "POST", url, payload, headers: { "x-api-key": key } });

t.test("key URLs: only the canonical spelling is taken, and it reaches ARM exactly as sent", async (t) => {
  const { app, sandbox } = await startStack(t);
  const canonicalForm = /canonical form.*https:\/\/\{name\}\.vault\.azure\.net\/keys\/\{key\}\/\{version\}.*managedhsm\.azure\.net/;

  t.test("every non-canonical spelling is a 400 naming the field, wherever a key URL is taken", async (t) => {
    const since = await lastSeq(sandbox);
    for (const [label, url] of NON_CANONICAL_KEY_URLS) {
      refused(t, await post(app, "/v1/change-requests", setKey("fhir-sys", url)), "/body/keyEncryptionKeyUrl", canonicalForm, `SetKey, ${label}`);
      const create = { operation: "CreateService", fhirServiceId: fhirId("fhir-new"), location: "westus3", keyEncryptionKeyUrl: url, identity: { type: "UserAssigned", userAssignedIdentityId: uamiId("uami-sandbox") } };
      refused(t, await post(app, "/v1/change-requests", create), "/body/keyEncryptionKeyUrl", canonicalForm, `CreateService, ${label}`);
      refused(t, await post(app, "/v1/validations", setKey("fhir-sys", url), KEYS.reader), "/body/keyEncryptionKeyUrl", canonicalForm, `validations, ${label}`);
      refused(t, await post(app, "/v1/templates", setKey("fhir-sys", url), KEYS.reader), "/body/keyEncryptionKeyUrl", canonicalForm, `templates, ${label}`);
      const rotate = { operation: "RotateKey", fhirServiceId: fhirId("fhir-uami"), options: { keyEncryptionKeyUrl: url } };
      refused(t, await post(app, "/v1/templates", rotate, KEYS.reader), "/body/options/keyEncryptionKeyUrl", canonicalForm, `RotateKey template, ${label}`);
    }
    t.same(await sandboxRequests(sandbox, since), [], "the emulator saw no request for any of them");
  });

  t.test("the refusal says which canonical string to send when a URL parser would have made one of it", async (t) => {
    const response = await post(app, "/v1/change-requests", setKey("fhir-sys", `https:/\\kvsandbox\uff0evault.azure.net${PATH}`));
    t.match(problemOf(response).problem.errors?.[0]?.message, `send ${KEY_V2} exactly`);
    t.notOk(response.body.includes("\uff0e"), "the bad value is not echoed");
  });

  t.test("an upper-case version is not Key Vault's: refused", async (t) => {
    refused(t, await post(app, "/v1/change-requests", setKey("fhir-sys", `https://${HOST}/keys/cmk-rsa-2048/${"0".repeat(31)}A`)), "/body/keyEncryptionKeyUrl", /KeyUrlVersioned.*lower-case/);
  });

  t.test("the canonical URL is written to ARM byte for byte", async (t) => {
    const accepted = await post(app, "/v1/change-requests", setKey("fhir-sys", KEY_V2));
    t.equal(accepted.statusCode, 202, accepted.body);
    const { monitor } = await waitForJob(app, accepted.json().id);
    t.equal(monitor.status, "Succeeded", JSON.stringify(monitor.error ?? {}));
    const state = await sandboxState<{ fhirServices: Array<{ id: string; properties: { encryption?: { customerManagedKeyEncryption?: { keyEncryptionKeyUrl?: string } } } }> }>(sandbox);
    const service = state.fhirServices.find((candidate) => candidate.id.toLowerCase() === fhirId("fhir-sys").toLowerCase());
    t.equal(service?.properties.encryption?.customerManagedKeyEncryption?.keyEncryptionKeyUrl, KEY_V2, "the emulator received exactly the canonical string");
  });
});

t.test("a canonical Managed HSM key URL passes the form check", async (t) => {
  const app = await buildTestApp(t, testConfig(t));
  const response = await post(app, "/v1/change-requests", setKey("fhir-sys", `https://contoso-hsm.managedhsm.azure.net/keys/cmk/${V2}`, undefined, { dryRun: true }));
  t.equal(response.statusCode, 202, response.body);
});

/** Resource-group spellings that are not a resource group: dot segments, percent-encoding, spaces, controls. */
const BAD_RESOURCE_GROUPS = ["..", ".", "%2e%2e", "%2E.", "rg%20x", "rg x", "rg.", "rg\u0000", "rg\t", "rg\u202e"];
const fhirIdIn = (resourceGroup: string) => fhirId("fhir-sys").replace("/rg-sandbox/", `/${resourceGroup}/`);
const uamiIdIn = (resourceGroup: string) => uamiId("uami-sandbox").replace("/rg-sandbox/", `/${resourceGroup}/`);

t.test("ARM ids: no dot segments, percent signs, spaces or control characters in any id the API takes", async (t) => {
  const { app, sandbox } = await startStack(t, { worker: false });
  const since = await lastSeq(sandbox);
  const get = (url: string) => app.inject({ method: "GET", url, headers: { "x-api-key": KEYS.admin } });
  await app.listen({ port: 0, host: "127.0.0.1" });
  const rawGet = (path: string) => rawRequest((app.server.address() as AddressInfo).port, path, { "x-api-key": KEYS.admin });
  for (const group of BAD_RESOURCE_GROUPS) {
    const label = JSON.stringify(group);
    refused(t, await post(app, "/v1/change-requests", { ...setKey("fhir-sys"), fhirServiceId: fhirIdIn(group) }), "/body/fhirServiceId", undefined, `change request fhirServiceId ${label}`);
    refused(t, await post(app, "/v1/validations", { ...setKey("fhir-sys"), fhirServiceId: fhirIdIn(group) }, KEYS.reader), "/body/fhirServiceId", undefined, `validation fhirServiceId ${label}`);
    refused(t, await post(app, "/v1/templates", { ...setKey("fhir-sys"), fhirServiceId: fhirIdIn(group) }, KEYS.reader), "/body/fhirServiceId", undefined, `template fhirServiceId ${label}`);
    const identity = { type: "UserAssigned", userAssignedIdentityId: uamiIdIn(group) };
    refused(t, await post(app, "/v1/change-requests", setKey("fhir-uami", KEY_V2, identity)), "/body/identity/userAssignedIdentityId", undefined, `identity ${label}`);
    refused(t, await post(app, "/v1/validations", setKey("fhir-uami", KEY_V2, identity), KEYS.reader), "/body/identity/userAssignedIdentityId", undefined, `validation identity ${label}`);
    refused(t, await get(`/v1/jobs?fhirServiceId=${encodeURIComponent(fhirIdIn(group))}`), "/query/fhirServiceId", undefined, `jobs filter ${label}`);
    refused(t, await get(`/v1/audit?fhirServiceId=${encodeURIComponent(fhirIdIn(group))}`), "/query/fhirServiceId", undefined, `audit filter ${label}`);
    // In the path as a raw client sends it (light-my-request would resolve dot segments before routing).
    for (const spelling of new Set([group, encodeURIComponent(group)])) {
      for (const tail of ["encryption", "encryption/health"]) {
        const response = await rawGet(`/v1/subscriptions/${SUB}/resourceGroups/${spelling.replace(/[^\x21-\x7e]/g, encodeURIComponent)}/workspaces/wssandbox/fhirservices/fhir-sys/${tail}`);
        refused(t, response, "/params/resourceGroup", /1-90 letters, digits, _ - \( \) and periods, not ending in a period/, `${tail} with resource group ${JSON.stringify(spelling)}`);
      }
    }
  }
  t.same(await sandboxRequests(sandbox, since), [], "the emulator saw no request for any of them");

  const good = await get(`/v1/subscriptions/${SUB}/resourceGroups/rg-sandbox/workspaces/wssandbox/fhirservices/fhir-sys/encryption`);
  t.equal(good.statusCode, 200, "a real resource group still works");
  t.equal((await get(`/v1/subscriptions/${SUB}/resourceGroups/rg.sandbox_(1)/workspaces/wssandbox/fhirservices/fhir-sys/encryption`)).statusCode, 404, "periods inside a name are Azure's and allowed");
  t.equal((await get(`/v1/jobs?fhirServiceId=${encodeURIComponent(fhirId("fhir-sys"))}`)).statusCode, 200);
});

/** What a refused free-text field is told. */
const NOT_PLAIN_MESSAGE = /without control characters \(C0, DEL, C1\) or bidirectional formatting characters/;

/** Characters no ticket, filter or tag may carry: C0, DEL, C1 and the bidirectional formatting controls. */
const FORBIDDEN_CHARACTERS = ["\r\n", "\n", "\t", "\u0000", "\u001b", "\u007f", "\u0085", "\u009b", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f", "\u061c"];
const codePoint = (text: string) => [...text].map((c) => `U+${c.codePointAt(0)!.toString(16).padStart(4, "0")}`).join(" ");

t.test("free text: control and bidirectional formatting characters are refused in tickets, tags and filters", async (t) => {
  const { app, sandbox } = await startStack(t, { worker: false });
  const since = await lastSeq(sandbox);
  const get = (url: string) => app.inject({ method: "GET", url, headers: { "x-api-key": KEYS.admin } });
  for (const bad of FORBIDDEN_CHARACTERS) {
    const label = codePoint(bad);
    const ticket = { system: "servicenow", id: "CHG0012345", url: "https://tickets.example.com/CHG0012345" };
    refused(t, await post(app, "/v1/change-requests", setKey("fhir-sys", KEY_V2, undefined, { ticket: { ...ticket, system: `service${bad}now` } })), "/body/ticket/system", NOT_PLAIN_MESSAGE, `ticket.system ${label}`);
    refused(t, await post(app, "/v1/change-requests", setKey("fhir-sys", KEY_V2, undefined, { ticket: { ...ticket, id: `CHG${bad}1` } })), "/body/ticket/id", NOT_PLAIN_MESSAGE, `ticket.id ${label}`);
    refused(t, await post(app, "/v1/change-requests", setKey("fhir-sys", KEY_V2, undefined, { ticket: { ...ticket, url: `${ticket.url}${bad}x` } })), "/body/ticket/url", /an https URL without control characters/, `ticket.url ${label}`);
    refused(t, await post(app, "/v1/validations", setKey("fhir-sys", KEY_V2, undefined, { ticket: { ...ticket, id: `CHG${bad}1` } }), KEYS.reader), "/body/ticket/id", NOT_PLAIN_MESSAGE, `validation ticket.id ${label}`);
    const create = {
      operation: "CreateService",
      fhirServiceId: fhirId("fhir-new"),
      location: "westus3",
      keyEncryptionKeyUrl: KEY_V2,
      identity: { type: "UserAssigned", userAssignedIdentityId: uamiId("uami-sandbox") },
      tags: { team: `health${bad}data` },
    };
    refused(t, await post(app, "/v1/change-requests", create), "/body/tags/team", undefined, `tag value ${label}`);
    refused(t, await post(app, "/v1/change-requests", { ...create, tags: { [`te${bad}am`]: "x" } }), "/body/tags", undefined, `tag name ${label}`);
    refused(t, await get(`/v1/jobs?ticketId=${encodeURIComponent(`CHG${bad}1`)}`), "/query/ticketId", NOT_PLAIN_MESSAGE, `jobs ticketId ${label}`);
    refused(t, await get(`/v1/audit?ticketId=${encodeURIComponent(`CHG${bad}1`)}`), "/query/ticketId", NOT_PLAIN_MESSAGE, `audit ticketId ${label}`);
    refused(t, await get(`/v1/audit?principal=${encodeURIComponent(`test${bad}op`)}`), "/query/principal", undefined, `audit principal ${label}`);
  }
  t.same(await sandboxRequests(sandbox, since), [], "the emulator saw no request for any of them");

  const accepted = await post(app, "/v1/change-requests", setKey("fhir-sys", KEY_V2, undefined, { dryRun: true, ticket: { system: "servicenow", id: "CHG-ÄÖ 42 «ü»", url: "https://tickets.example.com/CHG42" } }));
  t.equal(accepted.statusCode, 202, `letters beyond ASCII and spaces are fine: ${accepted.body}`);
  t.equal((await get(`/v1/audit?principal=${encodeURIComponent("test op")}&ticketId=${encodeURIComponent("CHG-ÄÖ 42 «ü»")}`)).statusCode, 200);
});
