import t from "tap";
import type { FastifyInstance } from "fastify";
import { buildTestApp, KEYS, testConfig } from "../helpers/app.js";
import { fhirId, setKey } from "../helpers/requests.js";
import { MAX_SCAN } from "../../src/job-store/job-index.js";

interface Created {
  id: string;
  createdMs: number;
  fhirService: string;
  ticketId: string;
}

const TICKETS = ["CHG-A", "CHG-B", "CHG-C", "CHG-D", "CHG-E"];

/** Newest first by creation time (ms), jobs created in the same millisecond by job id: the list's order. */
function newestFirst(a: Created, b: Created): number {
  if (a.createdMs !== b.createdMs) return b.createdMs - a.createdMs;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Follows nextLink to the end; returns every id in the order listed and the number of pages. */
async function listAll(app: FastifyInstance, query: string, onPage?: (page: number) => Promise<void>) {
  const ids: string[] = [];
  let url: string | undefined = `/v1/jobs?${query}`;
  let pages = 0;
  while (url) {
    const response = await app.inject({ method: "GET", url, headers: { "x-api-key": KEYS.reader } });
    if (response.statusCode !== 200) throw new Error(`${url}: ${response.statusCode} ${response.body}`);
    const body = response.json() as { value: Array<{ id: string }>; nextLink?: string };
    ids.push(...body.value.map((monitor) => monitor.id));
    url = body.nextLink;
    pages += 1;
    if (pages > 500) throw new Error("too many pages");
    await onPage?.(pages);
  }
  return { ids, pages };
}

t.test("GET /v1/jobs pages over 250 jobs: each exactly once, newest first, with every filter", async (t) => {
  const app = await buildTestApp(t, testConfig(t));
  const created: Created[] = [];
  // Dry runs take no exclusivity, so many jobs may name one FHIR service; no worker: they stay NotStarted.
  for (let batch = 0; batch < 10; batch += 1) {
    const answers = await Promise.all(
      Array.from({ length: 25 }, (_, i) => {
        const n = batch * 25 + i;
        const fhirService = `fhir-list-${n % 7}`;
        const ticketId = TICKETS[n % TICKETS.length]!;
        return app
          .inject({ method: "POST", url: "/v1/change-requests", payload: setKey(fhirService, undefined, undefined, { dryRun: true, ticket: { system: "servicenow", id: ticketId } }), headers: { "x-api-key": KEYS.operator } })
          .then((response) => ({ response, fhirService, ticketId }));
      }),
    );
    for (const { response, fhirService, ticketId } of answers) {
      t.equal(response.statusCode, 202);
      const monitor = response.json();
      created.push({ id: monitor.id, createdMs: Date.parse(monitor.createdDateTime), fhirService, ticketId });
    }
  }
  t.equal(created.length, 250);
  const expected = [...created].sort(newestFirst);

  // Every 10th job is canceled (it is waiting: Canceled at once), so status filters have two answers.
  const canceled = new Set<string>();
  for (const job of expected.filter((_, i) => i % 10 === 3)) {
    const response = await app.inject({ method: "POST", url: `/v1/jobs/${job.id}/cancel`, headers: { "x-api-key": KEYS.operator } });
    t.equal(response.statusCode, 200, "a waiting job is canceled at once");
    canceled.add(job.id);
  }
  t.equal(canceled.size, 25);

  t.test("no filter, several page sizes", async (t) => {
    for (const top of [1, 7, 20, 100]) {
      const { ids, pages } = await listAll(app, `top=${top}`);
      t.same(ids, expected.map((job) => job.id), `top=${top}: all 250 in order`);
      t.equal(pages, Math.ceil(250 / top), `top=${top}: no empty trailing page`);
    }
    const first = (await app.inject({ method: "GET", url: "/v1/jobs", headers: { "x-api-key": KEYS.reader } })).json();
    t.equal(first.value.length, 20, "top defaults to 20");
    t.match(first.value[0], { id: expected[0]!.id, operation: "SetKey", status: String, steps: Array, ticket: { id: String } });
  });

  t.test("each filter alone and combined", async (t) => {
    const cases: Array<[string, (job: Created) => boolean]> = [
      ["status=Canceled", (job) => canceled.has(job.id)],
      ["status=NotStarted", (job) => !canceled.has(job.id)],
      ["status=Succeeded", () => false],
      ["operation=SetKey", () => true],
      ["operation=RotateKey", () => false],
      [`fhirServiceId=${encodeURIComponent(fhirId("fhir-list-3"))}`, (job) => job.fhirService === "fhir-list-3"],
      [`fhirServiceId=${encodeURIComponent(fhirId("FHIR-LIST-3").toUpperCase())}`, (job) => job.fhirService === "fhir-list-3"],
      ["ticketId=CHG-B", (job) => job.ticketId === "CHG-B"],
      ["ticketId=CHG-NONE", () => false],
      [`ticketId=CHG-C&fhirServiceId=${encodeURIComponent(fhirId("fhir-list-1"))}`, (job) => job.ticketId === "CHG-C" && job.fhirService === "fhir-list-1"],
      ["ticketId=CHG-A&status=NotStarted&operation=SetKey", (job) => job.ticketId === "CHG-A" && !canceled.has(job.id)],
      [`status=Canceled&fhirServiceId=${encodeURIComponent(fhirId("fhir-list-5"))}`, (job) => canceled.has(job.id) && job.fhirService === "fhir-list-5"],
    ];
    for (const [query, keep] of cases) {
      const want = expected.filter(keep).map((job) => job.id);
      for (const top of [3, 50]) {
        const { ids } = await listAll(app, `${query}&top=${top}`);
        t.same(ids, want, `${query} top=${top}: ${want.length} jobs, each once, in order`);
      }
    }
  });

  t.test("statuses that change between pages: still each job once, in order", async (t) => {
    // Cancel jobs further down the list while paging; unfiltered paging must not lose or repeat any.
    const toCancel = expected.filter((job) => !canceled.has(job.id)).slice(100, 140);
    const { ids } = await listAll(app, "top=10", async (page) => {
      if (page === 3) {
        for (const job of toCancel) {
          await app.inject({ method: "POST", url: `/v1/jobs/${job.id}/cancel`, headers: { "x-api-key": KEYS.operator } });
          canceled.add(job.id);
        }
      }
    });
    t.same(ids, expected.map((job) => job.id));
    const notStarted = await listAll(app, "status=NotStarted&top=15");
    t.same(notStarted.ids, expected.filter((job) => !canceled.has(job.id)).map((job) => job.id), "the canceled ones left the NotStarted list");
  });

  t.test("jobs BullMQ has removed are skipped and dropped from the index", async (t) => {
    const gone = expected.slice(5, 9);
    for (const job of gone) await (await app.jobStore.changes.getJob(job.id))!.remove();
    const { ids } = await listAll(app, "top=25");
    t.same(ids, expected.filter((job) => !gone.some((g) => g.id === job.id)).map((job) => job.id));
    const stillIndexed = await app.redis.zcard(`${app.config.CMK_QUEUE_PREFIX}:jobs:idx:all`);
    t.equal(stillIndexed, 250 - gone.length, "their index entries were removed on the way");
    expected.splice(5, 4);
  });

  t.test("bad paging parameters are 400; readers may list, no key may not", async (t) => {
    for (const query of ["top=0", "top=101", "top=abc", "continuationToken=garbage", "status=Done", "operation=Nope"]) {
      const response = await app.inject({ method: "GET", url: `/v1/jobs?${query}`, headers: { "x-api-key": KEYS.reader } });
      t.equal(response.statusCode, 400, query);
      t.equal(response.json().code, "ValidationFailed");
    }
    t.equal((await app.inject({ method: "GET", url: "/v1/jobs" })).statusCode, 401);
  });
});

t.test("a page reads at most MAX_SCAN jobs; a selective filter gets short pages that still continue", async (t) => {
  const app = await buildTestApp(t, testConfig(t));
  // Index entries for jobs that do not exist cost a read each and match nothing: a worst case.
  const prefix = app.config.CMK_QUEUE_PREFIX;
  const members = Array.from({ length: MAX_SCAN + 50 }, (_, i) => [0, `${String(9_000_000_000_000 + i).padStart(13, "0")}:00000000-0000-4000-8000-${String(i).padStart(12, "0")}`]).flat();
  await app.redis.zadd(`${prefix}:jobs:idx:all`, ...(members as Array<string | number>));
  const first = await app.inject({ method: "GET", url: "/v1/jobs?top=5", headers: { "x-api-key": KEYS.reader } });
  t.equal(first.statusCode, 200);
  t.same(first.json().value, []);
  t.ok(first.json().nextLink, "the search goes on in the next page");
  const second = await app.inject({ method: "GET", url: first.json().nextLink, headers: { "x-api-key": KEYS.reader } });
  t.same(second.json(), { value: [] }, "then the index is exhausted");
  t.equal(await app.redis.zcard(`${prefix}:jobs:idx:all`), 0, "dead entries were dropped");
});
