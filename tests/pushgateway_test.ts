// Pushgateway against a real prometheus-pushgateway (the Debian package), one per file, on Deno,
// Bun and Node: what push(), pushAdd() and delete() leave on the gateway, read back from its
// /metrics and its JSON API; the group's path (the @base64 form for "/", empty and dot values);
// headers, gzip, the gateway's 400s, timeouts and refused connections; the options' checks.
// A missing binary fails every test here with what to install, never a skip.

import assert from "node:assert/strict";
import { Counter, defaultRegistry, Gauge, generateLatest, Histogram, Registry } from "../mod.ts";
import { Pushgateway, PushgatewayError, type PushgatewayFetch } from "../exposition/pushgateway.ts";
import { test } from "./_harness.ts";
import { freePort } from "./_servers.ts";
import {
  headerRecorder,
  ofGroup,
  parseValue,
  type PushgatewayServer,
  type Sample,
  silentServer,
  startPushgateway,
} from "./_pushgateway.ts";

let started: Promise<PushgatewayServer> | undefined;
/** The gateway of this file, started by the first test that needs it. */
function gateway(): Promise<PushgatewayServer> {
  return started ??= startPushgateway();
}

/** The value of the one sample named `name` with exactly these labels. */
function valueOf(
  samples: readonly Sample[],
  name: string,
  labels: Record<string, string>,
): number | undefined {
  const wanted = JSON.stringify(Object.entries(labels).sort());
  const found = samples.filter((s) =>
    s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === wanted
  );
  assert.ok(found.length <= 1, `${found.length} samples ${name}${wanted}`);
  return found[0]?.value;
}

/** The metric names of one group, without the gateway's own push_*_time_seconds. */
function namesOf(samples: readonly Sample[], group: Record<string, string>): string[] {
  return [...new Set(ofGroup(samples, group).map((s) => s.name))]
    .filter((name) => !/^push(_failure)?_time_seconds$/.test(name))
    .sort();
}

/** A fetch that records every request and answers `status`. */
function recorder(status = 200, body = ""): { fetch: PushgatewayFetch; requests: Request[] } {
  const requests: Request[] = [];
  return {
    requests,
    fetch: (url, init) => {
      requests.push(new Request(url, init));
      return Promise.resolve(new Response(body === "" ? null : body, { status }));
    },
  };
}

test("Pushgateway.push() sends a counter, a labelled gauge and a histogram, shown with job and grouping labels", async () => {
  const server = await gateway();
  const registry = new Registry();
  new Counter({ name: "pg_basic_jobs", help: "Jobs done", registry }).inc(3);
  const temperature = new Gauge({
    name: "pg_basic_temperature",
    help: "Temperature",
    labelNames: ["room"],
    registry,
  });
  temperature.labels({ room: "kitchen" }).set(21.5);
  temperature.labels({ room: "cellar" }).set(-4);
  const latency = new Histogram({ name: "pg_basic_seconds", help: "Latency", buckets: [0.1, 1], registry });
  latency.observe(0.05);
  latency.observe(0.5);
  latency.observe(7);

  await new Pushgateway({
    url: server.url,
    job: "pg_basic",
    grouping: { instance: "host-1", shard: "a" },
    registry,
  })
    .push();

  const samples = await server.samples();
  const group = { job: "pg_basic", instance: "host-1", shard: "a" };
  assert.equal(valueOf(samples, "pg_basic_jobs_total", group), 3);
  assert.equal(valueOf(samples, "pg_basic_temperature", { ...group, room: "kitchen" }), 21.5);
  assert.equal(valueOf(samples, "pg_basic_temperature", { ...group, room: "cellar" }), -4);
  const buckets = ofGroup(samples, group).filter((s) => s.name === "pg_basic_seconds_bucket");
  assert.deepEqual(
    buckets.map((s) => [parseValue(s.labels.le), s.value]).sort((a, b) => a[0] - b[0]),
    [[0.1, 1], [1, 2], [Infinity, 3]],
  );
  assert.equal(valueOf(samples, "pg_basic_seconds_count", group), 3);
  assert.equal(valueOf(samples, "pg_basic_seconds_sum", group), 7.55);
  assert.ok((valueOf(samples, "push_time_seconds", group) ?? 0) > 0, "push_time_seconds of the group");
  const types = await server.types();
  assert.equal(types.get("pg_basic_jobs_total"), "counter");
  assert.equal(types.get("pg_basic_temperature"), "gauge");
  assert.equal(types.get("pg_basic_seconds"), "histogram");
  assert.deepEqual((await server.groups()).filter((g) => g.job === "pg_basic"), [group]);
});

