// The OpenMetrics types Info and StateSet (and Enum, a state set with one true state), and the
// unit option: whole expositions in both formats, written by hand from the OpenMetrics spec and
// from client_python's text 0.0.4 (an info is the gauge `x_info`, a state set a gauge), each one
// checked by promtool and the strict OpenMetrics parser; the errors; reset(); custom collectors'
// families; and the same metrics on the shared memory and redis backends.

import assert from "node:assert/strict";
import {
  Counter,
  Enum,
  flush,
  Gauge,
  generateLatest,
  Histogram,
  Info,
  loadBackend,
  type MetricFamily,
  Registry,
  shareMemory,
  StateSet,
  Summary,
} from "../mod.ts";
import { RedisBackend } from "../backends/redis.ts";
import { test } from "./_harness.ts";
import { startRedis } from "./_redis.ts";
import { assertOpenMetrics, assertOpenMetricsAll, assertPromtool, assertPromtoolAll } from "./_validate.ts";

// A raw multi-line text: the first line break and each line's indentation are dropped. Bun's
// raw strings escape what is not ASCII, so a rocket is written EMOJI.
function golden(strings: TemplateStringsArray): string {
  return strings.raw.join("").replace(/^\n/, "").replace(/^[ ]+/gm, "").replaceAll("EMOJI", "🚀");
}

async function expositions(registry: Registry): Promise<{ text: string; om: string }> {
  return {
    text: await generateLatest(registry),
    om: await generateLatest(registry, { format: "openmetrics" }),
  };
}

// Both texts, checked by both validators, compared with what the spec says they must be.
async function assertExpositions(registry: Registry, text: string, om: string): Promise<void> {
  const got = await expositions(registry);
  assert.equal(got.text, text);
  assert.equal(got.om, om);
  await assertPromtool(got.text);
  await assertOpenMetrics(got.om);
}

// ---------------------------------------------------------------------------------------------
// Info

test("Info is written as an info in OpenMetrics and as the gauge x_info in text 0.0.4", async () => {
  const registry = new Registry();
  const build = new Info({ name: "build", help: "The build", registry });
  build.set({ version: "1.2.3", commit: "4f2a9c1" });
  const shard = new Info({ name: "shard_info", help: "Each shard", labelNames: ["shard"], registry });
  shard.labels({ shard: "0" }).set({ host: "db-1", zone: 'quo"te\\back\nline' });
  shard.labels({ shard: "1" }).set({ host: "db-2", emoji: "🚀" });
  new Info({ name: "unset", help: "Never set", registry });
  await assertExpositions(
    registry,
    golden`
      # HELP build_info The build
      # TYPE build_info gauge
      build_info{commit="4f2a9c1",version="1.2.3"} 1
      # HELP shard_info Each shard
      # TYPE shard_info gauge
      shard_info{shard="0",host="db-1",zone="quo\"te\\back\nline"} 1
      shard_info{shard="1",emoji="EMOJI",host="db-2"} 1
      # HELP unset_info Never set
      # TYPE unset_info gauge
    `,
    golden`
      # HELP build The build
      # TYPE build info
      build_info{commit="4f2a9c1",version="1.2.3"} 1
      # HELP shard Each shard
      # TYPE shard info
      shard_info{shard="0",host="db-1",zone="quo\"te\\back\nline"} 1
      shard_info{shard="1",emoji="EMOJI",host="db-2"} 1
      # HELP unset Never set
      # TYPE unset info
      # EOF
    `,
  );
  const [parsed] = await assertOpenMetrics(await generateLatest(registry, { format: "openmetrics" }));
  assert.deepEqual(parsed, {
    name: "build",
    type: "info",
    help: "The build",
    unit: "",
    samples: [["build_info", { commit: "4f2a9c1", version: "1.2.3" }, "1.0"]],
  });
});

