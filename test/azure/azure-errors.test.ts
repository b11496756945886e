import t from "tap";
import { missingAuthorization, missingPermission, refusalReason, toJobError } from "../../src/azure/azure-errors.js";
import { readFact } from "../../src/azure/arm-facts.js";

/** The permission a 403 names, as ARM and Key Vault word it (messages as the emulator and Azure send them). */

const ARM =
  "The client 'c1' with object id 'o1' does not have authorization to perform action 'Microsoft.KeyVault/vaults/read' over scope '/subscriptions/s' or the scope is invalid. If access was recently granted, please refresh your credentials.";
const LINKED =
  "The client 'c1' with object id 'o1' has permission to perform action 'Microsoft.HealthcareApis/workspaces/fhirservices/write' on scope '/x'; however, it does not have permission to perform action(s) 'Microsoft.ManagedIdentity/userAssignedIdentities/assign/action' on the linked scope(s) '/u' (respectively) or the linked scope(s) are invalid.";
const KEY_VAULT = "Caller is not authorized to perform action on resource.\r\nCaller: appid=a\r\nAction: 'Microsoft.KeyVault/vaults/keys/read'\r\nResource: '/x'\r\n";

t.test("missingPermission reads the action out of each 403 wording", async (t) => {
  t.equal(missingPermission(ARM), "Microsoft.KeyVault/vaults/read");
  t.equal(missingPermission(LINKED), "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action", "the linked action, not the one the caller has");
  t.equal(missingPermission(KEY_VAULT), "Microsoft.KeyVault/vaults/keys/read");
  t.equal(missingPermission("Forbidden"), undefined);
  t.equal(missingPermission(undefined), undefined);
});

t.test("a pre-flight read refused for a permission says which one; a failed change keeps Azure's wording", async (t) => {
  const fact = await readFact(async () => {
    throw Object.assign(new Error(ARM), { statusCode: 403, code: "AuthorizationFailed" });
  });
  t.same(fact, { status: "unreadable", reason: "AuthorizationFailed (HTTP 403): the service's identity lacks 'Microsoft.KeyVault/vaults/read'", cause: "permission" });
  const failed = toJobError(Object.assign(new Error(LINKED), { statusCode: 403, code: "LinkedAuthorizationFailed" }), { action: "update the FHIR service", target: "/x" });
  t.equal(failed.body.code, "AzureAuthorizationFailed");
  t.match(failed.message, /'Microsoft\.ManagedIdentity\/userAssignedIdentities\/assign\/action'/);
});

t.test("missingAuthorization adds the scope each wording names; refusalReason words a refused read", async (t) => {
  t.same(missingAuthorization(ARM), { action: "Microsoft.KeyVault/vaults/read", scope: "/subscriptions/s" });
  t.same(missingAuthorization(LINKED), { action: "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action", scope: "/u" });
  t.same(missingAuthorization(KEY_VAULT), { action: "Microsoft.KeyVault/vaults/keys/read", scope: "/x" });
  t.same(missingAuthorization("does not have authorization to perform action 'A/b/read'."), { action: "A/b/read" }, "a wording without its scope");
  t.equal(
    refusalReason(Object.assign(new Error(ARM), { statusCode: 403, code: "AuthorizationFailed" })),
    "no access: the service's identity lacks 'Microsoft.KeyVault/vaults/read' at /subscriptions/s (AuthorizationFailed)",
  );
  t.equal(refusalReason(Object.assign(new Error("Forbidden"), { statusCode: 403, code: "RequestDisallowedByPolicy" })), "no access (RequestDisallowedByPolicy, HTTP 403)");
  t.equal(refusalReason(Object.assign(new Error("nope"), { statusCode: 404, code: "SubscriptionNotFound" })), "not found (SubscriptionNotFound, HTTP 404)");
  t.equal(refusalReason(Object.assign(new Error("nope"), { statusCode: 404 })), "not found (HTTP 404)");
});