test("Pushgateway.pushAdd() replaces the metrics of the same names and keeps the group's others", async () => {
  const server = await gateway();
  const group = { job: "pg_add", instance: "" };
  const first = new Registry();
  new Counter({ name: "pg_add_kept", help: "Kept", registry: first }).inc(5);
  new Gauge({ name: "pg_add_replaced", help: "Replaced", labelNames: ["side"], registry: first })
    .labels({ side: "old" }).set(1);
  await new Pushgateway({ url: server.url, job: "pg_add", registry: first }).push();

  const second = new Registry();
  new Gauge({ name: "pg_add_replaced", help: "Replaced", labelNames: ["side"], registry: second })
    .labels({ side: "new" }).set(2);
  new Gauge({ name: "pg_add_added", help: "Added", registry: second }).set(9);
  await new Pushgateway({ url: server.url, job: "pg_add", registry: second }).pushAdd();

  const samples = await server.samples();
  assert.deepEqual(namesOf(samples, group), ["pg_add_added", "pg_add_kept_total", "pg_add_replaced"]);
  assert.equal(valueOf(samples, "pg_add_kept_total", group), 5);
  assert.equal(valueOf(samples, "pg_add_added", group), 9);
  // The whole family is replaced: the series of the first push is gone, not merged.
  assert.equal(valueOf(samples, "pg_add_replaced", { ...group, side: "old" }), undefined);
  assert.equal(valueOf(samples, "pg_add_replaced", { ...group, side: "new" }), 2);
});

test("Pushgateway.push() replaces every metric of the group, and only of that group", async () => {
  const server = await gateway();
  const registry = new Registry();
  new Gauge({ name: "pg_put_a", help: "A", registry }).set(1);
  new Gauge({ name: "pg_put_b", help: "B", registry }).set(2);
  await new Pushgateway({ url: server.url, job: "pg_put", registry }).push();
  // Another group of the same job, whose key starts with the first one's.
  const other = new Registry();
  new Gauge({ name: "pg_put_a", help: "A", registry: other }).set(10);
  await new Pushgateway({ url: server.url, job: "pg_put", grouping: { instance: "i" }, registry: other })
    .push();

  const replacement = new Registry();
  new Gauge({ name: "pg_put_c", help: "C", registry: replacement }).set(3);
  await new Pushgateway({ url: server.url, job: "pg_put", registry: replacement }).push();

  const samples = await server.samples();
  assert.deepEqual(namesOf(samples, { job: "pg_put", instance: "" }), ["pg_put_c"]);
  assert.equal(valueOf(samples, "pg_put_c", { job: "pg_put", instance: "" }), 3);
  assert.equal(valueOf(samples, "pg_put_a", { job: "pg_put", instance: "i" }), 10);
});

