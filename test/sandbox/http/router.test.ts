import t from "tap";
import { Router } from "../../../src/sandbox/http/router.js";

/** The emulator's path router: matching, and the description of its routes that the REST-definition coverage check reads. */

t.test("routes match by method and pattern; describe() lists them as registered", async (t) => {
  const router = new Router<string>()
    .on("GET", "/keys/{name}/", () => ({ status: 200, body: "latest" }))
    .on(["GET", "PATCH"], "/keys/{name}/{version}", () => ({ status: 200, body: "version" }))
    .on("GET", "{*scope}/providers/Microsoft.Authorization/roleAssignments", (_request, params) => ({ status: 200, body: `scope '${params.scope}'` }));
  const answer = async (method: string, path: string) => {
    const match = router.match(method, path);
    return match && "handler" in match ? (await match.handler("request", match.params)).body : match;
  };
  t.equal(await answer("GET", "/keys/k1/"), "latest");
  t.equal(await answer("PATCH", "/Keys/k1/v1"), "version", "literals compare case-insensitively");
  t.equal(await answer("GET", "/providers/Microsoft.Authorization/roleAssignments"), "scope ''");
  t.equal(await answer("GET", "/keys/k1/providers/Microsoft.Authorization/roleAssignments"), "scope 'keys/k1'");
  t.same(await answer("DELETE", "/keys/k1/v1"), { methodNotAllowed: true });
  t.equal(await answer("GET", "/secrets"), undefined);
  t.same(router.describe(), [
    { methods: ["GET"], pattern: "/keys/{name}/" },
    { methods: ["GET", "PATCH"], pattern: "/keys/{name}/{version}" },
    { methods: ["GET"], pattern: "{*scope}/providers/Microsoft.Authorization/roleAssignments" },
  ]);
});
