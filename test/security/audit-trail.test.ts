import t from "tap";
import { fhirServiceId, FHIR_NOROLE, FHIR_UAMI, keyUrl, KV_SANDBOX, KEY_RSA_2048, OPERATOR_APP, READER_APP, UAMI_SANDBOX, userAssignedIdentityId, VERSION_1, VERSION_2 } from "../../src/sandbox/seed.js";
import type { AuditEntry } from "../../src/schemas/audit.js";
import { waitForJob } from "../helpers/app.js";
import { startStack } from "../helpers/stack.js";
import { callerTokens } from "../helpers/tokens.js";

t.test("GET /v1/audit shows refused, accepted and finished changes with their principals (API + worker + sandbox)", async (t) => {
  const { app, sandbox } = await startStack(t);
  const { reader, operator, admin } = await callerTokens(sandbox);
  const rotate = {
    operation: "SetKey",
    fhirServiceId: fhirServiceId(FHIR_UAMI),
    keyEncryptionKeyUrl: keyUrl(KV_SANDBOX, KEY_RSA_2048, VERSION_2),
    identity: { type: "UserAssigned", userAssignedIdentityId: userAssignedIdentityId(UAMI_SANDBOX) },
    ticket: { system: "servicenow", id: "CHG0077777" },
  };
  const submit = (body: object, token: string) =>
    app.inject({ method: "POST", url: "/v1/change-requests", payload: body, headers: { authorization: `Bearer ${token}`, "user-agent": "change-portal/2.3" } });

  t.equal((await submit(rotate, reader)).statusCode, 403, "a reader may not change keys");
  const accepted = await submit(rotate, operator);
  t.equal(accepted.statusCode, 202);
  const failing = await submit({ ...rotate, fhirServiceId: fhirServiceId(FHIR_NOROLE), identity: { type: "SystemAssigned" }, ticket: { system: "servicenow", id: "CHG0088888" } }, operator);
  t.equal(failing.statusCode, 202);
  t.equal((await waitForJob(app, accepted.json().id)).monitor.status, "Succeeded");
  t.equal((await waitForJob(app, failing.json().id)).monitor.status, "Failed");

  const read = async () => (await app.inject({ method: "GET", url: "/v1/audit?top=100", headers: { authorization: `Bearer ${admin}` } })).json().value as AuditEntry[];
  let entries = await read();
  // Job outcomes are written by the worker as the job ends; give it a moment.
  for (let i = 0; i < 100 && entries.length < 5; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    entries = await read();
  }
  const byOutcome = (outcome: string) => entries.filter((entry) => entry.outcome === outcome);
  t.equal(entries.length, 5, entries.map((entry) => entry.outcome).join(", "));

  t.match(byOutcome("Refused"), [{ code: "Forbidden", httpStatus: 403, principal: { name: READER_APP.clientId, kind: "token" }, client: { ip: String, userAgent: "change-portal/2.3" } }]);
  const [acceptedEntry] = byOutcome("Accepted").filter((entry) => entry.jobId === accepted.json().id);
  t.match(acceptedEntry, {
    principal: { name: OPERATOR_APP.clientId, kind: "token" },
    ticket: { id: "CHG0077777" },
    fhirServiceId: rotate.fhirServiceId,
    keyEncryptionKeyUrl: rotate.keyEncryptionKeyUrl,
    identityType: "UserAssigned",
  });
  t.match(byOutcome("Succeeded"), [
    {
      jobId: accepted.json().id,
      principal: { name: OPERATOR_APP.clientId },
      ticket: { id: "CHG0077777" },
      previousKeyEncryptionKeyUrl: keyUrl(KV_SANDBOX, KEY_RSA_2048, VERSION_1),
      keyEncryptionKeyUrl: rotate.keyEncryptionKeyUrl,
      identityType: "UserAssigned",
    },
  ]);
  t.match(byOutcome("Failed"), [{ jobId: failing.json().id, code: "PreflightFailed", principal: { name: OPERATOR_APP.clientId }, ticket: { id: "CHG0088888" } }]);

  const finished = await app.inject({ method: "GET", url: `/v1/audit?ticketId=CHG0077777&outcome=Succeeded`, headers: { authorization: `Bearer ${admin}` } });
  t.equal(finished.json().value.length, 1, "filters find the finished change by ticket");
  t.equal((await app.inject({ method: "GET", url: "/v1/audit", headers: { authorization: `Bearer ${operator}` } })).statusCode, 403, "only admins read the trail");
});
