// The shape of the library, checked over its import graph (ARCHITECTURE.md explains it): the
// folders are layers that import one way only, no file imports itself back through others
// (type-only imports included), the Redis backend and its client are reached only through
// their own entry points, nothing reachable from mod.ts imports node: modules or a Redis
// client, and no import() takes a specifier a tool cannot read.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import ts from "typescript";
import { test } from "./_harness.ts";
import { ROOT } from "./_root.ts";

/** Which folders each folder may import from; mod.ts, the root entry point, may import any. */
const LAYERS: Record<string, readonly string[]> = {
  core: [],
  backends: ["core"],
  metrics: ["core", "backends"],
  exposition: ["core", "metrics"],
  setup: ["core", "backends", "metrics"],
  runtime: ["core", "backends", "metrics"],
  adapters: ["core", "metrics", "exposition", "setup"],
};

/** Files only their own entry point (and their own folder) may import: remote code loads on demand. */
const ON_DEMAND = [/^backends\/redis\.ts$/, /^backends\/upstash\.ts$/, /^backends\/_remote\//];

/** Imports nothing reachable from mod.ts may make: they would end up in every edge bundle. */
const SERVER_ONLY = [/^node:/, /^ioredis$/, /^@upstash\/redis$/];

interface Edge {
  from: string;
  to: string;
}

interface Graph {
  files: string[];
  edges: Edge[];
  /** Imports that leave the library: `node:x`, npm packages. */
  external: Edge[];
  /** import() calls whose specifier is not a string literal. */
  unreadable: string[];
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) out.push(...sourceFiles(path));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) out.push(path);
  }
  return out;
}

/** Every import of a file: static, type-only, re-exports, import() and import("x").T types. */
function importsOf(path: string, text: string): { specifiers: string[]; unreadable: number } {
  const file = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true);
  const specifiers: string[] = [];
  let unreadable = 0;
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) {
      specifiers.push((node.moduleSpecifier as ts.StringLiteral).text);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      specifiers.push((node.argument.literal as ts.StringLiteral).text);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [argument] = node.arguments;
      if (argument !== undefined && ts.isStringLiteralLike(argument)) specifiers.push(argument.text);
      else unreadable++;
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return { specifiers, unreadable };
}

/** The import graph of the library: mod.ts and every folder of LAYERS. */
function libraryGraph(): Graph {
  const files = ["mod.ts", ...Object.keys(LAYERS).flatMap(sourceFiles)];
  const graph: Graph = { files, edges: [], external: [], unreadable: [] };
  for (const from of files) {
    const { specifiers, unreadable } = importsOf(from, readFileSync(join(ROOT, from), "utf8"));
    if (unreadable > 0) graph.unreadable.push(`${from} (${unreadable})`);
    for (const specifier of specifiers) {
      if (specifier.startsWith(".")) {
        const to = relative(ROOT, normalize(join(ROOT, dirname(from), specifier))).split("\\").join("/");
        graph.edges.push({ from, to });
      } else {
        graph.external.push({ from, to: specifier });
      }
    }
  }
  return graph;
}

const folderOf = (file: string): string => (file.includes("/") ? file.slice(0, file.indexOf("/")) : file);

/** Imports that go against the layers: into a folder the importing folder may not use. */
function upwardImports(edges: readonly Edge[], layers: Record<string, readonly string[]>): string[] {
  const out: string[] = [];
  for (const { from, to } of edges) {
    const [a, b] = [folderOf(from), folderOf(to)];
    if (a === "mod.ts" || a === b) continue;
    if (!(a in layers) || !layers[a].includes(b)) out.push(`${from} -> ${to}`);
  }
  return out;
}