test("Info.set() replaces the labels set before, and get() returns them", async () => {
  const registry = new Registry();
  const build = new Info({ name: "build", help: "The build", labelNames: ["app"], registry });
  const api = build.labels({ app: "api" });
  assert.equal(api.get(), undefined);
  api.set({ version: "1" });
  api.set({ version: "2", commit: "b" });
  api.set({ commit: "b", version: "2" }); // the same labels: still one series
  assert.deepEqual(api.get(), { commit: "b", version: "2" });
  assert.ok(Object.isFrozen(api.get()));
  const { om } = await expositions(registry);
  assert.equal(
    om,
    golden`
      # HELP build The build
      # TYPE build info
      build_info{app="api",commit="b",version="2"} 1
      # EOF
    `,
  );
  api.set({});
  assert.equal(
    (await expositions(registry)).text,
    golden`
      # HELP build_info The build
      # TYPE build_info gauge
      build_info{app="api"} 1
    `,
  );
});

test("An Info claims its family name and its sample name", () => {
  const registry = new Registry();
  const build = new Info({ name: "build_info", help: "The build", registry });
  assert.equal(build.name, "build_info");
  assert.equal(build.type, "info");
  assert.equal(registry.get("build"), build);
  assert.equal(registry.get("build_info"), build);
  assert.throws(
    () => new Gauge({ name: "build_info", help: "A gauge", registry }),
    (error: Error) => error.name === "AlreadyRegisteredError",
  );
});

test("Info.set() rejects a label of the metric, invalid names and values that are not strings", () => {
  const registry = new Registry({ labels: { region: "eu" } });
  const build = new Info({ name: "build", help: "The build", labelNames: ["app"], registry });
  const api = build.labels({ app: "api" });
  assert.throws(
    () => api.set({ app: "x" }),
    /Invalid label "app" for info "build": it is one of the metric's label names/,
  );
  assert.throws(() => api.set({ region: "x" }), /Invalid label "region" for info "build": its registry adds/);
  assert.throws(() => api.set({ "bad-name": "x" }), /Invalid label name "bad-name"/);
  assert.throws(() => api.set({ __reserved: "x" }), /reserved/);
  assert.throws(
    () => api.set({ version: 1 as unknown as string }),
    /Invalid value for label "version" of info "build": expected a string, got number 1/,
  );
  assert.throws(
    () => api.set("1.2.3" as unknown as Record<string, string>),
    /set\(\) takes an object of label values/,
  );
  assert.throws(() => build.set({ version: "1" }), /Cannot observe metric "build": missing values for "app"/);
  assert.equal(api.get(), undefined);
});

// ---------------------------------------------------------------------------------------------
// StateSet and Enum

test("StateSet is written as a stateset in OpenMetrics and as a gauge in text 0.0.4", async () => {
  const registry = new Registry();
  const feature = new StateSet({
    name: "feature",
    help: "Features turned on",
    states: ["dark_mode", "beta_search", "new_cart"],
    labelNames: ["zone"],
    registry,
  });
  feature.labels({ zone: "eu" }).set({ dark_mode: true, new_cart: true });
  feature.labels({ zone: "us" }).setState("beta_search");
  feature.labels({ zone: "ap" }).set({ beta_search: false });
  feature.labels({ zone: "never" }); // created, never set: no series
  await assertExpositions(
    registry,
    golden`
      # HELP feature Features turned on
      # TYPE feature gauge
      feature{zone="eu",feature="dark_mode"} 1
      feature{zone="eu",feature="beta_search"} 0
      feature{zone="eu",feature="new_cart"} 1
      feature{zone="us",feature="dark_mode"} 0
      feature{zone="us",feature="beta_search"} 1
      feature{zone="us",feature="new_cart"} 0
      feature{zone="ap",feature="dark_mode"} 0
      feature{zone="ap",feature="beta_search"} 0
      feature{zone="ap",feature="new_cart"} 0
    `,
    golden`
      # HELP feature Features turned on
      # TYPE feature stateset
      feature{zone="eu",feature="dark_mode"} 1
      feature{zone="eu",feature="beta_search"} 0
      feature{zone="eu",feature="new_cart"} 1
      feature{zone="us",feature="dark_mode"} 0
      feature{zone="us",feature="beta_search"} 1
      feature{zone="us",feature="new_cart"} 0
      feature{zone="ap",feature="dark_mode"} 0
      feature{zone="ap",feature="beta_search"} 0
      feature{zone="ap",feature="new_cart"} 0
      # EOF
    `,
  );
  const eu = feature.labels({ zone: "eu" });
  eu.set({ dark_mode: false }); // the others keep their values
  assert.deepEqual(await eu.get(), { dark_mode: false, beta_search: false, new_cart: true });
  assert.deepEqual(feature.states, ["dark_mode", "beta_search", "new_cart"]);
  assert.equal(feature.type, "stateset");
});

