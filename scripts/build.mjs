// The build: TypeScript to dist/ (tsconfig.build.json), then the files tsc does not copy (the job
// store's Lua scripts) beside the compiled modules that read them. `--outDir <dir>` builds elsewhere
// (test/container.test.ts builds an image's contents this way).
import { spawnSync } from "node:child_process";
import process from "node:process";
import { cpSync, readdirSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const at = process.argv.indexOf("--outDir");
const outDir = at >= 0 ? resolve(process.argv[at + 1]) : join(root, "dist");

const tsc = spawnSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", join(root, "tsconfig.build.json"), "--outDir", outDir], { stdio: "inherit" });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);

/** Every .lua file under src/, copied to the same place under outDir/src. */
function copyAssets(folder) {
  for (const entry of readdirSync(folder, { withFileTypes: true })) {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) copyAssets(path);
    else if (entry.name.endsWith(".lua")) cpSync(path, join(outDir, relative(root, path)));
  }
}
copyAssets(join(root, "src"));
