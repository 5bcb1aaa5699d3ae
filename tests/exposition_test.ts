// Unit tests of the exposition pieces: number formatting, escaping, negotiation, chunking,
// and a check that the external validators really reject what they should.

import assert from "node:assert/strict";
import { Counter, generateLatest, Registry } from "../mod.ts";
import { acceptsGzip, negotiateFormat } from "../exposition/mod.ts";
import { escapeHelp, escapeLabelValue } from "../exposition/_escape.ts";
import { formatBound, formatValue } from "../core/_format.ts";
import { render } from "../exposition/_render.ts";
import { FIRST_WAIT_MS, LabelMemo, MEMO_LIMIT } from "../core/_labelmemo.ts";
import type { MetricFamily } from "../core/types.ts";
import { runtime, test } from "./_harness.ts";
import { assertOpenMetrics, assertPromtool, parseOpenMetrics, promtool } from "./_validate.ts";

// Bounds as client_golang and client_python write them (Go's %g for positive values,
// Python's repr otherwise), checked by hand.
const BOUNDS: [number, string][] = [
  [0.001, "0.001"],
  [0.005, "0.005"],
  [0.1, "0.1"],
  [1, "1.0"],
  [2.5, "2.5"],
  [10, "10.0"],
  [100000, "100000.0"],
  [123456.7, "123456.7"],
  [1e6, "1e+06"],
  [1234567, "1.234567e+06"],
  [1e16, "1e+16"],
  [1e100, "1e+100"],
  [0.0001, "0.0001"],
  [1e-5, "1e-05"],
  [2.5e-7, "2.5e-07"],
  [1e-10, "1e-10"],
  [0, "0.0"],
  [-1, "-1.0"],
  [-0.5, "-0.5"],
  [Infinity, "+Inf"],
  [-Infinity, "-Inf"],
];

test("formatBound() writes bucket bounds canonically", () => {
  for (const [value, text] of BOUNDS) assert.equal(formatBound(value), text, `formatBound(${value})`);
});

test("formatValue() writes NaN, infinities, integers and floats as both parsers read them", () => {
  const table: [number, string][] = [
    [NaN, "NaN"],
    [Infinity, "+Inf"],
    [-Infinity, "-Inf"],
    [0, "0"],
    [-0, "0"],
    [42, "42"],
    [-7, "-7"],
    [9007199254740992, "9007199254740992"],
    [0.1, "0.1"],
    [-3.5, "-3.5"],
    [0.1 + 0.2, "0.30000000000000004"],
    [1e21, "1e+21"],
    [1e-7, "1e-7"],
  ];
  for (const [value, text] of table) assert.equal(formatValue(value), text, `formatValue(${value})`);
});

test("formatValue() output is accepted by promtool and the OpenMetrics parser", async () => {
  const values = [NaN, Infinity, -Infinity, 0, 42, -7, 0.1, 1e21, 1e-7, 5e-324, 1.7976931348623157e308];
  const lines = values.map((v, i) => `v{i="${i}"} ${formatValue(v)}\n`).join("");
  await assertPromtool(`# HELP v Values\n# TYPE v gauge\n${lines}`);
  const [family] = await assertOpenMetrics(`# HELP v Values\n# TYPE v gauge\n${lines}# EOF\n`);
  assert.deepEqual(
    family.samples.map(([, , value]) => value),
    [
      "NaN",
      "+Inf",
      "-Inf",
      "0.0",
      "42.0",
      "-7.0",
      "0.1",
      "1e+21",
      "1e-07",
      "5e-324",
      "1.7976931348623157e+308",
    ],
  );
});

test("escapeLabelValue() escapes backslash, double quote and line feed, nothing else", () => {
  assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
  assert.equal(escapeLabelValue("tab\there\r#{}=,😀"), "tab\there\r#{}=,😀");
  assert.equal(escapeLabelValue(""), "");
});

test("escapeHelp() leaves double quotes raw in text 0.0.4 and escapes them in OpenMetrics", () => {
  assert.equal(escapeHelp('say "hi" \\ now\nthen', false), 'say "hi" \\\\ now\\nthen');
  assert.equal(escapeHelp('say "hi" \\ now\nthen', true), 'say \\"hi\\" \\\\ now\\nthen');
});

