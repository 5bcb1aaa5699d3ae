/**
 * The probe of bench/scale.ts: a second Redis connection, in a process of its own, that sends a
 * PING about every millisecond and records the longest time Redis took to answer one with PONG,
 * so that what a flush or a collection costs other clients of the same Redis is measured apart
 * from the benchmark's own event loop. Plain node:net, no client library: one `PING\r\n` at a
 * time, the next 1 ms after the answer.
 *
 *   <runtime> bench/_scale_probe.ts <port> [<redis-server pid>]     (bench/scale.ts starts it on its own runtime)
 *
 * A wait runs from the first PING not yet answered with PONG: an error reply (`-BUSY Redis is
 * busy running a script`, once a script has run longer than Redis' busy threshold) does not end
 * it, the next PING is sent 1 ms later and the wait goes on until a PONG comes.
 *
 * Prints `ready` once Redis answered. Reads commands from stdin, one a line:
 * - `mark`: starts a window (the longest wait, the PINGs and the error replies start again from
 *   zero); answers `marked`.
 * - `report`: answers one JSON line, `{"maxMs":…,"redisWaitedMs":…,"probeWaitedMs":…,"pings":…,
 *   "errors":…,"error":…}`, for the window so far: the longest wait, a wait still going on
 *   included; of that wait, the time Redis' main thread and the probe were runnable but not
 *   running (Linux' schedstat, read as each PING is sent and as its PONG comes: the wait there is
 *   the machine's, not Redis' work; null where the kernel does not say, or for Redis without its
 *   pid); the PONGs; the error replies and the first one's text.
 *
 * Exits when stdin ends or the connection closes.
 *
 * @module
 */

import { connect } from "node:net";
import { readFileSync } from "node:fs";
import process from "node:process";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const args: string[] = g.Deno?.args ?? process.argv.slice(2);
const port = Number(args[0]);
const redisPid = args[1] === undefined ? undefined : Number(args[1]);
if (!Number.isInteger(port) || port <= 0 || (redisPid !== undefined && !Number.isInteger(redisPid))) {
  console.error("usage: _scale_probe.ts <port> [<redis-server pid>]");
  process.exit(2);
}

// A thread's time waiting on a run queue so far, in ms (the second field of Linux' schedstat);
// NaN where the kernel does not say.
function runQueueWait(file: string | undefined): number {
  if (file === undefined) return NaN;
  try {
    return Number(readFileSync(file, "latin1").split(" ")[1]) / 1e6;
  } catch {
    return NaN;
  }
}
/** Redis' main thread (its pid), and this thread. */
const REDIS_SCHEDSTAT = redisPid === undefined ? undefined : `/proc/${redisPid}/task/${redisPid}/schedstat`;
const OWN_SCHEDSTAT = "/proc/thread-self/schedstat";

/** Milliseconds between an answer and the next PING. */
const INTERVAL_MS = 1;

let windowStart = performance.now();
/** When the first PING not yet answered with PONG was sent. */
let waitingSince: number | undefined;
/** Redis' and this thread's run-queue time when that PING was sent. */
let queuedSince = { redis: NaN, probe: NaN };
let maxMs = 0;
/** Of the longest wait, Redis' and this thread's run-queue time. */
let maxQueued = { redis: NaN, probe: NaN };
let pings = 0;
let errors = 0;
let firstError: string | undefined;
let ready = false;

const say = (line: string) => process.stdout.write(`${line}\n`);

const socket = connect({ host: "127.0.0.1", port });
socket.setNoDelay(true);
socket.setEncoding("utf8");
const queued = () => ({
  redis: runQueueWait(REDIS_SCHEDSTAT) - queuedSince.redis,
  probe: runQueueWait(OWN_SCHEDSTAT) - queuedSince.probe,
});
const ping = () => {
  if (waitingSince === undefined) {
    queuedSince = { redis: runQueueWait(REDIS_SCHEDSTAT), probe: runQueueWait(OWN_SCHEDSTAT) };
    waitingSince = performance.now();
  }
  socket.write("PING\r\n");
};
socket.on("connect", ping);
let buffered = "";
socket.on("data", (chunk: string) => {
  buffered += chunk;
  let end: number;
  while ((end = buffered.indexOf("\r\n")) >= 0) {
    const line = buffered.slice(0, end);
    buffered = buffered.slice(end + 2);
    if (line === "+PONG") {
      const now = performance.now();
      const wait = now - Math.max(waitingSince ?? now, windowStart);
      if (wait > maxMs) {
        maxMs = wait;
        maxQueued = queued();
      }
      waitingSince = undefined;
      pings++;
      if (!ready) {
        ready = true;
        say("ready");
      }
    } else {
      errors++;
      firstError ??= line.slice(1);
    }
    setTimeout(ping, INTERVAL_MS);
  }
});
socket.on("error", (error) => {
  console.error(`_scale_probe: ${error.message}`);
  process.exit(1);
});
socket.on("close", () => process.exit(0));

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk: string) => {
  input += chunk;
  let end: number;
  while ((end = input.indexOf("\n")) >= 0) {
    const command = input.slice(0, end).trim();
    input = input.slice(end + 1);
    const now = performance.now();
    if (command === "mark") {
      windowStart = now;
      maxMs = 0;
      maxQueued = { redis: NaN, probe: NaN };
      pings = 0;
      errors = 0;
      firstError = undefined;
      say("marked");
    } else if (command === "report") {
      const current = waitingSince === undefined ? 0 : now - Math.max(waitingSince, windowStart);
      const [longest, of] = current > maxMs ? [current, queued()] : [maxMs, maxQueued];
      // NaN goes out as null.
      const known = (ms: number) => (Number.isFinite(ms) ? ms : null);
      say(JSON.stringify({
        maxMs: longest,
        redisWaitedMs: known(of.redis),
        probeWaitedMs: known(of.probe),
        pings,
        errors,
        error: firstError,
      }));
    } else if (command !== "") {
      say(JSON.stringify({ unknown: command }));
    }
  }
});
process.stdin.on("end", () => process.exit(0));
