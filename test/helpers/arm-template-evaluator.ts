/**
 * A small ARM template "deployment" for tests: resolves parameters, evaluates the template expressions
 * cmk-service writes (parameters, variables, concat, format, resourceId, subscriptionResourceId,
 * extensionResourceId, guid, reference(...).x, subscription(), resourceGroup()), orders resources by
 * dependsOn, and gives each resource's body as ARM would send it to the resource provider. Anything
 * else (an unknown function, a dependsOn naming nothing, reference() to a template resource the
 * resource does not depend on) throws, so a template the evaluator cannot deploy fails its test.
 *
 * guid() is a deterministic stand-in (a name-based UUID of its arguments), not ARM's exact hash.
 */
import { createHash } from "node:crypto";
import type { ArmParametersFile, ArmTemplate, TemplateResource } from "../../src/domain/arm-template.js";

export interface DeploymentContext {
  subscriptionId: string;
  resourceGroup: string;
  tenantId: string;
  /** reference() of resources outside the template, by ARM id (any case). */
  existing?: Record<string, Record<string, unknown>>;
  /** The state reference() sees of a resource the template made; default: stubs per type. */
  runtimeState?: (resource: DeployedResource) => Record<string, unknown>;
}

export interface DeployedResource {
  id: string;
  type: string;
  apiVersion: string;
  name: string;
  dependsOn: string[];
  /** What ARM sends the resource provider: the resource without template-only members, every expression evaluated. */
  body: Record<string, unknown>;
}

export interface Deployment {
  parameters: Record<string, unknown>;
  variables: Record<string, unknown>;
  /** In deployment order. */
  resources: DeployedResource[];
  outputs: Record<string, unknown>;
}

/** Members of a template resource that ARM keeps to itself. */
const TEMPLATE_ONLY = ["type", "apiVersion", "name", "scope", "dependsOn", "condition", "comments", "copy"];

// ---------------------------------------------------------------------------------------------
// Expression parsing.

type Token = { kind: "string"; value: string } | { kind: "number"; value: number } | { kind: "ident"; value: string } | { kind: "punct"; value: string };

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === "'") {
      let value = "";
      i++;
      for (;;) {
        if (i >= source.length) throw new Error(`unterminated string in ${source}`);
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
      const match = /^-?\d+/.exec(source.slice(i))!;
      tokens.push({ kind: "number", value: Number(match[0]) });
      i += match[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const match = /^[A-Za-z_][A-Za-z0-9_]*/.exec(source.slice(i))!;
      tokens.push({ kind: "ident", value: match[0] });
      i += match[0].length;
    } else if ("(),.[]".includes(c)) {
      tokens.push({ kind: "punct", value: c });
      i++;
    } else {
      throw new Error(`unexpected "${c}" in expression ${source}`);
    }
  }
  return tokens;
}

type Node = { kind: "literal"; value: unknown } | { kind: "call"; name: string; args: Node[] } | { kind: "member"; target: Node; name: string } | { kind: "index"; target: Node; index: Node };

function parse(source: string): Node {
  const tokens = tokenize(source);
  let position = 0;
  const peek = () => tokens[position];
  const expect = (value: string) => {
    const token = tokens[position++];
    if (token?.kind !== "punct" || token.value !== value) throw new Error(`expected "${value}" in expression ${source}`);
  };
  const expression = (): Node => {
    const token = tokens[position++];
    if (!token) throw new Error(`expression ${source} ends early`);
    let node: Node;
    if (token.kind === "string" || token.kind === "number") node = { kind: "literal", value: token.value };
    else if (token.kind === "ident") {
      expect("(");
      const args: Node[] = [];
      if (!(peek()?.kind === "punct" && peek()?.value === ")")) {
        args.push(expression());
        while (peek()?.kind === "punct" && peek()?.value === ",") {
          position++;
          args.push(expression());
        }
      }
      expect(")");
      node = { kind: "call", name: token.value, args };
    } else throw new Error(`unexpected "${token.value}" in expression ${source}`);
    for (;;) {
      const next = peek();
      if (next?.kind === "punct" && next.value === ".") {
        position++;
        const member = tokens[position++];
        if (member?.kind !== "ident") throw new Error(`expected a member name in expression ${source}`);
        node = { kind: "member", target: node, name: member.value };
      } else if (next?.kind === "punct" && next.value === "[") {
        position++;
        const index = expression();
        expect("]");
        node = { kind: "index", target: node, index };
      } else return node;
    }
  };
  const node = expression();
  if (position !== tokens.length) throw new Error(`trailing input in expression ${source}`);
  return node;
}

