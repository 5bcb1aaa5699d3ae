// End to end: the Deno, Bun and Node examples serve known traffic, a real Prometheus scrapes
// them, and its query API must give back exactly what was sent. Each example is scraped
// through a transparent recording proxy, which shows what Prometheus asked for (Accept,
// Accept-Encoding) and what the example answered (Content-Type, Content-Encoding).
// A missing /usr/bin/prometheus or dist/ is a failure, never a skip.

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "../_harness.ts";
import { PROMETHEUS, startPrometheus } from "../_prometheus.ts";
import { type Child, type RecordingProxy, startProcess, waitUntil } from "../_servers.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const HITS = 37; // GET / -> 200
const MISSES = 5; // GET /missing -> 404

const EXAMPLES = [
  {
    runtime: "deno",
    command: join(ROOT, "node_modules", ".bin", "deno"),
    args: ["run", "--allow-net", "--allow-env", "examples/deno.ts"],
  },
  { runtime: "bun", command: join(ROOT, "node_modules", ".bin", "bun"), args: ["examples/bun.ts"] },
  { runtime: "node", command: "node", args: ["examples/node.mjs"] },
];
const LISTENING = /theus example \((\w+)\) listening on (http:\/\/127\.0\.0\.1:(\d+)\/) — metrics at \S+/;

interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** What Prometheus should report for each target, keyed `job/instance`. */
function each(value: number): Record<string, number> {
  return Object.fromEntries(EXAMPLES.map(({ runtime }) => [`theus-${runtime}/${runtime}-example`, value]));
}

async function getJson(url: string): Promise<{ status: string; error?: string; data: unknown }> {
  const res = await fetch(url);
  const body = await res.json();
  if (body.status !== "success") throw new Error(`${url}: ${res.status} ${body.error ?? ""}`);
  return body;
}

