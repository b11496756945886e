import t from "tap";
import { actionMatches, checkIdentity, grantsKeyAccess, propagationEndsAt, scopeCovers, type IdentityCheckInput } from "../../../src/domain/checks/identity-checks.js";
import { parseKeyUrl } from "../../../src/domain/key-url.js";

const VAULT_ID = "/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg-sandbox/providers/Microsoft.KeyVault/vaults/kvsandbox";
const UAMI = "/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg-sandbox/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uami-sandbox";
const encryptionUser = { dataActions: ["Microsoft.KeyVault/vaults/keys/read", "Microsoft.KeyVault/vaults/keys/wrap/action", "Microsoft.KeyVault/vaults/keys/unwrap/action"], notDataActions: [] };

const base: IdentityCheckInput = {
  request: { identity: { type: "SystemAssigned" } },
  key: parseKeyUrl("https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048/00000000000000000000000000000002")!,
  fhir: { status: "found", value: { id: "f", location: "westus3", identityType: "SystemAssigned", systemPrincipalId: "p1", userAssignedIdentityIds: [] } },
  principal: { status: "found", value: { kind: "SystemAssigned", principalId: "p1" } },
  vault: { status: "found", value: { name: "kvsandbox", id: VAULT_ID, location: "westus3", enableSoftDelete: true, enablePurgeProtection: true, enableRbacAuthorization: true, publicNetworkAccess: "Enabled" } },
  roleAssignments: { status: "found", value: [{ id: "a1", scope: VAULT_ID, roleDefinitionId: "/providers/x/e147488a-f6f5-4113-8e2d-b22465e65bf6", roleName: "Key Vault Crypto Service Encryption User", ...encryptionUser }] },
  propagationWindowMs: 600_000,
  now: new Date("2026-11-28T12:00:00Z"),
};
const run = (over: Partial<IdentityCheckInput>) => Object.fromEntries(checkIdentity({ ...base, ...over }).map((r) => [r.id, r]));

t.test("wildcards and scopes", async (t) => {
  t.ok(actionMatches("Microsoft.KeyVault/vaults/keys/*", "Microsoft.KeyVault/vaults/keys/wrap/action"));
  t.ok(actionMatches("microsoft.keyvault/vaults/*", "Microsoft.KeyVault/vaults/keys/read"));
  t.notOk(actionMatches("Microsoft.KeyVault/vaults/secrets/*", "Microsoft.KeyVault/vaults/keys/read"));
  t.ok(grantsKeyAccess({ dataActions: ["Microsoft.KeyVault/vaults/keys/*"], notDataActions: [] }));
  t.notOk(grantsKeyAccess({ dataActions: ["Microsoft.KeyVault/vaults/keys/*"], notDataActions: ["Microsoft.KeyVault/vaults/keys/unwrap/action"] }));
  t.ok(scopeCovers("/subscriptions/22222222-2222-2222-2222-222222222222", `${VAULT_ID}/keys/k`));
  t.ok(scopeCovers("/", `${VAULT_ID}/keys/k`));
  t.notOk(scopeCovers(`${VAULT_ID}2`, `${VAULT_ID}/keys/k`), "a vault whose name starts the same is another vault");
});

t.test("the identity with the role passes", async (t) => {
  const results = run({});
  t.same(Object.values(results).map((r) => r.status), ["Passed", "Passed", "Passed", "Passed"]);
  t.match(results.IdentityKeyAccess?.message, /Crypto Service Encryption User/);
});

t.test("no role: IdentityKeyAccess fails with the az command", async (t) => {
  const results = run({ roleAssignments: { status: "found", value: [] } });
  t.match(results.IdentityKeyAccess, { status: "Failed", message: /p1/, remediation: /az role assignment create --role e147488a/ });
  const readerOnly = run({ roleAssignments: { status: "found", value: [{ id: "r", scope: VAULT_ID, roleDefinitionId: "r", dataActions: ["Microsoft.KeyVault/vaults/keys/read"], notDataActions: [] }] } });
  t.equal(readerOnly.IdentityKeyAccess?.status, "Failed", "read alone is not enough");
  const otherKey = run({ roleAssignments: { status: "found", value: [{ id: "k", scope: `${VAULT_ID}/keys/other`, roleDefinitionId: "r", ...encryptionUser }] } });
  t.equal(otherKey.IdentityKeyAccess?.status, "Failed", "a role on another key does not count");
});

