import t from "tap";
import { seed } from "../../src/sandbox/index.js";
import { DEFAULT_THROTTLE_LIMITS, GLOBAL_LIMIT_FACTOR, parseThrottleOptions, Throttling } from "../../src/sandbox/throttling.js";
import { armToken, sandboxRequest, startTestSandbox } from "../helpers/sandbox.js";
import { advanceClock } from "../helpers/sandbox-admin.js";

/** ARM's token buckets (azure-contracts.md 2.1, 2.3) and `PUT /_sandbox/throttling` (api-contract v1.1). */

const SUBSCRIPTION = { subscriptionId: seed.SUBSCRIPTION_ID, tenantId: seed.TENANT_ID };

t.test("a bucket per subscription, principal and kind, refilling with time", async (t) => {
  let now = 0;
  const throttling = new Throttling({ writes: { capacity: 3, refillPerSecond: 2 } }, () => now);
  const write = (principal = "a") => throttling.take(SUBSCRIPTION, principal, "writes");
  t.same([write(), write(), write()].map((decision) => decision.headers["x-ms-ratelimit-remaining-subscription-writes"]), ["2", "1", "0"]);
  const refused = write();
  t.match(refused, { allowed: false, retryAfterSeconds: 1 });
  t.equal(write("b").allowed, true, "another principal has a bucket of its own");
  t.equal(throttling.take({ subscriptionId: seed.OTHER_SUBSCRIPTION_ID, tenantId: seed.TENANT_ID }, "a", "writes").allowed, true, "so has another subscription");
  t.equal(throttling.take(SUBSCRIPTION, "a", "reads").headers["x-ms-ratelimit-remaining-subscription-reads"], String(DEFAULT_THROTTLE_LIMITS.reads.capacity - 1), "reads count apart");
  now += 500;
  t.match(write(), { allowed: true, headers: { "x-ms-ratelimit-remaining-subscription-writes": "0" } }, "half a second brings one token back");
  now += 60_000;
  t.equal(write().headers["x-ms-ratelimit-remaining-subscription-writes"], "2", "never more than the capacity");
});

t.test("a subscription-wide bucket of 15 times the size for all principals together, and tenant buckets outside subscriptions", async (t) => {
  const throttling = new Throttling({ deletes: { capacity: 2, refillPerSecond: 1 } }, () => 0);
  const shared = 2 * GLOBAL_LIMIT_FACTOR;
  const decisions = Array.from({ length: shared }, (_, index) => throttling.take(SUBSCRIPTION, `principal-${Math.floor(index / 2)}`, "deletes"));
  t.ok(decisions.every((decision) => decision.allowed));
  t.equal(decisions.at(-1)?.headers["x-ms-ratelimit-remaining-subscription-global-deletes"], "0");
  const fresh = throttling.take(SUBSCRIPTION, "a-new-principal", "deletes");
  t.match(fresh, { allowed: false, headers: { "x-ms-ratelimit-remaining-subscription-deletes": "2", "x-ms-ratelimit-remaining-subscription-global-deletes": "0" } }, "its own bucket is full, the subscription's is empty");

  const tenant = throttling.take({ tenantId: seed.TENANT_ID }, "a", "reads");
  t.same(tenant.headers, { "x-ms-ratelimit-remaining-tenant-reads": String(DEFAULT_THROTTLE_LIMITS.reads.capacity - 1) });
});