test("negotiateFormat() picks the acceptable format with the highest quality", () => {
  const prometheus242 =
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75," +
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
  const table: [string | null, string | undefined][] = [
    [null, "prometheus"],
    ["", "prometheus"],
    [prometheus242, "openmetrics"],
    ["application/openmetrics-text", "openmetrics"],
    ["application/openmetrics-text; version=1.0.0", "openmetrics"],
    ["application/openmetrics-text; version=0.0.1", undefined],
    ["Application/OpenMetrics-Text; Version=1.0.0", "openmetrics"],
    ["text/plain", "prometheus"],
    ["text/plain;version=0.0.4", "prometheus"],
    ["text/*", "prometheus"],
    ["*/*", "prometheus"],
    ["text/plain;q=0.5,application/openmetrics-text;q=0.9", "openmetrics"],
    ["application/openmetrics-text;q=0.5,text/plain;q=0.9", "prometheus"],
    ["application/openmetrics-text;q=0,text/plain", "prometheus"],
    ["application/openmetrics-text, text/plain;q=0", "openmetrics"],
    ["application/json", undefined],
    ["text/plain;q=0", undefined],
    ["text/html, application/xhtml+xml", undefined],
    // A more specific range overrides a wildcard, for better or worse.
    ["text/plain;q=0, */*", "openmetrics"],
    ["application/openmetrics-text;q=0, */*", "prometheus"],
    [
      "application/openmetrics-text;version=1.0.0;q=0, application/openmetrics-text, text/plain;q=0.1",
      "prometheus",
    ],
    ["text/*;q=0.2, text/plain;q=0.8", "prometheus"],
    ["application/*", "openmetrics"],
    // On equal quality the earlier range wins; one range matching both gives text.
    ["text/plain, application/openmetrics-text", "prometheus"],
    ["application/openmetrics-text, text/plain", "openmetrics"],
  ];
  for (const [accept, format] of table) assert.equal(negotiateFormat(accept), format, `Accept: ${accept}`);
});

test("acceptsGzip() honours q values and the * wildcard", () => {
  const table: [string | null, boolean][] = [
    [null, false],
    ["", false],
    ["gzip", true],
    ["gzip, deflate, br", true],
    ["br;q=1.0, gzip;q=0.8", true],
    ["gzip;q=0", false],
    ["identity", false],
    ["*", true],
    ["*;q=0", false],
    ["gzip;q=0, *", false],
    ["x-gzip", true],
  ];
  for (const [header, expected] of table) {
    assert.equal(acceptsGzip(header), expected, `Accept-Encoding: ${header}`);
  }
});

test("generateLatest() rejects an unknown format with a TypeError naming it", async () => {
  await assert.rejects(
    generateLatest(new Registry(), { format: "json" as "prometheus" }),
    (error: Error) => error instanceof TypeError && error.message.includes('"json"'),
  );
});

test("a counter named with _total exposes the same sample name as one named without it", async () => {
  for (const name of ["orders", "orders_total"]) {
    const registry = new Registry();
    new Counter({ name, help: "Orders", registry }).inc();
    assert.equal(
      await generateLatest(registry),
      "# HELP orders_total Orders\n# TYPE orders_total counter\norders_total 1\n",
    );
    assert.equal(
      await generateLatest(registry, { format: "openmetrics" }),
      "# HELP orders Orders\n# TYPE orders counter\norders_total 1\n# EOF\n",
    );
  }
});

function bigFamily(series: number): MetricFamily {
  return {
    name: "big",
    help: "Big",
    type: "gauge",
    series: Array.from(
      { length: series },
      (_, i) => ({ labels: { i: String(i), pad: "x".repeat(40) }, value: i }),
    ),
  };
}

test("render() splits a large exposition into several chunks that join to the whole text", async () => {
  const chunks: string[] = [];
  for await (const chunk of render([bigFamily(20_000)], "openmetrics")) chunks.push(chunk);
  assert.ok(chunks.length > 1, `expected several chunks, got ${chunks.length}`);
  const text = chunks.join("");
  assert.ok(text.startsWith('# HELP big Big\n# TYPE big gauge\nbig{i="0",'));
  assert.ok(text.endsWith(`big{i="19999",pad="${"x".repeat(40)}"} 19999\n# EOF\n`));
  assert.equal(text.split("\n").length, 20_000 + 4);
});

test("render() gives the event loop a turn while it writes a large exposition", async () => {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 0);
  try {
    // A slice of 0 ms yields at every check, so the timer must fire during the render.
    for await (const _ of render([bigFamily(5_000)], "prometheus", 0)) { /* drain */ }
  } finally {
    clearInterval(timer);
  }
  assert.ok(ticks > 0, "the timer never fired while the exposition was written");
});

