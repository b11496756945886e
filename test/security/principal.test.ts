import t from "tap";
import { loadConfig } from "../../src/config.js";
import { sha256Hex } from "../../src/plugins/app/authentication.js";
import { hasGrant, resolveGrants, type Principal } from "../../src/security/principal.js";
import { tokenPrincipal } from "../../src/security/token-principal.js";

/** api-contract v1.1 "Roles": approver is a capability beside the ordered roles; admin includes it. */
t.test("grants: ordered roles and the approver capability", async (t) => {
  t.same(resolveGrants(["operator"]), { role: "operator", approver: false });
  t.same(resolveGrants(["operator", "approver"]), { role: "operator", approver: true }, "an operator that may also approve");
  t.same(resolveGrants(["reader", "operator"]), { role: "operator", approver: false }, "the highest ordered role wins");
  t.same(resolveGrants(["admin"]), { role: "admin", approver: true }, "admin includes approver");
  t.same(resolveGrants(["approver"]), { role: "reader", approver: true }, "an approver alone may read the jobs it judges");
  t.same(resolveGrants([]), { role: undefined, approver: false });
  const principal = (grants: Parameters<typeof resolveGrants>[0]): Principal => ({ id: "apiKey:x", name: "x", kind: "apiKey", ...resolveGrants(grants) });
  t.equal(hasGrant(principal(["operator"]), "approver"), false, "operator does not include approver");
  t.equal(hasGrant(principal(["approver"]), "approver"), true);
  t.equal(hasGrant(principal(["approver"]), "operator"), false, "approver does not include operator");
  t.equal(hasGrant(principal(["admin"]), "approver"), true);
});

t.test("CMK_API_KEYS entries may list several roles, approver among them", async (t) => {
  const sha256 = sha256Hex("k");
  t.same(loadConfig({ CMK_API_KEYS: JSON.stringify([{ name: "cab", sha256, roles: ["operator", "approver"] }]) }).apiKeys, [{ name: "cab", sha256, roles: ["operator", "approver"] }]);
  t.throws(() => loadConfig({ CMK_API_KEYS: JSON.stringify([{ name: "cab", sha256, roles: ["approve"] }]) }), /CMK_API_KEYS/, "an unknown role is a configuration error");
});

t.test("the Entra app role CMK.Approver grants approver; ids are the subject, not the display name", async (t) => {
  const approver = tokenPrincipal({ azp: "88888888-8888-8888-8888-888888888888", roles: ["CMK.Approver"], name: "portal-approver" });
  t.match(approver, { id: "token:88888888-8888-8888-8888-888888888888", name: "portal-approver (88888888-8888-8888-8888-888888888888)", role: "reader", approver: true });
  t.match(tokenPrincipal({ azp: "a", roles: ["CMK.Operator", "CMK.Approver"] }), { role: "operator", approver: true });
  t.match(tokenPrincipal({ azp: "a", roles: ["CMK.Admin"] }), { role: "admin", approver: true });
  t.match(tokenPrincipal({ azp: "a", roles: ["CMK.Operator"] }), { role: "operator", approver: false });
  t.match(tokenPrincipal({ azp: "a", roles: [] }), { role: undefined, approver: false });
  // Two callers may share a display name; their ids differ.
  t.not(tokenPrincipal({ azp: "a", name: "same" }).id, tokenPrincipal({ azp: "b", name: "same" }).id);
});
