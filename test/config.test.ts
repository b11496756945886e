import { readFile } from "node:fs/promises";
import { join } from "node:path";
import t from "tap";
import { ConfigError, EnvSchema, loadConfig } from "../src/config.js";
import { REPOSITORY } from "./helpers/server-process.js";

t.test("defaults match the contract", async (t) => {
  const config = loadConfig({});
  t.equal(config.PORT, 3000);
  t.equal(config.HOST, "0.0.0.0");
  t.equal(config.REDIS_URL, "redis://127.0.0.1:6379");
  t.equal(config.CMK_QUEUE_PREFIX, "cmk");
  t.equal(config.CMK_ROLE, "all");
  t.equal(config.CMK_MODE, "sandbox");
  t.equal(config.CMK_SANDBOX_PORT, 8443);
  t.equal(config.CMK_SANDBOX_CA_FILE, ".sandbox/ca.pem");
  t.equal(config.CMK_SANDBOX_LRO_MS, 3000);
  t.equal(config.apiKeys, undefined);
  t.equal(config.CMK_TRUST_PROXY_HOPS, 0, "no proxy trusted unless configured");
});

t.test("a bad value names the variable", async (t) => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ PORT: "http" }, "PORT"],
    [{ PORT: "70000" }, "PORT"],
    [{ CMK_ROLE: "both" }, "CMK_ROLE"],
    [{ CMK_MODE: "prod" }, "CMK_MODE"],
    [{ REDIS_URL: "localhost:6379" }, "REDIS_URL"],
    [{ CMK_SANDBOX_URL: "http://127.0.0.1:8443" }, "CMK_SANDBOX_URL"],
    [{ CMK_API_KEYS: "not json" }, "CMK_API_KEYS"],
    [{ CMK_API_KEYS: '[{"name":"a","sha256":"xyz","roles":["reader"]}]' }, "CMK_API_KEYS"],
  ];
  for (const [env, variable] of cases) {
    let caught: unknown;
    try {
      loadConfig(env);
    } catch (error) {
      caught = error;
    }
    t.ok(caught instanceof ConfigError, JSON.stringify(env));
    t.equal((caught as ConfigError).variable, variable);
    t.match((caught as ConfigError).message, new RegExp(`^${variable}: `));
  }
});

t.test("API keys are parsed", async (t) => {
  const sha256 = "a".repeat(64);
  t.same(loadConfig({ CMK_API_KEYS: JSON.stringify([{ name: "portal", sha256, roles: ["operator"] }]) }).apiKeys, [{ name: "portal", sha256, roles: ["operator"] }]);
});

t.test("an enum-like variable's error lists the allowed values", async (t) => {
  t.throws(() => loadConfig({ CMK_MODE: "prod" }), { variable: "CMK_MODE", message: 'CMK_MODE: must be one of sandbox, azure (got "prod")' });
  t.throws(() => loadConfig({ CMK_ROLE: "both" }), { message: 'CMK_ROLE: must be one of api, worker, all (got "both")' });
  t.throws(() => loadConfig({ LOG_LEVEL: "loud" }), { message: /^LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent/ });
});

t.test("NODE_ENV=production: CMK_MODE must be chosen, nothing defaults to the sandbox", async (t) => {
  t.throws(() => loadConfig({ NODE_ENV: "production" }), { variable: "CMK_MODE", message: "CMK_MODE: must be set when NODE_ENV=production: sandbox or azure" });
  t.equal(loadConfig({ NODE_ENV: "production", CMK_MODE: "azure" }).CMK_MODE, "azure");
  t.equal(loadConfig({ NODE_ENV: "production", CMK_MODE: "sandbox" }).production, true, "a deliberate sandbox is allowed");
  t.equal(loadConfig({ NODE_ENV: "development" }).CMK_MODE, "sandbox", "outside production the sandbox stays the default");
});

t.test("whether REDIS_URL was given is kept (a local run may start its own Redis only when it was not)", async (t) => {
  t.equal(loadConfig({}).redisUrlSet, false);
  t.equal(loadConfig({ REDIS_URL: "redis://127.0.0.1:6379" }).redisUrlSet, true);
});

