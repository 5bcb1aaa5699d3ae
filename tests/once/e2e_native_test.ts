// End to end, native histograms: a real Prometheus 2.42, started with
// --enable-feature=native-histograms (so it asks for the protobuf format first), scrapes
//   - an app on the memory backend (Node, from the build in dist/) that observed all the values;
//   - three apps on the redis backend of one real redis-server, one on Deno, one on Bun, one on
//     Node, each of which observed a third of them; each is scraped, and each must show the
//     union, read from Redis;
// each app (tests/_native_app.ts) serving metricsHandler() over node:http, through a recording
// proxy that shows what Prometheus asked for and what the app answered. The values are known
// and deterministic: lognormal (median 100 ms), in multiples of 2 ** -10 so that every sum of
// them is exact in any order, with exact zeros. Prometheus' query API must then give, for
// every target:
//   - histogram_count() and histogram_sum(): exactly the count and sum of the values;
//   - every bucket of the stored native histogram (zero bucket included) with the count the
//     reference of tests/_exponential_reference.ts gives it, at schema 3;
//   - histogram_quantile(0.99): within the bucket that holds the exact p99
//     (sorted[Math.floor(0.99 * (n - 1))]). Prometheus finds the bucket holding rank 0.99 * n and
//     interpolates inside it, so its answer can be anywhere in that bucket, (l, l * 2 ** (1/8)]
//     at schema 3; the test checks that this is the exact p99's bucket, so the two differ by a
//     factor of at most 2 ** (1/8): a relative error of 9.05 % at most, the bound asserted.
// The scrapes were protobuf: Prometheus ranked it first in Accept and every app answered it;
// and the classic text exposition still works for a plain scrape: text 0.0.4 passes promtool
// and OpenMetrics the strict parser, with the same count and sum.
// A missing /usr/bin/prometheus, redis-server or dist/ is a failure, never a skip.

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  bound,
  finalSchema,
  nativeOf,
  normal,
  type ReferenceBuckets,
  uniform,
  writeSamples,
  ZERO_THRESHOLD,
} from "../_exponential_reference.ts";
import { test } from "../_harness.ts";
import { NATIVE_APP_METRIC } from "../_native_app.ts";
import { PROMETHEUS, startPrometheus } from "../_prometheus.ts";
import { type RedisServer, startRedis } from "../_redis.ts";
import { childCommand, ROOT } from "../_root.ts";
import { type Child, killProcess, type RecordingProxy, startProcess, waitUntil } from "../_servers.ts";
import { parseSamples } from "../_samples.ts";
import { assertOpenMetrics, assertPromtool } from "../_validate.ts";

type Runtime = "deno" | "bun" | "node";
const RUNTIMES: readonly Runtime[] = ["deno", "bun", "node"];
const APP = "tests/_native_app.ts";
const LISTENING = /native app \((deno|bun|node)\) listening on 127\.0\.0\.1:(\d+)/;
const PROTOBUF =
  "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";
/** The values, in all. */
const COUNT = 60_000;
/** client_golang's default bucket factor 1.1 gives schema 3. */
const SCHEMA = 3;
const Q = 0.99;
/** The most histogram_quantile() may miss the exact quantile by: the width of a bucket. */
const QUANTILE_BOUND = 2 ** (1 / 2 ** SCHEMA) - 1;

/** Lognormal values (median 100 ms), rounded to multiples of 2 ** -10, and every 1000th 0. */
function makeValues(): Float64Array {
  const u = uniform(7_2024);
  const out = new Float64Array(COUNT);
  for (let i = 0; i < COUNT; i++) {
    out[i] = i % 1000 === 999 ? 0 : Math.round(Math.exp(Math.log(0.1) + normal(u)) * 1024) / 1024;
  }
  return out;
}

interface Expected {
  values: Float64Array;
  sum: number;
  p99: number;
  native: ReferenceBuckets;
}

