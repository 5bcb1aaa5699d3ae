// The repository root, wherever a test or fixture runs from: the sources (Deno, Bun) or the
// Node build in dist/tests. It is the first directory above this file holding deno.json and
// mod.ts, next to node_modules with every tool the tests run. And how a test source runs as a
// child process on each runtime.

import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
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

/**
 * The command that runs a test source as a child process: Deno and Bun run the source, Node its
 * build, from THEUS_WRITER_DIST (a tsc outDir) or dist/ (tests/run.mjs builds it).
 *
 * @param runtime The child's runtime.
 * @param source The source, relative to the root (`tests/fixtures/redis_writer.ts`).
 * @throws {Error} For Node, when the build of the source is missing.
 */
export function childCommand(runtime: "deno" | "bun" | "node", source: string): [string, string[]] {
  const bin = join(ROOT, "node_modules", ".bin");
  if (runtime === "deno") return [join(bin, "deno"), ["run", "-A", "--quiet", join(ROOT, source)]];
  if (runtime === "bun") return [join(bin, "bun"), [join(ROOT, source)]];
  const built = join(process.env.THEUS_WRITER_DIST || join(ROOT, "dist"), source.replace(/\.ts$/, ".js"));
  if (!existsSync(built)) {
    throw new Error(
      `The Node build ${built} is missing: build it with \`tsc -p tsconfig.json\` (tests/run.mjs does), ` +
        `or set THEUS_WRITER_DIST to a tsc outDir that holds it`,
    );
  }
  // Node from PATH: a Deno test's process.execPath is Deno.
  return ["node", [built]];
}
