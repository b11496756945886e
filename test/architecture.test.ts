import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import t from "tap";
import ts from "typescript";
import { REPOSITORY } from "./helpers/server-process.js";

/**
 * The shape of src/, read from its imports with the TypeScript compiler's parser (static, re-exports and
 * dynamic imports): no import cycle anywhere, and each folder imports only what its place allows. A
 * violation names the files, so the fix is where the message points. Cycles are of the modules that load
 * each other: `import type` is erased from the compiled code (verbatimModuleSyntax), so it loads nothing;
 * the folder rules count it all the same.
 */

const SRC = join(REPOSITORY, "src");

interface Module {
  /** Path relative to src/, e.g. "job-store/job-store.ts". */
  file: string;
  /** Other modules of src/ it imports. */
  local: string[];
  /** Those it loads when it runs (type-only imports left out). */
  loads: string[];
  /** Package names it imports (node: built-ins left out). */
  packages: string[];
  /** Those it loads when it runs. */
  packageLoads: string[];
}

function sourceFiles(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts") ? [path] : [];
  });
}

function packageName(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0]!;
}

/** Every module specifier in `source`, and whether the import is for types alone. */
function importsOf(source: ts.SourceFile): Array<{ specifier: string; typeOnly: boolean }> {
  const found: Array<{ specifier: string; typeOnly: boolean }> = [];
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const bindings = clause?.namedBindings;
      const allTypes = !!clause && (clause.isTypeOnly || (!clause.name && !!bindings && ts.isNamedImports(bindings) && bindings.elements.length > 0 && bindings.elements.every((element) => element.isTypeOnly)));
      found.push({ specifier: node.moduleSpecifier.text, typeOnly: allTypes });
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      found.push({ specifier: node.moduleSpecifier.text, typeOnly: node.isTypeOnly });
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteral(node.arguments[0])) {
      found.push({ specifier: node.arguments[0].text, typeOnly: false });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

function readGraph(): Map<string, Module> {
  const modules = new Map<string, Module>();
  for (const path of sourceFiles(SRC)) {
    const source = ts.createSourceFile(path, readFileSync(path, "utf8"), ts.ScriptTarget.ES2022, false, ts.ScriptKind.TS);
    const module: Module = { file: relative(SRC, path), local: [], loads: [], packages: [], packageLoads: [] };
    for (const { specifier, typeOnly } of importsOf(source)) {
      if (specifier.startsWith(".")) {
        const target = relative(SRC, resolve(dirname(path), specifier)).replace(/\.js$/, ".ts");
        module.local.push(target);
        if (!typeOnly) module.loads.push(target);
      } else if (!specifier.startsWith("node:")) {
        module.packages.push(packageName(specifier));
        if (!typeOnly) module.packageLoads.push(packageName(specifier));
      }
    }
    modules.set(module.file, module);
  }
  return modules;
}

/** Strongly connected components of more than one module (or a module loading itself): the cycles. */
function cycles(modules: Map<string, Module>, edges: (module: Module) => string[] = (module) => module.loads): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (file: string) => {
    index.set(file, next);
    low.set(file, next);
    next += 1;
    stack.push(file);
    onStack.add(file);
    for (const target of edges(modules.get(file)!)) {
      if (!modules.has(target)) continue;
      if (!index.has(target)) {
        visit(target);
        low.set(file, Math.min(low.get(file)!, low.get(target)!));
      } else if (onStack.has(target)) {
        low.set(file, Math.min(low.get(file)!, index.get(target)!));
      }
    }
    if (low.get(file) !== index.get(file)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== file);
    if (component.length > 1 || edges(modules.get(file)!).includes(file)) found.push(component.sort());
  };
  for (const file of modules.keys()) if (!index.has(file)) visit(file);
  return found;
}

const folderOf = (file: string) => (file.includes("/") ? file.slice(0, file.indexOf("/")) : file);

/** Every module `from` loads, directly or through others (itself included). */
function reachable(modules: Map<string, Module>, from: string): Set<string> {
  const seen = new Set<string>();
  const walk = (file: string) => {
    if (seen.has(file) || !modules.has(file)) return;
    seen.add(file);
    for (const target of modules.get(file)!.loads) walk(target);
  };
  walk(from);
  return seen;
}

const modules = readGraph();

