import t from "tap";
import { buildTestApp, KEYS, testConfig } from "../helpers/app.js";

/** A CSP header as directive → sources. */
function directives(header: unknown): Map<string, string[]> {
  return new Map(
    String(header)
      .split(";")
      .map((part) => part.trim().split(/\s+/))
      .filter((parts) => parts[0])
      .map(([name, ...sources]) => [name!, sources]),
  );
}

t.test("security headers on API answers: a deny-all CSP, nosniff, no framing", async (t) => {
  const app = await buildTestApp(t, testConfig(t));
  for (const response of [
    await app.inject({ method: "GET", url: "/healthz" }),
    await app.inject({ method: "GET", url: "/v1/jobs/x" }),
    await app.inject({ method: "GET", url: "/v1/jobs/x", headers: { "x-api-key": KEYS.reader } }),
  ]) {
    const csp = directives(response.headers["content-security-policy"]);
    t.same(csp.get("default-src"), ["'none'"], `${response.statusCode}: default-src 'none'`);
    t.same(csp.get("frame-ancestors"), ["'none'"]);
    t.equal(response.headers["x-content-type-options"], "nosniff");
    t.equal(response.headers["x-frame-options"], "SAMEORIGIN");
    t.match(response.headers["strict-transport-security"], /max-age=31536000/);
    t.equal(response.headers["referrer-policy"], "no-referrer");
    t.notOk(response.headers["x-powered-by"]);
  }
});

t.test("Swagger UI at /docs loads its scripts and styles under its own CSP", async (t) => {
  const app = await buildTestApp(t, testConfig(t));
  const page = await app.inject({ method: "GET", url: "/docs/" });
  t.equal(page.statusCode, 200);
  const csp = directives(page.headers["content-security-policy"]);
  t.same(csp.get("script-src"), ["'self'"], "scripts: same origin only, no inline");
  t.ok(csp.get("style-src")?.includes("'self'"));
  t.notOk(csp.get("script-src")?.includes("'unsafe-inline'") || csp.get("script-src")?.includes("'unsafe-eval'"));

  t.notMatch(page.body, /<script(?![^>]*\bsrc=)[^>]*>/i, "no inline <script> the CSP would block");
  const scripts = [...page.body.matchAll(/<script[^>]*\bsrc="([^"]+)"/gi)].map((match) => match[1]!);
  const styles = [...page.body.matchAll(/<link[^>]*rel="stylesheet"[^>]*href="([^"]+)"/gi)].map((match) => match[1]!);
  t.ok(scripts.length >= 2 && styles.length >= 1, `${scripts.length} scripts, ${styles.length} style sheets`);
  for (const [source, type] of [...scripts.map((s) => [s, /javascript/] as const), ...styles.map((s) => [s, /text\/css/] as const)]) {
    const url = new URL(source, "http://localhost/docs/");
    t.equal(url.origin, "http://localhost", `${source} is same-origin ('self')`);
    const asset = await app.inject({ method: "GET", url: url.pathname });
    t.equal(asset.statusCode, 200, `${url.pathname} loads`);
    t.match(asset.headers["content-type"], type);
    t.ok(asset.body.length > 0);
  }
  const initializer = await app.inject({ method: "GET", url: "/docs/static/swagger-initializer.js" });
  t.match(initializer.body, /json/, "the initializer fetches the document from the same origin");
  t.equal((await app.inject({ method: "GET", url: "/docs/json" })).statusCode, 200);
});

t.test("behind a configured proxy the audit sees the client's address, not the proxy's", async (t) => {
  const { buildTestApp: build, testConfig: configFor, KEYS: keys } = await import("../helpers/app.js");
  const clientOf = async (env: Record<string, string>) => {
    const app = await build(t, configFor(t, env));
    // A refused change request is audited with the address it came from.
    await app.inject({ method: "POST", url: "/v1/change-requests", payload: { operation: "SetKey" }, remoteAddress: "10.0.0.1", headers: { "x-api-key": keys.operator, "x-forwarded-for": "203.0.113.7" } });
    for (let tries = 0; tries < 50; tries += 1) {
      const entries = (await app.inject({ method: "GET", url: "/v1/audit", headers: { "x-api-key": keys.admin } })).json().value as Array<{ client: { ip: string } }>;
      if (entries.length > 0) return entries[0]!.client.ip;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return "no audit entry";
  };
  t.equal(await clientOf({}), "10.0.0.1", "X-Forwarded-For is ignored by default");
  t.equal(await clientOf({ CMK_TRUST_PROXY_HOPS: "1" }), "203.0.113.7");
});