test("Enum is a state set with exactly one true state", async () => {
  const registry = new Registry();
  const task = new Enum({
    name: "task_state",
    help: "The state of the task",
    states: ["starting", "running", "stopped"],
    registry,
  });
  task.state("running");
  const jobs = new Enum({
    name: "job_state",
    help: "Jobs",
    states: ["queued", "done"],
    labelNames: ["job"],
    registry,
  });
  jobs.labels({ job: "a" }).state("queued");
  jobs.labels({ job: "b" }).set({ done: true, queued: false });
  await assertExpositions(
    registry,
    golden`
      # HELP task_state The state of the task
      # TYPE task_state gauge
      task_state{task_state="starting"} 0
      task_state{task_state="running"} 1
      task_state{task_state="stopped"} 0
      # HELP job_state Jobs
      # TYPE job_state gauge
      job_state{job="a",job_state="queued"} 1
      job_state{job="a",job_state="done"} 0
      job_state{job="b",job_state="queued"} 0
      job_state{job="b",job_state="done"} 1
    `,
    golden`
      # HELP task_state The state of the task
      # TYPE task_state stateset
      task_state{task_state="starting"} 0
      task_state{task_state="running"} 1
      task_state{task_state="stopped"} 0
      # HELP job_state Jobs
      # TYPE job_state stateset
      job_state{job="a",job_state="queued"} 1
      job_state{job="a",job_state="done"} 0
      job_state{job="b",job_state="queued"} 0
      job_state{job="b",job_state="done"} 1
      # EOF
    `,
  );
  task.state("stopped");
  assert.deepEqual(await task.get(), { starting: false, running: false, stopped: true });
  const [family] = await task.collect();
  assert.deepEqual(family, {
    name: "task_state",
    help: "The state of the task",
    type: "stateset",
    series: [
      { labels: { task_state: "starting" }, value: 0 },
      { labels: { task_state: "running" }, value: 0 },
      { labels: { task_state: "stopped" }, value: 1 },
    ],
  });
});

test("A registry prefix renames a state set's state label with its family", async () => {
  const registry = new Registry({ prefix: "shop", labels: { region: "eu" } });
  new Enum({ name: "task_state", help: "Task", states: ["on", "off"], registry }).state("off");
  new Info({ name: "build", help: "Build", registry }).set({ version: "1" });
  await assertExpositions(
    registry,
    golden`
      # HELP shop_task_state Task
      # TYPE shop_task_state gauge
      shop_task_state{shop_task_state="on",region="eu"} 0
      shop_task_state{shop_task_state="off",region="eu"} 1
      # HELP shop_build_info Build
      # TYPE shop_build_info gauge
      shop_build_info{version="1",region="eu"} 1
    `,
    golden`
      # HELP shop_task_state Task
      # TYPE shop_task_state stateset
      shop_task_state{shop_task_state="on",region="eu"} 0
      shop_task_state{shop_task_state="off",region="eu"} 1
      # HELP shop_build Build
      # TYPE shop_build info
      shop_build_info{version="1",region="eu"} 1
      # EOF
    `,
  );
  // The state label, prefixed, is one of the metric's labels for the registry's checks.
  const other = new Registry({ prefix: "shop" });
  new StateSet({ name: "mode", help: "Mode", states: ["a"], registry: other });
  assert.throws(
    () => other.setDefaultLabels({ shop_mode: "x" }),
    /Cannot set the registry label "shop_mode": metric "mode" has a label of that name/,
  );
  assert.throws(
    () =>
      new StateSet({ name: "mode", help: "Mode", states: ["a"], registry: new Registry({ prefix: "a:b" }) }),
    /Cannot register state set "mode": its state label, named after the family, would be "a:b_mode"/,
  );
});

