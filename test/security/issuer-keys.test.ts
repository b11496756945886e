import t from "tap";
import { httpJsonFetcher, IssuerKeys } from "../../src/security/issuer-keys.js";
import { SANDBOX_AUTH } from "../../src/security/token-verifier.js";
import { READER_APP } from "../../src/sandbox/seed.js";
import { sandboxHttpClient, sandboxRequest, startTestSandbox } from "../helpers/sandbox.js";
import { callerToken, decodeJwt } from "../helpers/tokens.js";

t.test("the issuer's keys are cached, refreshed for an unknown kid, and never fetched in a burst", async (t) => {
  const sandbox = await startTestSandbox(t);
  const kid = decodeJwt(await callerToken(sandbox, READER_APP)).header.kid as string;
  const keyFetches = async () => {
    const log = (await sandboxRequest(sandbox, { path: "/_sandbox/requests" })).json as Array<{ path: string }>;
    return log.filter((entry) => entry.path.endsWith("/discovery/v2.0/keys")).length;
  };
  let now = 1_000_000;
  const failures: string[] = [];
  const keys = new IssuerKeys(SANDBOX_AUTH.issuer, httpJsonFetcher(sandboxHttpClient(sandbox)), {
    now: () => now,
    minRefreshIntervalMs: 30_000,
    maxAgeMs: 3_600_000,
    onRefreshFailed: (error) => failures.push(error.message),
  });

  const [first, second] = await Promise.all([keys.get(kid), keys.get(kid)]);
  t.ok(first && first === second, "the published key, from one shared fetch");
  t.equal(await keyFetches(), 1);
  t.equal((await keys.get(kid))?.asymmetricKeyType, "rsa", "cached");

  for (let i = 0; i < 20; i++) t.equal(await keys.get(`unknown-${i}`), undefined);
  t.equal(await keyFetches(), 1, "unknown kids right after a fetch do not fetch again");

  now += 30_000;
  t.equal(await keys.get("unknown-later"), undefined);
  t.equal(await keyFetches(), 2, "an unknown kid after the interval fetches once more");
  t.equal(await keys.get("unknown-again"), undefined);
  t.equal(await keyFetches(), 2);

  now += 3_600_001;
  t.ok(await keys.get(kid));
  t.equal(await keyFetches(), 3, "keys older than maxAge are fetched again on use");
  t.same(failures, []);
});

t.test("metadata naming another issuer is not trusted", async (t) => {
  const sandbox = await startTestSandbox(t);
  const failures: string[] = [];
  // The emulator's metadata names the issuer without the trailing path this one has.
  const keys = new IssuerKeys(`${SANDBOX_AUTH.issuer}/`, httpJsonFetcher(sandboxHttpClient(sandbox)), { onRefreshFailed: (error) => failures.push(error.message) });
  t.equal(await keys.get("anything"), undefined);
  t.match(failures, [/names issuer/]);
});
