// The repository root, wherever a test or fixture runs from: the sources (Deno, Bun) or the
// Node build in dist/tests. It is the first directory above this file holding deno.json and
// mod.ts, next to node_modules with every tool the tests run.

import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "deno.json")) && existsSync(join(dir, "mod.ts"))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`No deno.json with mod.ts above ${import.meta.url}`);
    dir = parent;
  }
}

/** The repository root. */
export const ROOT: string = findRoot();