test("StateSet and Enum reject unknown states, a second true state, and bad definitions", () => {
  const registry = new Registry();
  const task = new Enum({ name: "task_state", help: "Task", states: ["starting", "running"], registry });
  assert.throws(
    () => task.state("paused" as "running"),
    /Unknown state "paused" of enum "task_state": expected one of "starting", "running"/,
  );
  assert.throws(
    () => task.set({ starting: true, running: true }),
    /Invalid states for enum "task_state": exactly one state is true, got "starting", "running"/,
  );
  assert.throws(() => task.set({ starting: false }), /exactly one state is true, got none/);
  assert.throws(() => task.set({ paused: true } as never), /Unknown state "paused" of enum/);
  const flags = new StateSet({
    name: "flags",
    help: "Flags",
    states: ["a", "b"],
    labelNames: ["zone"],
    registry,
  });
  const eu = flags.labels({ zone: "eu" });
  assert.throws(
    () => eu.setState("c" as "a"),
    /Unknown state "c" of state set "flags": expected one of "a", "b"/,
  );
  assert.throws(() => eu.set({ c: true } as never), /Unknown state "c" of state set "flags"/);
  assert.throws(
    () => eu.set({ a: 1 } as never),
    /Invalid value for state "a" of state set "flags": expected a boolean, got number 1/,
  );
  assert.throws(() => eu.set(["a"] as never), /set\(\) takes an object of states mapped to booleans/);
  assert.throws(() => flags.setState("a"), /Cannot observe metric "flags": missing values for "zone"/);
  assert.throws(() => flags.set({ a: true }), /missing values for "zone"/);
  // Definitions.
  const none = { registry: null, help: "h" };
  assert.throws(
    () => new StateSet({ ...none, name: "mode", states: ["a"], labelNames: ["mode"] }),
    /Invalid label name "mode" for state set "mode": the state label has the metric's name/,
  );
  assert.throws(
    () => new Enum({ ...none, name: "mode", states: ["a"], labelNames: ["mode"] }),
    /for enum "mode"/,
  );
  assert.throws(
    () => new StateSet({ ...none, name: "a:mode", states: ["a"] }),
    /Invalid name "a:mode" for state set: its state label is named after it/,
  );
  assert.throws(
    () => new StateSet({ ...none, name: "mode", states: [] }),
    /expected a non-empty array of strings, got an empty array/,
  );
  assert.throws(
    () => new StateSet({ ...none, name: "mode", states: ["a", "a"] }),
    /Duplicate state "a" of state set "mode"/,
  );
  assert.throws(
    () => new StateSet({ ...none, name: "mode", states: [1] as never }),
    /expected a string, got number 1/,
  );
  assert.throws(() => new StateSet({ ...none, name: "mode" } as never), /Invalid states of state set "mode"/);
  assert.throws(
    () => new Gauge({ ...none, name: "g", states: ["a"] } as never),
    /Unknown option "states" of gauge "g"/,
  );
});

// ---------------------------------------------------------------------------------------------
// reset(), remove()

test("reset() and remove() drop the series of an Info, a StateSet and an Enum", async () => {
  const registry = new Registry();
  const build = new Info({ name: "build", help: "Build", registry });
  build.set({ version: "1" });
  const task = new Enum({ name: "task_state", help: "Task", states: ["a", "b"], registry });
  task.state("b");
  const flags = new StateSet({ name: "flags", help: "Flags", states: ["x"], labelNames: ["zone"], registry });
  flags.labels({ zone: "eu" }).set({ x: true });
  flags.labels({ zone: "us" }).set({ x: false });
  build.reset();
  task.reset();
  assert.ok(flags.remove({ zone: "us" }));
  const empty = golden`
    # HELP build Build
    # TYPE build info
    # HELP task_state Task
    # TYPE task_state stateset
    # HELP flags Flags
    # TYPE flags stateset
    flags{zone="eu",flags="x"} 1
    # EOF
  `;
  assert.equal((await expositions(registry)).om, empty);
  assert.equal(build.get(), undefined);
  assert.deepEqual(await task.get(), { a: false, b: false });
  flags.reset();
  build.set({ version: "2" });
  task.state("a");
  const { text, om } = await expositions(registry);
  assert.equal(
    om,
    golden`
      # HELP build Build
      # TYPE build info
      build_info{version="2"} 1
      # HELP task_state Task
      # TYPE task_state stateset
      task_state{task_state="a"} 1
      task_state{task_state="b"} 0
      # HELP flags Flags
      # TYPE flags stateset
      # EOF
    `,
  );
  await assertPromtool(text);
  await assertOpenMetrics(om);
});