function expectation(): Expected {
  const values = makeValues();
  let sum = 0;
  let units = 0n;
  for (const v of values) {
    sum += v;
    units += BigInt(v * 1024);
  }
  // Every partial sum is a multiple of 2 ** -10 far below 2 ** 43: exact in any order.
  assert.equal(BigInt(sum * 1024), units, "the sum of the values is not exact");
  const sorted = Float64Array.from(values).sort();
  // Each app keeps schema 3 (160 buckets are enough for its share), and so does the union.
  for (let part = 0; part < RUNTIMES.length; part++) {
    const share = values.subarray(part * (COUNT / 3), (part + 1) * (COUNT / 3));
    assert.equal(finalSchema(share), SCHEMA, `part ${part} would reduce its schema`);
  }
  assert.equal(finalSchema(values), SCHEMA, "the whole would reduce its schema");
  return { values, sum, p99: sorted[Math.floor(Q * (COUNT - 1))], native: nativeOf(values, SCHEMA) };
}

// ---------------------------------------------------------------------------------------------
// Processes.

/** A Prometheus target: its job, instance, and the app behind it. */
interface App {
  job: string;
  instance: string;
  runtime: Runtime;
  port: number;
}

async function startApp(
  name: string,
  runtime: Runtime,
  env: Record<string, string | undefined>,
  children: Child[],
): Promise<number> {
  const [command, args] = childCommand(runtime, APP);
  const child = await startProcess({
    name,
    command,
    args,
    cwd: ROOT,
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1", ...env },
  });
  children.push(child);
  const [, printed, port] = await child.waitFor(LISTENING, 60_000);
  assert.equal(printed, runtime, `${name} says it runs on ${printed}`);
  return Number(port);
}

// ---------------------------------------------------------------------------------------------
// Prometheus' answers.

interface Result {
  metric: Record<string, string>;
  value?: [number, string];
  histogram?: [number, { count: string; sum: string; buckets?: [number, string, string, string][] }];
}

