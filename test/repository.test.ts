import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import t from "tap";

/**
 * A clone anywhere must pass `npm test`: nothing the service, its tests, scripts or CI run may reach
 * outside the repository, and the copied Azure definitions must stay exact copies.
 */

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CHECKED = ["src", "test", "scripts", ".ci"];
/** Copied third-party data: its paths are the upstream repository's, and nothing follows them. */
const DATA = join("test", "fixtures");
/** This file, whose examples of bad paths are data too. */
const SELF = fileURLToPath(import.meta.url);
const TEXT = /\.(ts|js|mjs|cjs|json|sh|md|ya?ml)$|^run$/;

async function filesUnder(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { withFileTypes: true });
  const nested = await Promise.all(
    entries.map(async (entry) => {
      const path = join(directory, entry.name);
      if (relative(ROOT, path) === DATA || path === SELF) return [];
      if (entry.isDirectory()) return filesUnder(path);
      return TEXT.test(entry.name) ? [path] : [];
    }),
  );
  return nested.flat();
}

/** Relative paths written in a file (`../x`, `../../y/`), each with where it resolves from that file. */
export function relativePathsIn(file: string, text: string): { written: string; resolved: string }[] {
  const found: { written: string; resolved: string }[] = [];
  for (const match of text.matchAll(/(?<![\w.])((?:\.\.\/)+)([\w./-]*)/g)) {
    const written = match[1]! + match[2]!;
    found.push({ written, resolved: resolve(dirname(file), written) });
  }
  return found;
}

function inside(path: string): boolean {
  const from = relative(ROOT, path);
  return from === "" || (!from.startsWith(`..${sep}`) && from !== "..");
}

t.test("nothing under src/, test/ (but its copied fixtures), scripts/ or .ci/ points outside the repository", async (t) => {
  const files = (await Promise.all(CHECKED.map((directory) => filesUnder(join(ROOT, directory))))).flat();
  t.ok(files.length > 100, `${files.length} files read`);
  const outside: string[] = [];
  for (const file of files) {
    const text = await readFile(file, "utf8");
    for (const { written } of relativePathsIn(file, text).filter((path) => !inside(path.resolved))) {
      outside.push(`${relative(ROOT, file)}: ${written}`);
    }
    // Absolute paths of this machine's layout, and the design material beside the clone.
    for (const match of text.matchAll(/(?:\/work\/|\bshared\/(?:conformance|design|reference|seed)\b)[^\s"'`]*/g)) outside.push(`${relative(ROOT, file)}: ${match[0]}`);
  }
  t.same(outside, [], "every path stays inside the repository");
});

t.test("the check itself catches a path that leaves the repository", async (t) => {
  const file = join(ROOT, "test", "sandbox", "example.test.ts");
  const paths = relativePathsIn(file, 'new URL("../../../beside-the-clone/fixtures/", import.meta.url); import x from "../helpers/app.js";');
  t.same(
    paths.map((path) => [path.written, inside(path.resolved)]),
    [
      ["../../../beside-the-clone/fixtures/", false],
      ["../helpers/app.js", true],
    ],
  );
});

t.test("test/fixtures/azure-rest holds exact copies (SHA-256 as in its SOURCES.md)", async (t) => {
  const directory = join(ROOT, "test", "fixtures", "azure-rest");
  const sources = await readFile(join(directory, "SOURCES.md"), "utf8");
  const listed = [...sources.matchAll(/^([0-9a-f]{64}) {2}(\S+)$/gm)].map((match) => ({ sha256: match[1]!, file: match[2]! }));
  const saved = (await readdir(directory, { recursive: true, withFileTypes: true }))
    .filter((entry) => entry.isFile() && !entry.name.endsWith(".md"))
    .map((entry) => relative(directory, join(entry.parentPath, entry.name)).split(sep).join("/"));
  t.same(listed.map(({ file }) => file).sort(), saved.sort(), "every saved file is listed, and every listed one is saved");
  for (const { sha256, file } of listed) {
    const actual = createHash("sha256").update(await readFile(join(directory, file))).digest("hex");
    t.equal(actual, sha256, file);
  }
});