// ---------------------------------------------------------------------------------------------
// unit

test("unit: OpenMetrics writes # UNIT after TYPE, text 0.0.4 writes nothing", async () => {
  const registry = new Registry();
  new Counter({ name: "sent_bytes_total", help: "Bytes sent", unit: "bytes", registry }).inc(3);
  new Counter({ name: "busy_seconds", help: "Busy", unit: "seconds", registry }).inc(0.5);
  new Gauge({ name: "temperature_celsius", help: "Temperature", unit: "celsius", registry }).set(21.5);
  new Histogram({ name: "latency_seconds", help: "Latency", unit: "seconds", buckets: [1], registry })
    .observe(0.25);
  new Summary({ name: "payload_bytes", help: "Payloads", unit: "bytes", registry }).observe(10);
  await assertExpositions(
    registry,
    golden`
      # HELP sent_bytes_total Bytes sent
      # TYPE sent_bytes_total counter
      sent_bytes_total 3
      # HELP busy_seconds_total Busy
      # TYPE busy_seconds_total counter
      busy_seconds_total 0.5
      # HELP temperature_celsius Temperature
      # TYPE temperature_celsius gauge
      temperature_celsius 21.5
      # HELP latency_seconds Latency
      # TYPE latency_seconds histogram
      latency_seconds_bucket{le="1.0"} 1
      latency_seconds_bucket{le="+Inf"} 1
      latency_seconds_sum 0.25
      latency_seconds_count 1
      # HELP payload_bytes Payloads
      # TYPE payload_bytes summary
      payload_bytes_sum 10
      payload_bytes_count 1
    `,
    golden`
      # HELP sent_bytes Bytes sent
      # TYPE sent_bytes counter
      # UNIT sent_bytes bytes
      sent_bytes_total 3
      # HELP busy_seconds Busy
      # TYPE busy_seconds counter
      # UNIT busy_seconds seconds
      busy_seconds_total 0.5
      # HELP temperature_celsius Temperature
      # TYPE temperature_celsius gauge
      # UNIT temperature_celsius celsius
      temperature_celsius 21.5
      # HELP latency_seconds Latency
      # TYPE latency_seconds histogram
      # UNIT latency_seconds seconds
      latency_seconds_bucket{le="1.0"} 1
      latency_seconds_bucket{le="+Inf"} 1
      latency_seconds_sum 0.25
      latency_seconds_count 1
      # HELP payload_bytes Payloads
      # TYPE payload_bytes summary
      # UNIT payload_bytes bytes
      payload_bytes_sum 10
      payload_bytes_count 1
      # EOF
    `,
  );
  const parsed = await assertOpenMetrics(await generateLatest(registry, { format: "openmetrics" }));
  assert.deepEqual(parsed.map((f) => [f.name, f.unit]), [
    ["sent_bytes", "bytes"],
    ["busy_seconds", "seconds"],
    ["temperature_celsius", "celsius"],
    ["latency_seconds", "seconds"],
    ["payload_bytes", "bytes"],
  ]);
  // With a registry prefix, the unit stays the suffix.
  const prefixed = new Registry({ prefix: "app" });
  const sent = new Counter({ name: "sent_bytes_total", help: "Sent", unit: "bytes", registry: prefixed });
  assert.equal(sent.unit, "bytes");
  assert.deepEqual(await sent.collect(), [
    { name: "sent_bytes", help: "Sent", type: "counter", series: [{ labels: {}, value: 0 }], unit: "bytes" },
  ]);
  const om = await generateLatest(prefixed, { format: "openmetrics" });
  assert.ok(om.includes("# UNIT app_sent_bytes bytes\n"), om);
  await assertOpenMetrics(om);
});

