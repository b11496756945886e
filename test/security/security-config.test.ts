import t from "tap";
import { ConfigError, loadConfig } from "../../src/config.js";
import { sha256Hex } from "../../src/plugins/app/authentication.js";
import { SANDBOX_AUTH, tokenSettings } from "../../src/security/token-verifier.js";

const SUBSCRIPTION = "22222222-2222-2222-2222-222222222222";

t.test("security settings are read and checked at start", async (t) => {
  const key = { name: "portal", sha256: sha256Hex("k"), roles: ["operator"], subscriptions: [SUBSCRIPTION] };
  t.same(loadConfig({ CMK_API_KEYS: JSON.stringify([key]) }).apiKeys, [key], "API keys may carry an allow-list");
  t.same(loadConfig({ CMK_TOKEN_SUBSCRIPTIONS: JSON.stringify({ app: [SUBSCRIPTION] }) }).tokenSubscriptions, { app: [SUBSCRIPTION] });
  t.equal(loadConfig({}).CMK_RATE_LIMIT_PER_MINUTE, 600);

  const refused: Array<[Record<string, string>, string]> = [
    [{ CMK_API_KEYS: JSON.stringify([{ ...key, subscriptions: ["not-a-guid"] }]) }, "CMK_API_KEYS"],
    [{ CMK_API_KEYS: JSON.stringify([{ ...key, subscriptions: [] }]) }, "CMK_API_KEYS"],
    [{ CMK_TOKEN_SUBSCRIPTIONS: "{" }, "CMK_TOKEN_SUBSCRIPTIONS"],
    [{ CMK_TOKEN_SUBSCRIPTIONS: JSON.stringify({ app: "all" }) }, "CMK_TOKEN_SUBSCRIPTIONS"],
    [{ CMK_RATE_LIMIT_PER_MINUTE: "0" }, "CMK_RATE_LIMIT_PER_MINUTE"],
    [{ CMK_AUTH_ISSUER: "http://login.example.com/t/v2.0" }, "CMK_AUTH_ISSUER"],
    [{ CMK_MODE: "azure", CMK_AUTH_ISSUER: "https://login.microsoftonline.com/t/v2.0" }, "CMK_AUTH_AUDIENCE"],
  ];
  for (const [env, variable] of refused) {
    const error = (() => {
      try {
        loadConfig(env);
      } catch (thrown) {
        return thrown;
      }
    })();
    t.ok(error instanceof ConfigError && error.variable === variable, `${JSON.stringify(env)} is refused, naming ${variable}`);
  }
});

t.test("token settings: the emulator in sandbox mode, nothing in azure mode unless configured", async (t) => {
  t.same(tokenSettings(loadConfig({})), { issuer: SANDBOX_AUTH.issuer, audiences: ["api://cmk-service"] });
  t.equal(tokenSettings(loadConfig({ CMK_MODE: "azure" })), undefined);
  t.same(tokenSettings(loadConfig({ CMK_MODE: "azure", CMK_AUTH_ISSUER: "https://login.microsoftonline.com/t/v2.0", CMK_AUTH_AUDIENCE: "api://a, 1234 ,," })), {
    issuer: "https://login.microsoftonline.com/t/v2.0",
    audiences: ["api://a", "1234"],
  });
});
