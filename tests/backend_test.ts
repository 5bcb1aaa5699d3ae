import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, sep } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { type BackendConfig, Counter, flush, Gauge, Histogram, loadBackend, Summary } from "../mod.ts";
import type { Backend, MetricInfo } from "../core/backend.ts";
import { MemoryBackend } from "../backends/memory.ts";
import { runtime, test } from "./_harness.ts";
import { myBackendKey, myBackendStore, resetMyBackendStore } from "./fixtures/my_backend.ts";

// --- Paths: the tests run from the sources (Deno, Bun) or from a build (Node) ---

const EXT = import.meta.url.endsWith(".ts") ? ".ts" : ".js";

/** The absolute path of a fixture module, in the sources or in the build. */
function fixtureModule(name: string): string {
  return fileURLToPath(new URL(`./fixtures/${name}${EXT}`, import.meta.url));
}

/** The absolute path of a data fixture, which only the sources hold. */
function fixtureData(name: string): string {
  // Sources: ./fixtures; a build in dist/tests or in a deeper directory: the sources' fixtures.
  for (
    const candidate of [
      `./fixtures/${name}`,
      `../../tests/fixtures/${name}`,
      `../../../tests/fixtures/${name}`,
    ]
  ) {
    const path = fileURLToPath(new URL(candidate, import.meta.url));
    if (existsSync(path)) return path;
  }
  throw new Error(`Fixture ${name} not found`);
}

/** A path as THEUS_BACKEND takes it: relative to the working directory. */
function fromCwd(path: string): string {
  const rel = relative(process.cwd(), path).split(sep).join("/");
  return rel.startsWith("../") ? rel : `./${rel}`;
}

// "./tests/fixtures/my_backend.ts" from the sources.
const MY_BACKEND_MODULE = fromCwd(fixtureModule("my_backend"));
const MY_BACKEND = `${MY_BACKEND_MODULE}#MyBackend`;
const CONFIG_FILE = fixtureData("backend_config.json");
const CONFIG = { source: "backend_config.json", nested: { n: 1 } };

// --- Helpers ---

function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = new Map(Object.keys(vars).map((name) => [name, process.env[name]]));
  const apply = (values: Map<string, string | undefined>) => {
    for (const [name, value] of values) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  apply(new Map(Object.entries(vars)));
  return fn().finally(() => apply(saved));
}

async function restoreMemory(): Promise<void> {
  await withEnv({ THEUS_BACKEND: undefined, THEUS_BACKEND_CONFIG: undefined }, () => loadBackend());
}

function tempFile(name: string, text: string): { path: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), "theus-backend-test-"));
  const path = join(dir, name);
  writeFileSync(path, text);
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

type Call = ["initialize", BackendConfig] | ["new", BackendConfig, string, string | undefined];

