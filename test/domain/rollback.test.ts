import t from "tap";
import type { ChangeJobData, JobProgress } from "../../src/domain/job-record.js";
import { fleetChildRollbacks, fleetRollbackRefusal } from "../../src/domain/rollback.js";
import type { JobStatusMonitor } from "../../src/schemas/jobs.js";

/** Rollback of a fleet rotation, the pure part: when a parent can be rolled back, and which children get a rollback child. */

const KEY = "https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048";
const V1 = `${KEY}/00000000000000000000000000000001`;
const V2 = `${KEY}/00000000000000000000000000000002`;
const fhir = (name: string) => `/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg/providers/Microsoft.HealthcareApis/workspaces/ws/fhirservices/${name}`;

const parent = (extra: Partial<JobStatusMonitor>): JobStatusMonitor =>
  ({ id: "p1", operation: "RotateFleet", status: "Succeeded", steps: [], percentComplete: 100, createdBy: "op", createdDateTime: "", lastUpdatedDateTime: "", attempts: 1, ...extra }) as JobStatusMonitor;

t.test("fleetRollbackRefusal: an ended fleet with a child that moved a service can be rolled back", async (t) => {
  const counts = (succeeded: number) => ({ total: 3, succeeded, failed: 0, skipped: 3 - succeeded, canceled: 0 });
  t.equal(fleetRollbackRefusal(parent({ result: { services: counts(2) } })), undefined);
  t.equal(fleetRollbackRefusal(parent({ status: "Failed", result: { services: { ...counts(1), failed: 1 } } })), undefined, "a partly failed fleet: its moved services");
  t.equal(fleetRollbackRefusal(parent({ status: "Canceled", result: { services: { ...counts(1), canceled: 1 } } })), undefined, "a canceled one too");
  t.match(fleetRollbackRefusal(parent({ status: "Running" })), { code: "NotSucceeded", reason: /has not ended/ });
  t.match(fleetRollbackRefusal(parent({ dryRun: true, result: { services: counts(0) } })), { code: "NoWrite", reason: /dry run/ });
  t.match(fleetRollbackRefusal(parent({ result: { services: counts(0) } })), { code: "NoWrite" });
  t.match(fleetRollbackRefusal(parent({ status: "Canceled", error: { code: "Rejected", message: "no" } })), { code: "NoWrite", reason: /Canceled, Rejected/ });
});

t.test("fleetChildRollbacks: one SetKey per Succeeded child that wrote, back to what it replaced", async (t) => {
  const child = (id: string, status: JobStatusMonitor["status"], armWrites: number, replaced?: JobProgress["replaced"]) => ({
    data: { request: { operation: "RotateKey", fhirServiceId: fhir(id), ticket: { system: "jira", id: "CHG-1" } }, createdBy: "op", createdDateTime: "" } as ChangeJobData,
    progress: (replaced ? { replaced } : undefined) as JobProgress | undefined,
    monitor: { id: `job-${id}`, status, result: { armWrites, keyEncryptionKeyUrl: V2, identityType: "SystemAssigned" } } as unknown as JobStatusMonitor,
  });
  const system = { keyEncryptionKeyUrl: V1, identity: { type: "SystemAssigned" }, identityType: "SystemAssigned" } as JobProgress["replaced"];
  const { rollbacks, skipped } = fleetChildRollbacks(
    [child("a", "Succeeded", 1, system), child("b", "Canceled", 0), child("c", "Succeeded", 0, system), child("d", "Failed", 1, system)],
    { ticket: { system: "jira", id: "CHG-2" } },
  );
  t.same(rollbacks, [
    { rollbackOf: "job-a", currentKeyEncryptionKeyUrl: V2, request: { operation: "SetKey", fhirServiceId: fhir("a"), keyEncryptionKeyUrl: V1, identity: { type: "SystemAssigned" }, ticket: { system: "jira", id: "CHG-2" } } },
  ]);
  t.same(skipped, [
    { jobId: "job-b", code: "NotSucceeded" },
    { jobId: "job-c", code: "NoWrite" },
    { jobId: "job-d", code: "NotSucceeded" },
  ]);
});
