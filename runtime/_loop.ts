// The event-loop monitor: a timer that should fire every `precision` ms, and how late it fires.
// The same code on every runtime (Node's monitorEventLoopDelay records nothing on Deno, and
// records the whole interval rather than the delay on Node), so the figures mean one thing
// everywhere: how long a task that was ready had to wait for the loop.

import { unrefTimer } from "../core/_runtime.ts";

// Delays are kept in log-spaced buckets, each 2 % wide (1 % relative error), from 1 µs to
// about 48 minutes (longer delays count as the last): a fixed 4.3 KiB, however many ticks.
const GAMMA = 1.02;
const LOG_GAMMA = Math.log(GAMMA);
const SMALLEST = 1e-6;
const BUCKETS = 1100;

/** What the loop did between two readings, in seconds. */
export interface LagStats {
  readonly count: number;
  readonly min: number;
  readonly max: number;
  readonly mean: number;
  readonly stddev: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  /** The delay of the latest tick. */
  readonly last: number;
}

/** Measures event-loop delay in the background, until stopped. */
export class LoopMonitor {
  #precision: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #expected = 0;
  #counts = new Uint32Array(BUCKETS);
  #count = 0;
  #sum = 0;
  #squares = 0;
  #min = Infinity;
  #max = 0;
  #last = 0;

  /** @param precision The timer's period, in milliseconds. */
  constructor(precision: number) {
    this.#precision = precision;
    this.#schedule(performance.now());
  }

  /** Records one delay, in seconds. */
  record(lag: number): void {
    const index = lag <= SMALLEST
      ? 0
      : Math.min(BUCKETS - 1, Math.ceil(Math.log(lag / SMALLEST) / LOG_GAMMA));
    this.#counts[index]++;
    this.#count++;
    this.#sum += lag;
    this.#squares += lag * lag;
    if (lag < this.#min) this.#min = lag;
    if (lag > this.#max) this.#max = lag;
    this.#last = lag;
  }

  /** The statistics since the previous reading (undefined when the timer has not fired), then starts afresh. */
  take(): LagStats | undefined {
    const count = this.#count;
    if (count === 0) return undefined;
    const mean = this.#sum / count;
    const stats: LagStats = {
      count,
      min: this.#min,
      max: this.#max,
      mean,
      stddev: Math.sqrt(Math.max(0, this.#squares / count - mean * mean)),
      p50: this.#percentile(0.5),
      p90: this.#percentile(0.9),
      p99: this.#percentile(0.99),
      last: this.#last,
    };
    this.#counts.fill(0);
    this.#count =
      this.#sum =
      this.#squares =
      this.#max =
        0;
    this.#min = Infinity;
    return stats;
  }

  /** Stops the timer. */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  // The nearest rank (as HdrHistogram), given as the middle of its bucket, within the extremes.
  #percentile(q: number): number {
    const rank = Math.max(1, Math.ceil(q * this.#count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i];
      if (seen >= rank) {
        const value = i === 0 ? 0 : SMALLEST * Math.pow(GAMMA, i - 0.5);
        return Math.min(this.#max, Math.max(this.#min, value));
      }
    }
    return this.#max;
  }

  #schedule(now: number): void {
    this.#expected = now + this.#precision;
    this.#timer = setTimeout(() => {
      const fired = performance.now();
      this.record(Math.max(0, fired - this.#expected) / 1000);
      if (this.#timer !== undefined) this.#schedule(fired);
    }, this.#precision);
    unrefTimer(this.#timer);
  }
}