test("Pushgateway.delete() removes the group and leaves the groups whose key starts with it", async () => {
  const server = await gateway();
  const registry = new Registry();
  new Gauge({ name: "pg_delete_value", help: "Value", registry }).set(4);
  const job = new Pushgateway({ url: server.url, job: "pg_delete", registry });
  const instance = new Pushgateway({
    url: server.url,
    job: "pg_delete",
    grouping: { instance: "x" },
    registry,
  });
  await job.push();
  await instance.push();
  assert.equal(valueOf(await server.samples(), "pg_delete_value", { job: "pg_delete", instance: "" }), 4);

  await job.delete();
  // The gateway queues a DELETE and answers 202; the next read may come first.
  let samples = await server.samples();
  for (let i = 0; i < 50 && ofGroup(samples, { job: "pg_delete", instance: "" }).length > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    samples = await server.samples();
  }
  assert.deepEqual(ofGroup(samples, { job: "pg_delete", instance: "" }), []);
  assert.equal(valueOf(samples, "pg_delete_value", { job: "pg_delete", instance: "x" }), 4);
  assert.deepEqual((await server.groups()).filter((g) => g.job === "pg_delete"), [{
    job: "pg_delete",
    instance: "x",
  }]);
  // Deleting a group that is not there succeeds.
  await job.delete();
  await instance.delete();
});

test("grouping values with '/', empty, dot segments, spaces and non-ASCII round-trip through the gateway", async () => {
  const server = await gateway();
  const grouping = {
    path: "/var/tmp",
    empty: "",
    dot: ".",
    dots: "..",
    spaced: "a b+c%20d?e#f&g",
    greek: "Προμηθεύς",
    slashy: "a/b/",
  };
  const registry = new Registry();
  new Gauge({ name: "pg_encoding_value", help: "Value", registry }).set(7);
  const client = new Pushgateway({ url: `${server.url}/`, job: "pg/encoding", grouping, registry });
  assert.equal(
    client.groupUrl,
    `${server.url}/metrics/job@base64/cGcvZW5jb2Rpbmc/path@base64/L3Zhci90bXA/empty@base64/=/dot@base64/Lg` +
      `/dots@base64/Li4/spaced/a%20b%2Bc%2520d%3Fe%23f%26g/greek/${encodeURIComponent("Προμηθεύς")}` +
      `/slashy@base64/YS9iLw`,
  );
  await client.push();

  const key = { job: "pg/encoding", ...grouping };
  assert.deepEqual((await server.groups()).filter((g) => g.job === "pg/encoding"), [key]);
  assert.equal(valueOf(await server.samples(), "pg_encoding_value", { ...key, instance: "" }), 7);

  await client.delete();
  // The gateway queues a DELETE and answers 202; the next read may come first.
  let left = (await server.groups()).filter((g) => g.job === "pg/encoding");
  for (let i = 0; i < 50 && left.length > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    left = (await server.groups()).filter((g) => g.job === "pg/encoding");
  }
  assert.deepEqual(left, []);
});

