import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, rm, symlink } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import t, { type Test } from "tap";
import { freePort } from "./helpers/redis-server.js";
import { SERVER, startServerProcess } from "./helpers/server-process.js";

/**
 * `src/server.ts` as a process, the way `npm start` runs it: start-up errors an operator can fix,
 * Redis that is away, and (in a fresh network namespace, where nothing answers on 127.0.0.1:6379)
 * Redis on demand.
 */

async function tempDir(t: Test): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), "cmk-server-"));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  return directory;
}

async function occupy(t: Test): Promise<number> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  return (server.address() as { port: number }).port;
}

const quietEnv = async (t: Test) => ({
  REDIS_URL: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
  CMK_QUEUE_PREFIX: `server-test-${process.pid}`,
  CMK_SANDBOX_CA_FILE: join(await tempDir(t), "ca.pem"),
  CMK_SANDBOX_PORT: "0",
  HOST: "127.0.0.1",
  PORT: "0",
  LOG_LEVEL: "warn",
});

t.test("a busy port names the variable to change, and nothing else is printed", async (t) => {
  const busy = await occupy(t);
  // LOG_LEVEL error: the test Redis' missing persistence is warned about, and is not the point here.
  const api = startServerProcess({ ...(await quietEnv(t)), PORT: String(busy), LOG_LEVEL: "error" });
  t.equal(await api.exited, 2);
  t.equal(api.output().trim(), `Configuration error: PORT: port ${busy} on 127.0.0.1 is already in use; set PORT to a free port, or stop what listens there`);

  const sandbox = startServerProcess({ ...(await quietEnv(t)), CMK_SANDBOX_PORT: String(busy), LOG_LEVEL: "error" });
  t.equal(await sandbox.exited, 2);
  t.match(sandbox.output(), new RegExp(`^Configuration error: CMK_SANDBOX_PORT: port ${busy} on 127\\.0\\.0\\.1 is already in use; set CMK_SANDBOX_PORT to a free port`));
  t.notMatch(sandbox.output(), /\n\s+at /, "no stack trace");
});

t.test("NODE_ENV=production without CMK_MODE stops with a configuration error; a bad CMK_MODE lists the values", async (t) => {
  const production = startServerProcess({ ...(await quietEnv(t)), NODE_ENV: "production", CMK_MODE: undefined });
  t.equal(await production.exited, 2);
  t.equal(production.output().trim(), "Configuration error: CMK_MODE: must be set when NODE_ENV=production: sandbox or azure");
  const typo = startServerProcess({ ...(await quietEnv(t)), CMK_MODE: "prod" });
  t.equal(await typo.exited, 2);
  t.equal(typo.output().trim(), 'Configuration error: CMK_MODE: must be one of sandbox, azure (got "prod")');
});

t.test("azure mode: a credential that cannot work stops the start with one line naming the variable and the fix", async (t) => {
  const azure = { ...(await quietEnv(t)), CMK_MODE: "azure", AZURE_CLIENT_ID: undefined, AZURE_TENANT_ID: undefined, AZURE_FEDERATED_TOKEN_FILE: undefined };
  const userAssigned = startServerProcess({ ...azure, CMK_AZURE_CREDENTIAL: "managed-identity", CMK_MANAGED_IDENTITY: "user-assigned" });
  t.equal(await userAssigned.exited, 2);
  t.equal(
    userAssigned.output().trim(),
    "Configuration error: AZURE_CLIENT_ID: must be the client id of the user-assigned identity (CMK_MANAGED_IDENTITY=user-assigned): az identity show -g <resource group> -n <identity> --query clientId -o tsv",
  );
  const missing = join(await tempDir(t), "azure-identity-token");
  const workload = startServerProcess({ ...azure, CMK_AZURE_CREDENTIAL: "workload-identity", AZURE_CLIENT_ID: "44444444-4444-4444-4444-444444444444", AZURE_TENANT_ID: "11111111-1111-1111-1111-111111111111", AZURE_FEDERATED_TOKEN_FILE: missing });
  t.equal(await workload.exited, 2);
  t.equal(workload.output().split("\n").filter((line) => line !== "").length, 1, "one line");
  t.match(workload.output(), new RegExp(`^Configuration error: AZURE_FEDERATED_TOKEN_FILE: ${missing} does not exist; the AKS workload identity webhook injects it into pods labelled azure\\.workload\\.identity/use=true`));
});

