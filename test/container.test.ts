import { spawn, spawnSync } from "node:child_process";
import { copyFile, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv2019 } from "ajv/dist/2019.js";
import t from "tap";
import { parse } from "yaml";
import { EnvSchema } from "../src/config.js";
import { freePort } from "./helpers/redis-server.js";
import { REPOSITORY, startServerProcess } from "./helpers/server-process.js";

/**
 * No Docker engine runs here, so the image and the compose file are checked for what they promise:
 * the compose file against the Compose Specification's JSON schema and against the service's own
 * configuration, the Dockerfile for its base image and production settings, and the image's contents
 * (compiled dist/ with runtime dependencies only) by building them the same way and running them.
 */

const read = (file: string) => readFile(join(REPOSITORY, file), "utf8");

type ComposeService = { environment?: Record<string, string>; ports?: string[]; volumes?: string[]; user?: string; depends_on?: Record<string, { condition: string }> };
type ComposeFile = { services: Record<string, ComposeService> };

async function composeValidator() {
  const schema = JSON.parse(await read("test/fixtures/compose-spec/compose-spec.json")) as object;
  // validateSchema off: the file names its meta-schema with an `http:` URL Ajv does not hold.
  const ajv = new Ajv2019({ strict: false, allErrors: true, validateSchema: false });
  // This version of the schema still annotates with draft-04 `id`, which Ajv refuses as an identifier.
  ajv.removeKeyword("id");
  ajv.addKeyword({ keyword: "id" });
  ajv.addFormat("duration", /^(\d+(\.\d+)?(us|ms|s|m|h))+$/);
  ajv.addFormat("ports", () => true);
  ajv.addFormat("expose", () => true);
  ajv.addFormat("subnet_ip_address", () => true);
  return ajv.compile(schema);
}

t.test("docker-compose.yml follows the Compose Specification", async (t) => {
  const validate = await composeValidator();
  const compose = parse(await read("docker-compose.yml")) as ComposeFile;
  t.ok(validate(compose), JSON.stringify(validate.errors));
  const broken = structuredClone(compose);
  (broken.services.cmk as Record<string, unknown>).enviroment = {};
  t.notOk(validate(broken), "a misspelt key is caught");
});

t.test("compose runs the README's steps as written: API on 3000, emulator on 8443 on every interface, its CA on the host", async (t) => {
  const { services } = parse(await read("docker-compose.yml")) as ComposeFile;
  const cmk = services.cmk!;
  const environment = cmk.environment ?? {};
  const known = Object.keys(EnvSchema.properties);
  for (const variable of Object.keys(environment)) t.ok(known.includes(variable), `${variable} is a configuration variable`);
  t.equal(environment.CMK_MODE, "sandbox", "the image is production (NODE_ENV): the mode is explicit");
  t.equal(environment.CMK_SANDBOX_HOST, "0.0.0.0", "the emulator is reachable through the published port");
  t.match(environment.REDIS_URL, /^redis:\/\/redis:6379$/);
  t.ok(cmk.ports?.includes("3000:3000") && cmk.ports.includes("8443:8443"), "both ports published as the README uses them");
  const caFile = environment.CMK_SANDBOX_CA_FILE ?? "";
  const mount = cmk.volumes?.find((volume) => volume.startsWith("./.sandbox:"));
  t.equal(mount, "./.sandbox:/app/.sandbox", "the CA lands in the host's .sandbox/");
  t.equal(caFile, "/app/.sandbox/ca.pem", "where the mount is");
  t.same(cmk.depends_on, { redis: { condition: "service_healthy" }, "sandbox-dir": { condition: "service_completed_successfully" } });
  t.equal(cmk.user, "${CMK_UID:-1000}:${CMK_GID:-1000}");
  t.equal(services.redis?.volumes?.[0], "redis-data:/data", "Redis keeps its AOF in a volume");
});

t.test("the Dockerfile: Node.js 22 LTS, production, runtime dependencies only, the compiled entry point", async (t) => {
  const dockerfile = await read("Dockerfile");
  const bases = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((match) => match[1]);
  t.ok(bases.length >= 2 && bases.every((base) => /^node:22-/.test(base!)), `every stage on Node.js 22: ${bases.join(", ")}`);
  t.match(dockerfile, /^ENV NODE_ENV=production$/m);
  t.match(dockerfile, /npm ci --omit=dev/);
  t.match(dockerfile, /^USER node$/m);
  t.match(dockerfile, /^CMD \["node", "dist\/src\/server\.js"\]$/m);
  const packageJson = JSON.parse(await read("package.json")) as { scripts: Record<string, string>; engines: { node: string }; dependencies: Record<string, string> };
  t.equal(packageJson.scripts["start:dist"], "node dist/src/server.js", "npm run start:dist runs what the image runs");
  t.notOk("tsx" in packageJson.dependencies, "tsx (and esbuild with it) is a development tool");
  t.match(packageJson.engines.node, />=22/, "engines names the LTS line the image runs");
});