t.test("the emulator listens on loopback unless told otherwise", async (t) => {
  t.equal(loadConfig({}).CMK_SANDBOX_HOST, "127.0.0.1");
  t.equal(loadConfig({ CMK_SANDBOX_HOST: "0.0.0.0" }).CMK_SANDBOX_HOST, "0.0.0.0");
});

t.test("Redis as production runs it: auth, user, cluster and the prefix's hash tag", async (t) => {
  t.equal(loadConfig({}).CMK_REDIS_AUTH, "password", "passwords (from REDIS_URL) unless told otherwise");
  t.equal(loadConfig({}).CMK_REDIS_CLUSTER, false);
  t.equal(loadConfig({ CMK_REDIS_CLUSTER: "true" }).CMK_QUEUE_PREFIX, "{cmk}", "a cluster gets a hash tag around a prefix without one");
  t.equal(loadConfig({ CMK_REDIS_CLUSTER: "true", CMK_QUEUE_PREFIX: "prod-{cmk}" }).CMK_QUEUE_PREFIX, "prod-{cmk}", "one it has is kept");
  t.equal(loadConfig({ CMK_QUEUE_PREFIX: "{cmk}" }).CMK_QUEUE_PREFIX, "{cmk}", "a tag without a cluster (Azure Managed Redis' Enterprise policy wants one too)");
  for (const prefix of ["{}", "{a}{b}", "a{b", "a}b", "a b", "{a:b}"]) t.throws(() => loadConfig({ CMK_QUEUE_PREFIX: prefix }), { name: "ConfigError", variable: "CMK_QUEUE_PREFIX" }, prefix);
  t.throws(() => loadConfig({ CMK_REDIS_CLUSTER: "yes" }), { name: "ConfigError", variable: "CMK_REDIS_CLUSTER" });
  t.throws(() => loadConfig({ CMK_REDIS_AUTH: "token" }), { message: 'CMK_REDIS_AUTH: must be one of password, entra (got "token")' });
  t.throws(() => loadConfig({ CMK_REDIS_AUTH: "entra", REDIS_URL: "rediss://user:secret@cache.example:10000" }), { variable: "REDIS_URL", message: /no user or password with CMK_REDIS_AUTH=entra/ });
  t.throws(() => loadConfig({ CMK_REDIS_USERNAME: "someone" }), { variable: "CMK_REDIS_USERNAME", message: /only used with CMK_REDIS_AUTH=entra/ });
  t.equal(loadConfig({ CMK_REDIS_AUTH: "entra", CMK_REDIS_USERNAME: "c0ffee00-0000-4000-8000-000000000001" }).CMK_REDIS_USERNAME, "c0ffee00-0000-4000-8000-000000000001");
});

