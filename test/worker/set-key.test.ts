import t from "tap";
import { KEYS, waitForJob } from "../helpers/app.js";
import { startStack } from "../helpers/stack.js";

const SUB = "22222222-2222-2222-2222-222222222222";
const fhirId = (name: string) => `/subscriptions/${SUB}/resourceGroups/rg-sandbox/providers/Microsoft.HealthcareApis/workspaces/wssandbox/fhirservices/${name}`;
const KEY_V2 = "https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048/00000000000000000000000000000002";

interface LoggedRequest {
  seq: number;
  method: string;
  host: string;
  path: string;
  status: number;
}

async function sandboxGet<T>(sandbox: { url: string; caPem: string }, path: string): Promise<T> {
  const { request } = await import("node:https");
  return new Promise<T>((resolve, reject) => {
    request(new URL(path, sandbox.url), { ca: sandbox.caPem }, (response) => {
      let body = "";
      response.on("data", (chunk) => (body += chunk));
      response.on("end", () => resolve(JSON.parse(body) as T));
    })
      .on("error", reject)
      .end();
  });
}

t.test("SetKey travels API → BullMQ → ARM (sandbox) → job status", async (t) => {
  const { app, sandbox } = await startStack(t, { lroMs: 600 });
  const submit = (body: object) => app.inject({ method: "POST", url: "/v1/change-requests", payload: body, headers: { "x-api-key": KEYS.operator } });

  t.test("fhir-sys moves to cmk-rsa-2048 version 2 with exactly one PUT", async (t) => {
    const before = await sandboxGet<LoggedRequest[]>(sandbox, "/_sandbox/requests");
    const since = before.at(-1)?.seq ?? 0;
    const accepted = await submit({ operation: "SetKey", fhirServiceId: fhirId("fhir-sys"), keyEncryptionKeyUrl: KEY_V2, identity: { type: "SystemAssigned" }, ticket: { system: "servicenow", id: "CHG1" } });
    t.equal(accepted.statusCode, 202);
    const jobId = accepted.json().id;

    const again = await submit({ operation: "SetKey", fhirServiceId: fhirId("fhir-sys"), keyEncryptionKeyUrl: KEY_V2, identity: { type: "SystemAssigned" } });
    t.equal(again.statusCode, 409, "a second request while the first runs");
    t.equal(again.json().activeJobId, jobId);

    const { monitor, seen } = await waitForJob(app, jobId);
    t.equal(monitor.status, "Succeeded", JSON.stringify(monitor.error ?? {}));
    t.equal(monitor.percentComplete, 100);
    t.same(
      monitor.steps.map((step: { name: string; status: string }) => [step.name, step.status]),
      [
        ["Preflight", "Succeeded"],
        ["ReadFhirService", "Succeeded"],
        ["ApplyIdentity", "Skipped"],
        ["RecheckKeyAccess", "Skipped"],
        ["BuildResource", "Succeeded"],
        ["StartArmUpdate", "Succeeded"],
        ["FollowOperation", "Succeeded"],
        ["Verify", "Succeeded"],
      ],
    );
    t.match(monitor.result, { keyEncryptionKeyUrl: KEY_V2, identityType: "SystemAssigned", provisioningState: "Succeeded", armWrites: 1 });
    t.notOk(monitor.result.previousKeyEncryptionKeyUrl, "fhir-sys had a Microsoft-managed key");
    t.equal(monitor.attempts, 1);
    t.match(monitor.ticket, { id: "CHG1" });

    const running = seen.filter((m) => m.status === "Running");
    t.ok(running.length > 0, "the monitor showed Running");
    const percents = seen.map((m) => m.percentComplete as number);
    t.same(percents, [...percents].sort((a, b) => a - b), "percentComplete never goes down");
    t.ok(new Set(running.map((m) => m.currentStep)).size >= 2, "named steps show while running");

    const requests = await sandboxGet<LoggedRequest[]>(sandbox, `/_sandbox/requests?since=${since}`);
    const puts = requests.filter((r) => r.method === "PUT" && r.path.toLowerCase().includes("/fhirservices/fhir-sys"));
    t.equal(puts.length, 1, "exactly one ARM PUT");
    const state = await sandboxGet<{ fhirServices: Array<Record<string, unknown>> }>(sandbox, "/_sandbox/state");
    t.match(JSON.stringify(state), KEY_V2, "the sandbox shows the new key");

    const repeat = await submit({ operation: "SetKey", fhirServiceId: fhirId("fhir-sys"), keyEncryptionKeyUrl: KEY_V2, identity: { type: "SystemAssigned" } });
    t.equal(repeat.statusCode, 202, "accepted again once the first job ended");
    const second = await waitForJob(app, repeat.json().id);
    t.equal(second.monitor.status, "Succeeded");
    t.equal(second.monitor.result.armWrites, 0, "nothing to change: no second PUT");
    t.equal(second.monitor.result.previousKeyEncryptionKeyUrl, KEY_V2);
  });

  t.test("a FHIR service that does not exist ends Failed with FhirServiceNotFound", async (t) => {
    const accepted = await submit({ operation: "SetKey", fhirServiceId: fhirId("fhir-missing"), keyEncryptionKeyUrl: KEY_V2, identity: { type: "SystemAssigned" } });
    t.equal(accepted.statusCode, 202);
    const { monitor } = await waitForJob(app, accepted.json().id);
    t.equal(monitor.status, "Failed");
    t.match(monitor.error, { code: "FhirServiceNotFound", target: fhirId("fhir-missing"), message: /fhir-missing/ });
    t.equal(monitor.attempts, 1, "a 404 is not retried");
    t.match(monitor.steps.find((step: { name: string }) => step.name === "Preflight"), { status: "Failed" });
  });

  t.test("a user-assigned identity works too (fhir-uami moves to version 2)", async (t) => {
    const uami = `/subscriptions/${SUB}/resourceGroups/rg-sandbox/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uami-sandbox`;
    const accepted = await submit({ operation: "SetKey", fhirServiceId: fhirId("fhir-uami"), keyEncryptionKeyUrl: KEY_V2, identity: { type: "UserAssigned", userAssignedIdentityId: uami } });
    const { monitor } = await waitForJob(app, accepted.json().id);
    t.equal(monitor.status, "Succeeded", JSON.stringify(monitor.error ?? {}));
    t.match(monitor.result, { identityType: "UserAssigned", previousKeyEncryptionKeyUrl: "https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048/00000000000000000000000000000001" });
  });
});