test(
  "a real Prometheus scrapes the Deno, Bun and Node examples over OpenMetrics and reads back exact values",
  async () => {
    assert.ok(
      existsSync(PROMETHEUS),
      `${PROMETHEUS} is missing: install the Debian package "prometheus" (apt-get install prometheus)`,
    );
    assert.ok(
      existsSync(join(ROOT, "dist", "mod.js")),
      "dist/mod.js is missing: the Node example imports the built package; run ./node_modules/.bin/tsc -p tsconfig.json",
    );

    const children: Child[] = [];
    const proxies: RecordingProxy[] = [];
    const dir = mkdtempSync(join(tmpdir(), "theus-e2e-"));
    try {
      // The three examples, each on a port of its own choosing, with the memory backend.
      const services = await Promise.all(EXAMPLES.map(async ({ runtime, command, args }) => {
        const child = await startProcess({
          name: `the ${runtime} example`,
          command,
          args,
          cwd: ROOT,
          env: {
            PORT: "0",
            HOST: "127.0.0.1",
            THEUS_BACKEND: undefined,
            THEUS_BACKEND_CONFIG: undefined,
            DENO_NO_UPDATE_CHECK: "1",
            NO_COLOR: "1",
          },
        });
        children.push(child);
        const [, printed, base, port] = await child.waitFor(LISTENING, 30_000);
        assert.equal(printed, runtime);
        return { runtime, base, port: Number(port) };
      }));

      // Known traffic, before Prometheus starts: the values it reads can only be these.
      for (const { runtime, base } of services) {
        for (let i = 0; i < HITS; i++) {
          const res = await fetch(base);
          assert.equal(res.status, 200, `GET / on ${runtime}`);
          await res.arrayBuffer();
        }
        for (let i = 0; i < MISSES; i++) {
          const res = await fetch(`${base}missing`);
          assert.equal(res.status, 404, `GET /missing on ${runtime}`);
          await res.arrayBuffer();
        }
      }

      const api = await startPrometheus(
        dir,
        services.map(({ runtime, port }) => ({
          job: `theus-${runtime}`,
          instance: `${runtime}-example`,
          port,
        })),
        { proxies, started: (child) => children.push(child) },
      );
      const prometheus = children[children.length - 1];
      const abort = () => prometheus.closed() ? `prometheus exited:\n${prometheus.output()}` : undefined;

      const query = async (expr: string): Promise<Record<string, number>> => {
        const { data } = await getJson(`${api}/api/v1/query?query=${encodeURIComponent(expr)}`);
        const result =
          (data as { result: { metric: Record<string, string>; value: [number, string] }[] }).result;
        const samples: Sample[] = result.map((r) => ({ labels: r.metric, value: Number(r.value[1]) }));
        const byTarget: Record<string, number> = {};
        for (const { labels, value } of samples) {
          const key = `${labels.job}/${labels.instance}`;
          assert.ok(!(key in byTarget), `${expr} has more than one series for ${key}`);
          byTarget[key] = value;
        }
        return byTarget;
      };
      // A target is up once one scrape succeeded; its samples are then queryable.
      await waitUntil("the counters to be queryable", async () => {
        const found = await query(`http_requests_total{route="/"}`);
        return Object.keys(found).length === EXAMPLES.length || undefined;
      }, { abort });

      assert.deepEqual(await query("up"), each(1));
      assert.deepEqual(await query(`http_requests_total{method="GET",status="200",route="/"}`), each(HITS));
      assert.deepEqual(
        await query(`http_requests_total{method="GET",status="404",route="(unmatched)"}`),
        each(MISSES),
      );
      assert.deepEqual(
        await query(`http_request_duration_seconds_count{method="GET",route="/"}`),
        each(HITS),
      );
      assert.deepEqual(
        await query(`http_request_duration_seconds_bucket{method="GET",route="/",le="+Inf"}`),
        each(HITS),
      );
      // Handling GET / takes far less than a second, so every request is in the le="1.0" bucket;
      // le is written canonically, so no series has le="1".
      assert.deepEqual(
        await query(`http_request_duration_seconds_bucket{method="GET",route="/",le="1.0"}`),
        each(HITS),
      );
      assert.deepEqual(await query(`http_request_duration_seconds_bucket{le="1"}`), {});
      assert.deepEqual(
        await query(`http_request_duration_seconds_count{method="GET",route="(unmatched)"}`),
        each(MISSES),
      );
      const sums = await query(`http_request_duration_seconds_sum{method="GET",route="/"}`);
      assert.deepEqual(Object.keys(sums).sort(), Object.keys(each(0)).sort());
      for (const [target, sum] of Object.entries(sums)) {
        assert.ok(
          sum > 0 && sum < HITS,
          `${target}: _sum ${sum}`,
        );
      }
      // The only request in flight while the examples collect is the scrape itself.
      assert.deepEqual(await query(`http_requests_in_flight{method="GET"}`), each(1));

      // The runtime metrics, under prom-client's names, each example its own process's.
      const now = Date.now() / 1000;
      const rss = await query("process_resident_memory_bytes");
      assert.deepEqual(Object.keys(rss).sort(), Object.keys(each(0)).sort());
      for (const [target, bytes] of Object.entries(rss)) {
        assert.ok(bytes > 5e6 && bytes < 4e9, `${target}: RSS ${bytes}`);
      }
      for (const [target, started] of Object.entries(await query("process_start_time_seconds"))) {
        assert.ok(started < now && started > now - 600, `${target}: started ${started}`);
      }
      for (const [target, cpu] of Object.entries(await query("process_cpu_seconds_total"))) {
        assert.ok(cpu > 0 && cpu < 600, `${target}: CPU ${cpu} s`);
      }
      assert.equal(Object.keys(await query("nodejs_eventloop_lag_p99_seconds")).length, EXAMPLES.length);
      for (const { runtime } of EXAMPLES) {
        const info = await query(`${runtime === "node" ? "nodejs" : runtime}_version_info`);
        assert.deepEqual(Object.keys(info), [`theus-${runtime}/${runtime}-example`]);
      }

      // OpenMetrics, seen on the wire: Prometheus asked for it first, every example answered with
      // it (gzipped, as Prometheus also asks), and every scrape succeeded.
      for (const [i, proxy] of proxies.entries()) {
        const runtime = services[i].runtime;
        const scrapes = proxy.exchanges.filter((e) => e.path === "/metrics");
        assert.ok(scrapes.length > 0, `no scrape of the ${runtime} example went through its proxy`);
        for (const scrape of scrapes) {
          assert.match(scrape.accept ?? "", /^application\/openmetrics-text;\s*version=1\.0\.0[,;]/, runtime);
          assert.equal(scrape.status, 200, runtime);
          assert.equal(scrape.contentType, OPENMETRICS, runtime);
          assert.equal(scrape.contentEncoding, "gzip", runtime);
        }
      }
      // And as Prometheus stored it: OpenMetrics names a counter family without `_total`
      // (`# TYPE http_requests counter`), text 0.0.4 with it, and Prometheus keeps that name.
      // deno-lint-ignore no-explicit-any
      const { data: metadata } = await getJson(`${api}/api/v1/targets/metadata?metric=http_requests`) as any;
      assert.deepEqual(
        metadata.map((m: { target: Record<string, string>; type: string }) => `${m.target.job} ${m.type}`)
          .sort(),
        EXAMPLES.map(({ runtime }) => `theus-${runtime} counter`).sort(),
      );
    } finally {
      await Promise.allSettled([...children.map((c) => c.stop()), ...proxies.map((p) => p.close())]);
      rmSync(dir, { recursive: true, force: true });
    }
  },
  { timeout: 180_000 },
);
