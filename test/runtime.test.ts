import t from "tap";
import { loadConfig } from "../src/config.js";
import { resolveApiKeys, warnAboutRedisDurability } from "../src/runtime.js";
import { matchApiKey } from "../src/plugins/app/authentication.js";
import { startOwnRedis } from "./helpers/redis-server.js";

const quiet = { warn: () => undefined };

t.test("warns when Redis would lose jobs", async (t) => {
  const volatile = await startOwnRedis(t, ["--appendonly", "no", "--maxmemory-policy", "allkeys-lru"]);
  const warnings = await warnAboutRedisDurability(volatile.url, quiet);
  t.match(warnings.join("\n"), /maxmemory-policy is allkeys-lru/);
  t.match(warnings.join("\n"), /persistence is off/);

  const durable = await startOwnRedis(t, ["--appendonly", "yes", "--maxmemory-policy", "noeviction"]);
  t.same(await warnAboutRedisDurability(durable.url, quiet), [], "AOF and noeviction: nothing to say");

  t.match((await warnAboutRedisDurability("redis://user:secret@127.0.0.1:1", quiet)).join(), /does not answer/);
  t.notMatch((await warnAboutRedisDurability("redis://user:secret@127.0.0.1:1", quiet)).join(), /secret/, "no password in the warning");
});

t.test("sandbox mode without CMK_API_KEYS makes up one admin key", async (t) => {
  const { apiKeys, generatedKey } = resolveApiKeys(loadConfig({}));
  t.ok(generatedKey?.startsWith("cmk_sandbox_"));
  t.equal(matchApiKey(apiKeys, generatedKey!)?.roles[0], "admin");
  t.equal(resolveApiKeys(loadConfig({ CMK_MODE: "azure" })).generatedKey, undefined, "never in azure mode");
  t.same(resolveApiKeys(loadConfig({ CMK_MODE: "azure" })).apiKeys, []);
});
