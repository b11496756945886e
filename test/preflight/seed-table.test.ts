import t, { type Test } from "tap";
import { KEYS, waitForJob } from "../helpers/app.js";
import { startStack } from "../helpers/stack.js";
import { lastSeq, sandboxRequests } from "../helpers/sandbox-admin.js";
import { keyUrl, setKey, uamiId } from "../helpers/requests.js";

interface Check {
  id: string;
  status: string;
  message: string;
  remediation?: string;
}

const V2 = "00000000000000000000000000000002";
const UAMI_SANDBOX = { type: "UserAssigned", userAssignedIdentityId: uamiId("uami-sandbox") };

/** The table: request → the checks that must fail (or warn); everything else Passed or Skipped. */
const TABLE: Array<{ name: string; body: object; failed: string[]; warning?: string[] }> = [
  { name: "cmk-rsa-2048 current version", body: setKey("fhir-sys", keyUrl("kvsandbox", "cmk-rsa-2048", V2)), failed: [] },
  { name: "cmk-rsa-3072", body: setKey("fhir-sys", keyUrl("kvsandbox", "cmk-rsa-3072")), failed: [] },
  { name: "cmk-rsa-4096", body: setKey("fhir-sys", keyUrl("kvsandbox", "cmk-rsa-4096")), failed: ["KeySize"] },
  { name: "cmk-ec", body: setKey("fhir-sys", keyUrl("kvsandbox", "cmk-ec")), failed: ["KeyType"] },
  { name: "cmk-disabled", body: setKey("fhir-sys", keyUrl("kvsandbox", "cmk-disabled")), failed: ["KeyEnabled"] },
  { name: "cmk-expired", body: setKey("fhir-sys", keyUrl("kvsandbox", "cmk-expired")), failed: ["KeyNotExpired"] },
  { name: "cmk-nowrap", body: setKey("fhir-sys", keyUrl("kvsandbox", "cmk-nowrap")), failed: ["KeyOperations"] },
  { name: "kvnopurge", body: setKey("fhir-sys", keyUrl("kvnopurge", "cmk-rsa-2048")), failed: ["VaultPurgeProtection"] },
  { name: "kveast", body: setKey("fhir-sys", keyUrl("kveast", "cmk-rsa-2048")), failed: ["VaultRegion"] },
  { name: "kvfirewall", body: setKey("fhir-sys", keyUrl("kvfirewall", "cmk-rsa-2048")), failed: ["VaultFirewall"] },
  { name: "a key that does not exist", body: setKey("fhir-sys", keyUrl("kvsandbox", "no-such-key")), failed: ["KeyExists"] },
  { name: "fhir-norole", body: setKey("fhir-norole", keyUrl("kvsandbox", "cmk-rsa-2048", V2)), failed: ["IdentityKeyAccess"] },
  { name: "fhir-uami to SystemAssigned, not acknowledged", body: setKey("fhir-uami", keyUrl("kvsandbox", "cmk-rsa-2048", V2)), failed: ["IdentityTypeChange"] },
  {
    name: "fhir-uami to SystemAssigned, acknowledged",
    body: setKey("fhir-uami", keyUrl("kvsandbox", "cmk-rsa-2048", V2), { type: "SystemAssigned" }, { acknowledgeIdentityTypeChange: true }),
    failed: [],
    warning: ["IdentityTypeChange"],
  },
  {
    name: "fhir-uami with uami-norole",
    body: setKey("fhir-uami", keyUrl("kvsandbox", "cmk-rsa-2048", V2), { type: "UserAssigned", userAssignedIdentityId: uamiId("uami-norole") }),
    failed: ["IdentityKeyAccess"],
  },
  { name: "fhir-uami keeps uami-sandbox", body: setKey("fhir-uami", keyUrl("kvsandbox", "cmk-rsa-2048", V2), UAMI_SANDBOX), failed: [] },
];

function assertReport(t: Test, checks: Check[], failed: string[], warning: string[] = []) {
  const byStatus = (status: string) => checks.filter((check) => check.status === status).map((check) => check.id).sort();
  t.same(byStatus("Failed"), [...failed].sort(), "exactly these checks fail");
  t.same(byStatus("Warning"), [...warning].sort(), "exactly these checks warn");
  for (const check of checks) {
    if (check.status === "Skipped") t.match(check.message, /^Not checked/, `${check.id} says why it was skipped`);
    if (check.status === "Failed") {
      t.ok(check.message.length > 10 && check.remediation && check.remediation.length > 10, `${check.id} names what was found and the fix`);
    }
  }
}

t.test("pre-flight against the sandbox seed", async (t) => {
  const { app, sandbox } = await startStack(t, { lroMs: 300 });

  t.test("POST /v1/validations", async (t) => {
    for (const row of TABLE) {
      t.test(row.name, async (t) => {
        const response = await app.inject({ method: "POST", url: "/v1/validations", payload: row.body, headers: { "x-api-key": KEYS.reader } });
        t.equal(response.statusCode, 200);
        const report = response.json();
        t.equal(report.valid, row.failed.length === 0);
        t.equal(report.checks.length, 18, "every check is reported");
        assertReport(t, report.checks, row.failed, row.warning);
      });
    }
  });

  t.test("as dry-run jobs", async (t) => {
    for (const row of TABLE) {
      t.test(row.name, async (t) => {
        const accepted = await app.inject({ method: "POST", url: "/v1/change-requests", payload: { ...row.body, dryRun: true }, headers: { "x-api-key": KEYS.operator } });
        t.equal(accepted.statusCode, 202, accepted.body);
        const { monitor } = await waitForJob(app, accepted.json().id);
        const preflight = monitor.steps.find((step: { name: string }) => step.name === "Preflight");
        if (row.failed.length === 0) {
          t.equal(monitor.status, "Succeeded", JSON.stringify(monitor.error ?? {}));
          t.equal(monitor.result.dryRun, true);
          t.ok(monitor.result.resourceBody.encryption.customerManagedKeyEncryption.keyEncryptionKeyUrl, "shows the body it would send");
          for (const id of row.warning ?? []) t.match(preflight.message, id, "warnings stay in the step");
        } else {
          t.equal(monitor.status, "Failed");
          t.equal(monitor.error.code, "PreflightFailed");
          t.same(monitor.error.details.map((detail: { code: string }) => detail.code).sort(), [...row.failed].sort(), "one detail per failed check");
          t.equal(preflight.status, "Failed");
        }
      });
    }
  });

  t.test("refused at submission, before anything is fetched", async (t) => {
    const since = await lastSeq(sandbox);
    const cases = [
      [`https://kvsandbox.vault.azure.net/keys/cmk-${"a".repeat(82)}/00000000000000000000000000000001`, "KeyNameLength"],
      ["https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048", "KeyUrlVersioned"],
      ["https://kv.example.com/keys/a/1", "KeyHostAllowed"],
    ] as const;
    for (const [url, check] of cases) {
      const submitted = await app.inject({ method: "POST", url: "/v1/change-requests", payload: setKey("fhir-sys", url), headers: { "x-api-key": KEYS.operator } });
      t.equal(submitted.statusCode, 400, check);
      t.ok(submitted.json().failedChecks.includes(check));
      const validated = await app.inject({ method: "POST", url: "/v1/validations", payload: setKey("fhir-sys", url), headers: { "x-api-key": KEYS.reader } });
      t.equal(validated.json().valid, false);
      t.equal(validated.json().checks.find((c: Check) => c.id === check).status, "Failed");
    }
    t.same(await sandboxRequests(sandbox, since), [], "the emulator saw no request for them");
  });
});
