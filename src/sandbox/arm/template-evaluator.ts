import { createHash } from "node:crypto";

/**
 * ARM template evaluation, for the emulated deployments (arm/deployments.ts) and for tests that read
 * what a template would deploy. It covers the template language the service's own templates use
 * (src/domain/arm-template.ts): parameters with defaults and types, variables, `concat`, `format`,
 * `resourceId`, `subscriptionResourceId`, `extensionResourceId`, `guid`, `subscription()`,
 * `resourceGroup()`, `empty`, `not`, `equals`, `if` and `reference(id, apiVersion).member`; a resource's
 * `condition` (false: not deployed, and dependsOn naming it is dropped, as ARM does); `dependsOn`
 * ordering; resource ids from type, name and `scope`. Anything else (an unknown function, a dependsOn naming nothing, a
 * `reference()` to a template resource the resource does not depend on) is a `TemplateError`, so a
 * template this cannot deploy is refused rather than deployed differently.
 *
 * `guid()` is a deterministic stand-in (a name-based UUID of its arguments), not ARM's exact hash.
 */

export class TemplateError extends Error {}

/** Thrown by a `ReferenceResolver` that has to fetch a resource's state first; evaluate again once it has it. */
export class ReferenceNeeded extends Error {
  constructor(
    readonly id: string,
    readonly apiVersion: string,
  ) {
    super(`reference('${id}', '${apiVersion}') is not known yet`);
  }
}

export interface TemplateParameterDeclaration {
  type: string;
  defaultValue?: unknown;
  allowedValues?: unknown[];
  minLength?: number;
  maxLength?: number;
  minValue?: number;
  maxValue?: number;
}

export interface TemplateResourceDeclaration {
  type: string;
  apiVersion: string;
  name: string;
  [member: string]: unknown;
}

export interface DeploymentTemplate {
  parameters?: Record<string, TemplateParameterDeclaration>;
  variables?: Record<string, unknown>;
  resources: TemplateResourceDeclaration[];
  outputs?: Record<string, { type: string; value: unknown }>;
}

/** A deployment's `properties.parameters`, or a parameters file's `parameters`: `{ name: { value } }`. */
export type ParameterValues = Record<string, { value?: unknown; reference?: unknown }>;

export interface DeployedResource {
  id: string;
  type: string;
  apiVersion: string;
  name: string;
  /** Ids (lower case) of the template resources it depends on. */
  dependsOn: string[];
  /** What ARM sends the resource provider: the resource without template-only members, every expression evaluated. */
  body: Record<string, unknown>;
}

/** The state `reference(id, apiVersion)` gives: a resource's `properties`. `deployed` is set for resources the template deployed. */
export type ReferenceResolver = (id: string, apiVersion: string, deployed: DeployedResource | undefined) => Record<string, unknown>;

export interface TemplateScope {
  subscriptionId: string;
  resourceGroup: string;
  tenantId: string;
  /** `resourceGroup().location`, when known. */
  resourceGroupLocation?: string;
  /** `subscription().displayName`, when known. */
  subscriptionDisplayName?: string;
}

export interface PlannedResource {
  id: string;
  /** `id` in lower case: how dependsOn and reference() name it. */
  key: string;
  type: string;
  apiVersion: string;
  dependsOn: string[];
  declaration: TemplateResourceDeclaration;
}

/** Members of a template resource that ARM keeps to itself. */
const TEMPLATE_ONLY = ["type", "apiVersion", "name", "scope", "dependsOn", "condition", "comments", "copy"];

/** Template parameter types (case-insensitive in ARM) and the JSON values they take. */
const PARAMETER_TYPES: Record<string, { name: string; accepts: (value: unknown) => boolean }> = {
  string: { name: "String", accepts: (value) => typeof value === "string" },
  securestring: { name: "SecureString", accepts: (value) => typeof value === "string" },
  int: { name: "Int", accepts: (value) => Number.isInteger(value) },
  bool: { name: "Bool", accepts: (value) => typeof value === "boolean" },
  object: { name: "Object", accepts: (value) => typeof value === "object" && value !== null && !Array.isArray(value) },
  secureobject: { name: "SecureObject", accepts: (value) => typeof value === "object" && value !== null && !Array.isArray(value) },
  array: { name: "Array", accepts: Array.isArray },
};

