import { readFileSync } from "node:fs";

/**
 * The version in package.json. Read as a file, not imported (no JSON import assertions on Node 20). The
 * compiled module sits one folder deeper (dist/src/) than the source (src/): the folder above this one
 * is tried, then the one above that.
 */
function readPackageVersion(): string {
  let folder = new URL("..", import.meta.url);
  for (let level = 0; level < 2; level++, folder = new URL("..", folder)) {
    try {
      const manifest = JSON.parse(readFileSync(new URL("package.json", folder), "utf8")) as { name?: string; version?: string };
      if (manifest.name === "cmk-service" && manifest.version) return manifest.version;
    } catch {
      // No package.json at this level: try the next one up.
    }
  }
  throw new Error("package.json of cmk-service not found above src/ or dist/src/");
}

export const PACKAGE_VERSION = readPackageVersion();