test("headers go with every request, credentials in the URL become Basic auth, DELETE has no body", async () => {
  const { fetch, requests } = recorder();
  const registry = new Registry();
  new Counter({ name: "pg_headers", help: "Headers", registry }).inc();
  const client = new Pushgateway({
    url: "https://us%40er:p%C3%A4ss@gateway.example/prefix/",
    job: "pg_headers",
    registry,
    headers: [["x-tenant", "acme"], ["content-type", "application/json"]],
    fetch,
  });
  assert.equal(client.groupUrl, "https://gateway.example/prefix/metrics/job/pg_headers");
  await client.push();
  await client.pushAdd();
  await client.delete();
  assert.deepEqual(requests.map((r) => `${r.method} ${r.url}`), [
    "PUT https://gateway.example/prefix/metrics/job/pg_headers",
    "POST https://gateway.example/prefix/metrics/job/pg_headers",
    "DELETE https://gateway.example/prefix/metrics/job/pg_headers",
  ]);
  const basic = `Basic ${btoa(String.fromCharCode(...new TextEncoder().encode("us@er:päss")))}`;
  for (const request of requests) {
    assert.equal(request.headers.get("x-tenant"), "acme");
    assert.equal(request.headers.get("authorization"), basic);
    assert.equal(request.headers.get("content-encoding"), null);
  }
  for (const request of requests.slice(0, 2)) {
    // The exposition's own Content-Type wins over one given in headers.
    assert.equal(request.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    assert.equal(await request.text(), await generateLatest(registry));
  }
  assert.equal(requests[2].headers.get("content-type"), null);
  assert.equal(await requests[2].text(), "");

  // An Authorization header given explicitly wins over credentials in the URL.
  const explicit = recorder();
  await new Pushgateway({
    url: "http://user:pass@gateway.example",
    job: "j",
    registry,
    headers: { Authorization: "Bearer token" },
    fetch: explicit.fetch,
  }).push();
  assert.equal(explicit.requests[0].headers.get("authorization"), "Bearer token");
  assert.equal(explicit.requests[0].url, "http://gateway.example/metrics/job/j");
});

test("headers and Basic auth reach a real gateway through a recording proxy", async () => {
  const server = await gateway();
  const proxy = await headerRecorder(server.port);
  try {
    const registry = new Registry();
    new Gauge({ name: "pg_proxied", help: "Proxied", registry }).set(12);
    const port = new URL(proxy.url).port;
    await new Pushgateway({
      url: `http://scraper:s3cret@127.0.0.1:${port}`,
      job: "pg_proxied",
      registry,
      headers: { "x-tenant": "acme" },
    }).push();
    assert.equal(proxy.requests.length, 1);
    const [sent] = proxy.requests;
    assert.equal(`${sent.method} ${sent.path}`, "PUT /metrics/job/pg_proxied");
    assert.equal(sent.headers["x-tenant"], "acme");
    assert.equal(sent.headers.authorization, `Basic ${btoa("scraper:s3cret")}`);
    assert.equal(sent.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    assert.equal(valueOf(await server.samples(), "pg_proxied", { job: "pg_proxied", instance: "" }), 12);
  } finally {
    await proxy.close();
  }
});

test("gzip: true sends a gzip body that the real gateway accepts", async () => {
  const server = await gateway();
  const registry = new Registry();
  new Counter({ name: "pg_gzip_items", help: "Items", labelNames: ["kind"], registry }).labels({
    kind: 'é"\\\n',
  })
    .inc(42);
  const seen: { encoding: string | null; body: ArrayBuffer }[] = [];
  const spy: PushgatewayFetch = async (url, init) => {
    const request = new Request(url, init);
    seen.push({
      encoding: request.headers.get("content-encoding"),
      body: await request.clone().arrayBuffer(),
    });
    return fetch(request);
  };
  await new Pushgateway({ url: server.url, job: "pg_gzip", registry, gzip: true, fetch: spy }).push();
  assert.equal(seen[0].encoding, "gzip");
  assert.deepEqual([...new Uint8Array(seen[0].body, 0, 2)], [0x1f, 0x8b]);
  const plain = new TextEncoder().encode(await generateLatest(registry));
  const unzipped = await new Response(
    new Blob([seen[0].body]).stream().pipeThrough(
      new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
    ),
  ).arrayBuffer();
  assert.deepEqual(new Uint8Array(unzipped), plain);
  assert.equal(
    valueOf(await server.samples(), "pg_gzip_items_total", { job: "pg_gzip", instance: "", kind: 'é"\\\n' }),
    42,
  );
  // DELETE carries no body, so no Content-Encoding either.
  await new Pushgateway({ url: server.url, job: "pg_gzip", registry, gzip: true, fetch: spy }).delete();
  assert.equal(seen[1].encoding, null);
});

test("a push whose metric clashes with another type is rejected with 400 and the gateway's reason", async () => {
  const server = await gateway();
  const counters = new Registry();
  new Counter({ name: "pg_clash", help: "Clash", registry: counters }).inc();
  await new Pushgateway({ url: server.url, job: "pg_clash_a", registry: counters }).push();

  const gauges = new Registry();
  new Gauge({ name: "pg_clash_total", help: "Clash", registry: gauges }).set(1);
  const client = new Pushgateway({ url: server.url, job: "pg_clash_b", registry: gauges });
  const error = await client.push().then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof PushgatewayError, String(error));
  assert.equal(error.name, "PushgatewayError");
  assert.equal(error.status, 400);
  assert.equal(error.method, "PUT");
  assert.equal(error.url, `${server.url}/metrics/job/pg_clash_b`);
  assert.match(error.body, /inconsistent with existing metrics/);
  assert.match(
    error.message,
    new RegExp(`^Cannot PUT ${error.url}: the Pushgateway answered 400 Bad Request: .*inconsistent`),
  );
  await assert.rejects(client.pushAdd(), /answered 400 .*pg_clash_total/);

  // A clash with the gateway's own metrics (go_gc_duration_seconds is its summary).
  const own = new Registry();
  new Gauge({ name: "go_gc_duration_seconds", help: "Not a summary", registry: own }).set(1);
  await assert.rejects(
    new Pushgateway({ url: server.url, job: "pg_clash_own", registry: own }).push(),
    (e: unknown) => e instanceof PushgatewayError && e.status === 400,
  );
});

test("an invalid body is rejected with 400 and the gateway's parse error", async () => {
  const server = await gateway();
  const registry = new Registry();
  new Gauge({ name: "pg_invalid", help: "Invalid", registry }).set(1);
  // A transport that corrupts the body on its way: the real gateway judges what arrives.
  const corrupting: PushgatewayFetch = (url, init) => fetch(url, { ...init, body: "pg_invalid{oops 1\n" });
  const error = await new Pushgateway({ url: server.url, job: "pg_invalid", registry, fetch: corrupting })
    .push()
    .then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof PushgatewayError, String(error));
  assert.equal(error.status, 400);
  assert.match(
    error.message,
    /^Cannot PUT \S+\/metrics\/job\/pg_invalid: the Pushgateway answered 400 .*pars/,
  );
});