/** A backend class that logs its calls and keeps values in memory. */
function recordingBackend() {
  const calls: Call[] = [];
  const infos: { name: string; type: string; labelValues: object; labelNames: readonly string[] }[] = [];
  const values = new Map<string, number>();
  class Recording implements Backend {
    #key: string;
    static initialize(config: BackendConfig): void {
      calls.push(["initialize", config]);
    }
    constructor(config: BackendConfig, metric: MetricInfo, histogramBucket?: string) {
      calls.push(["new", config, metric.name, histogramBucket]);
      infos.push({
        name: metric.name,
        type: metric.type,
        labelValues: { ...metric.labelValues },
        labelNames: [...metric.labelNames],
      });
      this.#key = `${metric.name}${JSON.stringify(metric.labelValues)}${histogramBucket ?? ""}`;
    }
    inc(value: number): void {
      values.set(this.#key, (values.get(this.#key) ?? 0) + value);
    }
    dec(value: number): void {
      this.inc(-value);
    }
    set(value: number): void {
      values.set(this.#key, value);
    }
    get(): number {
      return values.get(this.#key) ?? 0;
    }
  }
  return { Recording, calls, infos, values };
}

interface ChildResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a fixture script with the runtime running the tests. */
function runChild(
  script: string,
  env: Record<string, string | undefined>,
  denoFlags: string[] = ["-A"],
): Promise<ChildResult> {
  // deno-lint-ignore no-explicit-any
  const deno = (globalThis as any).Deno;
  const command: string = runtime === "deno" ? deno.execPath() : process.execPath;
  const args = runtime === "deno" ? ["run", ...denoFlags, script] : [script];
  const childEnv: Record<string, string> = {};
  for (const [name, value] of Object.entries({ ...process.env, NO_COLOR: "1", ...env })) {
    if (value !== undefined) childEnv[name] = value;
  }
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd: process.cwd(), env: childEnv, timeout: 30_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

// --- loadBackend() with a class ---

test("loadBackend() calls initialize() once with the config, before any instance, which gets the same config", async () => {
  const { Recording, calls } = recordingBackend();
  const config = { url: "x://y", n: 1 };
  await loadBackend({ backend: Recording, config });
  try {
    assert.deepEqual(calls, [["initialize", config]]);
    new Counter({ name: "a_total", help: "A", registry: null });
    new Gauge({ name: "g", help: "G", registry: null });
    assert.deepEqual(calls, [
      ["initialize", config],
      ["new", config, "a_total", undefined],
      ["new", config, "g", undefined],
    ]);
  } finally {
    await loadBackend({ backend: "memory" });
  }
});

test("loadBackend() gives an empty config when none is given", async () => {
  const { Recording, calls } = recordingBackend();
  await loadBackend({ backend: Recording });
  try {
    new Counter({ name: "c", help: "C", registry: null });
    assert.deepEqual(calls, [["initialize", {}], ["new", {}, "c", undefined]]);
  } finally {
    await loadBackend({ backend: "memory" });
  }
});

test("a backend is told the metric, its complete labels and which value of a histogram or summary it holds", async () => {
  const { Recording, calls, infos } = recordingBackend();
  await loadBackend({ backend: Recording, config: {} });
  try {
    const c = new Counter({ name: "c", help: "C", labelNames: ["a", "b"], registry: null });
    c.labels({ b: "2" }); // partial: no value yet
    assert.equal(calls.length, 1);
    c.labels({ b: "2", a: "1" });
    c.labels({ a: "1", b: "2" }); // cached: no new value
    new Histogram({ name: "h", help: "H", buckets: [0.1, 1], registry: null });
    new Summary({ name: "s", help: "S", registry: null });
    assert.deepEqual(calls.slice(1).map((call) => call.slice(2)), [
      ["c", undefined],
      ["h", "0.1"],
      ["h", "1.0"],
      ["h", "+Inf"],
      ["h", "sum"],
      ["s", "count"],
      ["s", "sum"],
    ]);
    assert.deepEqual(infos[0], {
      name: "c",
      type: "counter",
      labelValues: { a: "1", b: "2" },
      labelNames: ["a", "b"],
    });
    assert.deepEqual(Object.keys(infos[0].labelValues), ["a", "b"], "labels in declaration order");
    assert.deepEqual(
      infos.slice(1).map((info) => info.type),
      Array(4).fill("histogram").concat("summary", "summary"),
    );
  } finally {
    await loadBackend({ backend: "memory" });
  }
});

test("histogram bucket values hold the count of their own bucket, not a cumulative count", async () => {
  const { Recording, values } = recordingBackend();
  await loadBackend({ backend: Recording, config: {} });
  try {
    const h = new Histogram({ name: "h", help: "H", buckets: [0.1, 1], registry: null });
    for (const value of [0.0625, 0.5, 0.75, 5]) h.observe(value);
    assert.deepEqual(Object.fromEntries(values), {
      "h{}0.1": 1,
      "h{}1.0": 2,
      "h{}+Inf": 1,
      "h{}sum": 6.3125,
    });
    const [family] = await h.collect();
    assert.deepEqual(family.series, [{ labels: {}, buckets: [1, 3, 4], sum: 6.3125, count: 4 }]);
  } finally {
    await loadBackend({ backend: "memory" });
  }
});

test("metrics keep the backend that was current when they were created", async () => {
  const { Recording, values } = recordingBackend();
  await loadBackend({ backend: Recording, config: {} });
  let early: Counter;
  try {
    early = new Counter({ name: "early", help: "Early", registry: null });
  } finally {
    await loadBackend({ backend: "memory" });
  }
  const late = new Counter({ name: "late", help: "Late", registry: null });
  early.inc(2);
  late.inc(3);
  assert.deepEqual(Object.fromEntries(values), { "early{}": 2 });
  assert.equal(await late.get(), 3);
});

test('loadBackend() selects the memory backend by the name "memory" or by its class', async () => {
  for (const backend of ["memory", MemoryBackend] as const) {
    const { Recording, calls } = recordingBackend();
    await loadBackend({ backend: Recording, config: {} });
    await loadBackend({ backend });
    const c = new Counter({ name: "c", help: "C", registry: null });
    c.inc(2);
    assert.deepEqual(calls, [["initialize", {}]], "no instance of the previous backend");
    assert.equal(await c.get(), 2);
  }
});

test("loadBackend() takes a module specifier with an export name, relative to the working directory", async () => {
  resetMyBackendStore();
  await loadBackend({ backend: MY_BACKEND, config: { from: "code" } });
  try {
    const g = new Gauge({ name: "spec_gauge", help: "G", registry: null });
    g.set(4);
    const store = myBackendStore();
    assert.deepEqual(store.initialized, [{ from: "code" }]);
    assert.deepEqual(store.created, [{ key: myBackendKey("spec_gauge", {}), config: { from: "code" } }]);
    assert.equal(store.values.get(myBackendKey("spec_gauge", {})), 4);
    assert.equal(await g.get(), 4);
  } finally {
    await loadBackend({ backend: "memory" });
    resetMyBackendStore();
  }
});

// --- loadBackend() from the environment ---

test("loadBackend() reads THEUS_BACKEND and the JSON file named by THEUS_BACKEND_CONFIG", async () => {
  resetMyBackendStore();
  await withEnv({ THEUS_BACKEND: MY_BACKEND, THEUS_BACKEND_CONFIG: CONFIG_FILE }, () => loadBackend());
  try {
    const c = new Counter({ name: "env_total", help: "Env", labelNames: ["a"], registry: null });
    c.labels({ a: "x" }).inc(2);
    const store = myBackendStore();
    assert.deepEqual(store.initialized, [CONFIG]);
    assert.deepEqual(store.created, [{ key: myBackendKey("env_total", { a: "x" }), config: CONFIG }]);
    assert.equal(store.values.get(myBackendKey("env_total", { a: "x" })), 2);
  } finally {
    await restoreMemory();
    resetMyBackendStore();
  }
});

test("loadBackend() takes THEUS_BACKEND_CONFIG as inline JSON when it starts with {", async () => {
  for (const inline of [JSON.stringify(CONFIG), `  \n${JSON.stringify(CONFIG, null, 2)}\n`]) {
    resetMyBackendStore();
    await withEnv({ THEUS_BACKEND: MY_BACKEND, THEUS_BACKEND_CONFIG: inline }, () => loadBackend());
    try {
      new Counter({ name: "inline_total", help: "Inline", registry: null }).inc();
      assert.deepEqual(myBackendStore().initialized, [CONFIG]);
      assert.deepEqual(myBackendStore().created, [{ key: myBackendKey("inline_total", {}), config: CONFIG }]);
    } finally {
      await restoreMemory();
      resetMyBackendStore();
    }
  }
});

test("loadBackend() without THEUS_BACKEND_CONFIG gives the env backend an empty config", async () => {
  resetMyBackendStore();
  await withEnv({ THEUS_BACKEND: MY_BACKEND, THEUS_BACKEND_CONFIG: undefined }, () => loadBackend());
  try {
    assert.deepEqual(myBackendStore().initialized, [{}]);
  } finally {
    await restoreMemory();
    resetMyBackendStore();
  }
});

test("loadBackend() with THEUS_BACKEND unset, empty or memory selects memory", async () => {
  for (const value of [undefined, "", "memory"]) {
    const { Recording, calls } = recordingBackend();
    await loadBackend({ backend: Recording, config: {} });
    await withEnv({ THEUS_BACKEND: value, THEUS_BACKEND_CONFIG: undefined }, () => loadBackend());
    new Counter({ name: "c", help: "C", registry: null }).inc();
    assert.deepEqual(calls, [["initialize", {}]], `THEUS_BACKEND=${value}`);
  }
});

// --- Errors ---

async function assertLoadFails(
  options: Parameters<typeof loadBackend>[0],
  env: Record<string, string | undefined>,
  check: (e: Error) => boolean,
): Promise<void> {
  const { Recording, calls } = recordingBackend();
  await loadBackend({ backend: Recording, config: {} });
  try {
    await withEnv(env, async () => {
      await assert.rejects(loadBackend(options), (e: unknown) => {
        assert.ok(e instanceof Error, `not an Error: ${String(e)}`);
        assert.ok(check(e), `unexpected error: ${e.name}: ${e.message}`);
        return true;
      });
    });
    // A failed load changes nothing: the previous backend is still current.
    new Counter({ name: "after_failure", help: "After", registry: null });
    assert.deepEqual(calls.at(-1), ["new", {}, "after_failure", undefined]);
  } finally {
    await loadBackend({ backend: "memory" });
  }
}

const NO_ENV = { THEUS_BACKEND: undefined, THEUS_BACKEND_CONFIG: undefined };

test("loadBackend() rejects an unknown backend name with a TypeError quoting it", async () => {
  await assertLoadFails(
    { backend: "mongo" },
    NO_ENV,
    (e) => e instanceof TypeError && e.message.includes('"mongo"'),
  );
  await assertLoadFails(
    undefined,
    { THEUS_BACKEND: "mongo", THEUS_BACKEND_CONFIG: undefined },
    (e) => e instanceof TypeError && e.message.includes('"mongo"') && e.message.includes("THEUS_BACKEND"),
  );
});

test("loadBackend() rejects a module that cannot be found, naming it", async () => {
  await assertLoadFails(
    { backend: "./tests/fixtures/does_not_exist.ts#Nope" },
    NO_ENV,
    (e) => e.message.includes("does_not_exist.ts") && e.message.includes("Cannot load backend module"),
  );
});

test("loadBackend() rejects a module without the named export, naming the export", async () => {
  await assertLoadFails(
    { backend: `${MY_BACKEND_MODULE}#Nope` },
    NO_ENV,
    (e) => e instanceof TypeError && e.message.includes('"Nope"') && e.message.includes("my_backend"),
  );
});

test("loadBackend() rejects an export that is not a backend class with a TypeError", async () => {
  await assertLoadFails(
    { backend: `${MY_BACKEND_MODULE}#notAClass` },
    NO_ENV,
    (e) => e instanceof TypeError && e.message.includes('"notAClass"') && e.message.includes("class"),
  );
  await assertLoadFails(
    { backend: `${MY_BACKEND_MODULE}#NotABackend` },
    NO_ENV,
    (e) => e instanceof TypeError && e.message.includes('"NotABackend"') && e.message.includes("get()"),
  );
});

test("loadBackend() rejects a backend option that is not a class with a TypeError", async () => {
  for (const bad of [42, {}, null, () => 1]) {
    await assertLoadFails(
      { backend: bad as unknown as typeof MemoryBackend },
      NO_ENV,
      (e) => e instanceof TypeError && e.message.includes("class"),
    );
  }
});

test("loadBackend() rejects a config or options that are not objects with a TypeError", async () => {
  for (const config of [[], "x", 1]) {
    await assertLoadFails(
      { backend: "memory", config: config as unknown as BackendConfig },
      NO_ENV,
      (e) => e instanceof TypeError && e.message.includes("config"),
    );
  }
  await assertLoadFails(42 as unknown as undefined, NO_ENV, (e) => e instanceof TypeError);
});

test("loadBackend() rejects a THEUS_BACKEND_CONFIG file that does not exist, naming it", async () => {
  const path = join(tmpdir(), "theus-no-such-dir", "config.json");
  await assertLoadFails(
    undefined,
    { THEUS_BACKEND: MY_BACKEND, THEUS_BACKEND_CONFIG: path },
    (e) => e.message.includes(JSON.stringify(path)) && e.message.includes("THEUS_BACKEND_CONFIG"),
  );
});

test("loadBackend() rejects a THEUS_BACKEND_CONFIG file that is not valid JSON", async () => {
  const file = tempFile("broken.json", '{ "host": ');
  try {
    await assertLoadFails(
      undefined,
      { THEUS_BACKEND: MY_BACKEND, THEUS_BACKEND_CONFIG: file.path },
      (e) => e.message.includes("Invalid JSON") && e.message.includes(JSON.stringify(file.path)),
    );
  } finally {
    file.remove();
  }
});

test("loadBackend() rejects a THEUS_BACKEND_CONFIG file whose JSON is not an object", async () => {
  await assertLoadFails(
    undefined,
    { THEUS_BACKEND: MY_BACKEND, THEUS_BACKEND_CONFIG: fixtureData("array_config.json") },
    (e) =>
      e instanceof TypeError && e.message.includes("JSON object") && e.message.includes("array_config.json"),
  );
  for (const text of ["null", '"redis"', "3"]) {
    const file = tempFile("scalar.json", text);
    try {
      await assertLoadFails(
        undefined,
        { THEUS_BACKEND: MY_BACKEND, THEUS_BACKEND_CONFIG: file.path },
        (e) => e instanceof TypeError && e.message.includes("JSON object"),
      );
    } finally {
      file.remove();
    }
  }
});

test("an invalid inline THEUS_BACKEND_CONFIG says it was read as inline JSON, and why it failed", async () => {
  await assertLoadFails(
    undefined,
    { THEUS_BACKEND: MY_BACKEND, THEUS_BACKEND_CONFIG: '{ "host": ' },
    (e) =>
      e instanceof TypeError && e.message.includes("THEUS_BACKEND_CONFIG") &&
      e.message.includes("inline JSON") && e.message.includes("Invalid JSON"),
  );
  await assertLoadFails(
    undefined,
    { THEUS_BACKEND: MY_BACKEND, THEUS_BACKEND_CONFIG: "{} trailing" },
    (e) => e instanceof TypeError && e.message.includes("inline JSON"),
  );
});

test("a THEUS_BACKEND_CONFIG that is neither inline JSON nor a readable file says it was taken as a path", async () => {
  const path = join(tmpdir(), "theus-no-such-dir", "config.json");
  await assertLoadFails(
    undefined,
    { THEUS_BACKEND: MY_BACKEND, THEUS_BACKEND_CONFIG: path },
    (e) => e.message.includes("file path") && e.message.includes('does not start with "{"'),
  );
});

// --- flush() ---

test("flush() resolves on the memory backend and changes nothing", async () => {
  await loadBackend({ backend: "memory" });
  const c = new Counter({ name: "c", help: "C", registry: null });
  c.inc(3);
  assert.equal(await flush(), undefined);
  assert.equal(await c.get(), 3);
});

// --- Applied lazily from the environment, in a fresh process ---

test(
  "THEUS_BACKEND is applied at the first metric, and nothing recorded while it loads is lost",
  async () => {
    const result = await runChild(fixtureModule("lazy_child"), {
      THEUS_BACKEND: MY_BACKEND,
      THEUS_BACKEND_CONFIG: CONFIG_FILE,
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, "");
    const out = JSON.parse(result.stdout);
    assert.equal(out.loadedEarly, false, "the backend loads asynchronously");
    assert.deepEqual(out.initialized, [CONFIG]);
    assert.deepEqual(out.values, {
      [myBackendKey("early_requests_total", { route: "/" })]: 5,
      [myBackendKey("early_requests_total", { route: "/a" })]: 1,
      [myBackendKey("early_requests_total", { route: "/b" })]: 7,
      [myBackendKey("early_level", {})]: 13,
      [myBackendKey("early_latency", {}, "1.0")]: 1,
      [myBackendKey("early_latency", {}, "5.0")]: 1,
      [myBackendKey("early_latency", {}, "+Inf")]: 1,
      [myBackendKey("early_latency", {}, "sum")]: 10.5,
      [myBackendKey("early_sizes", {}, "count")]: 2,
      [myBackendKey("early_sizes", {}, "sum")]: 6,
    });
    assert.equal(out.earlyReadIsPromise, true);
    assert.equal(out.earlyRead, 5);
    assert.equal(out.counterValue, 5);
    assert.equal(out.gaugeValue, 13);
    assert.equal(
      out.exposition,
      [
        "# HELP early_requests_total Requests",
        "# TYPE early_requests_total counter",
        'early_requests_total{route="/"} 5',
        'early_requests_total{route="/a"} 1',
        'early_requests_total{route="/b"} 7',
        "# HELP early_level Level",
        "# TYPE early_level gauge",
        "early_level 13",
        "# HELP early_latency Latency",
        "# TYPE early_latency histogram",
        'early_latency_bucket{le="1.0"} 1',
        'early_latency_bucket{le="5.0"} 2',
        'early_latency_bucket{le="+Inf"} 3',
        "early_latency_sum 10.5",
        "early_latency_count 3",
        "# HELP early_sizes Sizes",
        "# TYPE early_sizes summary",
        "early_sizes_sum 6",
        "early_sizes_count 2",
        "",
      ].join("\n"),
    );
  },
  { timeout: 60_000 },
);

test("a THEUS_BACKEND that cannot load is reported, and flush() rejects with the reason", async () => {
  const result = await runChild(fixtureModule("noenv_child"), {
    THEUS_BACKEND: "./tests/fixtures/does_not_exist.ts#Nope",
    THEUS_BACKEND_CONFIG: undefined,
  });
  assert.notEqual(result.code, 0);
  assert.match(result.stderr, /theus: cannot load the backend from THEUS_BACKEND: .*does_not_exist\.ts/);
}, { timeout: 60_000 });

if (runtime === "deno") {
  test("Deno without --allow-env quietly keeps the memory backend: no crash, no prompt", async () => {
    const result = await runChild(
      fixtureModule("noenv_child"),
      { THEUS_BACKEND: "./tests/fixtures/does_not_exist.ts#Nope", DENO_NO_PROMPT: undefined },
      ["--allow-read"],
    );
    assert.equal(result.code, 0, result.stderr);
    assert.equal(
      result.stdout,
      "# HELP noenv_hits_total Hits\n# TYPE noenv_hits_total counter\nnoenv_hits_total 3\n\n",
    );
    assert.doesNotMatch(result.stderr, /theus|requests env|prompt/i);
  }, { timeout: 60_000 });
}