t.test("compliance settings: defaults, the scan schedule's cron syntax checked at load, off disables", async (t) => {
  const defaults = loadConfig({});
  t.equal(defaults.CMK_COMPLIANCE_SCAN_CRON, "0 3 * * *");
  t.equal(defaults.CMK_KEY_MAX_AGE_DAYS, 365);
  t.equal(defaults.CMK_REQUIRE_CUSTOMER_MANAGED_KEY, false);
  t.equal(defaults.CMK_FOLLOW_LATEST_KEY_VERSION, false);
  const set = loadConfig({ CMK_COMPLIANCE_SCAN_CRON: "*/15 * * * *", CMK_KEY_MAX_AGE_DAYS: "90", CMK_REQUIRE_CUSTOMER_MANAGED_KEY: "true", CMK_FOLLOW_LATEST_KEY_VERSION: "true" });
  t.match(set, { CMK_COMPLIANCE_SCAN_CRON: "*/15 * * * *", CMK_KEY_MAX_AGE_DAYS: 90, CMK_REQUIRE_CUSTOMER_MANAGED_KEY: true, CMK_FOLLOW_LATEST_KEY_VERSION: true });
  for (const cron of ["off", "0 3 * * MON-FRI", "@daily", "30 0 3 * * *"]) t.equal(loadConfig({ CMK_COMPLIANCE_SCAN_CRON: cron }).CMK_COMPLIANCE_SCAN_CRON, cron, cron);
  t.throws(() => loadConfig({ CMK_COMPLIANCE_SCAN_CRON: "61 3 * * *" }), { variable: "CMK_COMPLIANCE_SCAN_CRON", message: /^CMK_COMPLIANCE_SCAN_CRON: is not a valid cron expression: .*61.*\(got "61 3 \* \* \*"\)$/ });
  t.throws(() => loadConfig({ CMK_COMPLIANCE_SCAN_CRON: "daily" }), { variable: "CMK_COMPLIANCE_SCAN_CRON", message: /must be "off" or a cron expression of 5 fields .* got 1 field \(got "daily"\)/ });
  t.throws(() => loadConfig({ CMK_COMPLIANCE_SCAN_CRON: "0 3 * *" }), { variable: "CMK_COMPLIANCE_SCAN_CRON", message: /got 4 fields/ });
  t.throws(() => loadConfig({ CMK_COMPLIANCE_SCAN_CRON: "0 0 31 2 *" }), { variable: "CMK_COMPLIANCE_SCAN_CRON", message: /not a valid cron expression/ }, "a day that never comes");
  t.throws(() => loadConfig({ CMK_KEY_MAX_AGE_DAYS: "0" }), { name: "ConfigError", variable: "CMK_KEY_MAX_AGE_DAYS" });
  t.throws(() => loadConfig({ CMK_KEY_MAX_AGE_DAYS: "a year" }), { name: "ConfigError", variable: "CMK_KEY_MAX_AGE_DAYS" });
  t.throws(() => loadConfig({ CMK_REQUIRE_CUSTOMER_MANAGED_KEY: "yes" }), { name: "ConfigError", variable: "CMK_REQUIRE_CUSTOMER_MANAGED_KEY" });
  t.throws(() => loadConfig({ CMK_FOLLOW_LATEST_KEY_VERSION: "1x" }), { name: "ConfigError", variable: "CMK_FOLLOW_LATEST_KEY_VERSION" });
});

t.test("CMK_CLOUD: the public cloud by default, the sovereign clouds in azure mode, a clear error otherwise", async (t) => {
  t.equal(loadConfig({}).CMK_CLOUD, "AzurePublicCloud");
  t.equal(loadConfig({ CMK_MODE: "azure", CMK_CLOUD: "AzureUSGovernment" }).CMK_CLOUD, "AzureUSGovernment");
  t.equal(loadConfig({ CMK_MODE: "azure", CMK_CLOUD: "AzureChinaCloud" }).CMK_CLOUD, "AzureChinaCloud");
  t.throws(() => loadConfig({ CMK_MODE: "azure", CMK_CLOUD: "AzureGermanCloud" }), {
    variable: "CMK_CLOUD",
    message: 'CMK_CLOUD: must be one of AzurePublicCloud, AzureUSGovernment, AzureChinaCloud (got "AzureGermanCloud")',
  });
  t.throws(() => loadConfig({ CMK_CLOUD: "AzureUSGovernment" }), { variable: "CMK_CLOUD", message: /needs CMK_MODE=azure: the sandbox emulates AzurePublicCloud/ });
});

t.test("README's configuration table names every variable of the schema and no other (NODE_ENV, read beside it, aside)", async (t) => {
  const readme = await readFile(join(REPOSITORY, "README.md"), "utf8");
  const table = readme.slice(readme.indexOf("## Configuration\n"), readme.indexOf("### Redis in production"));
  const named = new Set([...table.matchAll(/^\| ([^|]+) \|/gm)].flatMap((row) => [...row[1]!.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((name) => name[1]!)));
  const variables = Object.keys(EnvSchema.properties);
  t.same(variables.filter((name) => !named.has(name)), [], "in the schema, not in the table");
  t.same([...named].filter((name) => !variables.includes(name) && name !== "NODE_ENV"), [], "in the table, not in the schema");
});
