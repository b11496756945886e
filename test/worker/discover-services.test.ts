import t from "tap";
import { describeNotListed, notListed } from "../../src/worker/steps/discover-services.js";

/** A subscription a fleet rotation or scan could not list: what ARM said, and what to grant (messages as ARM words them). */

const SUB = "22222222-2222-2222-2222-222222222222";
const FORBIDDEN = Object.assign(
  new Error(
    `The client 'c1' with object id 'o1' does not have authorization to perform action 'Microsoft.HealthcareApis/workspaces/read' over scope '/subscriptions/${SUB}/providers/Microsoft.HealthcareApis/workspaces' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
  ),
  { statusCode: 403, code: "AuthorizationFailed" },
);

t.test("a 403 names the action, the scope and the role that holds it", async (t) => {
  const entry = notListed(SUB, FORBIDDEN);
  t.same(entry.subscriptionId, SUB);
  t.equal(entry.reason, `no access: the service's identity lacks 'Microsoft.HealthcareApis/workspaces/read' at /subscriptions/${SUB}/providers/Microsoft.HealthcareApis/workspaces (AuthorizationFailed)`);
  t.match(entry.remediation, new RegExp(`^Give the service's identity 'Microsoft\\.HealthcareApis/workspaces/read' at /subscriptions/${SUB}: assign it the role in deploy/cmk-service-role\\.json.*--scope /subscriptions/${SUB}\\)\\.$`));
  t.equal(describeNotListed({ notListed: [entry] }), `; not listed: ${SUB}: ${entry.reason}`);
  t.equal(describeNotListed({ notListed: [] }), "", "nothing said when every subscription was listed");
});

t.test("a 403 that names no action, and a 404, still say what to do", async (t) => {
  t.match(notListed(SUB, Object.assign(new Error("Forbidden"), { statusCode: 403, code: "RequestDisallowedByPolicy" })), {
    reason: "no access (RequestDisallowedByPolicy, HTTP 403)",
    remediation: /^Assign the service's identity the role in deploy\/cmk-service-role\.json/,
  });
  t.match(notListed(SUB, Object.assign(new Error("gone"), { statusCode: 404, code: "SubscriptionNotFound" })), {
    reason: "not found (SubscriptionNotFound, HTTP 404)",
    remediation: /^Check the subscription id/,
  });
});
