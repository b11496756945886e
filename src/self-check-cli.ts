import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { ConfigError, loadConfig } from "./config.js";
import { loggerOptions } from "./logging.js";
import { connectSandbox, createAdapters, createContext, type SandboxHandle } from "./runtime.js";
import { runSelfCheck } from "./services/self-check.js";
import type { SelfCheckReport } from "./schemas/self-check.js";

/**
 * `npm run self-check` (in the image: `node dist/src/self-check-cli.js`): the permission self-check of
 * `GET /v1/self-check`, run with the service's own configuration and credential before the service starts
 * (a Container Apps job, an init container, a deployment pipeline). Needs no Redis and no API key.
 * Prints a summary (`--json`: the report) and exits 0 when every operation can run, 1 when a permission is
 * missing, 2 when the check could not be completed or the configuration is wrong.
 */

const EXIT = { ok: 0, missing: 1, incomplete: 2 } as const;

function summary(report: SelfCheckReport): string {
  const lines = [
    `cmk-service self-check (${report.cloud}): ${report.status.toUpperCase()}`,
    `  identity: object id ${report.principal.objectId ?? "unknown"}, app id ${report.principal.appId ?? "unknown"}${report.principal.credential ? `, signed in with ${report.principal.credential}` : ""}`,
    `  subscriptions: ${report.subscriptions.map((s) => `${s.subscriptionId} (${s.status}, ${s.fhirServices} FHIR services)`).join(", ") || "none found"}`,
    "  operations:",
    ...report.operations.map((o) => `    ${o.operation.padEnd(20)} ${o.status}${o.missing.length ? ` ${o.missing.join(", ")}` : ""}`),
  ];
  const trouble = report.scopes.filter((scope) => scope.status !== "ok" || scope.note);
  if (trouble.length > 0) lines.push("  scopes:");
  for (const scope of trouble) {
    lines.push(`    ${scope.kind} ${scope.scope}: ${scope.status}`);
    for (const missing of scope.missing) lines.push(`      missing ${missing.permission} (${missing.operations.join(", ")})`);
    if (scope.error) lines.push(`      could not check: ${scope.error}`);
    if (scope.note) lines.push(`      note: ${scope.note}`);
  }
  if (report.fixes.length > 0) lines.push("  to fix, run:", ...report.fixes.map((fix) => `    ${fix}`));
  return lines.join("\n");
}

async function main(): Promise<number> {
  const json = process.argv.includes("--json");
  const config = loadConfig();
  const logger = pino({ ...loggerOptions(config.LOG_LEVEL === "info" ? "warn" : config.LOG_LEVEL) });
  let sandbox: SandboxHandle | undefined;
  let scratch: string | undefined;
  try {
    if (config.CMK_MODE === "sandbox") {
      // Without CMK_SANDBOX_URL: a private emulator on a free port, its CA kept apart from a running service's.
      scratch = config.CMK_SANDBOX_URL ? undefined : await mkdtemp(join(tmpdir(), "cmk-self-check-"));
      sandbox = await connectSandbox(scratch ? { ...config, CMK_SANDBOX_PORT: 0, CMK_SANDBOX_CA_FILE: join(scratch, "ca.pem") } : config, logger);
    }
    const azure = createAdapters(config, createContext(config, sandbox));
    const report = await runSelfCheck(azure, { configuredSubscriptions: config.fleetSubscriptions });
    console.log(json ? JSON.stringify(report, null, 2) : summary(report));
    return EXIT[report.status];
  } finally {
    await sandbox?.close();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    console.error(error instanceof ConfigError ? `configuration error: ${error.message}` : `self-check could not run: ${error.message}`);
    process.exit(EXIT.incomplete);
  },
);
