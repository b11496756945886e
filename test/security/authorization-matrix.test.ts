import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import t from "tap";
import type { Grant, Role } from "../../src/security/principal.js";
import { APPROVER_APP, RESOURCE_GROUP, SUBSCRIPTION_ID, WORKSPACE, FHIR_SYS } from "../../src/sandbox/seed.js";
import { createAdapters } from "../../src/runtime.js";
import { createSandboxContext } from "../../src/azure/azure-context.js";
import { buildTestApp, KEYS, testConfig } from "../helpers/app.js";
import { sandboxHttpClient, startTestSandbox } from "../helpers/sandbox.js";
import { callerToken, callerTokens } from "../helpers/tokens.js";
import { GOVERNANCE_API_KEYS, GOVERNANCE_KEYS } from "../helpers/governance.js";

/**
 * The lowest role of every /v1 operation, written down from api-contract.md (not read from the code):
 * paths with their parameters as `{}`. An operation the document has and this table lacks fails the test.
 */
const CONTRACT_ROLES: Record<string, Grant> = {
  "post /v1/change-requests": "operator",
  "post /v1/key-rotations": "operator",
  "get /v1/jobs/{}": "reader",
  "get /v1/jobs": "reader",
  "post /v1/jobs/{}/cancel": "operator",
  "get /v1/jobs/{}/events": "reader",
  "post /v1/validations": "reader",
  "get /v1/subscriptions/{}/resourceGroups/{}/workspaces/{}/fhirservices/{}/encryption": "reader",
  "get /v1/subscriptions/{}/resourceGroups/{}/workspaces/{}/fhirservices/{}/encryption/health": "reader",
  "post /v1/templates": "reader",
  "get /v1/audit": "admin",
  "post /v1/events/key-vault": "operator",
  // The CloudEvents webhook handshake: authenticated like deliveries.
  "options /v1/events/key-vault": "operator",
  // v1.1 "Change governance": approver is a capability beside the ordered roles, which admin includes.
  "post /v1/jobs/{}/approve": "approver",
  "post /v1/jobs/{}/reject": "approver",
  "post /v1/jobs/{}/rollback": "operator",
  // v1.1 "Compliance".
  "post /v1/compliance-scans": "operator",
  "get /v1/compliance": "reader",
  // Issue 18: the permission self-check.
  "get /v1/self-check": "admin",
};

/** Whether a credential holding `held` may call an operation that requires `required`. */
function allowed(held: Role | "approver", required: Grant): boolean {
  // An approver alone may also read (the jobs it judges); admin includes approver.
  if (required === "approver") return held === "approver" || held === "admin";
  const effective = held === "approver" ? "reader" : held;
  return ORDER.indexOf(effective) >= ORDER.indexOf(required);
}

const ORDER: Role[] = ["reader", "operator", "admin"];

/** A plausible value for each path parameter, from the segment before it. */
function concretePath(template: string): string {
  const values: Record<string, string> = { subscriptions: SUBSCRIPTION_ID, resourceGroups: RESOURCE_GROUP, workspaces: WORKSPACE, fhirservices: FHIR_SYS };
  const segments = template.split("/");
  return segments.map((segment, index) => (/^\{.+\}$/.test(segment) ? (values[segments[index - 1] ?? ""] ?? randomUUID()) : segment)).join("/");
}

t.test("every /v1 operation in openapi.json: 401 without a credential, 403 below its role, allowed at it", async (t) => {
  const document = JSON.parse(await readFile(new URL("../../openapi/openapi.json", import.meta.url), "utf8")) as { paths: Record<string, Record<string, unknown>> };
  const sandbox = await startTestSandbox(t);
  // Allowed calls do real work (encryption reads Azure): against the sandbox they answer at once.
  const config = testConfig(t, { CMK_SANDBOX_URL: sandbox.url, CMK_SANDBOX_CA_FILE: sandbox.caFile, CMK_API_KEYS: GOVERNANCE_API_KEYS });
  const context = createSandboxContext({ url: sandbox.url, caPem: sandbox.caPem });
  const app = await buildTestApp(t, config, createAdapters(config, context), { httpClient: sandboxHttpClient(sandbox) });
  const { reader: readerToken, operator: operatorToken, admin: adminToken, noRole: noRoleToken } = await callerTokens(sandbox);
  const approverToken = await callerToken(sandbox, APPROVER_APP);
  const credentials: Record<Role | "approver", Array<Record<string, string>>> = {
    reader: [{ "x-api-key": KEYS.reader }, { authorization: `Bearer ${readerToken}` }],
    operator: [{ "x-api-key": KEYS.operator }, { authorization: `Bearer ${operatorToken}` }],
    admin: [{ "x-api-key": KEYS.admin }, { authorization: `Bearer ${adminToken}` }],
    approver: [{ "x-api-key": GOVERNANCE_KEYS.approver }, { authorization: `Bearer ${approverToken}` }],
  };

  const operations = Object.entries(document.paths)
    .filter(([path]) => path.startsWith("/v1/"))
    .flatMap(([path, methods]) => Object.keys(methods).map((method) => ({ method, path })));
  t.ok(operations.length >= 4, `${operations.length} operations`);

  for (const { method, path } of operations) {
    const name = `${method} ${path}`;
    const required = CONTRACT_ROLES[`${method} ${path.replace(/\{[^}]+\}/g, "{}")}`];
    if (!required) {
      t.fail(`${name} is not in the contract's role table; add it`);
      continue;
    }
    const send = (headers: Record<string, string>) =>
      app.inject({ method: method.toUpperCase() as "GET", url: concretePath(path), headers, ...(method === "get" ? {} : { payload: {} }) });

    for (const headers of [{}, { "x-api-key": "not-a-key" }, { authorization: "Bearer not.a.jwt" }] as Array<Record<string, string>>) {
      const response = await send(headers);
      t.equal(response.statusCode, 401, `${name} with ${JSON.stringify(headers)}: 401`);
      t.equal(response.json().code, "Unauthorized");
    }
    const noRole = await send({ authorization: `Bearer ${noRoleToken}` });
    t.equal(noRole.statusCode, 403, `${name}: a token without app roles is 403`);

    for (const role of [...ORDER, "approver"] as const) {
      for (const headers of credentials[role]) {
        const kind = headers["x-api-key"] ? "API key" : "token";
        const response = await send(headers);
        if (!allowed(role, required)) {
          t.equal(response.statusCode, 403, `${name}: ${role} ${kind} is 403`);
          t.match(response.json(), { code: "Forbidden", requiredRole: required });
        } else {
          t.notOk([401, 403].includes(response.statusCode), `${name}: ${role} ${kind} gets past authorization (${response.statusCode})`);
        }
      }
    }
  }
});