test(`the validators reject broken texts (so a passing check means something) on ${runtime}`, async () => {
  const parseError = await promtool('# TYPE x gauge\nx{a="\\t"} 1\n');
  assert.equal(parseError.code, 1, parseError.output);
  const lint = await promtool("# HELP x X\n# TYPE x counter\nx 1\n");
  assert.equal(lint.code, 3);
  assert.match(lint.output, /counter metrics should have "_total" suffix/);
  await assert.rejects(assertPromtool("# HELP x X\n# TYPE x counter\nx 1\n"), /_total/);
  const results = await parseOpenMetrics([
    "# TYPE x gauge\nx 1\n",
    "# TYPE x_total counter\nx_total 1\n# EOF\n",
    '# TYPE x gauge\nx{a="b"} 1\n\n# EOF\n',
    "# TYPE x gauge\nx 1\n# EOF\n",
  ]);
  assert.deepEqual(results.map((r) => r.ok), [false, false, false, true]);
  assert.match((results[0] as { error: string }).error, /Missing # EOF/);
  await assert.rejects(assertOpenMetrics("x 1\n"), /Missing # EOF/);
});

test("the label memo keeps at most MEMO_LIMIT label sets, and starts afresh only after a wait that doubles", () => {
  let now = 0;
  const memo = new LabelMemo<number>(() => now);
  const sets = Array.from({ length: 4 * MEMO_LIMIT }, (_, i) => Object.freeze({ i: String(i) }));
  const offer = (from: number, to: number) => {
    for (let i = from; i < to; i++) if (memo.get(sets[i]) === undefined) memo.set(sets[i], i);
  };
  offer(0, MEMO_LIMIT);
  assert.equal(memo.get(sets[0]), 0);
  assert.equal(memo.get(sets[MEMO_LIMIT - 1]), MEMO_LIMIT - 1);
  // Full: the next ones are turned away, however many, while the wait lasts; the kept ones stay.
  now = FIRST_WAIT_MS - 1;
  offer(MEMO_LIMIT, 4 * MEMO_LIMIT);
  assert.equal(memo.get(sets[MEMO_LIMIT]), undefined);
  assert.equal(memo.get(sets[4 * MEMO_LIMIT - 1]), undefined);
  assert.equal(memo.get(sets[7]), 7);
  // Waited long enough: the next 1024 turned away start a new memo, and what follows is kept.
  now = FIRST_WAIT_MS;
  offer(MEMO_LIMIT, MEMO_LIMIT + 1024);
  assert.equal(memo.get(sets[7]), undefined);
  // Full again at FIRST_WAIT_MS: the next fresh start waits twice as long.
  offer(MEMO_LIMIT + 1024, 2 * MEMO_LIMIT + 1024);
  assert.equal(memo.get(sets[MEMO_LIMIT + 1024]), MEMO_LIMIT + 1024);
  offer(2 * MEMO_LIMIT + 1024, 2 * MEMO_LIMIT + 1025);
  assert.equal(memo.get(sets[2 * MEMO_LIMIT + 1024]), undefined);
  now = 2 * FIRST_WAIT_MS;
  offer(0, 2 * MEMO_LIMIT);
  offer(2 * MEMO_LIMIT, 3 * MEMO_LIMIT);
  assert.equal(
    memo.get(sets[MEMO_LIMIT + 1024]),
    MEMO_LIMIT + 1024,
    "not yet: the wait is now 2 × FIRST_WAIT_MS",
  );
  now = 3 * FIRST_WAIT_MS;
  // Within 1024 more turned away, a new memo starts.
  offer(0, 1024);
  assert.equal(memo.get(sets[MEMO_LIMIT + 1024]), undefined);
  offer(5000, 5001);
  assert.equal(memo.get(sets[5000]), 5000);
});

test(
  "a registry with more label sets than the label memo holds renders every series right, scrape after scrape",
  async () => {
    const registry = new Registry();
    const counter = new Counter({ name: "many", help: "M", labelNames: ["id", "note"], registry });
    const count = MEMO_LIMIT + 5000;
    const note = (i: number) => (i % 1000 === 0 ? `a "quoted" \\ line\nbreak ${i}` : `n${i}`);
    for (let i = 0; i < count; i++) counter.labels({ id: String(i), note: note(i) }).inc(i);
    const escape = (text: string) => text.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
    for (let round = 0; round < 3; round++) {
      const lines = (await generateLatest(registry)).split("\n").filter((line) =>
        line.startsWith("many_total{")
      );
      assert.equal(lines.length, count);
      const seen = new Set<string>();
      for (const line of lines) {
        const id = /id="(\d+)"/.exec(line)![1];
        const i = Number(id);
        assert.equal(line, `many_total{id="${i}",note="${escape(note(i))}"} ${i}`);
        seen.add(id);
      }
      assert.equal(seen.size, count);
    }
  },
  { timeout: 60_000 },
);
