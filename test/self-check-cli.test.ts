import t from "tap";
import { fileURLToPath } from "node:url";
import { seed } from "../src/sandbox/index.js";
import { startTestSandbox } from "./helpers/sandbox.js";
import { onlyRole } from "./helpers/roles.js";
import { startServerProcess } from "./helpers/server-process.js";

/** `npm run self-check`: the report of GET /v1/self-check from the command line, with exit codes a pipeline can use. */

const CLI = fileURLToPath(new URL("../src/self-check-cli.ts", import.meta.url));

async function run(env: Record<string, string>, args: string[] = []): Promise<{ code: number | string; output: string }> {
  const child = startServerProcess({ REDIS_URL: undefined, LOG_LEVEL: "warn", ...env }, { command: [process.execPath, "--import", "tsx", CLI, ...args] });
  const code = await child.exited;
  return { code, output: child.output() };
}

t.test("exit 0 with everything granted, 1 naming what is missing and the command that grants it, 2 on bad configuration", async (t) => {
  const sandbox = await startTestSandbox(t);
  const env = { CMK_SANDBOX_URL: sandbox.url, CMK_SANDBOX_CA_FILE: sandbox.caFile };

  const ok = await run(env);
  t.equal(ok.code, 0, ok.output);
  t.match(ok.output, /self-check \(AzurePublicCloud\): OK/);
  t.match(ok.output, new RegExp(`object id ${seed.SERVICE_APP.objectId}`));

  await onlyRole(sandbox, { without: ["Microsoft.KeyVault/vaults/keys/rotate/action"] });
  const missing = await run(env);
  t.equal(missing.code, 1, missing.output);
  t.match(missing.output, /RotateKey\s+missing Microsoft\.KeyVault\/vaults\/keys\/rotate\/action/);
  t.match(missing.output, /missing Microsoft\.KeyVault\/vaults\/keys\/rotate\/action \(RotateKey, FleetRotation\)/);
  t.match(missing.output, new RegExp(`az role assignment create --assignee-object-id ${seed.SERVICE_APP.objectId} --assignee-principal-type ServicePrincipal --role "CMK Service Operator" --scope /subscriptions/${seed.SUBSCRIPTION_ID}`));

  const json = await run(env, ["--json"]);
  t.equal(json.code, 1);
  t.match(JSON.parse(json.output), { status: "missing", fixes: [/^az role assignment create/] });

  const bad = await run({ ...env, CMK_MODE: "nonsense" });
  t.equal(bad.code, 2);
  t.match(bad.output, /configuration error: CMK_MODE: must be one of sandbox, azure/);
});
