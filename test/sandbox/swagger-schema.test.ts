import t from "tap";
import { checkAgainst, shapeOfExample, SwaggerSchemas } from "../helpers/swagger-schema.js";

/** The Swagger → JSON schema converter the REST-definition conformance test relies on, on small made-up files. */

const MAIN = "main.json";
const COMMON = "common.json";

function specs(): SwaggerSchemas {
  const main = {
    swagger: "2.0",
    paths: {
      "/pets/{name}": {
        get: {
          operationId: "Pets_Get",
          responses: {
            "200": { schema: { $ref: "#/definitions/Pet" } },
            "202": { description: "no body", headers: { "Retry-After": { type: "integer" }, Location: { type: "string" } } },
            default: { schema: { $ref: "../common/common.json#/definitions/Error" } },
          },
        },
      },
      "/{scope}/providers/Pets/feedings/{feeding}": {
        put: {
          operationId: "Feedings_Create",
          parameters: [{ $ref: "#/parameters/ScopeParameter" }, { name: "feeding", in: "path", type: "string" }, { $ref: "../unsaved/types.json#/parameters/ApiVersion" }],
          responses: { "201": { description: "created" } },
        },
      },
    },
    "x-ms-paths": { "/pets/{name}?feed": { post: { operationId: "Pets_Feed", responses: { "200": { description: "fed" } } } } },
    parameters: { ScopeParameter: { name: "scope", in: "path", type: "string", "x-ms-skip-url-encoding": true } },
    definitions: {
      Resource: { type: "object", properties: { id: { type: "string", readOnly: true }, name: { type: "string", pattern: "^[a-z]+$" } } },
      Pet: {
        type: "object",
        discriminator: "kind",
        allOf: [{ $ref: "#/definitions/Resource" }],
        required: ["kind"],
        properties: {
          kind: { type: "string" },
          state: { type: "string", enum: ["Alive", "Sleeping"], "x-ms-enum": { name: "State", modelAsString: true } },
          properties: { "x-ms-client-flatten": true, type: "object", properties: { born: { type: "integer", format: "unixtime" } } },
          tags: { type: "object", additionalProperties: { type: "string" } },
          extra: { type: "object", description: "open bag" },
        },
      },
      Cat: { type: "object", "x-ms-discriminator-value": "cat", allOf: [{ $ref: "#/definitions/Pet" }], properties: { lives: { type: "integer", format: "int32" } } },
    },
  };
  const common = {
    swagger: "2.0",
    definitions: { Error: { type: "object", "x-nullable": true, properties: { code: { type: "string" }, inner: { $ref: "#/definitions/Error" } } } },
  };
  return SwaggerSchemas.fromDocuments(
    new Map<string, Record<string, unknown>>([
      [MAIN, main],
      [COMMON, common],
    ]),
    [
      { saved: MAIN, original: "spec/pets/main.json" },
      { saved: COMMON, original: "spec/common/common.json" },
    ],
  );
}

t.test("allOf parents are merged and objects with properties are closed", async (t) => {
  const schemas = specs();
  t.same(schemas.check(MAIN, "Pets_Get", 200, { id: "1", name: "tom", kind: "Pet", properties: { born: 1 }, tags: { a: "b" }, extra: { any: 1 } }), []);
  t.same(schemas.check(MAIN, "Pets_Get", 200, { kind: "Pet", color: "red" }), ["(body) must NOT have additional properties 'color'"]);
  t.same(schemas.check(MAIN, "Pets_Get", 200, { kind: "Pet", properties: { born: "yesterday" } }), ["/properties/born must be integer"], "flatten is ignored: the wire nests properties");
  t.same(schemas.check(MAIN, "Pets_Get", 200, { kind: "Pet", name: "Tom" }), ['/name must match pattern "^[a-z]+$"']);
  t.same(schemas.check(MAIN, "Pets_Get", 200, { name: "tom" }), ["(body) must have required property 'kind'"]);
});

t.test("enums are strict even when modelled as strings", async (t) => {
  t.same(specs().check(MAIN, "Pets_Get", 200, { kind: "Pet", state: "Dead" }), ['/state must be equal to one of the allowed values ["Alive","Sleeping"]']);
});