test("a non-2xx answer of any gateway rejects with its status and body; 2xx ones resolve", async () => {
  for (const status of [200, 201, 202, 204]) {
    await new Pushgateway({
      url: "http://gw.example",
      job: "j",
      registry: new Registry(),
      fetch: recorder(status).fetch,
    })
      .push();
  }
  for (
    const [status, text] of [[401, "Unauthorized"], [404, "page not found"], [500, ""], [
      503,
      "busy",
    ]] as const
  ) {
    const error = await new Pushgateway({
      url: "http://gw.example",
      job: "j",
      registry: new Registry(),
      fetch: recorder(status, text).fetch,
    }).delete().then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof PushgatewayError);
    assert.equal(error.status, status);
    assert.equal(error.body, text);
    assert.ok(
      error.message.startsWith(
        `Cannot DELETE http://gw.example/metrics/job/j: the Pushgateway answered ${status}`,
      ),
    );
    if (text !== "") assert.ok(error.message.endsWith(`: ${text}`), error.message);
  }
});

test("a gateway that never answers makes push() reject within timeoutMs, naming the URL and the timeout", async () => {
  const silent = await silentServer();
  try {
    const registry = new Registry();
    new Gauge({ name: "pg_timeout", help: "Timeout", registry }).set(1);
    const client = new Pushgateway({ url: silent.url, job: "pg_timeout", registry, timeoutMs: 400 });
    const started = performance.now();
    const error = await client.push().then(() => undefined, (e: unknown) => e);
    const elapsed = performance.now() - started;
    assert.ok(error instanceof Error && !(error instanceof PushgatewayError), String(error));
    assert.equal(
      error.message,
      `Cannot PUT ${silent.url}/metrics/job/pg_timeout: no answer within 400 ms (timeoutMs)`,
    );
    assert.ok(elapsed >= 350 && elapsed < 3_000, `rejected after ${elapsed} ms`);
    assert.equal(silent.connections(), 1);

    // The same with a fetch that ignores its signal: the deadline still holds.
    const deaf: PushgatewayFetch = () => new Promise<Response>(() => {});
    const t0 = performance.now();
    await assert.rejects(
      new Pushgateway({ url: silent.url, job: "pg_timeout", registry, timeoutMs: 300, fetch: deaf }).delete(),
      /Cannot DELETE \S+: no answer within 300 ms \(timeoutMs\)/,
    );
    assert.ok(performance.now() - t0 < 3_000);
  } finally {
    await silent.close();
  }
});