t.test("the scanner sees the graph (a test that cannot fail is a defect)", async (t) => {
  t.ok(modules.size > 100, `${modules.size} modules under src/`);
  t.ok(modules.get("app.ts")?.local.includes("plugins/app/redis.ts"), "app.ts imports the redis plugin");
  t.ok(modules.get("runtime.ts")?.local.includes("sandbox/index.ts"), "a dynamic import is an import");
  t.ok(modules.get("errors.ts")?.local.includes("schemas/jobs.ts") && !modules.get("errors.ts")?.loads.includes("schemas/jobs.ts"), "an import type is an import that loads nothing");
  const made = (file: string, loads: string[]): [string, Module] => [file, { file, local: loads, loads, packages: [], packageLoads: [] }];
  const cyclic = new Map<string, Module>([made("a.ts", ["b.ts"]), made("b.ts", ["c.ts"]), made("c.ts", ["a.ts"]), made("d.ts", ["a.ts"])]);
  t.same(cycles(cyclic), [["a.ts", "b.ts", "c.ts"]], "a made-up three-module cycle is found");
});

t.test("no import cycle in src/", async (t) => {
  const found = cycles(modules);
  t.same(found, [], found.map((cycle) => `cycle: ${cycle.join(" → ")}`).join("\n"));
  // Types only: not a loading cycle, but shown so it does not grow unseen.
  for (const cycle of cycles(modules, (module) => module.local)) t.comment(`modules that import each other's types: ${cycle.join(", ")}`);
});

t.test("each folder imports only what its place allows", async (t) => {
  const forbidden: Array<{ folders: string[]; mayNotImport: string[]; why: string }> = [
    { folders: ["job-store"], mayNotImport: ["worker", "services", "plugins", "routes", "app.ts", "runtime.ts", "server.ts"], why: "the store is below everyone who uses it" },
    { folders: ["worker"], mayNotImport: ["services", "plugins", "routes", "app.ts"], why: "the worker process runs no API code" },
    { folders: ["services"], mayNotImport: ["worker", "plugins", "routes", "app.ts", "runtime.ts"], why: "the API runs no worker code; plugins attach services, not the reverse" },
    { folders: ["domain"], mayNotImport: ["job-store", "worker", "services", "plugins", "routes", "preflight", "security", "audit", "sandbox"], why: "domain rules are pure" },
  ];
  for (const { folders, mayNotImport, why } of forbidden) {
    for (const module of modules.values()) {
      if (!folders.includes(folderOf(module.file))) continue;
      const bad = module.local.filter((target) => mayNotImport.includes(folderOf(target)));
      t.same(bad, [], `${module.file} imports ${bad.join(", ")}: ${why}`);
    }
  }
  for (const module of modules.values()) {
    if (folderOf(module.file) !== "sandbox") continue;
    const outside = module.local.filter((target) => folderOf(target) !== "sandbox");
    t.same(outside, [], `${module.file} imports ${outside.join(", ")}: the emulator imports nothing of the service`);
  }
  const sandboxUsers = [...modules.values()].filter((module) => folderOf(module.file) !== "sandbox" && module.local.some((target) => folderOf(target) === "sandbox"));
  t.same(sandboxUsers.map((module) => module.file), ["runtime.ts"], "only runtime.ts loads the emulator (in sandbox mode)");
});

t.test("src/domain is pure: it imports no Fastify, BullMQ, ioredis or Azure SDK, and loads nothing that does", async (t) => {
  const io = (name: string) => name === "fastify" || name.startsWith("fastify-") || name.startsWith("@fastify/") || name === "bullmq" || name === "ioredis" || name.startsWith("@azure/");
  for (const module of modules.values()) {
    if (folderOf(module.file) !== "domain") continue;
    const direct = module.packages.filter(io);
    t.same(direct, [], `${module.file} imports ${direct.join(", ")}`);
    for (const file of reachable(modules, module.file)) {
      const packages = modules.get(file)!.packageLoads.filter(io);
      t.same(packages, [], `${module.file} loads ${file}, which loads ${packages.join(", ")}`);
    }
  }
});

t.test("only the job store builds Redis connections and keys", async (t) => {
  for (const module of modules.values()) {
    if (folderOf(module.file) === "job-store") continue;
    const text = readFileSync(join(SRC, module.file), "utf8");
    t.notMatch(text, /new (Redis|Cluster)\(/, `${module.file} opens no Redis connection of its own (job-store/redis-connection.ts does)`);
    t.notMatch(text, /defineCommand|\.eval(sha)?\(/, `${module.file} runs no Lua script of its own`);
  }
});
