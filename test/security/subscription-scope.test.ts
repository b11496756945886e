import t from "tap";
import { sha256Hex } from "../../src/plugins/app/authentication.js";
import * as seed from "../../src/sandbox/seed.js";
import { KEYS, waitForJob } from "../helpers/app.js";
import { lastSeq, sandboxRequests } from "../helpers/sandbox-admin.js";
import { sandboxRequest } from "../helpers/sandbox.js";
import { startStack } from "../helpers/stack.js";

/** Issue 12, item 1: every ARM id in a request must be inside the caller's subscription allow-list. */

const HOME_ONLY = [seed.SUBSCRIPTION_ID];
const apiKeys = [
  { name: "operator-home", sha256: sha256Hex("key-operator-home"), roles: ["operator"], subscriptions: HOME_ONLY },
  { name: "reader-home", sha256: sha256Hex("key-reader-home"), roles: ["reader"], subscriptions: HOME_ONLY },
  { name: "operator-anywhere", sha256: sha256Hex("key-operator-anywhere"), roles: ["operator"] },
  { name: "test-reader", sha256: sha256Hex(KEYS.reader), roles: ["reader"] },
];
const setKeyWithForeignIdentity = {
  operation: "SetKey",
  fhirServiceId: seed.fhirServiceId(seed.FHIR_SYS),
  keyEncryptionKeyUrl: seed.keyUrl(seed.KV_SANDBOX, seed.KEY_RSA_2048, seed.VERSION_2),
  identity: { type: "UserAssigned", userAssignedIdentityId: seed.UAMI_OTHER_ID },
  acknowledgeIdentityTypeChange: true,
};

t.test("a user-assigned identity in another subscription is refused with 403 before Azure is read", async (t) => {
  const { app, sandbox } = await startStack(t, { env: { CMK_API_KEYS: JSON.stringify(apiKeys) } });
  const since = await lastSeq(sandbox);
  const routes = [
    { url: "/v1/change-requests", key: "key-operator-home" },
    { url: "/v1/validations", key: "key-reader-home" },
    { url: "/v1/templates", key: "key-reader-home" },
  ];
  for (const { url, key } of routes) {
    const response = await app.inject({ method: "POST", url, payload: setKeyWithForeignIdentity, headers: { "x-api-key": key } });
    t.equal(response.statusCode, 403, url);
    t.match(response.json(), { code: "Forbidden", subscriptionId: seed.OTHER_SUBSCRIPTION_ID, detail: new RegExp(seed.OTHER_SUBSCRIPTION_ID) }, url);
  }
  t.same(await sandboxRequests(sandbox, since), [], "the emulator saw no request at all: nothing of the foreign identity was read");
  const jobs = await app.inject({ method: "GET", url: "/v1/jobs", headers: { "x-api-key": "key-operator-anywhere" } });
  t.same(jobs.json().value, [], "no job was made");

  // The same identity in the caller's own subscription is fine: the refusal is about the subscription.
  const ownIdentity = { ...setKeyWithForeignIdentity, identity: { type: "UserAssigned", userAssignedIdentityId: seed.userAssignedIdentityId(seed.UAMI_SANDBOX) } };
  const allowed = await app.inject({ method: "POST", url: "/v1/validations", payload: ownIdentity, headers: { "x-api-key": "key-reader-home" } });
  t.equal(allowed.statusCode, 200);
});

t.test("an identity the service cannot read fails IdentityExists; the job writes nothing", async (t) => {
  const { app, sandbox } = await startStack(t, { env: { CMK_API_KEYS: JSON.stringify(apiKeys) } });
  // The service loses its Contributor role on the second subscription: uami-other answers 403 to it.
  const removed = await sandboxRequest(sandbox, {
    method: "POST",
    path: "/_sandbox/scenarios",
    body: { action: "removeRoleAssignments", principalId: seed.SERVICE_APP.objectId, scope: `/subscriptions/${seed.OTHER_SUBSCRIPTION_ID}` },
  });
  t.equal((removed.json as { removed: string[] }).removed.length, 1);
  const headers = { "x-api-key": "key-operator-anywhere" };

  const validation = await app.inject({ method: "POST", url: "/v1/validations", payload: setKeyWithForeignIdentity, headers });
  t.equal(validation.statusCode, 200);
  const checks = validation.json().checks as { id: string; status: string; message: string }[];
  t.equal(validation.json().valid, false);
  t.match(checks.find((check) => check.id === "IdentityExists"), { status: "Failed", message: /uami-other.*AuthorizationFailed/ });

  const since = await lastSeq(sandbox);
  const submitted = await app.inject({ method: "POST", url: "/v1/change-requests", payload: setKeyWithForeignIdentity, headers });
  t.equal(submitted.statusCode, 202);
  const { monitor } = await waitForJob(app, submitted.json().id);
  t.match(monitor, { status: "Failed", error: { code: "PreflightFailed", details: [{ code: "IdentityExists" }] } });
  const log = await sandboxRequests(sandbox, since);
  t.ok(log.some((entry) => entry.path.toLowerCase().includes(`/userassignedidentities/${seed.UAMI_OTHER}`) && entry.status === 403), "the identity was read and refused");
  t.same(log.filter((entry) => entry.method === "PATCH" || entry.method === "PUT"), [], "no PATCH or PUT reached ARM");
});