test("unit: a name that does not end with the unit, an empty unit and an info's unit are TypeErrors", () => {
  const none = { help: "h", registry: null };
  assert.throws(
    () => new Gauge({ ...none, name: "latency", unit: "seconds" }),
    (error: Error) =>
      error instanceof TypeError &&
      error.message ===
        `Invalid unit "seconds" of gauge "latency": the name must end with "_seconds", as OpenMetrics requires; name it "latency_seconds"`,
  );
  assert.throws(
    () => new Counter({ ...none, name: "busy_total", unit: "seconds" }),
    /Invalid unit "seconds" of counter "busy_total": the name must end with "_seconds" \(before "_total"\), as OpenMetrics requires; name it "busy_seconds_total"/,
  );
  assert.throws(
    () => new Counter({ ...none, name: "seconds_total", unit: "seconds" }),
    /must end with "_seconds"/,
  );
  assert.throws(() => new Histogram({ ...none, name: "size_byte", unit: "bytes" }), /must end with "_bytes"/);
  assert.throws(
    () => new Gauge({ ...none, name: "x_seconds", unit: "" }),
    /Invalid unit of gauge "x_seconds": expected a non-empty string, got ""/,
  );
  assert.throws(
    () => new Gauge({ ...none, name: "x_seconds", unit: 1 as unknown as string }),
    /got number 1/,
  );
  assert.throws(
    () => new Info({ ...none, name: "build_seconds", unit: "seconds" as never }),
    /Invalid unit of info "build_seconds": an info has no unit in OpenMetrics/,
  );
  assert.throws(
    () => new StateSet({ ...none, name: "mode_seconds", states: ["a"], unit: "seconds" as never }),
    /Invalid unit of stateset "mode_seconds": a state set has no unit in OpenMetrics/,
  );
  assert.throws(
    () => new Enum({ ...none, name: "e_seconds", states: ["a"], unit: "seconds" as never }),
    TypeError,
  );
  // Every type takes the option; the suffix check passes with the counter's _total left out.
  assert.equal(new Counter({ ...none, name: "busy_seconds_total", unit: "seconds" }).unit, "seconds");
  assert.equal(new Gauge({ ...none, name: "g" }).unit, undefined);
});

// ---------------------------------------------------------------------------------------------
// Custom collectors

test("Custom collectors' info, stateset and unit families are checked and written", async () => {
  const registry = new Registry();
  const families: MetricFamily[] = [
    {
      name: "os_info",
      help: "The OS",
      type: "info",
      series: [{ labels: { os: "linux", arch: "x64" }, value: 1 }],
    },
    {
      name: "mode",
      help: "Modes",
      type: "stateset",
      // Interleaved label sets: the registry groups them, as OpenMetrics requires.
      series: [
        { labels: { zone: "x", mode: "a" }, value: 1 },
        { labels: { zone: "y", mode: "a" }, value: 0 },
        { labels: { zone: "x", mode: "b" }, value: 0 },
        { labels: { zone: "y", mode: "b" }, value: 1 },
      ],
    },
    { name: "disk_bytes", help: "Disk", type: "gauge", unit: "bytes", series: [{ labels: {}, value: 5 }] },
    {
      name: "ops_seconds_total",
      help: "Ops",
      type: "counter",
      unit: "seconds",
      series: [{ labels: {}, value: 2 }],
    },
  ];
  registry.register({ collect: () => families });
  await assertExpositions(
    registry,
    golden`
      # HELP os_info The OS
      # TYPE os_info gauge
      os_info{os="linux",arch="x64"} 1
      # HELP mode Modes
      # TYPE mode gauge
      mode{zone="x",mode="a"} 1
      mode{zone="x",mode="b"} 0
      mode{zone="y",mode="a"} 0
      mode{zone="y",mode="b"} 1
      # HELP disk_bytes Disk
      # TYPE disk_bytes gauge
      disk_bytes 5
      # HELP ops_seconds_total Ops
      # TYPE ops_seconds_total counter
      ops_seconds_total 2
    `,
    golden`
      # HELP os The OS
      # TYPE os info
      os_info{os="linux",arch="x64"} 1
      # HELP mode Modes
      # TYPE mode stateset
      mode{zone="x",mode="a"} 1
      mode{zone="x",mode="b"} 0
      mode{zone="y",mode="a"} 0
      mode{zone="y",mode="b"} 1
      # HELP disk_bytes Disk
      # TYPE disk_bytes gauge
      # UNIT disk_bytes bytes
      disk_bytes 5
      # HELP ops_seconds Ops
      # TYPE ops_seconds counter
      # UNIT ops_seconds seconds
      ops_seconds_total 2
      # EOF
    `,
  );
});