// ---------------------------------------------------------------------------------------------
// Ids and functions.

/** A name-based UUID (version 5 layout) of the arguments: deterministic, like ARM's guid(). */
export function deterministicGuid(...parts: string[]): string {
  const hash = createHash("sha1").update(parts.join("-")).digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** `Microsoft.X/a/b` + [n1, n2] → `providers/Microsoft.X/a/n1/b/n2`. */
function typedPath(type: string, names: string[]): string {
  const [namespace, ...types] = type.replace(/\/+$/, "").split("/");
  if (!namespace || types.length === 0) throw new Error(`"${type}" is not a resource type`);
  if (names.length !== types.length) throw new Error(`resource type ${type} needs ${types.length} name segment(s), got ${names.length} (${names.join("/")})`);
  return `providers/${namespace}/${types.map((segment, index) => `${segment}/${names[index]}`).join("/")}`;
}

const isResourceType = (value: string) => /^[A-Za-z0-9]+(\.[A-Za-z0-9]+)+\//.test(value);

function asStrings(args: unknown[], fn: string): string[] {
  return args.map((arg) => {
    if (typeof arg !== "string") throw new Error(`${fn}() takes strings, got ${JSON.stringify(arg)}`);
    return arg;
  });
}

// ---------------------------------------------------------------------------------------------
// Deployment.

function defaultRuntimeState(context: DeploymentContext) {
  return (resource: DeployedResource): Record<string, unknown> => {
    const type = resource.type.toLowerCase();
    if (type === "microsoft.managedidentity/userassignedidentities") {
      return { principalId: deterministicGuid("principal", resource.id), clientId: deterministicGuid("client", resource.id), tenantId: context.tenantId };
    }
    if (type === "microsoft.keyvault/vaults/keys") {
      const [vault, key] = resource.name.split("/");
      const keyUri = `https://${vault}.vault.azure.net/keys/${key}`;
      return { keyUri, keyUriWithVersion: `${keyUri}/${createHash("md5").update(resource.id).digest("hex")}` };
    }
    return (resource.body.properties as Record<string, unknown> | undefined) ?? {};
  };
}

export function deploy(template: ArmTemplate, parametersFile: ArmParametersFile | undefined, context: DeploymentContext): Deployment {
  const resourceGroupId = `/subscriptions/${context.subscriptionId}/resourceGroups/${context.resourceGroup}`;
  const runtimeState = context.runtimeState ?? defaultRuntimeState(context);
  const parameters: Record<string, unknown> = {};
  const variables: Record<string, unknown> = {};
  const evaluatingVariables = new Set<string>();
  const deployed = new Map<string, DeployedResource>();
  /** While a resource is evaluated: the ids it may reference (its dependsOn closure). */
  let mayReference: Set<string> | undefined;

  const call = (name: string, args: unknown[], phase: "parameters" | "variables" | "resources"): unknown => {
    switch (name) {
      case "parameters": {
        const [parameter] = asStrings(args, name);
        if (phase === "parameters") throw new Error("a parameter's default may not use parameters()");
        if (!(parameter! in parameters)) throw new Error(`parameters('${parameter}') is not declared`);
        return parameters[parameter!];
      }
      case "variables": {
        const [variable] = asStrings(args, name);
        if (phase === "parameters") throw new Error("a parameter's default may not use variables()");
        return variableValue(variable!);
      }
      case "concat":
        if (args.every(Array.isArray)) return (args as unknown[][]).flat();
        return asStrings(args, name).join("");
      case "format": {
        const [format, ...rest] = args;
        if (typeof format !== "string") throw new Error("format() needs a format string");
        return format.replace(/\{(\d+)\}/g, (_, index: string) => String(rest[Number(index)]));
      }
      case "resourceId": {
        const strings = asStrings(args, name);
        const typeIndex = strings.findIndex(isResourceType);
        if (typeIndex < 0 || typeIndex > 2) throw new Error(`resourceId(${strings.join(", ")}) names no resource type`);
        const [subscriptionId, resourceGroup] =
          typeIndex === 2 ? [strings[0]!, strings[1]!] : typeIndex === 1 ? [context.subscriptionId, strings[0]!] : [context.subscriptionId, context.resourceGroup];
        return `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/${typedPath(strings[typeIndex]!, strings.slice(typeIndex + 1))}`;
      }
      case "subscriptionResourceId": {
        const strings = asStrings(args, name);
        const typeIndex = strings.findIndex(isResourceType);
        if (typeIndex < 0 || typeIndex > 1) throw new Error(`subscriptionResourceId(${strings.join(", ")}) names no resource type`);
        const subscriptionId = typeIndex === 1 ? strings[0]! : context.subscriptionId;
        return `/subscriptions/${subscriptionId}/${typedPath(strings[typeIndex]!, strings.slice(typeIndex + 1))}`;
      }
      case "extensionResourceId": {
        const [base, type, ...names] = asStrings(args, name);
        if (!base?.startsWith("/")) throw new Error(`extensionResourceId() needs a resource id, got ${base}`);
        return `${base}/${typedPath(type!, names)}`;
      }
      case "guid":
        if (args.length === 0) throw new Error("guid() needs at least one argument");
        return deterministicGuid(...asStrings(args, name));
      case "subscription":
        return { id: `/subscriptions/${context.subscriptionId}`, subscriptionId: context.subscriptionId, tenantId: context.tenantId };
      case "resourceGroup":
        return { id: resourceGroupId, name: context.resourceGroup };
      case "reference": {
        if (phase !== "resources") throw new Error("reference() is only allowed in resources and outputs");
        const [id] = asStrings(args.slice(0, 1), name);
        if (!id?.startsWith("/")) throw new Error(`reference('${id}'): give the resource id (and its api-version)`);
        if (args.length < 2) throw new Error(`reference('${id}') without an api-version`);
        const key = id.toLowerCase();
        const inTemplate = resourceIds.get(key);
        if (inTemplate) {
          if (mayReference && !mayReference.has(key)) throw new Error(`reference('${id}') but the resource does not depend on it`);
          const target = deployed.get(key);
          if (!target) throw new Error(`reference('${id}') before it was deployed`);
          return runtimeState(target);
        }
        const existing = Object.entries(context.existing ?? {}).find(([candidate]) => candidate.toLowerCase() === key);
        if (!existing) throw new Error(`reference('${id}'): no such resource in the template or the test's existing resources`);
        return existing[1];
      }
      default:
        throw new Error(`the evaluator does not know ${name}()`);
    }
  };

  const evaluateNode = (node: Node, phase: "parameters" | "variables" | "resources"): unknown => {
    switch (node.kind) {
      case "literal":
        return node.value;
      case "call":
        return call(node.name, node.args.map((arg) => evaluateNode(arg, phase)), phase);
      case "member": {
        const target = evaluateNode(node.target, phase) as Record<string, unknown> | undefined;
        if (target === null || typeof target !== "object" || !(node.name in target)) throw new Error(`no member ${node.name} in ${JSON.stringify(target)}`);
        return target[node.name];
      }
      case "index": {
        const target = evaluateNode(node.target, phase) as Record<string, unknown>;
        return target[String(evaluateNode(node.index, phase))];
      }
    }
  };

  /** Strings "[...]" are expressions, "[[..." a literal starting with "["; member names too. */
  const evaluate = (value: unknown, phase: "parameters" | "variables" | "resources"): unknown => {
    if (typeof value === "string") {
      if (value.startsWith("[[")) return value.slice(1);
      if (value.startsWith("[") && value.endsWith("]")) return evaluateNode(parse(value.slice(1, -1)), phase);
      return value;
    }
    if (Array.isArray(value)) return value.map((item) => evaluate(item, phase));
    if (value !== null && typeof value === "object") {
      return Object.fromEntries(
        Object.entries(value).map(([member, inner]) => {
          const name = evaluate(member, phase);
          if (typeof name !== "string") throw new Error(`member name ${member} is not a string`);
          return [name, evaluate(inner, phase)];
        }),
      );
    }
    return value;
  };

  const variableValue = (name: string): unknown => {
    if (name in variables) return variables[name];
    if (!template.variables || !(name in template.variables)) throw new Error(`variables('${name}') is not declared`);
    if (evaluatingVariables.has(name)) throw new Error(`variable ${name} refers to itself`);
    evaluatingVariables.add(name);
    variables[name] = evaluate(template.variables[name], "variables");
    evaluatingVariables.delete(name);
    return variables[name];
  };

  // Parameters: the file's value, else the default; types checked as ARM does.
  const supplied = parametersFile?.parameters ?? {};
  for (const name of Object.keys(supplied)) if (!(name in template.parameters)) throw new Error(`the parameters file sets ${name}, which the template does not declare`);
  for (const [name, declaration] of Object.entries(template.parameters)) {
    const value = name in supplied ? supplied[name]!.value : declaration.defaultValue !== undefined ? evaluate(declaration.defaultValue, "parameters") : undefined;
    if (value === undefined) throw new Error(`parameter ${name} has no value`);
    const expected = { string: "string", securestring: "string", int: "number", bool: "boolean", object: "object", secureObject: "object", array: "object" }[declaration.type];
    if (typeof value !== expected) throw new Error(`parameter ${name} is ${declaration.type}, got ${JSON.stringify(value)}`);
    parameters[name] = value;
  }
  for (const name of Object.keys(template.variables ?? {})) variableValue(name);

  // Resource ids, from type, name and scope (no reference() there).
  const idOf = (resource: TemplateResource): string => {
    const names = String(evaluate(resource.name, "variables")).split("/");
    const scope = resource.scope === undefined ? undefined : String(evaluate(resource.scope, "variables"));
    if (scope === undefined) return `${resourceGroupId}/${typedPath(resource.type, names)}`;
    const scopeId = scope.startsWith("/") ? scope : `${resourceGroupId}/providers/${scope}`;
    return `${scopeId}/${typedPath(resource.type, names)}`;
  };
  const resourceIds = new Map(template.resources.map((resource) => [idOf(resource).toLowerCase(), resource] as const));
  if (resourceIds.size !== template.resources.length) throw new Error("two resources of the template have the same id");
  const dependencies = new Map<string, string[]>();
  for (const [id, resource] of resourceIds) {
    const dependsOn = (evaluate(resource.dependsOn ?? [], "variables") as string[]).map((dependency) => dependency.toLowerCase());
    for (const dependency of dependsOn) if (!resourceIds.has(dependency)) throw new Error(`${id} depends on ${dependency}, which the template does not declare`);
    dependencies.set(id, dependsOn);
  }
  /** Everything a resource depends on, directly or not: what its reference() calls may name. */
  const closure = (id: string, seen = new Set<string>()): Set<string> => {
    for (const dependency of dependencies.get(id) ?? []) {
      if (seen.has(dependency)) continue;
      seen.add(dependency);
      closure(dependency, seen);
    }
    return seen;
  };

  // Deploy in dependsOn order (template order among independent resources).
  const pending = [...resourceIds.keys()];
  const order: DeployedResource[] = [];
  while (pending.length > 0) {
    const index = pending.findIndex((id) => (dependencies.get(id) ?? []).every((dependency) => deployed.has(dependency)));
    if (index < 0) throw new Error(`dependsOn cycle among ${pending.join(", ")}`);
    const id = pending.splice(index, 1)[0]!;
    const resource = resourceIds.get(id)!;
    mayReference = closure(id);
    const evaluated = evaluate(resource, "resources") as Record<string, unknown>;
    mayReference = undefined;
    const body = Object.fromEntries(Object.entries(evaluated).filter(([member]) => !TEMPLATE_ONLY.includes(member)));
    const entry: DeployedResource = {
      id: idOf(resource),
      type: resource.type,
      apiVersion: resource.apiVersion,
      name: String(evaluated.name),
      dependsOn: dependencies.get(id) ?? [],
      body,
    };
    deployed.set(id, entry);
    order.push(entry);
  }
  const outputs = Object.fromEntries(Object.entries(template.outputs ?? {}).map(([name, output]) => [name, evaluate(output.value, "resources")]));
  return { parameters, variables, resources: order, outputs };
}

/** The one deployed resource of a type (throws when there is not exactly one). */
export function deployedOfType(deployment: Deployment, type: string): DeployedResource {
  const matches = deployment.resources.filter((resource) => resource.type.toLowerCase() === type.toLowerCase());
  if (matches.length !== 1) throw new Error(`${matches.length} resources of type ${type}`);
  return matches[0]!;
}
