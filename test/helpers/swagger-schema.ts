import { Ajv, type ErrorObject, type SchemaObject, type ValidateFunction } from "ajv";
import { readFile } from "node:fs/promises";
import { posix } from "node:path";

/**
 * Microsoft's published REST definitions (Swagger 2.0, copies under test/fixtures/azure-rest) turned into
 * JSON schemas that AJV checks emulator responses against.
 *
 * Conversion rules, chosen so that a response passes only if it carries the definition's fields, types
 * and enum values:
 * - `allOf` parents are merged into one object (own properties win), and objects with declared
 *   properties are closed (`additionalProperties: false`): a field the definition does not name is a
 *   deviation. Objects with neither `properties` nor `additionalProperties` stay open.
 * - `enum` is enforced even with `x-ms-enum.modelAsString` (that flag lets SDKs tolerate new values;
 *   an emulator must still send only the published ones).
 * - `x-nullable: true` admits `null`.
 * - `discriminator`: a reference to a polymorphic base accepts the base or any definition that
 *   inherits from it, chosen by the discriminator value (`x-ms-discriminator-value`, else the name).
 * - `x-ms-client-flatten` and `readOnly` only shape SDK models: the wire keeps `properties` nested and
 *   responses carry read-only fields, so both are ignored. Siblings of `$ref` are ignored, as Swagger 2.0 says.
 */

type Json = Record<string, unknown>;

/** A saved swagger file and the path it has in Azure/azure-rest-api-specs, so relative `$ref`s resolve offline. */
export interface SavedSpec {
  saved: string;
  original: string;
}

/** The swagger files in test/fixtures/azure-rest and their paths in the specs repository (SOURCES.md there). */
export const CONFORMANCE_SPECS: readonly SavedSpec[] = [
  {
    saved: "rest-api-specs-healthcareapis/healthcare-apis.json",
    original: "specification/healthcareapis/resource-manager/Microsoft.HealthcareApis/stable/2023-11-01/healthcare-apis.json",
  },
  { saved: "rest-api-specs-common-types/v3/types.json", original: "specification/common-types/resource-management/v3/types.json" },
  { saved: "rest-api-specs-common-types/v1/types.json", original: "specification/common-types/resource-management/v1/types.json" },
  { saved: "rest-api-specs-common-types/v1/privatelinks.json", original: "specification/common-types/resource-management/v1/privatelinks.json" },
  { saved: "rest-api-specs-keyvault/keys.json", original: "specification/keyvault/data-plane/Microsoft.KeyVault/stable/7.5/keys.json" },
  { saved: "rest-api-specs-keyvault/common.json", original: "specification/keyvault/data-plane/Microsoft.KeyVault/stable/7.5/common.json" },
  {
    saved: "rest-api-specs-resources/resources.json",
    original: "specification/resources/resource-manager/Microsoft.Resources/resources/stable/2025-04-01/resources.json",
  },
  {
    saved: "rest-api-specs-resources/subscriptions.json",
    original: "specification/resources/resource-manager/Microsoft.Resources/subscriptions/stable/2022-12-01/subscriptions.json",
  },
  { saved: "rest-api-specs-common-types/v5/types.json", original: "specification/common-types/resource-management/v5/types.json" },
  {
    saved: "rest-api-specs-resources/deployments.json",
    original: "specification/resources/resource-manager/Microsoft.Resources/deployments/stable/2026-06-01/deployments.json",
  },
  {
    saved: "rest-api-specs-authorization/authorization-RoleDefinitionsCalls.json",
    original: "specification/authorization/resource-manager/Microsoft.Authorization/stable/2022-04-01/authorization-RoleDefinitionsCalls.json",
  },
  {
    saved: "rest-api-specs-keyvault/resource-manager/openapi.json",
    original: "specification/keyvault/resource-manager/Microsoft.KeyVault/KeyVault/stable/2026-02-01/openapi.json",
  },
  { saved: "rest-api-specs-common-types/v5/managedidentity.json", original: "specification/common-types/resource-management/v5/managedidentity.json" },
  {
    saved: "rest-api-specs-msi/ManagedIdentity.json",
    original: "specification/msi/resource-manager/Microsoft.ManagedIdentity/ManagedIdentity/stable/2024-11-30/ManagedIdentity.json",
  },
  { saved: "rest-api-specs-common-types/v4/types.json", original: "specification/common-types/resource-management/v4/types.json" },
  { saved: "rest-api-specs-keyvault/rbac.json", original: "specification/keyvault/data-plane/Microsoft.KeyVault/stable/7.5/rbac.json" },
];

