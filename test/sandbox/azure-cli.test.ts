import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import t from "tap";
import { seed } from "../../src/sandbox/index.js";
import { KEYS } from "../helpers/app.js";
import { KEY_V2, setKey, uamiId } from "../helpers/requests.js";
import { startServerProcess } from "../helpers/server-process.js";
import { startStack } from "../helpers/stack.js";

/**
 * The real Azure CLI against the sandbox (issue 14, "Done when"), as the README's "Using the Azure CLI
 * against the sandbox" says to run it: the production host names mapped to 127.0.0.1, the emulator on
 * port 443, its CA in REQUESTS_CA_BUNDLE. It runs in a fresh mount and network namespace, so the hosts
 * file and port 443 are its own. Needs root (unshare -m -n) and `az` (Debian's azure-cli); skipped with
 * the reason otherwise. The deployment's template is one the service renders (`POST /v1/templates`).
 */

const HOSTS = [
  "management.azure.com",
  "login.microsoftonline.com",
  `${seed.KV_SANDBOX}.vault.azure.net`,
  `${seed.MANAGED_HSM}.managedhsm.azure.net`,
  `${seed.WORKSPACE}-${seed.FHIR_SYS}.fhir.azurehealthcareapis.com`,
];

function whyNot(): string | undefined {
  const az = spawnSync("az", ["version", "--output", "none"], { encoding: "utf8", env: { ...process.env, AZURE_CORE_COLLECT_TELEMETRY: "false" } });
  if (az.error || az.status !== 0) return "needs the Azure CLI: apt-get install azure-cli (Debian), then az on the PATH";
  const probe = spawnSync("unshare", ["-m", "-n", "sh", "-c", "ip link set lo up && mount --bind /etc/hostname /etc/hostname"], { encoding: "utf8" });
  return probe.status === 0 ? undefined : `needs root for unshare -m -n and mount: ${(probe.stderr || probe.error?.message || "").trim()}`;
}
const skip = whyNot();

t.test("az login --service-principal, account show, group show, keyvault show, resource show and deployment group create succeed against the sandbox", { skip: skip ?? false }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "cmk-azure-cli-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const hosts = join(dir, "hosts");
  await writeFile(hosts, `127.0.0.1 localhost\n${HOSTS.map((host) => `127.0.0.1 ${host}`).join("\n")}\n`);

  // The service renders a SetKey template (user-assigned identity, key version 2) from its own sandbox,
  // whose seed is the one the az session's sandbox starts from.
  const change = setKey(seed.FHIR_UAMI, KEY_V2, { type: "UserAssigned", userAssignedIdentityId: uamiId(seed.UAMI_SANDBOX) });
  const { app } = await startStack(t, { worker: false });
  const rendered = await app.inject({ method: "POST", url: "/v1/templates", payload: change, headers: { "x-api-key": KEYS.reader } });
  t.equal(rendered.statusCode, 200, rendered.statusCode === 200 ? "template rendered" : rendered.body);
  const { template, parameters } = rendered.json() as { template: object; parameters: object };
  const templateFile = join(dir, "setkey.template.json");
  const parametersFile = join(dir, "setkey.parameters.json");
  await writeFile(templateFile, JSON.stringify(template, null, 2));
  await writeFile(parametersFile, JSON.stringify(parameters, null, 2));

  const fhirSys = seed.fhirServiceId(seed.FHIR_SYS);
  const fhirUami = seed.fhirServiceId(seed.FHIR_UAMI);
  const commands = [
    ["login", "--service-principal", "-u", seed.SERVICE_APP.clientId, "-p", seed.SERVICE_APP.clientSecret, "--tenant", seed.TENANT_ID, "--output", "json"],
    ["account", "show", "--output", "json"],
    ["group", "show", "-n", seed.RESOURCE_GROUP, "--output", "json"],
    ["keyvault", "show", "-n", seed.KV_SANDBOX, "--output", "json"],
    ["resource", "show", "--ids", fhirSys, "--output", "json"],
    ["deployment", "group", "create", "-g", seed.RESOURCE_GROUP, "-n", "setkey-fhir-uami", "--template-file", templateFile, "--parameters", `@${parametersFile}`, "--output", "json"],
    ["resource", "show", "--ids", fhirUami, "--output", "json"],
    // Not `az keyvault key show`: Debian's azure-cli 2.45 lacks a module its data-plane commands import
    // ("No module named 'azure.keyvault.key_vault_id'") before any request is sent.
  ];
  const driver = fileURLToPath(new URL("../helpers/azure-cli-session.ts", import.meta.url));
  const run = startServerProcess({}, {
    command: ["unshare", "-m", "-n", "sh", "-c", 'ip link set lo up && mount --bind "$0" /etc/hosts && exec "$@"', hosts, process.execPath, "--import", "tsx", driver, dir, JSON.stringify(commands)],
  });
  const code = await run.exited;
  t.equal(code, 0, code === 0 ? "the az session ran" : run.output());
  const results = JSON.parse(run.output().trim().split("\n").at(-1)!) as Array<{ args: string[]; code: number; stdout: string; stderr: string; ms: number }>;
  // The session stops at the first failure: results[i] answers commands[i] while there is one.
  commands.forEach((args, index) => {
    const result = results[index];
    const shown = args.map((arg) => (arg === seed.SERVICE_APP.clientSecret ? "***" : arg.startsWith(dir) || arg.startsWith(`@${dir}`) ? arg.replace(dir, "…") : arg)).join(" ");
    t.comment(`az ${shown} → ${result ? `exit ${result.code} in ${result.ms} ms` : "not run"}`);
    t.equal(result?.code, 0, `az ${args.slice(0, 3).join(" ")}: ${result ? result.stderr.slice(0, 2000) : "not run (an earlier command failed)"}`);
  });
  const json = (index: number) => JSON.parse(results[index]?.stdout || "null") as Record<string, unknown> | Array<Record<string, unknown>> | null;
  const subscriptions = (json(0) ?? []) as Array<Record<string, unknown>>;
  t.match(subscriptions.find((subscription) => subscription.id === seed.SUBSCRIPTION_ID), { tenantId: seed.TENANT_ID, isDefault: true, user: { name: seed.SERVICE_APP.clientId, type: "servicePrincipal" } });
  t.match(json(1), { id: seed.SUBSCRIPTION_ID, tenantId: seed.TENANT_ID, state: "Enabled" });
  t.match(json(2), { name: seed.RESOURCE_GROUP, location: "westus3", properties: { provisioningState: "Succeeded" } });
  t.match(json(3), { name: seed.KV_SANDBOX, properties: { vaultUri: `https://${seed.KV_SANDBOX}.vault.azure.net/`, enablePurgeProtection: true } });
  t.match(json(4), { id: fhirSys, type: "Microsoft.HealthcareApis/workspaces/fhirservices", properties: { provisioningState: "Succeeded" } });
  t.match(json(5), { name: "setkey-fhir-uami", properties: { provisioningState: "Succeeded", outputResources: [{ id: new RegExp(`${seed.FHIR_UAMI}$`) }] } }, "the deployment succeeded");
  t.match(json(6), {
    id: fhirUami,
    identity: { type: "UserAssigned", userAssignedIdentities: { [uamiId(seed.UAMI_SANDBOX)]: {} } },
    properties: { encryption: { customerManagedKeyEncryption: { keyEncryptionKeyUrl: KEY_V2 } }, provisioningState: "Succeeded" },
  }, "the deployment set fhir-uami's key to version 2 through the emulated HealthcareApis RP");
});