t.test("the image's contents: dist/ and production dependencies alone start, and refuse to guess the mode", async (t) => {
  const image = await mkdtemp(join(tmpdir(), "cmk-image-"));
  t.teardown(() => rm(image, { recursive: true, force: true }));
  // As the Dockerfile's build stage (npm run build): compile src/ to dist/, with the job store's Lua scripts.
  const build = spawnSync(process.execPath, [join(REPOSITORY, "scripts/build.mjs"), "--outDir", join(image, "dist")], { encoding: "utf8" });
  t.equal(build.status, 0, build.stdout + build.stderr);
  // As the runtime-deps stage: npm ci --omit=dev (from the local npm cache when it has everything).
  await copyFile(join(REPOSITORY, "package.json"), join(image, "package.json"));
  await copyFile(join(REPOSITORY, "package-lock.json"), join(image, "package-lock.json"));
  const install = await new Promise<{ code: number | null; output: string }>((resolve) => {
    const child = spawn("npm", ["ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"], { cwd: image, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.once("exit", (code) => resolve({ code, output }));
  });
  t.equal(install.code, 0, install.output);
  for (const tool of ["tsx", "esbuild", "typescript", "tap"]) {
    t.notOk(await stat(join(image, "node_modules", tool)).catch(() => undefined), `${tool} is not in the runtime image`);
  }

  const entry = [process.execPath, join(image, "dist/src/server.js")];
  const unset = startServerProcess({ NODE_ENV: "production", CMK_MODE: undefined }, { command: entry });
  t.equal(await unset.exited, 2);
  t.equal(unset.output().trim(), "Configuration error: CMK_MODE: must be set when NODE_ENV=production: sandbox or azure");

  const sandbox = startServerProcess(
    {
      NODE_ENV: "production",
      CMK_MODE: "sandbox",
      CMK_SANDBOX_HOST: "0.0.0.0",
      CMK_SANDBOX_PORT: String(await freePort()),
      CMK_SANDBOX_CA_FILE: join(image, ".sandbox/ca.pem"),
      PORT: "0",
      REDIS_URL: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
      CMK_QUEUE_PREFIX: `image-test-${process.pid}`,
      LOG_LEVEL: "error",
    },
    { command: entry },
  );
  t.teardown(() => sandbox.child.kill("SIGKILL"));
  const [, port] = await sandbox.waitFor(/listening on http:\/\/localhost:(\d+)/);
  const health = await fetch(`http://127.0.0.1:${port}/healthz`);
  t.equal(health.status, 200, "the compiled service answers");
  const docs = await fetch(`http://127.0.0.1:${port}/docs/json`);
  t.equal(((await docs.json()) as { info: { version: string } }).info.version, (JSON.parse(await read("package.json")) as { version: string }).version, "it reads its version beside dist/");
  t.match(sandbox.output(), /Sandbox: {4}https:\/\/127\.0\.0\.1:\d+/, "the emulator, listening on every interface, is announced on loopback");
  // A job runs to its end: the job store's Lua scripts (claim, events) were found beside the compiled store.
  const [, adminKey] = await sandbox.waitFor(/Admin API key \(sandbox, generated at start\): (\S+)/);
  const fhirServiceId = "/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg-sandbox/providers/Microsoft.HealthcareApis/workspaces/wssandbox/fhirservices/fhir-sys";
  const keyUrl = "https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048/00000000000000000000000000000002";
  const submitted = await fetch(`http://127.0.0.1:${port}/v1/change-requests`, {
    method: "POST",
    headers: { "x-api-key": adminKey!, "content-type": "application/json" },
    body: JSON.stringify({ operation: "SetKey", fhirServiceId, keyEncryptionKeyUrl: keyUrl, identity: { type: "SystemAssigned" }, dryRun: true }),
  });
  t.equal(submitted.status, 202);
  const jobId = ((await submitted.json()) as { id: string }).id;
  let status = "";
  for (let i = 0; i < 300 && !["Succeeded", "Failed", "Canceled"].includes(status); i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    status = ((await (await fetch(`http://127.0.0.1:${port}/v1/jobs/${jobId}`, { headers: { "x-api-key": adminKey! } })).json()) as { status: string }).status;
  }
  t.equal(status, "Succeeded", "a dry-run SetKey ran to its end in the compiled service");
  t.equal((await sandbox.stop("SIGTERM")).code, 0);
});
