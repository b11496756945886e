import t from "tap";
import { seed } from "../../src/sandbox/index.js";
import { KEYS, waitForJob } from "../helpers/app.js";
import { startStack } from "../helpers/stack.js";
import { sandboxRequest } from "../helpers/sandbox.js";
import { lastSeq, sandboxRequests } from "../helpers/sandbox-admin.js";

const KEY = "https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048";
const KEY_V1 = `${KEY}/${seed.VERSION_1}`;

type Stack = Awaited<ReturnType<typeof startStack>>;
const post = (stack: Stack, body: object, key: string = KEYS.operator) =>
  stack.app.inject({ method: "POST", url: "/v1/key-rotations", payload: body, headers: { "x-api-key": key } });
const scenario = (stack: Stack, body: object) => sandboxRequest(stack.sandbox, { method: "POST", path: "/_sandbox/scenarios", body });

t.test("smoke: a fleet of 6 moves to a new version", async (t) => {
  const stack = await startStack(t, { lroMs: 300, env: { CMK_WORKER_CONCURRENCY: "20", CMK_ROLE_PROPAGATION_WINDOW_MS: "0" } });
  await scenario(stack, { action: "createFleet", count: 6, keyUrl: KEY_V1, subscriptions: [seed.SUBSCRIPTION_ID, seed.OTHER_SUBSCRIPTION_ID] });
  const since = await lastSeq(stack.sandbox);
  const accepted = await post(stack, { keyUrl: KEY, createNewVersion: true });
  t.equal(accepted.statusCode, 202, accepted.body);
  const { monitor } = await waitForJob(stack.app, accepted.json().id, 15_000).catch(async (error) => {
    console.log(JSON.stringify((await stack.app.inject({ method: "GET", url: `/v1/jobs/${accepted.json().id}`, headers: { "x-api-key": KEYS.reader } })).json(), null, 1));
    const children = await stack.app.inject({ method: "GET", url: `/v1/jobs?parentJobId=${accepted.json().id}&top=100`, headers: { "x-api-key": KEYS.reader } });
    console.log(JSON.stringify(children.json(), null, 1).slice(0, 6000));
    throw error;
  });
  t.equal(monitor.status, "Succeeded", JSON.stringify(monitor, null, 1));
  console.log(JSON.stringify(monitor, null, 1));
  const requests = await sandboxRequests(stack.sandbox, since);
  const arm = requests.filter((r) => r.host === "management.azure.com");
  console.log(arm.map((r) => `${r.method} ${r.path.split("?")[0]} ${r.status}`).join("\n"));
  const children = await stack.app.inject({ method: "GET", url: `/v1/jobs?parentJobId=${monitor.id}&top=100`, headers: { "x-api-key": KEYS.reader } });
  console.log(children.json().value.map((c: { status: string; fhirServiceId: string }) => `${c.status} ${c.fhirServiceId}`).join("\n"));
});
