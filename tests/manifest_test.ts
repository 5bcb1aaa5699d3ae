// The JSR manifest (deno.json) and the npm manifest (package.json) must list the same entry
// points, under matching names and the same version; this fails as soon as they drift.

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { runtime, test } from "./_harness.ts";
import { ROOT } from "./_root.ts";

const root = ROOT;

// deno-lint-ignore no-explicit-any
function readJson(name: string): any {
  return JSON.parse(readFileSync(join(root, name), "utf8"));
}

const deno = readJson("deno.json");
const pkg = readJson("package.json");

/** Maps a deno.json export target (`./x/y.ts`) to its build outputs. */
function built(target: string): { import: string; types: string } {
  assert.match(target, /^\.\/.+\.ts$/, `deno.json export target "${target}" is not a ./*.ts file`);
  const stem = target.slice(2, -3);
  return { import: `./dist/${stem}.js`, types: `./dist/${stem}.d.ts` };
}

/** The exports of deno.json as a map, whether written as a string or an object. */
function denoExports(): Record<string, string> {
  const exports = deno.exports;
  return typeof exports === "string" ? { ".": exports } : exports;
}

test("deno.json and package.json have matching names", () => {
  assert.equal(deno.name, "@theus/theus");
  assert.equal(pkg.name, "theus");
});

test("deno.json and package.json have the same version", () => {
  assert.equal(typeof deno.version, "string");
  assert.equal(deno.version, pkg.version);
});

test("deno.json and package.json export the same entry points", () => {
  assert.equal(typeof pkg.exports, "object", "package.json exports must be an object of entry points");
  assert.deepEqual(Object.keys(pkg.exports).sort(), Object.keys(denoExports()).sort());
});

test("every package.json export is the build of its deno.json export", () => {
  for (const [key, target] of Object.entries(denoExports())) {
    const entry = pkg.exports[key];
    assert.equal(typeof entry, "object", `package.json exports["${key}"] must be an object`);
    const want = built(target);
    assert.equal(entry.import, want.import, `package.json exports["${key}"].import`);
    assert.equal(entry.types, want.types, `package.json exports["${key}"].types`);
    // TypeScript picks the first matching condition: "types" has to come first.
    assert.equal(Object.keys(entry)[0], "types", `package.json exports["${key}"] must list "types" first`);
  }
});

test("package.json main and types point at the root entry point", () => {
  const want = built(denoExports()["."]);
  assert.equal(pkg.main, want.import);
  assert.equal(pkg.types, want.types);
});

test("package.json files covers every exported file", () => {
  // "files" entries are directories ("dist/metrics/") or globs with `*` ("dist/mod.*").
  const patterns = (pkg.files as string[]).map((entry) => {
    const source = entry.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replaceAll("*", "[^/]*");
    return new RegExp(`^${source}${entry.endsWith("/") ? "" : "(/|$)"}`);
  });
  for (const [key, entry] of Object.entries(pkg.exports as Record<string, Record<string, string>>)) {
    for (const file of Object.values(entry)) {
      const path = file.replace(/^\.\//, "");
      assert.ok(
        patterns.some((p) => p.test(path)),
        `package.json files does not ship ${file} (exports["${key}"])`,
      );
    }
  }
});

test("every deno.json export target exists", () => {
  for (const target of Object.values(denoExports())) {
    assert.ok(existsSync(join(root, target)), `deno.json export target ${target} is missing`);
  }
});

if (runtime === "node") {
  // Only Node runs after a fresh build; elsewhere dist/ may be stale or absent.
  test("every file package.json exports exists after the build", () => {
    for (const [key, entry] of Object.entries(pkg.exports as Record<string, Record<string, string>>)) {
      for (const [condition, file] of Object.entries(entry)) {
        assert.ok(
          existsSync(join(root, file)),
          `package.json exports["${key}"].${condition}: ${file} is missing`,
        );
      }
    }
  });
}