const HTTP_METHODS = ["get", "put", "post", "patch", "delete", "head", "options"];
/** Keywords copied as they are; everything else (descriptions, x-ms-*, readOnly, default, …) is dropped. */
const COPIED_KEYWORDS = ["type", "enum", "format", "pattern", "minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems", "uniqueItems"];

/** Formats the saved definitions use (`format` values in test/fixtures/azure-rest). */
const FORMATS: Record<string, { type: "string"; validate: RegExp | ((value: string) => boolean) } | { type: "number"; validate: (value: number) => boolean }> = {
  "date-time": { type: "string", validate: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)$/i },
  uuid: { type: "string", validate: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i },
  uri: { type: "string", validate: (value) => URL.canParse(value) },
  /** An ARM resource id (common-types v5). */
  "arm-id": { type: "string", validate: /^\/(?:subscriptions|providers|tenants)\//i },
  /** JWK members and Key Vault operation results: base64url without padding. */
  base64url: { type: "string", validate: /^[A-Za-z0-9_-]*$/ },
  /** Key Vault timestamps: integer seconds since the epoch. */
  unixtime: { type: "number", validate: (value) => Number.isInteger(value) && value >= 0 },
  int32: { type: "number", validate: (value) => Number.isInteger(value) && value >= -(2 ** 31) && value < 2 ** 31 },
  int64: { type: "number", validate: Number.isInteger },
  double: { type: "number", validate: Number.isFinite },
};

function newAjv(): Ajv {
  const ajv = new Ajv({
    strict: true,
    allErrors: true,
    allowUnionTypes: true,
    // Swagger patterns are .NET/ECMAScript without the `u` flag (healthcare-apis.json escapes `\:`).
    unicodeRegExp: false,
  });
  for (const [name, format] of Object.entries(FORMATS)) ajv.addFormat(name, format);
  return ajv;
}