t.test("identity type change needs acknowledgement", async (t) => {
  const uamiService = { status: "found" as const, value: { id: "f", location: "westus3", identityType: "UserAssigned", userAssignedIdentityIds: [UAMI] } };
  t.match(run({ fhir: uamiService }).IdentityTypeChange, { status: "Failed", remediation: /acknowledgeIdentityTypeChange/ });
  t.match(run({ fhir: uamiService, request: { identity: { type: "SystemAssigned" }, acknowledgeIdentityTypeChange: true } }).IdentityTypeChange, { status: "Warning", message: /export|import|acknowledged/ });
});

t.test("a system identity that does not exist yet is checked after the job creates it", async (t) => {
  const results = run({ principal: { status: "found", value: { kind: "SystemAssigned" } } });
  t.equal(results.IdentityExists?.status, "Passed");
  t.match(results.IdentityKeyAccess, { status: "Skipped", message: /after turning it on/ });
});

t.test("a user-assigned identity that does not exist fails IdentityExists", async (t) => {
  const results = run({ request: { identity: { type: "UserAssigned", userAssignedIdentityId: UAMI } }, principal: { status: "missing" } });
  t.match(results.IdentityExists, { status: "Failed", remediation: /az identity create --name uami-sandbox/ });
  t.equal(results.IdentityKeyAccess?.status, "Skipped");
});

t.test("an identity the service cannot read fails IdentityExists: it never goes into a write as a warning", async (t) => {
  const forbidden = { status: "unreadable" as const, reason: "AuthorizationFailed (HTTP 403)", cause: "permission" as const };
  const uami = run({ request: { identity: { type: "UserAssigned", userAssignedIdentityId: UAMI } }, principal: forbidden });
  t.match(uami.IdentityExists, { status: "Failed", message: /uami-sandbox.*AuthorizationFailed/, remediation: /Reader/ });
  t.equal(uami.IdentityKeyAccess?.status, "Skipped");
  t.match(run({ principal: forbidden }).IdentityExists, { status: "Failed", message: /system-assigned identity/ });
});

t.test("a granting assignment younger than the propagation window fails, and says when it will do", async (t) => {
  const young = { id: "y", scope: VAULT_ID, roleDefinitionId: "r", roleName: "Key Vault Crypto Service Encryption User", ...encryptionUser, createdOn: new Date("2026-11-28T11:59:00Z") };
  const results = run({ roleAssignments: { status: "found", value: [young] } });
  t.match(results.IdentityKeyAccess, { status: "Failed", message: /only 60 s old/ });
  t.same(propagationEndsAt({ ...base, roleAssignments: { status: "found", value: [young] } }), new Date("2026-11-28T12:09:00Z"));
  const old = { ...young, id: "o", createdOn: new Date("2026-11-28T10:00:00Z") };
  t.equal(run({ roleAssignments: { status: "found", value: [young, old] } }).IdentityKeyAccess?.status, "Passed", "an older grant is enough");
  t.equal(propagationEndsAt({ ...base, roleAssignments: { status: "found", value: [young, old] } }), undefined);
  t.equal(propagationEndsAt({ ...base, roleAssignments: { status: "found", value: [] } }), undefined, "nothing to wait for without a grant");
});

t.test("a vault the service could not read: IdentityKeyAccess warns naming the service's missing read, not the identity's role", async (t) => {
  const unread = { status: "unreadable", reason: "AuthorizationFailed (HTTP 403): the service's identity lacks 'Microsoft.KeyVault/vaults/read'", cause: "permission" } as const;
  const atVault = run({ vault: unread });
  t.match(atVault.IdentityKeyAccess, { status: "Warning", message: /could not read vault kvsandbox.*lacks 'Microsoft\.KeyVault\/vaults\/read'.*cannot be matched to key cmk-rsa-2048/, remediation: /Microsoft\.KeyVault\/vaults\/read.*principal p1/ });
  t.notMatch(atVault.IdentityKeyAccess?.remediation, /az role assignment create/, "nothing tells the user to grant the FHIR identity a role");
  const noAssignments = run({ vault: unread, roleAssignments: { status: "unreadable", reason: "AuthorizationFailed (HTTP 403)", cause: "permission" } });
  t.match(noAssignments.IdentityKeyAccess, { status: "Warning", message: /lacks 'Microsoft\.KeyVault\/vaults\/read'/ }, "the vault read is the first thing to fix");
  const atRoot = run({ vault: unread, roleAssignments: { status: "found", value: [{ id: "a2", scope: "/", roleDefinitionId: "r", ...encryptionUser }] } });
  t.equal(atRoot.IdentityKeyAccess?.status, "Passed", "a grant at the root covers any vault, its id unknown");
  t.match(run({ vault: { status: "missing" }, roleAssignments: { status: "found", value: [] } }).IdentityKeyAccess, { status: "Failed" }, "a vault not found through ARM still fails closed");
});
