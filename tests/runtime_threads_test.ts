// The runtime metrics with shareMemory(): threads that each collect them show the process's
// figures once, from any thread, never once per thread.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { loadBackend, type MetricFamily, Registry, shareMemory } from "../mod.ts";
import { collectDefaultMetrics } from "../runtime/mod.ts";
import { runtime, test } from "./_harness.ts";
import { startThread } from "./_threads.ts";

const THREAD = new URL("./fixtures/runtime_thread.ts", import.meta.url);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Seen {
  name: string;
  series: number;
  value: number;
}

function procCpuSeconds(): number {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function vmRss(): number {
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync("/proc/self/status", "utf8"))![1]) * 1024;
}

const seen = (families: readonly MetricFamily[]): Seen[] =>
  families.map((f) => ({
    name: f.name,
    series: f.series.length,
    value: (f.series[0] as { value: number })?.value,
  }));

test(
  `on ${runtime}, three threads collecting runtime metrics into shared memory show the process once`,
  async () => {
    const handle = await shareMemory();
    const registry = new Registry();
    const threads = [startThread(THREAD, { handle }), startThread(THREAD, { handle })];
    try {
      using _runtime = collectDefaultMetrics({
        registry,
        updateIntervalMs: 100,
        include: ["cpu", "memory", "heap", "start"],
      });
      for (const thread of threads) assert.equal(await thread.next(), "ready");
      // Burn CPU, let every thread update its values, then scrape from the main thread and a worker.
      const end = performance.now() + 300;
      while (performance.now() < end);
      await sleep(400);
      const before = procCpuSeconds();
      const rssBefore = vmRss();
      const main = seen(await registry.collect());
      const rssAfter = vmRss();
      const after = procCpuSeconds();
      threads[0].post("collect");
      const worker = (await threads[0].next()) as Seen[];
      for (const view of [main, worker]) {
        const names = view.map((s) => s.name).sort();
        assert.ok(
          names.includes("process_cpu_seconds") && names.includes("nodejs_heap_size_used_bytes"),
          names.join(),
        );
        for (const family of view) assert.equal(family.series, 1, `${family.name}: ${family.series} series`);
      }
      const cpu = main.find((s) => s.name === "process_cpu_seconds")!.value;
      // One process's CPU time (as /proc has it), not the sum of three threads' readings of it.
      assert.ok(cpu <= after + 0.25 && cpu >= before * 0.5, `CPU ${cpu} s, /proc ${before}..${after} s`);
      const rss = main.find((s) => s.name === "process_resident_memory_bytes")!.value;
      assert.ok(
        rss >= Math.min(rssBefore, rssAfter) * 0.8 && rss <= Math.max(rssBefore, rssAfter) * 1.2,
        `RSS ${rss}, VmRSS ${rssBefore}..${rssAfter}`,
      );
      const workerCpu = worker.find((s) => s.name === "process_cpu_seconds")!.value;
      assert.ok(Math.abs(workerCpu - cpu) < 0.5, `worker sees ${workerCpu}, main ${cpu}`);
    } finally {
      await Promise.all(threads.map((thread) => thread.terminate()));
      // The next test file in this process gets the default backend again.
      await loadBackend({ backend: "memory" });
    }
  },
  { timeout: 60_000 },
);
