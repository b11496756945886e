import t from "tap";
import { KEYS, waitForJob } from "../helpers/app.js";
import { startStack } from "../helpers/stack.js";
import { sandboxRequest } from "../helpers/sandbox.js";
import { fhirPuts, lastSeq, sandboxRequests } from "../helpers/sandbox-admin.js";
import { fhirId, KEY_V2, setKey } from "../helpers/requests.js";

type Stack = Awaited<ReturnType<typeof startStack>>;
const VAULT = "/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg-sandbox/providers/Microsoft.KeyVault/vaults/kvsandbox";

async function submit(stack: Stack, body: object) {
  const accepted = await stack.app.inject({ method: "POST", url: "/v1/change-requests", payload: body, headers: { "x-api-key": KEYS.operator } });
  if (accepted.statusCode !== 202) throw new Error(accepted.body);
  return waitForJob(stack.app, accepted.json().id, 30_000);
}

t.test("a role assignment younger than the propagation window: the job waits for it, then sets the key", async (t) => {
  const stack = await startStack(t, { lroMs: 200, env: { CMK_ROLE_PROPAGATION_WINDOW_MS: "2500" } });
  const assigned = await sandboxRequest(stack.sandbox, {
    method: "POST",
    path: "/_sandbox/scenarios",
    body: { action: "addRoleAssignment", fhirServiceId: fhirId("fhir-norole"), role: "Key Vault Crypto Service Encryption User", scope: VAULT },
  });
  t.equal(assigned.status, 200, assigned.text);

  const validation = await stack.app.inject({ method: "POST", url: "/v1/validations", payload: setKey("fhir-norole"), headers: { "x-api-key": KEYS.reader } });
  const access = validation.json().checks.find((check: { id: string }) => check.id === "IdentityKeyAccess");
  t.match(access, { status: "Failed", message: /only \d+ s old and may not have reached Key Vault yet/ }, "the report says the grant is too new");

  const started = Date.now();
  const { monitor, seen } = await submit(stack, setKey("fhir-norole"));
  t.equal(monitor.status, "Succeeded", JSON.stringify(monitor.error ?? {}));
  t.ok(Date.now() - started >= 1500, "it waited for the window");
  // Every saved state is in the job's event log: a busy machine's polls may miss a short wait, the log does not.
  const logged = [...seen, ...(await stack.app.jobStore.events.after(monitor.id, "0-0")).map((event) => event.monitor)];
  const waiting = logged.find((m) => (m.steps as Array<{ name: string; message?: string }>).some((step) => step.name === "Preflight" && /Waiting for a new role assignment/.test(step.message ?? "")));
  t.ok(waiting, "the step message said it was waiting for propagation");
});

t.test("identity type change: a separate identity write first, then the new principal's access is checked", async (t) => {
  const stack = await startStack(t, { lroMs: 200 });
  const since = await lastSeq(stack.sandbox);
  const { monitor } = await submit(stack, setKey("fhir-uami", KEY_V2, { type: "SystemAssigned" }, { acknowledgeIdentityTypeChange: true }));
  const steps = Object.fromEntries((monitor.steps as Array<{ name: string; status: string; message?: string }>).map((step) => [step.name, step]));
  t.match(steps.Preflight, { status: "Succeeded", message: /IdentityTypeChange/ }, "the acknowledged change is a warning in the step");
  t.match(steps.ApplyIdentity, { status: "Succeeded", message: /UserAssigned to SystemAssigned \(principal [0-9a-f-]+\)/ });
  t.equal(monitor.status, "Failed", "a brand-new system identity holds no role on the key");
  t.match(monitor.error, { code: "PreflightFailed", details: [{ code: "IdentityKeyAccess", message: /az role assignment create/ }] });
  t.equal(steps.RecheckKeyAccess?.status, "Failed");
  const writes = (await sandboxRequests(stack.sandbox, since)).filter((r) => ["PUT", "PATCH"].includes(r.method) && r.path.endsWith("/fhir-uami"));
  t.same(writes.map((r) => r.method), ["PATCH"], "the identity went alone; the key was never sent");
  t.equal(fhirPuts(writes, "fhir-uami").length, 0);
});