test("Custom collectors' invalid info, stateset and unit families fail the collection", async () => {
  const bad: [MetricFamily, RegExp][] = [
    [{ name: "i", help: "", type: "info", series: [{ labels: {}, value: 2 }] }, /info values must be 1/],
    [
      { name: "s", help: "", type: "stateset", series: [{ labels: { s: "a" }, value: 0.5 }] },
      /state set values must be 0 or 1/,
    ],
    [
      { name: "s", help: "", type: "stateset", series: [{ labels: { other: "a" }, value: 1 }] },
      /each series needs the state label "s"/,
    ],
    [
      { name: "a:s", help: "", type: "stateset", series: [] },
      /a state set's name is also its state label's/,
    ],
    [
      { name: "g", help: "", type: "gauge", unit: "seconds", series: [] },
      /Invalid unit "seconds" of family "g" from a custom collector: the name must end with "_seconds"/,
    ],
    [
      { name: "i_seconds", help: "", type: "info", unit: "seconds", series: [] } as unknown as MetricFamily,
      /an info has no unit/,
    ],
    [
      {
        name: "i",
        help: "",
        type: "info",
        series: [{ labels: {}, value: 1, exemplar: { labels: {}, value: 1 } }],
      },
      /only counters and histograms have exemplars/,
    ],
  ];
  for (const [family, message] of bad) {
    const registry = new Registry();
    registry.register({ collect: () => [family] });
    await assert.rejects(registry.collect(), message, family.name);
  }
  // A custom state set under a prefix that cannot name a label.
  const prefixed = new Registry({ prefix: "a:b" });
  prefixed.register({
    collect: () => [{ name: "s", help: "", type: "stateset", series: [{ labels: { s: "x" }, value: 1 }] }],
  });
  await assert.rejects(prefixed.collect(), /Invalid label name "a:b_s"/);
});

// ---------------------------------------------------------------------------------------------
// The same metrics on every backend

// Creates and sets the metrics the backends are compared on: infos replaced, a state set with
// a state label that sorts before the other label (a store that sorts fields interleaves them),
// a label set with one state written, an enum, a unit.
function populate(registry: Registry): { build: Info; feature: StateSet } {
  const build = new Info({ name: "build", help: "The build", registry });
  build.set({ version: "1.2.3", commit: "a" });
  build.set({ version: "1.2.4", commit: "b" });
  const worker = new Info({ name: "worker", help: "Workers", labelNames: ["worker"], registry });
  worker.labels({ worker: "1" }).set({ host: "h1" });
  worker.labels({ worker: "2" }).set({ host: "h2", pid: "7" });
  const feature = new StateSet({
    name: "feature",
    help: "Features",
    states: ["dark", "beta", "cart"],
    labelNames: ["zone"],
    registry,
  });
  feature.labels({ zone: "eu" }).set({ dark: true, cart: true });
  feature.labels({ zone: "us" }).setState("beta");
  feature.labels({ zone: "ap" }).set({ beta: false });
  new Enum({ name: "task_state", help: "Task", states: ["starting", "running"], registry }).state("running");
  new Counter({ name: "sent_bytes_total", help: "Sent", unit: "bytes", registry }).inc(3);
  return { build, feature };
}

// The same definitions, none set: on a shared backend they read what the others wrote.
function define(registry: Registry): void {
  new Info({ name: "build", help: "The build", registry });
  new Info({ name: "worker", help: "Workers", labelNames: ["worker"], registry });
  new StateSet({
    name: "feature",
    help: "Features",
    states: ["dark", "beta", "cart"],
    labelNames: ["zone"],
    registry,
  });
  new Enum({ name: "task_state", help: "Task", states: ["starting", "running"], registry });
  new Counter({ name: "sent_bytes_total", help: "Sent", unit: "bytes", registry });
}