async function query(api: string, expr: string): Promise<Map<string, Result>> {
  const res = await fetch(`${api}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = await res.json() as { status: string; error?: string; data: { result: Result[] } };
  if (body.status !== "success") throw new Error(`${expr}: ${res.status} ${body.error ?? ""}`);
  const out = new Map<string, Result>();
  for (const r of body.data.result) {
    const key = `${r.metric.job}/${r.metric.instance}`;
    assert.ok(!out.has(key), `${expr} has more than one series for ${key}`);
    out.set(key, r);
  }
  return out;
}

/** Each target's value of an instant query. */
async function values(api: string, expr: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const [key, r] of await query(api, expr)) {
    assert.ok(r.value !== undefined, `${expr} for ${key}: ${JSON.stringify(r)}`);
    out.set(key, Number(r.value[1]));
  }
  return out;
}

/**
 * The buckets Prometheus holds, as [boundary rule, lower, upper, count] (rule 0: (lower, upper],
 * 3: [lower, upper], the zero bucket), in its order: negative, zero, positive.
 */
function expectedBuckets(native: ReferenceBuckets): [number, number, number, number][] {
  const out: [number, number, number, number][] = [];
  for (const { index, count } of [...native.negative].reverse()) {
    out.push([1, -bound(index, SCHEMA), -bound(index - 1, SCHEMA), count]);
  }
  if (native.zero > 0) out.push([3, -ZERO_THRESHOLD, ZERO_THRESHOLD, native.zero]);
  for (const { index, count } of native.positive) {
    out.push([0, bound(index - 1, SCHEMA), bound(index, SCHEMA), count]);
  }
  return out;
}

/**
 * Asserts that the buckets Prometheus holds are the reference's: the same buckets in the same
 * order, each with the same count. Their bounds may differ in the last bit: Prometheus 2.42
 * computes them from a table of 16-digit literals (model/histogram), some of which are one unit
 * in the last place off 2 ** (j / 2 ** schema) rounded to nearest (2 ** (15/8) is
 * 3.668016172818685 rounded to nearest, 3.6680161728186844 in Prometheus).
 */
function assertBuckets(
  target: string,
  got: readonly [number, string, string, string][],
  want: readonly [number, number, number, number][],
): void {
  const near = (a: number, b: number) => Math.abs(a - b) <= 1e-15 * Math.abs(b);
  const show = (b: readonly unknown[]) => JSON.stringify(b);
  assert.equal(got.length, want.length, `${target}: ${got.length} buckets, not ${want.length}`);
  for (const [i, [rule, lo, hi, n]] of got.entries()) {
    const [wantRule, wantLo, wantHi, wantN] = want[i];
    assert.ok(
      rule === wantRule && near(Number(lo), wantLo) && near(Number(hi), wantHi) && Number(n) === wantN,
      `${target}: bucket ${i} is ${show(got[i])}, not ${show(want[i])}`,
    );
  }
}

/** The bucket (lower, upper] that holds rank `Q * n`, as Prometheus' histogram_quantile() finds it. */
function prometheusBucket(native: ReferenceBuckets, count: number): [number, number] {
  const rank = Q * count;
  let seen = native.zero;
  assert.ok(seen < rank && native.negative.length === 0);
  for (const { index, count: n } of native.positive) {
    seen += n;
    if (seen >= rank) return [bound(index - 1, SCHEMA), bound(index, SCHEMA)];
  }
  throw new Error("rank past the last bucket");
}

// ---------------------------------------------------------------------------------------------

test(
  "a real Prometheus scrapes native histograms over protobuf from a memory app and a Deno, Bun and Node fleet on Redis, and reads back exact counts, sums and buckets",
  async () => {
    assert.ok(
      existsSync(PROMETHEUS),
      `${PROMETHEUS} is missing: install the Debian package "prometheus" (apt-get install prometheus)`,
    );
    const want = expectation();
    const children: Child[] = [];
    const proxies: RecordingProxy[] = [];
    const dir = mkdtempSync(join(tmpdir(), "theus-e2e-native-"));
    let redis: RedisServer | undefined;
    try {
      const samplesPath = join(dir, "values.f64");
      writeSamples(samplesPath, want.values);
      redis = await startRedis();
      const config = JSON.stringify({ url: redis.url, keyPrefix: "e2enative" });

      // The apps: each has observed and flushed its values once it says it listens.
      const apps: App[] = await Promise.all([
        (async (): Promise<App> => ({
          job: "native-memory",
          instance: "node-memory",
          runtime: "node",
          port: await startApp("the memory app (node)", "node", {
            THEUS_NATIVE_SAMPLES: samplesPath,
            THEUS_BACKEND: undefined,
            THEUS_BACKEND_CONFIG: undefined,
          }, children),
        }))(),
        ...RUNTIMES.map(async (runtime, part): Promise<App> => ({
          job: `native-redis-${runtime}`,
          instance: `${runtime}-redis`,
          runtime,
          port: await startApp(`the ${runtime} redis app`, runtime, {
            THEUS_NATIVE_SAMPLES: samplesPath,
            THEUS_NATIVE_PART: String(part),
            THEUS_NATIVE_PARTS: String(RUNTIMES.length),
            THEUS_BACKEND: "redis",
            THEUS_BACKEND_CONFIG: config,
          }, children),
        })),
      ]);
      const targets = apps.map((a) => `${a.job}/${a.instance}`);

      // A plain scrape of every app: text 0.0.4 for promtool, OpenMetrics for the strict parser,
      // each with the count and sum of all the values.
      for (const app of apps) {
        const url = `http://127.0.0.1:${app.port}/metrics`;
        for (const accept of ["text/plain; version=0.0.4", "application/openmetrics-text; version=1.0.0"]) {
          const res = await fetch(url, { headers: { accept } });
          const text = await res.text();
          assert.equal(res.status, 200, `${app.instance} (${accept}): ${text}`);
          if (accept.startsWith("text/plain")) await assertPromtool(text);
          else await assertOpenMetrics(text);
          const samples = parseSamples(text);
          const sample = (name: string) => samples.find((s) => s.name === name)?.value;
          assert.equal(sample(`${NATIVE_APP_METRIC}_count`), COUNT, `${app.instance} (${accept}):\n${text}`);
          assert.equal(sample(`${NATIVE_APP_METRIC}_sum`), want.sum, `${app.instance} (${accept}):\n${text}`);
        }
      }

      const api = await startPrometheus(
        dir,
        apps.map(({ job, instance, port }) => ({ job, instance, port })),
        { proxies, started: (child) => children.push(child) },
        { args: ["--enable-feature=native-histograms"] },
      );
      const prometheus = children[children.length - 1];
      const abort = () => prometheus.closed() ? `prometheus exited:\n${prometheus.output()}` : undefined;
      await waitUntil("the native histograms to be queryable", async () => {
        const found = await values(api, `histogram_count(${NATIVE_APP_METRIC})`);
        return found.size === apps.length || undefined;
      }, { abort });

      const counts = await values(api, `histogram_count(${NATIVE_APP_METRIC})`);
      const sums = await values(api, `histogram_sum(${NATIVE_APP_METRIC})`);
      const quantiles = await values(api, `histogram_quantile(${Q}, ${NATIVE_APP_METRIC})`);
      const raw = await query(api, NATIVE_APP_METRIC);
      const buckets = expectedBuckets(want.native);
      const [lower, upper] = prometheusBucket(want.native, COUNT);
      // The exact p99 is in the bucket Prometheus interpolates in.
      assert.ok(lower < want.p99 && want.p99 <= upper, `p99 ${want.p99} is not in (${lower}, ${upper}]`);
      const errors: string[] = [];
      for (const target of targets) {
        assert.equal(counts.get(target), COUNT, `histogram_count of ${target}`);
        assert.equal(sums.get(target), want.sum, `histogram_sum of ${target}`);
        const p99 = quantiles.get(target);
        assert.ok(p99 !== undefined, `no histogram_quantile for ${target}`);
        const error = Math.abs(p99 - want.p99) / want.p99;
        errors.push(`${target} ${p99} (${(100 * error).toFixed(2)} %)`);
        assert.ok(
          lower <= p99 && p99 <= upper,
          `${target}: histogram_quantile ${p99} not in [${lower}, ${upper}]`,
        );
        assert.ok(error <= QUANTILE_BOUND, `${target}: histogram_quantile ${p99} vs exact ${want.p99}`);
        const histogram = raw.get(target)?.histogram?.[1];
        assert.ok(
          histogram !== undefined,
          `${target} has no native histogram: ${JSON.stringify(raw.get(target))}`,
        );
        assert.equal(Number(histogram.count), COUNT, `${target} count`);
        assert.equal(Number(histogram.sum), want.sum, `${target} sum`);
        assertBuckets(target, histogram.buckets ?? [], buckets);
      }
      console.log(
        `e2e native: ${COUNT} values, sum ${want.sum}, ${want.native.positive.length} buckets at schema ` +
          `${SCHEMA} and a zero bucket of ${want.native.zero}, exact on ${targets.join(", ")}; ` +
          `exact p99 ${want.p99} in (${lower}, ${upper}]; histogram_quantile(0.99): ${errors.join(", ")}`,
      );

      // Protobuf on the wire: Prometheus ranked it first, every app answered it, every scrape.
      for (const [i, proxy] of proxies.entries()) {
        const scrapes = proxy.exchanges.filter((e) => e.path === "/metrics");
        assert.ok(scrapes.length > 0, `no scrape of ${targets[i]} went through its proxy`);
        for (const scrape of scrapes) {
          assert.match(
            scrape.accept ?? "",
            /^application\/vnd\.google\.protobuf;\s*proto=io\.prometheus\.client\.MetricFamily;\s*encoding=delimited[,;]/,
            targets[i],
          );
          assert.equal(scrape.status, 200, targets[i]);
          assert.equal(scrape.contentType, PROTOBUF, targets[i]);
        }
      }
      assert.deepEqual([...(await values(api, "up")).entries()].sort(), targets.map((t) => [t, 1]).sort());
    } finally {
      const problems: string[] = [];
      for (const child of children) await killProcess(child).catch((error) => problems.push(String(error)));
      await Promise.allSettled(proxies.map((p) => p.close()));
      await redis?.stop();
      rmSync(dir, { recursive: true, force: true });
      assert.deepEqual(problems, [], "a process could not be stopped");
    }
  },
  { timeout: 180_000 },
);
