import { startTestSandbox, armToken, sandboxRequest } from "./test/helpers/sandbox.js";
const teardowns: (() => unknown)[] = [];
const sandbox = await startTestSandbox({ teardown: (fn) => teardowns.push(fn) }, { lroMs: 300 });
const auth = `Bearer ${await armToken(sandbox)}`;
const template = {
  parameters: { name: { type: "string", defaultValue: "uami-new" } },
  resources: [
    { type: "Microsoft.ManagedIdentity/userAssignedIdentities", apiVersion: "2023-01-31", name: "[parameters('name')]", location: "westus3" },
    { type: "Microsoft.HealthcareApis/workspaces", apiVersion: "2023-11-01", name: "wsnew", location: "[resourceGroup().location]", properties: {} },
    { type: "Microsoft.HealthcareApis/workspaces/fhirservices", apiVersion: "2023-11-01", name: "wsnew/fhir-new", location: "westus3", kind: "fhir-R4", dependsOn: ["[resourceId('Microsoft.HealthcareApis/workspaces', 'wsnew')]"], identity: { type: "SystemAssigned" }, properties: {} },
  ],
  outputs: { principal: { type: "string", value: "[reference(resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', parameters('name')), '2023-01-31').principalId]" } },
};
const path = "/subscriptions/22222222-2222-2222-2222-222222222222/resourcegroups/rg-sandbox/providers/Microsoft.Resources/deployments/d1";
console.log("put...");
const put = await sandboxRequest(sandbox, { method: "PUT", path: `${path}?api-version=2026-06-01`, host: "management.azure.com", headers: { authorization: auth }, body: { properties: { template, mode: "Incremental" } } });
console.log(put.status, put.headers["azure-asyncoperation"], JSON.stringify(put.json).slice(0, 300));
const status = new URL(String(put.headers["azure-asyncoperation"]));
for (let i = 0; i < 10; i++) {
  const r = await sandboxRequest(sandbox, { path: status.pathname + status.search, host: "management.azure.com", headers: { authorization: auth } });
  console.log(i, r.status, r.text);
  if (!r.text.includes("Running")) break;
  await new Promise((resolve) => setTimeout(resolve, 150));
}
const got = await sandboxRequest(sandbox, { path: `${path}?api-version=2026-06-01`, host: "management.azure.com", headers: { authorization: auth } });
console.log(JSON.stringify(got.json, null, 1).slice(0, 2500));
for (const fn of teardowns.reverse()) await fn();