t.test("configure and clear", async (t) => {
  const throttling = new Throttling({ reads: { capacity: 5, refillPerSecond: 1 } }, () => 0);
  throttling.take(SUBSCRIPTION, "a", "writes");
  throttling.configure({ writes: { capacity: 1, refillPerSecond: 1 } });
  t.same(throttling.snapshot(), { ...DEFAULT_THROTTLE_LIMITS, reads: { capacity: 5, refillPerSecond: 1 }, writes: { capacity: 1, refillPerSecond: 1 } });
  t.equal(throttling.take(SUBSCRIPTION, "a", "writes").headers["x-ms-ratelimit-remaining-subscription-writes"], "0", "buckets start full at the new size");
  throttling.clear();
  t.same(throttling.snapshot(), { ...DEFAULT_THROTTLE_LIMITS, reads: { capacity: 5, refillPerSecond: 1 } }, "back to the sizes the sandbox started with");
  t.throws(() => parseThrottleOptions({ writes: { capacity: 0, refillPerSecond: 1 } }), /capacity/);
  t.throws(() => parseThrottleOptions({ writes: { capacity: 1, refillPerSecond: 0 } }), /refillPerSecond/);
  t.throws(() => parseThrottleOptions({ posts: {} }), /unknown properties: posts/);
});

t.test("PUT /_sandbox/throttling sizes ARM's buckets; answers carry the remaining counts; an empty bucket is 429 with Retry-After", async (t) => {
  const sandbox = await startTestSandbox(t);
  const admin = (method: string, body?: object) => sandboxRequest(sandbox, { method, path: "/_sandbox/throttling", ...(body ? { body } : {}) });
  t.same((await admin("GET")).json, DEFAULT_THROTTLE_LIMITS, "ARM's defaults");
  const configured = await admin("PUT", { writes: { capacity: 2, refillPerSecond: 0.01 } });
  t.equal(configured.status, 200);
  t.same(configured.json, { ...DEFAULT_THROTTLE_LIMITS, writes: { capacity: 2, refillPerSecond: 0.01 } });
  t.match(await admin("PUT", { writes: { capacity: -1 } }), { status: 400, json: { error: { code: "InvalidThrottling" } } });

  const authorization = `Bearer ${await armToken(sandbox)}`;
  const arm = (method: string, path: string, body?: object) =>
    sandboxRequest(sandbox, { method, path: `${path}?api-version=2025-04-01`, host: "management.azure.com", headers: { authorization }, ...(body ? { body } : {}) });
  const group = seed.resourceGroupId("rg-throttled");
  const writes = [await arm("PUT", group, { location: "westus3" }), await arm("PUT", group, { location: "westus3" })];
  t.same(writes.map((response) => response.status), [201, 200]);
  t.same(writes.map((response) => response.headers["x-ms-ratelimit-remaining-subscription-writes"]), ["1", "0"]);
  t.equal(writes[0]?.headers["x-ms-ratelimit-remaining-subscription-global-writes"], String(2 * GLOBAL_LIMIT_FACTOR - 1));
  const throttled = await arm("PUT", group, { location: "westus3" });
  t.equal(throttled.status, 429);
  t.match(throttled.json, { error: { code: "SubscriptionRequestsThrottled", message: /Number of 'write' requests for subscription/ } });
  t.equal(throttled.headers["retry-after"], "100", "one token at 0.01 per second");
  await advanceClock(sandbox, 100);
  t.equal((await arm("PUT", group, { location: "westus3" })).status, 200, "the emulator's clock refills the bucket");

  const read = await arm("GET", group);
  t.equal(read.status, 200, "reads have their own bucket");
  t.equal(read.headers["x-ms-ratelimit-remaining-subscription-reads"], "249");
  const deleted = await arm("DELETE", seed.workspaceId("wsnone"));
  t.equal(deleted.headers["x-ms-ratelimit-remaining-subscription-deletes"], "199", "deletes too");
  const tenantRead = await sandboxRequest(sandbox, { path: "/subscriptions?api-version=2022-12-01", host: "management.azure.com", headers: { authorization } });
  t.equal(tenantRead.headers["x-ms-ratelimit-remaining-tenant-reads"], "249", "outside a subscription: the tenant's bucket");

  await sandboxRequest(sandbox, { method: "POST", path: "/_sandbox/reset" });
  t.same((await admin("GET")).json, DEFAULT_THROTTLE_LIMITS, "reset restores the sizes");
  t.equal((await arm("PUT", group, { location: "westus3" })).status, 201, "and the buckets");
});