const MEMORY_OM = golden`
  # HELP build The build
  # TYPE build info
  build_info{commit="b",version="1.2.4"} 1
  # HELP worker Workers
  # TYPE worker info
  worker_info{worker="1",host="h1"} 1
  worker_info{worker="2",host="h2",pid="7"} 1
  # HELP feature Features
  # TYPE feature stateset
  feature{zone="eu",feature="dark"} 1
  feature{zone="eu",feature="beta"} 0
  feature{zone="eu",feature="cart"} 1
  feature{zone="us",feature="dark"} 0
  feature{zone="us",feature="beta"} 1
  feature{zone="us",feature="cart"} 0
  feature{zone="ap",feature="dark"} 0
  feature{zone="ap",feature="beta"} 0
  feature{zone="ap",feature="cart"} 0
  # HELP task_state Task
  # TYPE task_state stateset
  task_state{task_state="starting"} 0
  task_state{task_state="running"} 1
  # HELP sent_bytes Sent
  # TYPE sent_bytes counter
  # UNIT sent_bytes bytes
  sent_bytes_total 3
  # EOF
`;

// A store returns label sets in its own order (Redis: sorted by label text), so texts are compared
// as sets of lines; the OpenMetrics parser checks that each label set's states stay together.
function normalize(text: string): string[] {
  return text.split("\n").sort();
}

test("Info, StateSet, Enum and unit expose the same on memory, shared memory and redis", async () => {
  const memory = new Registry();
  populate(memory);
  const expected = await expositions(memory);
  assert.equal(expected.om, MEMORY_OM);

  const shared = await shareMemory();
  let onShared: { text: string; om: string };
  try {
    if (shared.memory === undefined) throw new Error("this runtime should share memory");
    const registry = new Registry();
    populate(registry);
    onShared = await expositions(registry);
  } finally {
    await loadBackend({ backend: "memory" });
  }

  const server = await startRedis();
  let onRedis: { text: string; om: string };
  let fromStore: { text: string; om: string };
  let afterReset: { text: string; om: string };
  try {
    await loadBackend({ backend: "redis", config: { url: server.url, keyPrefix: "omtypes" } });
    const writer = new Registry();
    const { build, feature } = populate(writer);
    await flush();
    onRedis = await expositions(writer);
    // Metrics defined the same way and never set, as another process has them: the collection
    // reads what the store holds.
    const reader = new Registry();
    define(reader);
    fromStore = await expositions(reader);
    // reset() deletes the series from the store, as seen from the other registry.
    build.reset();
    feature.remove({ zone: "ap" });
    await flush();
    afterReset = await expositions(reader);
  } finally {
    try {
      await flush();
      await loadBackend({ backend: "memory" });
      await RedisBackend.close();
    } finally {
      await server.stop();
    }
  }
  for (const got of [onShared, onRedis, fromStore]) {
    assert.deepEqual(normalize(got.om), normalize(expected.om));
    assert.deepEqual(normalize(got.text), normalize(expected.text));
  }
  // The store sorts its fields by label text, state label first: its label sets come back
  // interleaved, and are written together, zone "ap" first, states in their declared order.
  assert.ok(
    fromStore.om.includes(golden`
      feature{zone="ap",feature="dark"} 0
      feature{zone="ap",feature="beta"} 0
      feature{zone="ap",feature="cart"} 0
      feature{zone="eu",feature="dark"} 1
      feature{zone="eu",feature="beta"} 0
      feature{zone="eu",feature="cart"} 1
    `),
    fromStore.om,
  );
  assert.ok(!afterReset.om.includes("build_info"), afterReset.om);
  assert.ok(!afterReset.om.includes(`zone="ap"`), afterReset.om);
  assert.ok(afterReset.om.includes(`feature{zone="us",feature="beta"} 1`), afterReset.om);
  const texts = [onShared, onRedis, fromStore, afterReset];
  await assertPromtoolAll(texts.map((t) => t.text));
  await assertOpenMetricsAll(texts.map((t) => t.om));
}, { timeout: 60_000 });
