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
          responses: { "200": { schema: { $ref: "#/definitions/Pet" } }, "202": { description: "no body" }, default: { schema: { $ref: "../common/common.json#/definitions/Error" } } },
        },
      },
    },
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