t.test("a discriminated base accepts its subtypes by discriminator value", async (t) => {
  const schemas = specs();
  t.same(schemas.check(MAIN, "Pets_Get", 200, { kind: "cat", lives: 9 }), []);
  t.not(schemas.check(MAIN, "Pets_Get", 200, { kind: "Pet", lives: 9 }).length, 0, "lives belongs to cats only");
  t.not(schemas.check(MAIN, "Pets_Get", 200, { kind: "dog" }).length, 0, "unknown discriminator value");
});

t.test("cross-file refs resolve by original path; x-nullable and recursion work; bodiless responses", async (t) => {
  const schemas = specs();
  t.same(schemas.check(MAIN, "Pets_Get", 404, { code: "NotFound", inner: { code: "Inner", inner: null } }), []);
  t.same(schemas.check(MAIN, "Pets_Get", 404, null), []);
  t.same(schemas.check(MAIN, "Pets_Get", 404, { code: 404 }), ["/code must be string"]);
  t.same(schemas.check(MAIN, "Pets_Get", 202, undefined), []);
  t.match(schemas.check(MAIN, "Pets_Get", 202, {}), [/declares no body/]);
  t.throws(() => schemas.check(MAIN, "Pets_List", 200, {}), /no operation Pets_List/);
});

t.test("amend changes a definition before conversion", async (t) => {
  const schemas = specs();
  schemas.amend(MAIN, "/definitions/Pet/properties/color", { type: "string" });
  t.same(schemas.check(MAIN, "Pets_Get", 200, { kind: "Pet", color: "red" }), []);
});

t.test("shapeOfExample keeps field names and JSON types", async (t) => {
  const shape = shapeOfExample({ properties: { principalId: "x", count: 1 }, list: [{ a: true }] });
  t.same(checkAgainst(shape, { properties: { principalId: "y", count: 2 }, list: [] }), []);
  t.same(checkAgainst(shape, { properties: { principalId: 1, count: 2 }, list: [] }), ["/properties/principalId must be string"]);
  t.same(checkAgainst(shape, { properties: { principalId: "y" }, list: [{ a: true, b: 1 }] }), [
    "/properties must have required property 'count'",
    "/list/0 must NOT have additional properties 'b'",
  ]);
});

t.test("route: the operation's method, and which request paths are its own", async (t) => {
  const schemas = specs();
  const get = schemas.route(MAIN, "Pets_Get");
  t.same([get.method, get.template], ["GET", "/pets/{name}"]);
  t.ok(get.matches("/PETS/tom"), "literals compare case-insensitively");
  t.ok(get.matches("/pets/"), "a parameter may be an empty segment (Key Vault's latest version)");
  t.notOk(get.matches("/pets"), "but not a missing one");
  t.notOk(get.matches("/pets/tom/toys"));
  const feed = schemas.route(MAIN, "Pets_Feed");
  t.same([feed.method, feed.template], ["POST", "/pets/{name}?feed"]);
  t.ok(feed.matches("/pets/tom?api-version=1"), "an x-ms-paths key's query and the request's are not the path");
  const create = schemas.route(MAIN, "Feedings_Create");
  for (const path of ["/providers/Pets/feedings/f1", "/keys/providers/Pets/feedings/f1", "/subscriptions/s/resourceGroups/r/providers/Pets/feedings/f1"]) {
    t.ok(create.matches(path), `a scope (x-ms-skip-url-encoding) spans any number of segments: ${path}`);
  }
  t.notOk(create.matches("/providers/Pets/feedings"));
});

t.test("checkHeaders: a declared header that is sent has the declared type; none is required", async (t) => {
  const schemas = specs();
  t.same(schemas.checkHeaders(MAIN, "Pets_Get", 202, { "retry-after": "30", location: "https://example.test/op" }), []);
  t.same(schemas.checkHeaders(MAIN, "Pets_Get", 202, {}), []);
  t.same(schemas.checkHeaders(MAIN, "Pets_Get", 202, { "Retry-After": "soon" }), ["header Retry-After: 'soon' is not an integer"]);
  t.same(schemas.checkHeaders(MAIN, "Pets_Get", 200, { "retry-after": "soon" }), [], "only the status's own declarations count");
});

t.test("checkDefinition checks a body against one definition", async (t) => {
  const schemas = specs();
  t.same(schemas.checkDefinition(COMMON, "/definitions/Error", { code: "x" }), []);
  t.same(schemas.checkDefinition(COMMON, "/definitions/Error", { code: 1 }), ["/code must be string"]);
});
