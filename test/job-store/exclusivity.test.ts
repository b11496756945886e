import t from "tap";
import { buildTestApp, KEYS, testConfig } from "../helpers/app.js";
import { setKey } from "../helpers/requests.js";

t.test("50 concurrent change requests for one FHIR service: exactly one 202", async (t) => {
  const app = await buildTestApp(t, testConfig(t));
  const answers = await Promise.all(
    Array.from({ length: 50 }, () => app.inject({ method: "POST", url: "/v1/change-requests", payload: setKey("fhir-sys"), headers: { "x-api-key": KEYS.operator } })),
  );
  const accepted = answers.filter((answer) => answer.statusCode === 202);
  const refused = answers.filter((answer) => answer.statusCode === 409);
  t.equal(accepted.length, 1);
  t.equal(refused.length, 49);
  const jobId = accepted[0]!.json().id;
  t.ok(refused.every((answer) => answer.json().activeJobId === jobId), "every refusal names the one job");
  t.equal((await app.jobStore.changes.getJobCounts("waiting")).waiting, 1, "one job in the queue");
});
