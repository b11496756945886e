import t from "tap";
import { createAzureAdapters } from "../../src/azure/adapters.js";
import { runPreflight } from "../../src/preflight/run-preflight.js";
import { fhirId, KEY_V2, uamiId } from "../helpers/requests.js";
import { setFaults } from "../helpers/sandbox-admin.js";
import { recordingAzureContext, startTestSandbox } from "../helpers/sandbox.js";

/** The service's own permissions: what it may not list makes IdentityKeyAccess warn, never fail or crash. */

t.test("a 403 on the role assignment list: IdentityKeyAccess warns with the reason, the other checks are unchanged", async (t) => {
  const sandbox = await startTestSandbox(t);
  const adapters = createAzureAdapters(recordingAzureContext(sandbox).context, { pollIntervalMs: 100 });
  await setFaults(sandbox, { rules: [{ service: "arm", pathContains: "Microsoft.Authorization/roleAssignments", status: 403, probability: 1, errorCode: "AuthorizationFailed" }] });
  const settings = { propagationWindowMs: 0 };

  for (const [name, identity, who] of [
    ["fhir-sys", { type: "SystemAssigned" }, "the FHIR service's system-assigned identity"],
    ["fhir-uami", { type: "UserAssigned", userAssignedIdentityId: uamiId("uami-sandbox") }, "user-assigned identity uami-sandbox"],
  ] as const) {
    const { report, facts } = await runPreflight(adapters, { fhirServiceId: fhirId(name), keyEncryptionKeyUrl: KEY_V2, identity }, settings);
    t.match(facts?.roleAssignments, { status: "unreadable", cause: "permission" });
    t.same(
      report.checks.filter((check) => check.status !== "Passed"),
      [
        {
          id: "IdentityKeyAccess",
          status: "Warning",
          message: `Could not list role assignments for ${who}: AuthorizationFailed (HTTP 403).`,
          remediation: "Give the service's identity Reader (Microsoft.Authorization/roleAssignments/read) on the vault.",
        },
      ],
      `${name}: only IdentityKeyAccess is affected`,
    );
    t.equal(report.valid, true, "a warning does not block");
  }
});