/** The import cycles between files, each as the files it goes through (Tarjan's components). */
function cycles(files: readonly string[], edges: readonly Edge[]): string[][] {
  const next = new Map<string, string[]>(files.map((file) => [file, []]));
  for (const { from, to } of edges) next.get(from)?.push(to);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let counter = 0;
  const connect = (file: string): void => {
    index.set(file, counter);
    low.set(file, counter++);
    stack.push(file);
    onStack.add(file);
    for (const to of next.get(file) ?? []) {
      if (!index.has(to)) {
        connect(to);
        low.set(file, Math.min(low.get(file)!, low.get(to)!));
      } else if (onStack.has(to)) {
        low.set(file, Math.min(low.get(file)!, index.get(to)!));
      }
    }
    if (low.get(file) === index.get(file)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== file);
      if (component.length > 1 || (next.get(file) ?? []).includes(file)) found.push(component.sort());
    }
  };
  for (const file of files) if (!index.has(file)) connect(file);
  return found;
}

/** Every file mod.ts reaches through static imports. */
function reachable(start: string, edges: readonly Edge[]): Set<string> {
  const seen = new Set<string>([start]);
  const queue = [start];
  while (queue.length > 0) {
    const file = queue.shift()!;
    for (const { from, to } of edges) {
      if (from === file && !seen.has(to)) {
        seen.add(to);
        queue.push(to);
      }
    }
  }
  return seen;
}

const graph = libraryGraph();

test("every import of the library resolves to one of its files", () => {
  const missing = graph.edges.filter(({ to }) => !graph.files.includes(to)).map((e) =>
    `${e.from} -> ${e.to}`
  );
  assert.deepEqual(missing, []);
  assert.ok(graph.edges.length > 50, `only ${graph.edges.length} imports found: the parser misses some`);
});

test("the folders import one way: core, backends, metrics, then exposition, setup and runtime, then adapters", () => {
  assert.deepEqual(upwardImports(graph.edges, LAYERS), []);
});

test("no file imports itself back through other files, type-only imports included", () => {
  assert.deepEqual(cycles(graph.files, graph.edges), []);
});

test("the remote backends are reached only through their entry points, never from the core layers", () => {
  const wrong = graph.edges.filter(({ from, to }) =>
    ON_DEMAND.some((pattern) => pattern.test(to)) && folderOf(from) !== "backends"
  );
  assert.deepEqual(wrong.map((e) => `${e.from} -> ${e.to}`), []);
});

test("nothing reachable from mod.ts imports a node: module, ioredis or @upstash/redis", () => {
  const reached = reachable("mod.ts", graph.edges);
  assert.ok(
    reached.has("metrics/counter.ts") && reached.has("setup/load.ts"),
    "the walk reaches the library",
  );
  for (
    const file of [
      "backends/redis.ts",
      "backends/upstash.ts",
      "adapters/node.ts",
      "adapters/http.ts",
      "adapters/hono.ts",
      "runtime/mod.ts",
    ]
  ) {
    assert.ok(!reached.has(file), `mod.ts reaches ${file}`);
  }
  const server = graph.external.filter(({ from, to }) =>
    reached.has(from) && SERVER_ONLY.some((pattern) => pattern.test(to))
  );
  assert.deepEqual(server.map((e) => `${e.from} -> ${e.to}`), []);
});

test("no import() in the library takes a specifier that bundlers and deno publish cannot read", () => {
  assert.deepEqual(graph.unreadable, []);
});

test("the checks find an upward import, a cycle and an unreadable import() when there is one", () => {
  const edges: Edge[] = [
    { from: "core/a.ts", to: "metrics/b.ts" },
    { from: "metrics/b.ts", to: "core/a.ts" },
    { from: "metrics/c.ts", to: "metrics/c.ts" },
  ];
  assert.deepEqual(upwardImports(edges, LAYERS), ["core/a.ts -> metrics/b.ts"]);
  assert.deepEqual(cycles(["core/a.ts", "metrics/b.ts", "metrics/c.ts"], edges), [
    ["core/a.ts", "metrics/b.ts"],
    ["metrics/c.ts"],
  ]);
  const parsed = importsOf(
    "x.ts",
    `// import "./commented.ts";\nimport type { T } from "./t.ts";\nexport * from "./e.ts";\n` +
      `const m = await import("./literal.ts");\nconst n = await import(name);\ntype U = import("./u.ts").U;`,
  );
  assert.deepEqual(parsed, { specifiers: ["./t.ts", "./e.ts", "./literal.ts", "./u.ts"], unreadable: 1 });
});