function isJson(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A node inside one of the loaded documents. */
interface Located {
  file: string;
  pointer: string;
  node: Json;
}

function decodePointer(pointer: string): string[] {
  return pointer
    .split("/")
    .slice(1)
    .map((part) => part.replace(/~1/g, "/").replace(/~0/g, "~"));
}

export class SwaggerSchemas {
  private readonly ajv = newAjv();
  private readonly validators = new Map<string, ValidateFunction>();

  private constructor(
    private readonly documents: Map<string, Json>,
    private readonly savedByOriginal: Map<string, string>,
    private readonly originalBySaved: Map<string, string>,
  ) {}

  /** Reads every file of `specs` from `directory` (a file URL ending in `/`). */
  static async load(directory: URL, specs: readonly SavedSpec[] = CONFORMANCE_SPECS): Promise<SwaggerSchemas> {
    const documents = new Map<string, Json>();
    await Promise.all(
      specs.map(async (spec) => {
        documents.set(spec.saved, JSON.parse(await readFile(new URL(spec.saved, directory), "utf8")) as Json);
      }),
    );
    return SwaggerSchemas.fromDocuments(documents, specs);
  }

  /** For documents already in memory (tests of the converter itself). */
  static fromDocuments(documents: Map<string, Json>, specs: readonly SavedSpec[]): SwaggerSchemas {
    return new SwaggerSchemas(
      documents,
      new Map(specs.map((spec) => [spec.original, spec.saved])),
      new Map(specs.map((spec) => [spec.saved, spec.original])),
    );
  }

  /**
   * Sets the node at `pointer` in a loaded definition file. For the few places where real traffic
   * differs from the definition: each call must say why, next to it. Call before the first `check`.
   */
  amend(file: string, pointer: string, value: unknown): void {
    const parts = decodePointer(pointer);
    const last = parts.pop();
    let node: unknown = this.document(file);
    for (const part of parts) {
      if (!isJson(node)) throw new Error(`amend ${file}#${pointer}: no object at '${part}'`);
      node[part] ??= {};
      node = node[part];
    }
    if (!isJson(node) || last === undefined) throw new Error(`amend ${file}#${pointer}: not an object`);
    node[last] = value;
    this.validators.clear();
  }

  /**
   * Checks a response body against the schema of `operationId`'s response `status` (or `default`).
   * Returns one line per violation; none means the body conforms. A response without a schema must
   * have no body.
   */
  check(file: string, operationId: string, status: number, body: unknown): string[] {
    const schema = this.responseSwagger(file, operationId, status);
    if (!schema) return body === undefined ? [] : [`${operationId} ${status} declares no body, got ${JSON.stringify(body)}`];
    return this.validate(file, schema, body);
  }

  /** Checks a body against one definition (a JSON pointer into `file`, e.g. `/definitions/OperationStatusResult`), for answers no operation of a saved file describes. */
  checkDefinition(file: string, pointer: string, body: unknown): string[] {
    return this.validate(file, { $ref: `#${pointer}` }, body);
  }

  private validate(file: string, schema: Json, body: unknown): string[] {
    // Operations that answer with the same definition share one compiled validator.
    const key = `${file}|${JSON.stringify(schema)}`;
    let validate = this.validators.get(key);
    if (!validate) {
      validate = this.ajv.compile(this.toJsonSchema(schema, file));
      this.validators.set(key, validate);
    }
    return validate(body) ? [] : formatErrors(validate.errors ?? []);
  }

  /**
   * Checks the headers a response carries against those `operationId` declares for `status` (or
   * `default`): a declared header that is present must have the declared type. Declared headers are
   * not required (Swagger 2.0 has no `required` for them). Names compare case-insensitively.
   */
  checkHeaders(file: string, operationId: string, status: number, headers: Record<string, unknown>): string[] {
    const response = this.response(file, operationId, status);
    const declared = isJson(response.headers) ? response.headers : {};
    const sent = new Map(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
    const problems: string[] = [];
    for (const [name, header] of Object.entries(declared)) {
      const value = sent.get(name.toLowerCase());
      if (value === undefined || !isJson(header)) continue;
      const text = Array.isArray(value) ? value.join(",") : String(value);
      if (header.type === "integer" && !/^-?\d+$/.test(text)) problems.push(`header ${name}: '${text}' is not an integer`);
      if (header.type === "number" && !Number.isFinite(Number(text))) problems.push(`header ${name}: '${text}' is not a number`);
    }
    return problems;
  }

  /**
   * The HTTP method and path template of `operationId`, and whether a request path is one of its
   * paths: literal segments compare case-insensitively (as ARM's do), a path parameter takes one
   * segment (possibly empty: Key Vault's "latest version" is `/keys/{name}/`), and a parameter marked
   * `x-ms-skip-url-encoding` (a scope or a full resource id) takes any number of segments, or none.
   */
  route(file: string, operationId: string): { method: string; template: string; matches(path: string): boolean } {
    const { node, item, template, method } = this.operation(file, operationId);
    const parameters = [...(Array.isArray(item.parameters) ? item.parameters : []), ...(Array.isArray(node.parameters) ? node.parameters : [])]
      .filter(isJson)
      .flatMap((parameter) => (typeof parameter.$ref === "string" ? this.resolveSaved(parameter.$ref, file) : [parameter]));
    const spanning = new Set(parameters.filter((parameter) => parameter.in === "path" && parameter["x-ms-skip-url-encoding"] === true).map((parameter) => String(parameter.name)));
    // `x-ms-paths` keys may carry a query only to tell two operations on one path apart.
    const pattern = (template.split("?")[0] ?? "")
      .split("/")
      .filter((part) => part !== "")
      .map((part) => {
        const name = /^\{([^}]+)\}$/.exec(part)?.[1];
        if (name === undefined) return `/${part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`;
        return spanning.has(name) ? "(?:/.*)?" : "/[^/]*";
      })
      .join("");
    const matcher = new RegExp(`^${pattern}$`, "i");
    return { method: method.toUpperCase(), template, matches: (path) => matcher.test(path.split("?")[0] ?? "") };
  }

  /** A parameter `$ref` into a file that is not saved (common api-version and subscription parameters) is left out. */
  private resolveSaved(ref: string, file: string): Json[] {
    try {
      return [this.resolve(ref, file).node];
    } catch {
      return [];
    }
  }

  private response(file: string, operationId: string, status: number): Json {
    const { node } = this.operation(file, operationId);
    const responses = isJson(node.responses) ? node.responses : {};
    const response = responses[String(status)] ?? responses.default;
    if (!isJson(response)) throw new Error(`${operationId} declares neither ${status} nor a default response`);
    return response;
  }

  private responseSwagger(file: string, operationId: string, status: number): Json | undefined {
    const response = this.response(file, operationId, status);
    return isJson(response.schema) ? response.schema : undefined;
  }

  /** A self-contained JSON schema (`definitions` inside) for a Swagger schema node of `file`. */
  private toJsonSchema(schema: Json, file: string): SchemaObject {
    const converter = new Converter(this);
    const root = converter.convert(schema, file);
    return { definitions: converter.definitions, allOf: [root] };
  }

  document(file: string): Json {
    const document = this.documents.get(file);
    if (!document) throw new Error(`definition file not loaded: ${file}`);
    return document;
  }

  /** Every definition in every loaded file, for finding the subtypes of a discriminated base. */
  *allDefinitions(): Generator<Located> {
    for (const [file, document] of this.documents) {
      if (!isJson(document.definitions)) continue;
      for (const [name, node] of Object.entries(document.definitions)) {
        if (isJson(node)) yield { file, pointer: `/definitions/${name.replace(/~/g, "~0").replace(/\//g, "~1")}`, node };
      }
    }
  }

  /** Resolves `$ref` as written in `file`: `#/pointer`, or a path relative to the file's place in the specs repository. */
  resolve(ref: string, file: string): Located {
    const [path = "", pointer = ""] = ref.split("#");
    let target = file;
    if (path !== "") {
      const original = this.originalBySaved.get(file);
      if (!original) throw new Error(`no original path known for ${file}`);
      const resolved = posix.normalize(posix.join(posix.dirname(original), path));
      const saved = this.savedByOriginal.get(resolved);
      if (!saved) throw new Error(`$ref ${ref} in ${file} points at ${resolved}, which is not saved`);
      target = saved;
    }
    let node: unknown = this.document(target);
    for (const part of decodePointer(pointer)) node = isJson(node) ? node[part] : undefined;
    if (!isJson(node)) throw new Error(`$ref ${ref} in ${file} does not resolve`);
    return { file: target, pointer, node };
  }

  private operation(file: string, operationId: string): { node: Json; item: Json; template: string; method: string } {
    const document = this.document(file);
    for (const pathsKey of ["paths", "x-ms-paths"]) {
      const paths = document[pathsKey];
      if (!isJson(paths)) continue;
      for (const [template, item] of Object.entries(paths)) {
        if (!isJson(item)) continue;
        for (const method of HTTP_METHODS) {
          const node = item[method];
          if (isJson(node) && node.operationId === operationId) return { node, item, template, method };
        }
      }
    }
    throw new Error(`${file} has no operation ${operationId}`);
  }
}

function formatErrors(errors: ErrorObject[]): string[] {
  // "must match 'then' schema" only repeats what the chosen discriminated variant already reported.
  return errors.filter((error) => error.keyword !== "if").map((error) => {
    const where = error.instancePath === "" ? "(body)" : error.instancePath;
    const detail = error.keyword === "additionalProperties" ? ` '${String(error.params.additionalProperty)}'` : error.keyword === "enum" ? ` ${JSON.stringify(error.params.allowedValues)}` : "";
    return `${where} ${error.message ?? error.keyword}${detail}`;
  });
}

function isObjectSchema(node: Json): boolean {
  return node.type === "object" || node.properties !== undefined || node.allOf !== undefined || node.additionalProperties !== undefined;
}

/** `x-nullable`: the same schema, or null (folded into `type` so that errors stay readable). */
function nullable(schema: SchemaObject): SchemaObject {
  if (typeof schema.type !== "string") return { anyOf: [{ type: "null" }, schema] };
  return { ...schema, type: [schema.type, "null"], ...(Array.isArray(schema.enum) ? { enum: [...schema.enum, null] } : {}) };
}

/** One conversion: definitions reached through `$ref` are converted once and shared by name. */
class Converter {
  readonly definitions: Record<string, SchemaObject> = {};

  constructor(private readonly specs: SwaggerSchemas) {}

  convert(node: Json, file: string): SchemaObject {
    if (typeof node.$ref === "string") return this.reference(this.specs.resolve(node.$ref, file));
    const schema = isObjectSchema(node) ? this.object(node, file) : this.scalar(node, file);
    return node["x-nullable"] === true ? nullable(schema) : schema;
  }

  private reference(target: Located): SchemaObject {
    const name = `${target.file}#${target.pointer}`.replace(/[^A-Za-z0-9_.-]/g, "_");
    if (!(name in this.definitions)) {
      this.definitions[name] = {}; // placeholder: recursive definitions (Key Vault's Error) refer to themselves
      this.definitions[name] = typeof target.node.discriminator === "string" ? this.polymorphic(target) : this.convert(target.node, target.file);
    }
    return { $ref: `#/definitions/${name}` };
  }

  /** A discriminated base: the base itself or any definition that inherits from it, picked by the discriminator value. */
  private polymorphic(base: Located): SchemaObject {
    const property = base.node.discriminator as string;
    const variants = [base, ...this.subtypesOf(base)].map((variant) => ({
      value: variant.node["x-ms-discriminator-value"] ?? decodePointer(variant.pointer).pop(),
      schema: this.object(variant.node, variant.file),
    }));
    return {
      type: "object",
      required: [property],
      properties: { [property]: { enum: variants.map((variant) => variant.value) } },
      allOf: variants.map(({ value, schema }) => ({ if: { required: [property], properties: { [property]: { const: value } } }, then: schema })),
    };
  }

  private subtypesOf(base: Located, seen = new Set<string>()): Located[] {
    const found: Located[] = [];
    for (const candidate of this.specs.allDefinitions()) {
      const key = `${candidate.file}#${candidate.pointer}`;
      if (seen.has(key) || !Array.isArray(candidate.node.allOf)) continue;
      const inherits = candidate.node.allOf.some((parent) => {
        if (!isJson(parent) || typeof parent.$ref !== "string") return false;
        const target = this.specs.resolve(parent.$ref, candidate.file);
        return target.file === base.file && target.pointer === base.pointer;
      });
      if (!inherits) continue;
      seen.add(key);
      found.push(candidate, ...this.subtypesOf(candidate, seen));
    }
    return found;
  }

  private object(node: Json, file: string): SchemaObject {
    const properties: Record<string, SchemaObject> = {};
    const required = new Set<string>();
    let additional: SchemaObject | boolean | undefined;
    const collect = (current: Json, currentFile: string) => {
      for (const parent of Array.isArray(current.allOf) ? current.allOf : []) {
        if (!isJson(parent)) continue;
        const target = typeof parent.$ref === "string" ? this.specs.resolve(parent.$ref, currentFile) : { file: currentFile, node: parent };
        collect(target.node, target.file);
      }
      for (const [name, property] of Object.entries(isJson(current.properties) ? current.properties : {})) {
        if (isJson(property)) properties[name] = this.convert(property, currentFile);
      }
      for (const name of Array.isArray(current.required) ? current.required : []) required.add(String(name));
      if (isJson(current.additionalProperties)) additional = this.convert(current.additionalProperties, currentFile);
      else if (typeof current.additionalProperties === "boolean") additional = current.additionalProperties;
    };
    collect(node, file);
    const open = Object.keys(properties).length === 0 && additional === undefined;
    return { type: "object", properties, required: [...required], additionalProperties: open ? true : (additional ?? false) };
  }

  private scalar(node: Json, file: string): SchemaObject {
    const schema: SchemaObject = {};
    for (const keyword of COPIED_KEYWORDS) if (node[keyword] !== undefined) schema[keyword] = node[keyword];
    if (isJson(node.items)) schema.items = this.convert(node.items, file);
    return schema;
  }
}

/**
 * A schema that accepts values shaped like `example`: the same field names (all required, no others)
 * and the same JSON types, recursively; arrays take the shape of their first item. For operations whose
 * only saved definition is an official example (role assignments).
 */
export function shapeOfExample(example: unknown): SchemaObject {
  if (example === null) return { type: "null" };
  if (Array.isArray(example)) return example.length > 0 ? { type: "array", items: shapeOfExample(example[0]) } : { type: "array" };
  if (isJson(example)) {
    const properties = Object.fromEntries(Object.entries(example).map(([name, value]) => [name, shapeOfExample(value)]));
    return { type: "object", properties, required: Object.keys(example), additionalProperties: false };
  }
  if (typeof example === "number") return { type: Number.isInteger(example) ? "integer" : "number" };
  return { type: typeof example };
}

/** Checks a body against a plain JSON schema (e.g. from `shapeOfExample`), with the same error lines as `SwaggerSchemas.check`. */
export function checkAgainst(schema: SchemaObject, body: unknown): string[] {
  const validate = newAjv().compile(schema);
  return validate(body) ? [] : formatErrors(validate.errors ?? []);
}
