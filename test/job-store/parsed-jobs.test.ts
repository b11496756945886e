import t from "tap";
import { ParsedJobs, type ParsedJob } from "../../src/job-store/parsed-jobs.js";

const job = (status: string): ParsedJob =>
  ({ data: { request: { operation: "SetKey", fhirServiceId: "/x" }, createdBy: "a", createdDateTime: "2026-01-01T00:00:00.000Z" }, monitor: { id: "j", status, steps: [{ name: "s" }] } }) as unknown as ParsedJob;

t.test("a job is parsed again only when what was read of it changed", async (t) => {
  const jobs = new ParsedJobs(2);
  let parses = 0;
  const read = (id: string, source: string[], status = "Running") =>
    jobs.get(id, source, () => {
      parses += 1;
      return job(status);
    });
  const first = read("j1", ["data", "progress-1", ""]);
  t.equal(read("j1", ["data", "progress-1", ""]), first, "the same fields: the same parsed job");
  t.equal(parses, 1);
  const changed = read("j1", ["data", "progress-2", ""], "Succeeded");
  t.not(changed, first, "a changed field: parsed again");
  t.equal(changed?.monitor.status, "Succeeded");
  t.equal(read("j1", ["data", "progress-2", "", "delivery"]), read("j1", ["data", "progress-2", "", "delivery"]), "a new delivery is a change too");
  t.equal(parses, 3);
  t.ok(Object.isFrozen(changed?.monitor) && Object.isFrozen(changed?.monitor.steps[0]), "shared by every reader, so frozen");
  t.throws(() => {
    (changed!.monitor as { status: string }).status = "Failed";
  }, TypeError);
});

t.test("bounded: the least recently read job goes first; a job that does not exist is not kept", async (t) => {
  const jobs = new ParsedJobs(2);
  let parses = 0;
  const read = (id: string) =>
    jobs.get(id, ["same"], () => {
      parses += 1;
      return id.startsWith("missing") ? undefined : job("Running");
    });
  read("a");
  read("b");
  read("a");
  read("c");
  t.equal(parses, 3);
  read("a");
  t.equal(parses, 3, "a was read lately: kept");
  read("b");
  t.equal(parses, 4, "b was read least lately: it went out");
  t.equal(read("missing-1"), undefined);
  t.equal(read("missing-1"), undefined);
  t.equal(parses, 6, "no entry for a job that is not there");
});
