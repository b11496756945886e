import t from "tap";
import { fleetChildJobId, fleetCounts, fleetFailure, fleetFraction, interleaveBySubscription, namesKey, newestEnabledVersion, planFleet, versionMadeSince } from "../../src/domain/fleet-plan.js";
import { parseKeyUrl } from "../../src/domain/key-url.js";
import { JobIdParams } from "../../src/schemas/jobs.js";

const KEY = parseKeyUrl("https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048")!;
const v = (version: string, key = "cmk-rsa-2048", vault = "kvsandbox") => `https://${vault}.vault.azure.net/keys/${key}/${version.padStart(32, "0")}`;
const service = (name: string, keyEncryptionKeyUrl?: string) => ({ id: `/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg/providers/Microsoft.HealthcareApis/workspaces/ws/fhirservices/${name}`, ...(keyEncryptionKeyUrl ? { keyEncryptionKeyUrl } : {}) });

t.test("namesKey: any version of the same vault and key name, any case; nothing else", async (t) => {
  t.ok(namesKey(KEY, v("1")));
  t.ok(namesKey(KEY, v("1").replace("kvsandbox", "KVSANDBOX").replace("cmk-rsa-2048", "CMK-RSA-2048")));
  t.notOk(namesKey(KEY, v("1", "cmk-rsa-3072")));
  t.notOk(namesKey(KEY, v("1", "cmk-rsa-2048", "kveast")));
  t.notOk(namesKey(KEY, undefined), "Microsoft-managed");
  t.notOk(namesKey(KEY, "https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048x/1"));
});

t.test("planFleet: services on the key move unless already on the target; others are not the fleet's", async (t) => {
  const plan = planFleet(
    [service("a", v("1")), service("b", v("2")), service("c", v("1", "other")), service("d"), service("A", v("1")), service("e", v("3"))],
    KEY,
    v("2"),
  );
  t.same(plan.move.map((s) => s.id.split("/").pop()), ["a", "e"], "a duplicate (ids compare case-insensitively) counts once");
  t.same(plan.skip.map((s) => s.id.split("/").pop()), ["b"]);
});

t.test("planFleet: the services to move alternate between subscriptions (each has its own ARM write budget)", async (t) => {
  const in33 = (name: string) => ({ ...service(name, v("1")), id: service(name).id.replace("22222222-2222-2222-2222-222222222222", "33333333-3333-3333-3333-333333333333") });
  const discovered = [service("a1", v("1")), service("a2", v("1")), service("a3", v("1")), in33("b1"), in33("b2")];
  const plan = planFleet(discovered, KEY, v("2"));
  t.same(plan.move.map((s) => s.id.split("/").pop()), ["a1", "b1", "a2", "b2", "a3"], "not a1 a2 a3 b1 b2: workers take children first in, first out");
  t.same(interleaveBySubscription([]), []);
  t.same(interleaveBySubscription(discovered).length, discovered.length, "each service once");
});

t.test("fleetChildJobId: one id per parent and service, a UUID the API takes", async (t) => {
  const parent = "4b0c2a9e-7d1f-4c3b-9a55-0e6f2d8c1a7b";
  const id = fleetChildJobId(parent, service("a").id);
  t.equal(id, fleetChildJobId(parent.toUpperCase(), service("a").id.toUpperCase()), "stable across spelling");
  t.not(id, fleetChildJobId(parent, service("b").id));
  t.not(id, fleetChildJobId("00000000-0000-4000-8000-000000000000", service("a").id));
  t.match(id, new RegExp(JobIdParams.properties.jobId.pattern!));
});

t.test("target versions: the newest enabled usable one; the one a retried attempt made", async (t) => {
  const now = new Date("2026-06-01T00:00:00Z");
  const versions = [
    { url: v("1"), enabled: true, createdOn: new Date("2026-01-01") },
    { url: v("2"), enabled: false, createdOn: new Date("2026-03-01") },
    { url: v("3"), enabled: true, createdOn: new Date("2026-02-01"), expiresOn: new Date("2026-05-01") },
    { url: v("4"), enabled: true, createdOn: new Date("2026-04-01"), notBefore: new Date("2026-07-01") },
  ];
  t.equal(newestEnabledVersion(versions, now)?.url, v("1"), "disabled, expired and not-yet-valid versions are passed over");
  t.equal(newestEnabledVersion([], now), undefined);
  t.equal(versionMadeSince([v("1"), v("2")], [...versions.slice(0, 2), { url: v("9"), enabled: true, createdOn: now }])?.url, v("9"));
  t.equal(versionMadeSince(versions.map((version) => version.url.toUpperCase()), versions), undefined, "none made: rotate now");
});

t.test("counts, progress and the partial failure", async (t) => {
  const counts = fleetCounts({ move: 4, skip: 2 }, ["Succeeded", "Failed", "Canceled", "Running"]);
  t.same(counts, { total: 6, succeeded: 1, failed: 1, skipped: 2, canceled: 1 });
  t.equal(fleetFraction(counts), 0.75);
  t.equal(fleetFraction(fleetCounts({ move: 0, skip: 3 }, [])), 1, "nothing to move: done");
  t.equal(fleetFailure("k", fleetCounts({ move: 1, skip: 0 }, ["Succeeded"]), []), undefined);
  t.match(fleetFailure("k", counts, [{ jobId: "j1", fhirServiceId: "s1", error: { code: "PreflightFailed", message: "no role" } }]), {
    code: "FleetPartiallyFailed",
    target: "k",
    details: [{ code: "PreflightFailed", target: "s1", message: /j1: no role/ }],
  });
});
