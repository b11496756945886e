import t from "tap";
import { buildKeyChangeBody, hasKeyAndIdentity, type FhirServiceResource } from "../../src/domain/fhir-resource.js";

const UAMI = "/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg-sandbox/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uami-sandbox";
const KEY = "https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048/00000000000000000000000000000002";

const current: FhirServiceResource = {
  id: "/subscriptions/x/fhirservices/fhir-sys",
  name: "wssandbox/fhir-sys",
  type: "Microsoft.HealthcareApis/workspaces/fhirservices",
  location: "westus3",
  etag: '"df00-1"',
  kind: "fhir-R4",
  tags: { team: "health" },
  identity: { type: "SystemAssigned", principalId: "p", tenantId: "t" },
  provisioningState: "Succeeded",
  systemData: { createdBy: "x" },
  eventState: "Disabled",
  privateEndpointConnections: [],
  authenticationConfiguration: { authority: "https://login.microsoftonline.com/t", audience: "https://wssandbox-fhir-sys.fhir.azurehealthcareapis.com", smartProxyEnabled: false },
  corsConfiguration: { origins: ["https://app"], headers: [], methods: ["GET"], maxAge: 600, allowCredentials: false },
  publicNetworkAccess: "Enabled",
};

t.test("keeps every writable property and sets key and identity", async (t) => {
  const body = buildKeyChangeBody(current, { keyEncryptionKeyUrl: KEY, identity: { type: "SystemAssigned" } });
  t.same(body, {
    location: "westus3",
    etag: '"df00-1"',
    kind: "fhir-R4",
    tags: { team: "health" },
    identity: { type: "SystemAssigned" },
    authenticationConfiguration: current.authenticationConfiguration,
    corsConfiguration: current.corsConfiguration,
    publicNetworkAccess: "Enabled",
    encryption: { customerManagedKeyEncryption: { keyEncryptionKeyUrl: KEY } },
  });
  t.equal(current.encryption, undefined, "the input is not modified");
});

t.test("a user-assigned identity maps its id to {}", async (t) => {
  const body = buildKeyChangeBody(current, { keyEncryptionKeyUrl: KEY, identity: { type: "UserAssigned", userAssignedIdentityId: UAMI } });
  t.same(body.identity, { type: "UserAssigned", userAssignedIdentities: { [UAMI]: {} } });
});

t.test("knows when the service already has the key and identity", async (t) => {
  const applied = { ...current, encryption: { customerManagedKeyEncryption: { keyEncryptionKeyUrl: KEY } } };
  t.ok(hasKeyAndIdentity(applied, { keyEncryptionKeyUrl: KEY, identity: { type: "SystemAssigned" } }));
  t.notOk(hasKeyAndIdentity(current, { keyEncryptionKeyUrl: KEY, identity: { type: "SystemAssigned" } }));
  t.notOk(hasKeyAndIdentity(applied, { keyEncryptionKeyUrl: KEY, identity: { type: "UserAssigned", userAssignedIdentityId: UAMI } }));
  const uami = { ...applied, identity: { type: "UserAssigned", userAssignedIdentities: { [UAMI.toLowerCase()]: { principalId: "p" } } } };
  t.ok(hasKeyAndIdentity(uami, { keyEncryptionKeyUrl: KEY, identity: { type: "UserAssigned", userAssignedIdentityId: UAMI } }));
});
