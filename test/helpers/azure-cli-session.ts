/**
 * Run inside a fresh mount and network namespace whose /etc/hosts maps Azure's production host names to
 * 127.0.0.1 (see test/sandbox/azure-cli.test.ts): starts the sandbox on port 443, points the real Azure
 * CLI at it the way the README says (REQUESTS_CA_BUNDLE, service principal sign-in), runs the commands
 * given as JSON arrays of arguments one after another, and prints one JSON line: each command's exit
 * code, output and error output.
 */
import { execFile } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startSandbox } from "../../src/sandbox/index.js";

const [dataDir, commandsJson] = process.argv.slice(2);
if (!dataDir || !commandsJson) throw new Error("usage: azure-cli-session.ts <data dir> <commands as a JSON array of argument arrays>");
const commands = JSON.parse(commandsJson) as string[][];
const caFile = join(dataDir, "ca.pem");
const sandbox = await startSandbox({ port: 443, host: "127.0.0.1", caFile, lroMs: 1000, keyCacheDir: join(tmpdir(), "cmk-sandbox-seed-keys") });

const env = {
  ...process.env,
  REQUESTS_CA_BUNDLE: caFile,
  AZURE_CONFIG_DIR: join(dataDir, "azure"),
  AZURE_CORE_COLLECT_TELEMETRY: "false",
  AZURE_CORE_NO_COLOR: "true",
  AZURE_CORE_ONLY_SHOW_ERRORS: "true",
};
const results: Array<{ args: string[]; code: number; stdout: string; stderr: string; ms: number }> = [];
try {
  for (const args of commands) {
    const started = Date.now();
    const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile("az", args, { env, timeout: 120_000, maxBuffer: 10 * 1024 * 1024 }, (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
      });
    });
    results.push({ args, ...result, ms: Date.now() - started });
    if (result.code !== 0) break;
  }
} finally {
  await sandbox.close();
}
console.log(JSON.stringify(results));
