import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import t from "tap";
import { seed } from "../../src/sandbox/index.js";
import { armToken, sandboxRequest, startTestSandbox } from "../helpers/sandbox.js";
import { startServerProcess } from "../helpers/server-process.js";

/**
 * The real Azure CLI against the sandbox (issue 14, "Done when"), as the README's "Using the Azure CLI
 * against the sandbox" says to run it: the production host names mapped to 127.0.0.1, the emulator on
 * port 443, its CA in REQUESTS_CA_BUNDLE. It runs in a fresh mount and network namespace, so the hosts
 * file and port 443 are its own. Needs root (unshare -m -n) and `az` (Debian's azure-cli); skipped with
 * the reason otherwise, and until the sandbox serves ARM's subscriptions (issue14-sandbox-arm's part of issue 14),
 * which `az login` lists.
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
/** `az login` lists subscriptions, `az group show` reads a resource group: ARM endpoints this sandbox may not have yet. */
async function armEndpointsMissing(): Promise<string | undefined> {
  const sandbox = await startTestSandbox(t);
  const listed = await sandboxRequest(sandbox, { path: "/subscriptions?api-version=2022-12-01", host: "management.azure.com", headers: { authorization: `Bearer ${await armToken(sandbox)}` } });
  await sandbox.close();
  return listed.status === 200 ? undefined : `the sandbox does not list subscriptions yet (GET /subscriptions: ${listed.status}), which az login needs`;
}
const skip = whyNot() ?? (await armEndpointsMissing());

t.test("az login --service-principal, account show, group show, keyvault show and resource show succeed against the sandbox", { skip: skip ?? false }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "cmk-azure-cli-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const hosts = join(dir, "hosts");
  await writeFile(hosts, `127.0.0.1 localhost\n${HOSTS.map((host) => `127.0.0.1 ${host}`).join("\n")}\n`);
  const fhirSys = seed.fhirServiceId(seed.FHIR_SYS);
  const commands = [
    ["login", "--service-principal", "-u", seed.SERVICE_APP.clientId, "-p", seed.SERVICE_APP.clientSecret, "--tenant", seed.TENANT_ID, "--output", "json"],
    ["account", "show", "--output", "json"],
    ["group", "show", "-n", seed.RESOURCE_GROUP, "--output", "json"],
    ["keyvault", "show", "-n", seed.KV_SANDBOX, "--output", "json"],
    ["resource", "show", "--ids", fhirSys, "--output", "json"],
    // Not `az keyvault key show`: Debian's azure-cli 2.45 lacks a module its data-plane commands import
    // ("No module named 'azure.keyvault.key_vault_id'") before any request is sent.
  ];
  const driver = fileURLToPath(new URL("../helpers/azure-cli-session.ts", import.meta.url));
  const run = startServerProcess({}, {
    command: ["unshare", "-m", "-n", "sh", "-c", 'ip link set lo up && mount --bind "$0" /etc/hosts && exec "$@"', hosts, process.execPath, "--import", "tsx", driver, dir, JSON.stringify(commands)],
  });
  const code = await run.exited;
  t.equal(code, 0, code === 0 ? "the az session ran" : run.output());
  const results = JSON.parse(run.output().trim().split("\n").at(-1)!) as Array<{ args: string[]; code: number; stdout: string; stderr: string }>;
  const label = (args: string[]) => args.slice(0, 2).join(" ");
  const byCommand = new Map(results.map((result) => [label(result.args), result]));
  for (const args of commands) {
    const result = byCommand.get(label(args));
    t.equal(result?.code, 0, `az ${args.slice(0, 3).join(" ")}: ${result ? result.stderr.slice(0, 2000) : "not run (an earlier command failed)"}`);
  }
  const json = (command: string) => JSON.parse(byCommand.get(command)?.stdout || "null") as Record<string, unknown> | Array<Record<string, unknown>> | null;
  const subscriptions = (json("login --service-principal") ?? []) as Array<Record<string, unknown>>;
  t.match(subscriptions.find((subscription) => subscription.id === seed.SUBSCRIPTION_ID), { tenantId: seed.TENANT_ID, isDefault: true, user: { name: seed.SERVICE_APP.clientId, type: "servicePrincipal" } });
  t.match(json("account show"), { id: seed.SUBSCRIPTION_ID, tenantId: seed.TENANT_ID, state: "Enabled" });
  t.match(json("group show"), { name: seed.RESOURCE_GROUP, location: "westus3", properties: { provisioningState: "Succeeded" } });
  t.match(json("keyvault show"), { name: seed.KV_SANDBOX, properties: { vaultUri: `https://${seed.KV_SANDBOX}.vault.azure.net/`, enablePurgeProtection: true } });
  t.match(json("resource show"), { id: fhirSys, type: "Microsoft.HealthcareApis/workspaces/fhirservices", properties: { provisioningState: "Succeeded" } });
});