t.test("REDIS_URL set but unreachable: one warning line, at most one per 10 s after, no stack traces; Ctrl-C exits at once", async (t) => {
  const unreachable = `redis://127.0.0.1:${await freePort()}`;
  const server = startServerProcess({ ...(await quietEnv(t)), REDIS_URL: unreachable });
  t.teardown(() => server.child.kill("SIGKILL"));
  await server.waitFor(/Admin API key/);
  // Long enough for one reminder: the connections retry many times a second meanwhile.
  await server.waitFor(/still does not answer after 1\d s/, 20_000);
  const { code, ms } = await server.stop("SIGINT");
  const lines = server.output().split("\n").filter((line) => line.startsWith("{"));
  const redisLines = lines.filter((line) => /Redis at/.test(line));
  t.equal(redisLines.length, 2, `one line at start and one reminder:\n${redisLines.join("\n")}`);
  t.match(redisLines[0], `Redis at ${unreachable} does not answer (ECONNREFUSED)`);
  t.notMatch(server.output(), /\n\s+at |Unhandled error event/, "no stack traces");
  t.equal(code, 0, "a clean exit");
  t.notMatch(server.output(), /shutdown deadline/, "no job was waited for");
  t.comment(`Ctrl-C to exit: ${ms} ms`);
  t.ok(ms < 10_000, `exits without waiting for the 25 s job deadline (${ms} ms)`);
});

/** Runs `args` in a new network namespace with only loopback up, or says why it cannot. */
function freshNetwork(): string | undefined {
  const probe = spawnSync("unshare", ["-n", "sh", "-c", "ip link set lo up"], { encoding: "utf8" });
  return probe.status === 0 ? undefined : `needs unshare -n and ip (root): ${(probe.stderr || probe.error?.message || "").trim()}`;
}
const noFreshNetwork = freshNetwork();
const inFreshNetwork = (command: string[], env: Record<string, string | undefined> = {}) =>
  startServerProcess(env, { command: ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", ...command] });

t.test("nothing on 127.0.0.1:6379: npm start runs a private redis-server, a SetKey succeeds, Ctrl-C stops both", { skip: noFreshNetwork ?? false }, async (t) => {
  const dataDir = await tempDir(t);
  const driver = fileURLToPath(new URL("./helpers/fresh-network-start.ts", import.meta.url));
  const run = inFreshNetwork([process.execPath, "--import", "tsx", driver, dataDir]);
  t.equal(await run.exited, 0, run.output());
  const report = JSON.parse(run.output().trim().split("\n").at(-1)!) as Record<string, unknown>;
  t.equal(report.error, undefined, String(report.output));
  t.match(report.redisLine, /^Redis: nothing answers on 127\.0\.0\.1:6379, so a private redis-server runs on 127\.0\.0\.1:\d+ \(AOF on, noeviction, data in .*redis\); it stops with this process\.$/);
  t.equal(report.submitStatus, 202);
  t.equal(report.jobStatus, "Succeeded", JSON.stringify(report.jobResult));
  t.equal(report.exitCode, 0);
  t.equal(report.redisStillRunning, false, "the private redis-server stopped with the service");
  t.comment(`Ctrl-C to exit (API, worker, sandbox and Redis): ${String(report.exitMs)} ms`);
});

t.test("no Redis and no redis-server binary: exits at once with how to get Redis", { skip: noFreshNetwork ?? false }, async (t) => {
  // A PATH with node alone.
  const bin = await tempDir(t);
  await mkdir(join(bin, "path"));
  await symlink(process.execPath, join(bin, "path", "node"));
  const started = Date.now();
  const run = inFreshNetwork(["env", `PATH=${join(bin, "path")}`, process.execPath, "--import", "tsx", SERVER], {
    REDIS_URL: undefined,
    CMK_SANDBOX_CA_FILE: join(bin, "ca.pem"),
  });
  t.equal(await run.exited, 2);
  t.match(run.output(), /^No Redis: REDIS_URL is unset, nothing answers on 127\.0\.0\.1:6379 and redis-server is not on the PATH/);
  t.match(run.output(), /apt-get install redis-server[\s\S]*brew install redis[\s\S]*docker run/);
  t.comment(`exit after ${Date.now() - started} ms (node and tsx start-up included)`);
});
