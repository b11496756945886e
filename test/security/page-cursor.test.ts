import t from "tap";
import type { FastifyInstance } from "fastify";
import { sha256Hex } from "../../src/plugins/app/authentication.js";
import * as seed from "../../src/sandbox/seed.js";
import { buildTestApp, KEYS, testConfig } from "../helpers/app.js";
import { setKey } from "../helpers/requests.js";

/** Issue 12, item 6: continuation tokens are opaque and open only for the query and scope that made them. */

const apiKeys = [
  { name: "admin", sha256: sha256Hex(KEYS.admin), roles: ["admin"] },
  { name: "admin-home", sha256: sha256Hex("key-admin-home"), roles: ["admin"], subscriptions: [seed.SUBSCRIPTION_ID] },
];

async function submit(app: FastifyInstance, fhirServiceId: string): Promise<{ id: string; createdDateTime: string }> {
  const body = { ...setKey("fhir-sys", undefined, undefined, { dryRun: true }), fhirServiceId };
  const response = await app.inject({ method: "POST", url: "/v1/change-requests", payload: body, headers: { "x-api-key": KEYS.admin } });
  t.equal(response.statusCode, 202);
  return response.json();
}

const get = (app: FastifyInstance, url: string, key: string = KEYS.admin) => app.inject({ method: "GET", url, headers: { "x-api-key": key } });
const tokenOf = (nextLink: string) => new URL(nextLink, "http://x").searchParams.get("continuationToken")!;

t.test("tokens of GET /v1/jobs and GET /v1/audit say nothing and are bound to their query and scope", async (t) => {
  const app = await buildTestApp(t, testConfig(t, { CMK_API_KEYS: JSON.stringify(apiKeys) }));
  const jobs = [];
  for (let i = 0; i < 3; i++) jobs.push(await submit(app, seed.FHIR_OTHER_ID), await submit(app, seed.fhirServiceId(seed.FHIR_SYS)));

  for (const list of ["/v1/jobs", "/v1/audit"]) {
    const first = await get(app, `${list}?top=2`);
    t.equal(first.statusCode, 200, list);
    const nextLink = first.json().nextLink as string;
    const token = tokenOf(nextLink);
    const decoded = Buffer.from(token, "base64url").toString("latin1");
    for (const job of jobs) {
      t.notOk(decoded.includes(job.id) || token.includes(job.id), `${list}: no job id in the token`);
      t.notOk(/\d{10,}/.test(decoded), `${list}: no time in the token`);
    }
    t.equal((await get(app, nextLink)).statusCode, 200, `${list}: the nextLink works as given`);

    const refusals = [
      [`${list}?top=2&fhirServiceId=${encodeURIComponent(seed.fhirServiceId(seed.FHIR_SYS))}&continuationToken=${token}`, KEYS.admin, "other filters"],
      [nextLink, "key-admin-home", "another scope"],
      [`${list}?top=2&continuationToken=${token.slice(0, -2)}${token.endsWith("AA") ? "BB" : "AA"}`, KEYS.admin, "altered"],
      [`${list}?top=2&continuationToken=${Buffer.from(JSON.stringify({ v: 1, after: "0000000000000:x" })).toString("base64url")}`, KEYS.admin, "made up"],
    ] as const;
    for (const [url, key, why] of refusals) {
      const response = await get(app, url, key);
      t.equal(response.statusCode, 400, `${list}: ${why}`);
      t.match(response.json(), { code: "ValidationFailed", errors: [{ path: "/query/continuationToken" }] }, `${list}: ${why}`);
    }
  }

  // A scoped caller's page over other subscriptions' records gives a token that says nothing about them.
  const scoped = await get(app, "/v1/jobs?top=1", "key-admin-home");
  const scopedToken = tokenOf(scoped.json().nextLink);
  t.notOk(jobs.some((job) => Buffer.from(scopedToken, "base64url").toString("latin1").includes(job.id)));
});