test("a refused connection rejects with the method, the URL and the cause", async () => {
  const port = await freePort();
  const error = await new Pushgateway({
    url: `http://127.0.0.1:${port}`,
    job: "pg_refused",
    registry: new Registry(),
  })
    .push().then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof Error && !(error instanceof PushgatewayError), String(error));
  assert.ok(
    error.message.startsWith(`Cannot PUT http://127.0.0.1:${port}/metrics/job/pg_refused: `),
    error.message,
  );
  assert.ok(error.cause !== undefined);
});

test("the default registry is pushed when no registry is given", async () => {
  const counter = new Counter({ name: "pg_default_registry_marker", help: "Marker" });
  try {
    counter.inc(2);
    const { fetch, requests } = recorder();
    await new Pushgateway({ url: "http://gw.example", job: "j", fetch }).push();
    const body = await requests[0].text();
    assert.match(body, /^pg_default_registry_marker_total 2$/m);
    assert.equal(body, await generateLatest(defaultRegistry));
  } finally {
    defaultRegistry.unregister(counter);
  }
});

test("bad options throw a TypeError at construction that names the option", () => {
  const ok = { url: "http://gw.example:9091", job: "j" };
  const cases: [unknown, RegExp][] = [
    [undefined, /^Invalid options of Pushgateway: expected an object/],
    [{ ...ok, jobName: "j" }, /^Unknown option "jobName" of Pushgateway: expected one of "url", "job"/],
    [{ ...ok, timeout: 5 }, /^Unknown option "timeout"/],
    [{ job: "j" }, /^Invalid url of Pushgateway: expected a string or a URL, got undefined/],
    [
      { ...ok, url: "localhost:9091" },
      /^Invalid url of Pushgateway "localhost:9091": expected http: or https:, got localhost:/,
    ],
    [{ ...ok, url: "not a url" }, /^Invalid url of Pushgateway: "not a url" is not an absolute URL/],
    [
      { ...ok, url: "ftp://gw.example" },
      /^Invalid url of Pushgateway "ftp:\/\/gw.example\/": expected http: or https:/,
    ],
    [
      { ...ok, url: "http://u:secret@gw.example/?x=1" },
      /^Invalid url of Pushgateway "http:\/\/u:\*\*\*@gw.example\/\?x=1": a query/,
    ],
    [{ ...ok, url: 9091 }, /^Invalid url of Pushgateway: expected a string or a URL, got number 9091/],
    [{ url: ok.url }, /^Invalid job of Pushgateway: expected a non-empty string, got undefined/],
    [{ ...ok, job: "" }, /^Invalid job of Pushgateway: expected a non-empty string, got ""/],
    [{ ...ok, job: 7 }, /^Invalid job of Pushgateway: expected a non-empty string, got number 7/],
    [{ ...ok, job: "a\ud800" }, /^Invalid value of job of Pushgateway: .* holds a lone surrogate/],
    [{ ...ok, grouping: [] }, /^Invalid grouping of Pushgateway: expected a plain object, got an array/],
    [
      { ...ok, grouping: new Map([["instance", "x"]]) },
      /^Invalid grouping of Pushgateway: expected a plain object/,
    ],
    [{ ...ok, job: "", url: "nope" }, /^Invalid url of Pushgateway: "nope" is not an absolute URL/],
    [{ ...ok, grouping: { job: "x" } }, /^Invalid grouping label name "job" of Pushgateway/],
    [{ ...ok, grouping: { "a-b": "x" } }, /^Invalid grouping label name "a-b" of Pushgateway: must match/],
    [{ ...ok, grouping: { "1a": "x" } }, /^Invalid grouping label name "1a"/],
    [{ ...ok, grouping: { __name__: "x" } }, /^Invalid grouping label name "__name__" .*reserved/],
    [{ ...ok, grouping: { "le@base64": "x" } }, /^Invalid grouping label name "le@base64"/],
    [
      { ...ok, grouping: { instance: 1 } },
      /^Invalid value of grouping label "instance" of Pushgateway: expected a string, got number 1/,
    ],
    [{ ...ok, grouping: { instance: null } }, /^Invalid value of grouping label "instance" .*got null/],
    [{ ...ok, registry: {} }, /^Invalid registry of Pushgateway: expected a Registry, got an object/],
    [{ ...ok, registry: null }, /^Invalid registry of Pushgateway: expected a Registry, got null/],
    [{ ...ok, timeoutMs: 0 }, /^Invalid timeoutMs of Pushgateway: expected a number of milliseconds above 0/],
    [{ ...ok, timeoutMs: -1 }, /^Invalid timeoutMs/],
    [{ ...ok, timeoutMs: NaN }, /^Invalid timeoutMs/],
    [{ ...ok, timeoutMs: Infinity }, /^Invalid timeoutMs/],
    [{ ...ok, timeoutMs: "100" }, /^Invalid timeoutMs/],
    [{ ...ok, gzip: "yes" }, /^Invalid gzip of Pushgateway: expected a boolean, got "yes"/],
    [{ ...ok, fetch: "fetch" }, /^Invalid fetch of Pushgateway: expected a function/],
    [{ ...ok, headers: [["bad header", "x"]] }, /^Invalid headers of Pushgateway: /],
    [{ ...ok, headers: 5 }, /^Invalid headers of Pushgateway: /],
  ];
  for (const [options, message] of cases) {
    let thrown: unknown;
    try {
      new Pushgateway(options as ConstructorParameters<typeof Pushgateway>[0]);
    } catch (error) {
      thrown = error;
    }
    const what = thrown instanceof Error ? `${thrown.name}: ${thrown.message}` : String(thrown);
    assert.ok(
      thrown instanceof TypeError && message.test(thrown.message),
      `${JSON.stringify(options)}: ${what}`,
    );
  }
  // What is valid: a URL object, a path prefix, a grouping label named like any label.
  const valid = new Pushgateway({
    url: new URL("http://gw.example:9091/gateway//"),
    job: "j",
    grouping: { instance: "x", le: "1", _private: "" },
    timeoutMs: 1,
    gzip: false,
    headers: new Headers(),
  });
  assert.equal(
    valid.groupUrl,
    "http://gw.example:9091/gateway/metrics/job/j/instance/x/le/1/_private@base64/=",
  );
});

test("the grouping given is copied, so later changes to it do not move the group", async () => {
  const grouping: Record<string, string> = { instance: "a" };
  const headers = new Headers({ "x-one": "1" });
  const { fetch, requests } = recorder();
  const client = new Pushgateway({ url: "http://gw.example", job: "j", grouping, headers, fetch });
  grouping.instance = "b";
  grouping.extra = "c";
  headers.set("x-one", "2");
  await client.delete();
  assert.equal(requests[0].url, "http://gw.example/metrics/job/j/instance/a");
  assert.equal(requests[0].headers.get("x-one"), "1");
});

test("the Pushgateway started for this file stops", async () => {
  if (started === undefined) return;
  const server = await started.catch(() => undefined);
  await server?.stop();
});
