import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import t from "tap";

const root = fileURLToPath(new URL("..", import.meta.url));

interface LintProblem {
  ruleId: string;
  severity: "error" | "warn";
  message: string;
  location: Array<{ pointer: string }>;
}

t.test("openapi/openapi.json passes Redocly's recommended ruleset (redocly.yaml): no error, no warning", async (t) => {
  // The CLI, not its bundled internals: the same command a developer runs. Offline: no telemetry, no update check.
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [fileURLToPath(new URL("../node_modules/@redocly/cli/bin/cli.js", import.meta.url)), "lint", "openapi/openapi.json", "--config", "redocly.yaml", "--format", "json"],
    { cwd: root, env: { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true", NO_COLOR: "1" }, maxBuffer: 16 * 1024 * 1024 },
  ).catch((error: { stdout?: string; stderr?: string; message: string }) => {
    // lint exits 1 when it finds errors; its report is still on stdout.
    if (error.stdout?.trim().startsWith("{")) return { stdout: error.stdout };
    throw new Error(`redocly lint did not run: ${error.message}\n${error.stderr ?? ""}`);
  });
  const report = JSON.parse(stdout) as { totals: { errors: number; warnings: number }; problems: LintProblem[] };
  const listed = report.problems.map((problem) => `${problem.severity} ${problem.ruleId} at ${problem.location[0]?.pointer}: ${problem.message}`);
  t.same(listed, [], "every problem is fixed, or its rule turned off in redocly.yaml with the reason");
  t.equal(report.totals.errors, 0, "no error");
  t.equal(report.totals.warnings, 0, "no warning");
});