/** ARM's spelling of a template type in deployment answers (`"String"`, `"Bool"`, …). */
export function armTypeName(type: string): string {
  return PARAMETER_TYPES[type.toLowerCase()]?.name ?? type;
}

// ---------------------------------------------------------------------------------------------
// Expression parsing.

type Token = { kind: "string"; value: string } | { kind: "number"; value: number } | { kind: "ident"; value: string } | { kind: "punct"; value: string };

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i] as string;
    if (/\s/.test(c)) {
      i++;
    } else if (c === "'") {
      let value = "";
      i++;
      for (;;) {
        if (i >= source.length) throw new TemplateError(`unterminated string in ${source}`);
        if (source[i] === "'") {
          if (source[i + 1] === "'") {
            value += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += source[i++];
      }
      tokens.push({ kind: "string", value });
    } else if (/[0-9-]/.test(c)) {
      const digits = /^-?\d+/.exec(source.slice(i));
      if (!digits) throw new TemplateError(`unexpected "${c}" in expression ${source}`);
      tokens.push({ kind: "number", value: Number(digits[0]) });
      i += digits[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(source.slice(i))?.[0] ?? c;
      tokens.push({ kind: "ident", value: word });
      i += word.length;
    } else if ("(),.[]".includes(c)) {
      tokens.push({ kind: "punct", value: c });
      i++;
    } else {
      throw new TemplateError(`unexpected "${c}" in expression ${source}`);
    }
  }
  return tokens;
}

type Node = { kind: "literal"; value: unknown } | { kind: "call"; name: string; args: Node[] } | { kind: "member"; target: Node; name: string } | { kind: "index"; target: Node; index: Node };

function parse(source: string): Node {
  const tokens = tokenize(source);
  let position = 0;
  const peek = () => tokens[position];
  const isPunct = (token: Token | undefined, value: string) => token?.kind === "punct" && token.value === value;
  const expect = (value: string) => {
    if (!isPunct(tokens[position++], value)) throw new TemplateError(`expected "${value}" in expression ${source}`);
  };
  const expression = (): Node => {
    const token = tokens[position++];
    if (!token) throw new TemplateError(`expression ${source} ends early`);
    let node: Node;
    if (token.kind === "string" || token.kind === "number") node = { kind: "literal", value: token.value };
    else if (token.kind === "ident") {
      expect("(");
      const args: Node[] = [];
      if (!isPunct(peek(), ")")) {
        args.push(expression());
        while (isPunct(peek(), ",")) {
          position++;
          args.push(expression());
        }
      }
      expect(")");
      node = { kind: "call", name: token.value, args };
    } else throw new TemplateError(`unexpected "${token.value}" in expression ${source}`);
    for (;;) {
      if (isPunct(peek(), ".")) {
        position++;
        const member = tokens[position++];
        if (member?.kind !== "ident") throw new TemplateError(`expected a member name in expression ${source}`);
        node = { kind: "member", target: node, name: member.value };
      } else if (isPunct(peek(), "[")) {
        position++;
        const index = expression();
        expect("]");
        node = { kind: "index", target: node, index };
      } else return node;
    }
  };
  const node = expression();
  if (position !== tokens.length) throw new TemplateError(`trailing input in expression ${source}`);
  return node;
}

// ---------------------------------------------------------------------------------------------
// Ids and functions.

/** A name-based UUID (version 5 layout) of the arguments: deterministic, like ARM's guid(). */
export function deterministicGuid(...parts: string[]): string {
  const hash = createHash("sha1").update(parts.join("-")).digest();
  hash[6] = ((hash[6] as number) & 0x0f) | 0x50;
  hash[8] = ((hash[8] as number) & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** `Microsoft.X/a/b` + [n1, n2] → `providers/Microsoft.X/a/n1/b/n2`. */
function typedPath(type: string, names: string[]): string {
  const [namespace, ...types] = type.replace(/\/+$/, "").split("/");
  if (!namespace || types.length === 0) throw new TemplateError(`"${type}" is not a resource type`);
  if (names.length !== types.length) throw new TemplateError(`resource type ${type} needs ${types.length} name segment(s), got ${names.length} (${names.join("/")})`);
  return `providers/${namespace}/${types.map((segment, index) => `${segment}/${names[index]}`).join("/")}`;
}

const isResourceType = (value: string) => /^[A-Za-z0-9]+(\.[A-Za-z0-9]+)+\//.test(value);

function asStrings(args: unknown[], fn: string): string[] {
  return args.map((arg) => {
    if (typeof arg !== "string") throw new TemplateError(`${fn}() takes strings, got ${JSON.stringify(arg)}`);
    return arg;
  });
}

/** A parameter's `allowedValues`, `minLength`/`maxLength` (strings, arrays) and `minValue`/`maxValue` (ints), as ARM checks them. */
function constraintProblem(declaration: TemplateParameterDeclaration, value: unknown): string | undefined {
  if (declaration.allowedValues && !declaration.allowedValues.some((allowed) => JSON.stringify(allowed) === JSON.stringify(value))) {
    return `${JSON.stringify(value)} is not one of the allowed values ${JSON.stringify(declaration.allowedValues)}`;
  }
  const length = typeof value === "string" || Array.isArray(value) ? value.length : undefined;
  if (length !== undefined && declaration.minLength !== undefined && length < declaration.minLength) return `length ${length} is below the minimum length ${declaration.minLength}`;
  if (length !== undefined && declaration.maxLength !== undefined && length > declaration.maxLength) return `length ${length} is above the maximum length ${declaration.maxLength}`;
  if (typeof value === "number" && declaration.minValue !== undefined && value < declaration.minValue) return `${value} is below the minimum value ${declaration.minValue}`;
  if (typeof value === "number" && declaration.maxValue !== undefined && value > declaration.maxValue) return `${value} is above the maximum value ${declaration.maxValue}`;
  return undefined;
}

type Phase = "parameters" | "variables" | "resources";

/** The value of a reference() during validation, and of anything computed from one. */
const DEFERRED: unknown = Object.freeze({ deferred: "reference() is known at deployment time" });

/**
 * A template checked and ordered for one resource group: parameters resolved and type-checked,
 * variables evaluated, resource ids and the dependsOn order known. Resources are evaluated one at a
 * time (`evaluate`), so a deployment can apply each before the next one reads it with reference().
 */
export class DeploymentPlan {
  readonly parameters: Record<string, unknown> = {};
  /** Declared parameter types, as the template writes them. */
  readonly parameterTypes: Record<string, string> = {};
  readonly variables: Record<string, unknown> = {};
  /** In deployment order: dependsOn first, template order among independent resources. */
  readonly resources: PlannedResource[] = [];
  private readonly byKey = new Map<string, PlannedResource>();
  private readonly deployed = new Map<string, DeployedResource>();
  private readonly evaluatingVariables = new Set<string>();
  private readonly resourceGroupId: string;

  constructor(
    private readonly template: DeploymentTemplate,
    parameterValues: ParameterValues | undefined,
    private readonly scope: TemplateScope,
  ) {
    this.resourceGroupId = `/subscriptions/${scope.subscriptionId}/resourceGroups/${scope.resourceGroup}`;
    if (!Array.isArray(template.resources)) throw new TemplateError("the template has no 'resources' array");
    this.resolveParameters(parameterValues ?? {});
    for (const name of Object.keys(template.variables ?? {})) this.variableValue(name);
    this.orderResources();
  }

  /** A resource's id and body, every expression evaluated; `reference()` goes to `resolve`. */
  evaluate(resource: PlannedResource, resolve: ReferenceResolver): DeployedResource {
    const entry = this.evaluateResource(resource, resolve);
    this.deployed.set(resource.key, entry);
    return entry;
  }

  /**
   * Evaluates every resource and output as validation does, before anything exists. A reference()'s
   * value is not known yet (ARM, too, leaves it to deployment time), so it stands for "deferred", and so
   * does whatever is made of it; everything else (functions, parameters, variables, which resources a
   * reference() may name) is checked, also after the first reference().
   */
  validate(): void {
    const deferred: ReferenceResolver = () => DEFERRED as unknown as Record<string, unknown>;
    for (const resource of this.resources) this.evaluateResource(resource, deferred);
    this.outputs(deferred);
  }

  private evaluateResource(resource: PlannedResource, resolve: ReferenceResolver): DeployedResource {
    const closure = this.dependencyClosure(resource.key);
    const evaluated = this.evaluateValue(resource.declaration, "resources", { resolve, mayReference: closure }) as Record<string, unknown>;
    return {
      id: resource.id,
      type: resource.type,
      apiVersion: resource.apiVersion,
      name: String(evaluated.name),
      dependsOn: resource.dependsOn,
      body: Object.fromEntries(Object.entries(evaluated).filter(([member]) => !TEMPLATE_ONLY.includes(member))),
    };
  }

  /** The template's outputs, `{ name: { type, value } }` with ARM's type names; `reference()` goes to `resolve`. */
  outputs(resolve: ReferenceResolver): Record<string, { type: string; value: unknown }> {
    return Object.fromEntries(
      Object.entries(this.template.outputs ?? {}).map(([name, output]) => [name, { type: armTypeName(output.type), value: this.evaluateValue(output.value, "resources", { resolve }) }]),
    );
  }

  private resolveParameters(supplied: ParameterValues): void {
    const declared = this.template.parameters ?? {};
    for (const name of Object.keys(supplied)) {
      if (!(name in declared)) throw new TemplateError(`the parameters set ${name}, which the template does not declare`);
      if (supplied[name]?.reference !== undefined) throw new TemplateError(`parameter ${name} is a Key Vault reference, which the sandbox does not resolve`);
    }
    for (const [name, declaration] of Object.entries(declared)) {
      const type = PARAMETER_TYPES[String(declaration.type).toLowerCase()];
      if (!type) throw new TemplateError(`parameter ${name} has the unknown type '${declaration.type}'`);
      const given = supplied[name];
      const value = given && "value" in given ? given.value : declaration.defaultValue !== undefined ? this.evaluateValue(declaration.defaultValue, "parameters") : undefined;
      if (value === undefined) throw new TemplateError(`parameter ${name} has no value`);
      if (!type.accepts(value)) throw new TemplateError(`parameter ${name} is ${declaration.type}, got ${JSON.stringify(value)}`);
      const problem = constraintProblem(declaration, value);
      if (problem) throw new TemplateError(`parameter ${name}: ${problem}`);
      this.parameters[name] = value;
      this.parameterTypes[name] = declaration.type;
    }
  }

  private variableValue(name: string): unknown {
    if (name in this.variables) return this.variables[name];
    if (!this.template.variables || !(name in this.template.variables)) throw new TemplateError(`variables('${name}') is not declared`);
    if (this.evaluatingVariables.has(name)) throw new TemplateError(`variable ${name} refers to itself`);
    this.evaluatingVariables.add(name);
    this.variables[name] = this.evaluateValue(this.template.variables[name], "variables");
    this.evaluatingVariables.delete(name);
    return this.variables[name];
  }

  /** Resource ids from type, name and scope (no reference() there), then the dependsOn order. */
  private orderResources(): void {
    const all = this.template.resources.map((declaration) => {
      if (typeof declaration?.type !== "string" || typeof declaration.apiVersion !== "string" || typeof declaration.name !== "string") {
        throw new TemplateError("every resource needs 'type', 'apiVersion' and 'name'");
      }
      const id = this.idOf(declaration);
      return { id, key: id.toLowerCase(), type: declaration.type, apiVersion: declaration.apiVersion, dependsOn: [] as string[], declaration, deployed: this.conditionOf(declaration, id) };
    });
    const keys = new Set<string>();
    for (const resource of all) {
      if (keys.has(resource.key)) throw new TemplateError(`two resources of the template have the id ${resource.id}`);
      keys.add(resource.key);
    }
    const declared = all.filter((resource) => resource.deployed).map(({ deployed: _deployed, ...resource }) => resource);
    for (const resource of declared) this.byKey.set(resource.key, resource);
    for (const resource of declared) {
      const dependsOn = this.evaluateValue(resource.declaration.dependsOn ?? [], "variables");
      if (!Array.isArray(dependsOn) || !dependsOn.every((dependency) => typeof dependency === "string")) throw new TemplateError(`dependsOn of ${resource.id} must list resource ids`);
      const named = dependsOn.map((dependency) => dependency.toLowerCase());
      for (const dependency of named) {
        if (!keys.has(dependency)) throw new TemplateError(`${resource.id} depends on ${dependency}, which the template does not declare`);
      }
      // A dependency whose condition is false is not deployed, and ARM drops it from dependsOn.
      resource.dependsOn = named.filter((dependency) => this.byKey.has(dependency));
    }
    const pending = [...declared];
    const placed = new Set<string>();
    while (pending.length > 0) {
      const index = pending.findIndex((resource) => resource.dependsOn.every((dependency) => placed.has(dependency)));
      if (index < 0) throw new TemplateError(`dependsOn cycle among ${pending.map((resource) => resource.id).join(", ")}`);
      const [next] = pending.splice(index, 1);
      if (!next) break;
      placed.add(next.key);
      this.resources.push(next);
    }
  }

  /** `condition`: absent or true deploys the resource; it may use parameters and variables, not reference(). */
  private conditionOf(declaration: TemplateResourceDeclaration, id: string): boolean {
    if (declaration.condition === undefined) return true;
    const condition = this.evaluateValue(declaration.condition, "variables");
    if (typeof condition !== "boolean") throw new TemplateError(`the condition of ${id} is ${JSON.stringify(condition)}, not a boolean`);
    return condition;
  }

  private idOf(declaration: TemplateResourceDeclaration): string {
    const names = String(this.evaluateValue(declaration.name, "variables")).split("/");
    const scope = declaration.scope === undefined ? undefined : String(this.evaluateValue(declaration.scope, "variables"));
    if (scope === undefined) return `${this.resourceGroupId}/${typedPath(declaration.type, names)}`;
    const scopeId = scope.startsWith("/") ? scope : `${this.resourceGroupId}/providers/${scope}`;
    return `${scopeId}/${typedPath(declaration.type, names)}`;
  }

  /** Everything a resource depends on, directly or not: what its reference() calls may name. */
  private dependencyClosure(key: string, seen = new Set<string>()): Set<string> {
    for (const dependency of this.byKey.get(key)?.dependsOn ?? []) {
      if (seen.has(dependency)) continue;
      seen.add(dependency);
      this.dependencyClosure(dependency, seen);
    }
    return seen;
  }

  /** Strings "[...]" are expressions, "[[..." a literal starting with "["; member names too. */
  private evaluateValue(value: unknown, phase: Phase, references?: { resolve: ReferenceResolver; mayReference?: Set<string> }): unknown {
    if (typeof value === "string") {
      if (value.startsWith("[[")) return value.slice(1);
      if (value.startsWith("[") && value.endsWith("]")) return this.evaluateNode(parse(value.slice(1, -1)), phase, references);
      return value;
    }
    if (Array.isArray(value)) return value.map((item) => this.evaluateValue(item, phase, references));
    if (value !== null && typeof value === "object") {
      return Object.fromEntries(
        Object.entries(value).map(([member, inner]) => {
          const name = this.evaluateValue(member, phase, references);
          if (typeof name !== "string") throw new TemplateError(`member name ${member} is not a string`);
          return [name, this.evaluateValue(inner, phase, references)];
        }),
      );
    }
    return value;
  }

  private evaluateNode(node: Node, phase: Phase, references: { resolve: ReferenceResolver; mayReference?: Set<string> } | undefined): unknown {
    switch (node.kind) {
      case "literal":
        return node.value;
      case "call": {
        const args = node.args.map((arg) => this.evaluateNode(arg, phase, references));
        // Made of a reference() validation cannot know: known only at deployment time.
        if (args.includes(DEFERRED)) return DEFERRED;
        return this.call(node.name, args, phase, references);
      }
      case "member": {
        const target = this.evaluateNode(node.target, phase, references) as Record<string, unknown> | undefined;
        if (target === DEFERRED) return DEFERRED;
        if (target === null || typeof target !== "object" || !(node.name in target)) throw new TemplateError(`no member ${node.name} in ${JSON.stringify(target)}`);
        return target[node.name];
      }
      case "index": {
        const target = this.evaluateNode(node.target, phase, references) as Record<string, unknown>;
        if (target === DEFERRED) return DEFERRED;
        return target[String(this.evaluateNode(node.index, phase, references))];
      }
    }
  }

  private call(name: string, args: unknown[], phase: Phase, references: { resolve: ReferenceResolver; mayReference?: Set<string> } | undefined): unknown {
    const { scope } = this;
    switch (name) {
      case "parameters": {
        const [parameter = ""] = asStrings(args, name);
        if (phase === "parameters") throw new TemplateError("a parameter's default may not use parameters()");
        if (!(parameter in this.parameters)) throw new TemplateError(`parameters('${parameter}') is not declared`);
        return this.parameters[parameter];
      }
      case "variables": {
        const [variable = ""] = asStrings(args, name);
        if (phase === "parameters") throw new TemplateError("a parameter's default may not use variables()");
        return this.variableValue(variable);
      }
      case "concat":
        if (args.every(Array.isArray)) return (args as unknown[][]).flat();
        return asStrings(args, name).join("");
      case "format": {
        const [format, ...rest] = args;
        if (typeof format !== "string") throw new TemplateError("format() needs a format string");
        return format.replace(/\{(\d+)\}/g, (_, index: string) => String(rest[Number(index)]));
      }
      case "resourceId": {
        const strings = asStrings(args, name);
        const typeIndex = strings.findIndex(isResourceType);
        if (typeIndex < 0 || typeIndex > 2) throw new TemplateError(`resourceId(${strings.join(", ")}) names no resource type`);
        const [subscriptionId, resourceGroup] =
          typeIndex === 2 ? [strings[0] as string, strings[1] as string] : typeIndex === 1 ? [scope.subscriptionId, strings[0] as string] : [scope.subscriptionId, scope.resourceGroup];
        return `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/${typedPath(strings[typeIndex] as string, strings.slice(typeIndex + 1))}`;
      }
      case "subscriptionResourceId": {
        const strings = asStrings(args, name);
        const typeIndex = strings.findIndex(isResourceType);
        if (typeIndex < 0 || typeIndex > 1) throw new TemplateError(`subscriptionResourceId(${strings.join(", ")}) names no resource type`);
        const subscriptionId = typeIndex === 1 ? (strings[0] as string) : scope.subscriptionId;
        return `/subscriptions/${subscriptionId}/${typedPath(strings[typeIndex] as string, strings.slice(typeIndex + 1))}`;
      }
      case "extensionResourceId": {
        const [base = "", type = "", ...names] = asStrings(args, name);
        if (!base.startsWith("/")) throw new TemplateError(`extensionResourceId() needs a resource id, got ${base}`);
        return `${base}/${typedPath(type, names)}`;
      }
      case "empty": {
        const [value] = args;
        if (args.length !== 1) throw new TemplateError("empty() takes one argument");
        if (value === null || value === undefined) return true;
        if (typeof value === "string" || Array.isArray(value)) return value.length === 0;
        if (typeof value === "object") return Object.keys(value).length === 0;
        throw new TemplateError(`empty() takes a string, array or object, got ${JSON.stringify(value)}`);
      }
      case "not":
        if (args.length !== 1 || typeof args[0] !== "boolean") throw new TemplateError(`not() takes one boolean, got ${JSON.stringify(args)}`);
        return !args[0];
      case "equals":
        if (args.length !== 2) throw new TemplateError("equals() takes two arguments");
        return JSON.stringify(args[0]) === JSON.stringify(args[1]);
      case "if":
        // Both branches are evaluated (ARM evaluates only the chosen one): keep reference() out of them.
        if (args.length !== 3 || typeof args[0] !== "boolean") throw new TemplateError("if() takes a boolean and two values");
        return args[0] ? args[1] : args[2];
      case "guid":
        if (args.length === 0) throw new TemplateError("guid() needs at least one argument");
        return deterministicGuid(...asStrings(args, name));
      case "subscription":
        return {
          id: `/subscriptions/${scope.subscriptionId}`,
          subscriptionId: scope.subscriptionId,
          tenantId: scope.tenantId,
          ...(scope.subscriptionDisplayName ? { displayName: scope.subscriptionDisplayName } : {}),
        };
      case "resourceGroup":
        return {
          id: this.resourceGroupId,
          name: scope.resourceGroup,
          type: "Microsoft.Resources/resourceGroups",
          ...(scope.resourceGroupLocation ? { location: scope.resourceGroupLocation } : {}),
          properties: { provisioningState: "Succeeded" },
        };
      case "reference": {
        if (phase !== "resources" || !references) throw new TemplateError("reference() is only allowed in resources and outputs");
        const [id = ""] = asStrings(args.slice(0, 1), name);
        if (!id.startsWith("/")) throw new TemplateError(`reference('${id}'): give the resource id (and its api-version)`);
        const [apiVersion] = asStrings(args.slice(1, 2), name);
        if (apiVersion === undefined) throw new TemplateError(`reference('${id}') without an api-version`);
        const key = id.toLowerCase();
        // A template resource must be deployed first, so one may name only what it depends on.
        if (this.byKey.has(key) && references.mayReference && !references.mayReference.has(key)) {
          throw new TemplateError(`reference('${id}') but the resource does not depend on it`);
        }
        return references.resolve(id, apiVersion, this.deployed.get(key));
      }
      default:
        throw new TemplateError(`the template function ${name}() is not supported by the sandbox`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// A whole deployment at once, with reference() answered from given states (tests, previews).

export interface DeploymentContext extends TemplateScope {
  /** reference() of resources outside the template, by ARM id (any case). */
  existing?: Record<string, Record<string, unknown>>;
  /** The state reference() sees of a resource the template made; default: its evaluated `properties`. */
  runtimeState?: (resource: DeployedResource) => Record<string, unknown>;
}

export interface Deployment {
  parameters: Record<string, unknown>;
  variables: Record<string, unknown>;
  /** In deployment order. */
  resources: DeployedResource[];
  outputs: Record<string, unknown>;
}

export function deploy(template: DeploymentTemplate, parametersFile: { parameters?: ParameterValues } | undefined, context: DeploymentContext): Deployment {
  const plan = new DeploymentPlan(template, parametersFile?.parameters, context);
  const resolve: ReferenceResolver = (id, _apiVersion, deployed) => {
    if (deployed) return context.runtimeState ? context.runtimeState(deployed) : ((deployed.body.properties as Record<string, unknown> | undefined) ?? {});
    const existing = Object.entries(context.existing ?? {}).find(([candidate]) => candidate.toLowerCase() === id.toLowerCase());
    if (!existing) throw new TemplateError(`reference('${id}'): no such resource in the template or the existing resources`);
    return existing[1];
  };
  const resources = plan.resources.map((resource) => plan.evaluate(resource, resolve));
  const outputs = Object.fromEntries(Object.entries(plan.outputs(resolve)).map(([name, output]) => [name, output.value]));
  return { parameters: plan.parameters, variables: plan.variables, resources, outputs };
}

/** The one deployed resource of a type (throws when there is not exactly one). */
export function deployedOfType(deployment: Deployment, type: string): DeployedResource {
  const matches = deployment.resources.filter((resource) => resource.type.toLowerCase() === type.toLowerCase());
  if (matches.length !== 1 || !matches[0]) throw new Error(`${matches.length} resources of type ${type}`);
  return matches[0];
}
