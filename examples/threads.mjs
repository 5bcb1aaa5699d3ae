// Worker threads that share one set of metrics, on Node (20 or later), in plain JavaScript:
//   node examples/threads.mjs        (after `npm start` or `npm run build` made dist/)
// The main thread serves /metrics; WORKERS worker threads (4 by default) each do JOBS jobs
// (1,000 by default) and count them in the same metrics. A scrape of the main thread shows every
// thread's jobs, with no message between the threads at scrape time.
// PORT (default 8080, 0 picks a free one) and HOST (default 127.0.0.1) set the address.

import { createServer } from "node:http";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { Counter, flush, Histogram, metricsHandler, shareMemory } from "theus";
import { nodeListener } from "theus/node";

/** The metrics, defined the same way in every thread: the same name and labels is the same series. */
function defineMetrics() {
  return {
    jobs: new Counter({ name: "jobs_total", help: "Jobs done", labelNames: ["kind"] }),
    seconds: new Histogram({ name: "job_duration_seconds", help: "Time spent on a job" }),
  };
}

if (isMainThread) {
  const handle = await shareMemory(); // before any metric is created
  defineMetrics();
  const workers = Number(process.env.WORKERS ?? 4);
  const jobs = Number(process.env.JOBS ?? 1000);
  const server = createServer(nodeListener(metricsHandler()));
  server.listen(Number(process.env.PORT ?? 8080), process.env.HOST ?? "127.0.0.1", () => {
    const { port } = server.address();
    console.log(`theus threads example listening on http://127.0.0.1:${port}/metrics`);
  });
  const done = Array.from({ length: workers }, (_, id) =>
    new Promise((resolve, reject) => {
      const worker = new Worker(new URL(import.meta.url), { workerData: { handle, id, jobs } });
      worker.once("message", resolve);
      worker.once("error", reject);
    }));
  await Promise.all(done);
  console.log(`${workers} workers did ${workers * jobs} jobs`);
} else {
  await shareMemory(workerData.handle); // joins the main thread's metrics
  const { jobs, seconds } = defineMetrics();
  const kinds = ["resize", "crop", "encode"];
  for (let i = 0; i < workerData.jobs; i++) {
    const timer = seconds.startTimer();
    let x = 0;
    for (let j = 0; j < 10_000; j++) x += Math.sqrt(j); // the work
    jobs.labels({ kind: kinds[(i + x) % 3 | 0] }).inc();
    timer.stop();
  }
  await flush(); // every series registered before the thread says it is done
  parentPort.postMessage("done");
}
