import { readFile } from "node:fs/promises";
import t from "tap";
import { Ajv } from "ajv";
import { KEYS, waitForJob } from "./helpers/app.js";
import { startStack } from "./helpers/stack.js";
import { SEED_EXAMPLES } from "../src/schemas/examples.js";

type Json = Record<string, unknown>;
interface NamedExamples {
  [name: string]: { summary: string; value: Json };
}

const document = JSON.parse(await readFile(new URL("../openapi/openapi.json", import.meta.url), "utf8")) as Json & {
  paths: Record<string, Record<string, { requestBody?: { content: Record<string, { examples?: NamedExamples }> } }>>;
};

const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Every example in the document with the schema it illustrates: media types', parameters' and headers'
 * (`example`, `examples`) against their `schema`; a schema's own `example` against that schema.
 */
function examplesOf(node: unknown, path: string[] = []): Array<{ where: string; schema: string[]; value: unknown }> {
  if (Array.isArray(node)) return node.flatMap((item, index) => examplesOf(item, [...path, String(index)]));
  if (!isObject(node)) return [];
  const found: Array<{ where: string; schema: string[]; value: unknown }> = [];
  const schema = isObject(node.schema) ? [...path, "schema"] : path;
  if (node.example !== undefined) found.push({ where: path.join(" > "), schema, value: node.example });
  if (isObject(node.schema) && isObject(node.examples)) {
    for (const [name, example] of Object.entries(node.examples)) found.push({ where: `${path.join(" > ")} > ${name}`, schema, value: (example as Json).value });
  }
  // Example values are data, not more of the document.
  for (const [key, child] of Object.entries(node)) if (key !== "example" && key !== "examples") found.push(...examplesOf(child, [...path, key]));
  return found;
}

/** A JSON pointer into the document, as a URI fragment. */
const pointer = (path: string[]) => `openapi.json#/${path.map((segment) => encodeURIComponent(segment.replace(/~/g, "~0").replace(/\//g, "~1"))).join("/")}`;

t.test("every example in the document is valid against its schema", async (t) => {
  // OpenAPI 3.0 keywords (discriminator, example) are annotations here; formats are the routes' business (below).
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false, validateSchema: false });
  ajv.addSchema(document, "openapi.json");
  const examples = examplesOf(document);
  t.ok(examples.length > 80, `${examples.length} examples`);
  for (const example of examples) {
    const validate = ajv.compile({ $ref: pointer(example.schema) });
    t.ok(validate(example.value), example.where, { errors: validate.errors });
  }
});

const bodyExamples = (path: string) => document.paths[path]!.post!.requestBody!.content["application/json"]!.examples!;

t.test("the request bodies name an example per operation; Swagger UI prefills the first: a SetKey on fhir-sys", async (t) => {
  for (const path of ["/v1/change-requests", "/v1/validations", "/v1/templates"]) {
    const examples = bodyExamples(path);
    t.same(Object.keys(examples), ["SetKey", "CreateService", "RotateKey", "RecoverKeyAccess"], path);
    for (const [name, example] of Object.entries(examples)) t.equal(example.value.operation, name, `${path} ${name}`);
    t.match(Object.values(examples)[0]!.value, { fhirServiceId: SEED_EXAMPLES.fhirSys, keyEncryptionKeyUrl: SEED_EXAMPLES.keyUrl, identity: { type: "SystemAssigned" } }, `${path}: first`);
  }
});

t.test("the request examples work against the sandbox: templates and validations 200, every change request Succeeded", async (t) => {
  const { app } = await startStack(t, { lroMs: 300 });
  const post = (url: string, payload: Json, key: string) => app.inject({ method: "POST", url, payload, headers: { "x-api-key": key } });

  // Reads first, on the seed as `npm start` has it: the changes below alter it.
  for (const [index, [name, example]] of Object.entries(bodyExamples("/v1/validations")).entries()) {
    const response = await post("/v1/validations", example.value, KEYS.reader);
    t.equal(response.statusCode, 200, `validation ${name}: ${response.statusCode === 200 ? "200" : response.body}`);
    if (index === 0) t.equal(response.json().valid, true, "the first passes every check", { checks: response.json().checks });
  }
  for (const [name, example] of Object.entries(bodyExamples("/v1/templates"))) {
    const response = await post("/v1/templates", example.value, KEYS.reader);
    t.equal(response.statusCode, 200, `template ${name}: ${response.statusCode === 200 ? "200" : response.body}`);
  }
  // One at a time: RotateKey and RecoverKeyAccess both change fhir-uami.
  for (const [name, example] of Object.entries(bodyExamples("/v1/change-requests"))) {
    const accepted = await post("/v1/change-requests", example.value, KEYS.operator);
    t.equal(accepted.statusCode, 202, `change request ${name}: ${accepted.statusCode === 202 ? "202" : accepted.body}`);
    if (accepted.statusCode !== 202) continue;
    const { monitor } = await waitForJob(app, accepted.json().id, 60_000);
    t.equal(monitor.status, "Succeeded", `${name} ${monitor.status}`, { error: monitor.error });
  }
});
