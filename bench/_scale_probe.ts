/**
 * The probe of bench/scale.ts: a second Redis connection, in a process of its own, that sends a
 * PING about every millisecond and records the longest time Redis took to answer one with PONG,
 * so that what a flush or a collection costs other clients of the same Redis is measured apart
 * from the benchmark's own event loop. Plain node:net, no client library: one `PING\r\n` at a
 * time, the next 1 ms after the answer.
 *
 *   <runtime> bench/_scale_probe.ts <port>     (bench/scale.ts starts it on its own runtime)
 *
 * A wait runs from the first PING not yet answered with PONG: an error reply (`-BUSY Redis is
 * busy running a script`, once a script has run longer than Redis' busy threshold) does not end
 * it, the next PING is sent 1 ms later and the wait goes on until a PONG comes.
 *
 * Prints `ready` once Redis answered. Reads commands from stdin, one a line:
 * - `mark`: starts a window (the longest wait, the PINGs and the error replies start again from
 *   zero); answers `marked`.
 * - `report`: answers one JSON line, `{"maxMs":…,"pings":…,"errors":…,"error":…}`, for the window
 *   so far: the longest wait, a wait still going on included; the PONGs; the error replies and
 *   the first one's text.
 *
 * Exits when stdin ends or the connection closes.
 *
 * @module
 */

import { connect } from "node:net";
import process from "node:process";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const args: string[] = g.Deno?.args ?? process.argv.slice(2);
const port = Number(args[0]);
if (!Number.isInteger(port) || port <= 0) {
  console.error("usage: _scale_probe.ts <port>");
  process.exit(2);
}

/** Milliseconds between an answer and the next PING. */
const INTERVAL_MS = 1;

let windowStart = performance.now();
/** When the first PING not yet answered with PONG was sent. */
let waitingSince: number | undefined;
let maxMs = 0;
let pings = 0;
let errors = 0;
let firstError: string | undefined;
let ready = false;

const say = (line: string) => process.stdout.write(`${line}\n`);

const socket = connect({ host: "127.0.0.1", port });
socket.setNoDelay(true);
socket.setEncoding("utf8");
const ping = () => {
  waitingSince ??= performance.now();
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
      if (wait > maxMs) maxMs = wait;
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
      pings = 0;
      errors = 0;
      firstError = undefined;
      say("marked");
    } else if (command === "report") {
      const current = waitingSince === undefined ? 0 : now - Math.max(waitingSince, windowStart);
      say(JSON.stringify({ maxMs: Math.max(maxMs, current), pings, errors, error: firstError }));
    } else if (command !== "") {
      say(JSON.stringify({ unknown: command }));
    }
  }
});
process.stdin.on("end", () => process.exit(0));
