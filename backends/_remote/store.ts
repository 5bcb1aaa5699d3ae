// One Redis as this process sees it: its write side, its read side, who this process is there,
// and its place in the exit hooks and the health metrics until it is closed.

import { BackendUnavailableError, type CollectTarget, type FamilyPart } from "../../core/backend.ts";
import type { Labels, MetricFamily } from "../../core/types.ts";
import { valueNames } from "../../core/_values.ts";
import { onExit } from "./exit.ts";
import { type HealthSource, trackHealth, untrackHealth } from "./health.ts";
import { exemplarField, field, labelsText, metricKey, seriesPrefix, shardOf } from "./layout.ts";
import type { RemoteOptions } from "./options.ts";
import { Reader } from "./reader.ts";
import type { Transport } from "./transport.ts";
import { type Pending, perInstance, type ValueStore } from "./values.ts";
import { type Removal, type StoreStats, Writer } from "./writer.ts";

// Starts with a letter, so no client mistakes it for a number.
function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return `i${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** The store of one Redis and key prefix, for one backend config. */
export class RemoteStore implements ValueStore, HealthSource {
  readonly backend: string;
  readonly transport: Transport;
  readonly options: RemoteOptions;
  #processId: string | undefined;
  #writer: Writer;
  #reader: Reader;
  #leaveExitHooks: () => void;
  #closed = false;

  constructor(backend: string, transport: Transport, options: RemoteOptions) {
    this.backend = backend;
    this.transport = transport;
    this.options = options;
    this.#writer = new Writer(transport, options, this);
    this.#reader = new Reader(transport, options);
    this.#leaveExitHooks = onExit(() => (this.pending > 0 ? this.flush() : undefined));
    trackHealth(this);
  }

  // Made on first use, inside a request: Workers forbid random values at module scope.
  /** This process's id, which marks its batches. */
  get processId(): string {
    return this.#processId ??= randomId();
  }

  /** This process's id in per-instance gauges and heartbeats. */
  get instanceId(): string {
    return this.options.instanceId ?? this.processId;
  }

  /** The key prefix. */
  get keyPrefix(): string {
    return this.options.keyPrefix;
  }

  /** Flush statistics, for the health metrics. */
  get stats(): StoreStats {
    return this.#writer.stats;
  }

  /** Series with changes not yet confirmed by Redis. */
  get pending(): number {
    return this.#writer.pending;
  }

  /** Whether the store was closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Queues a series with changes. */
  enqueue(values: Pending): void {
    this.#writer.enqueue(values);
  }

  /** Starts the heartbeat that per-instance gauges need. */
  usePerInstance(): void {
    this.#writer.usePerInstance();
  }

  /** Flushes pending changes; never rejects. */
  flush(): Promise<void> {
    return this.#writer.flush();
  }

  /** Queues the removal of every field of a series, applied with the next flush. */
  remove(target: CollectTarget, labels: Labels): void {
    const text = labelsText(labels);
    const shard = shardOf(target.name, text);
    const key = metricKey(this.options.keyPrefix, target.name, shard);
    let removals: Removal[];
    if (target.type === "gauge" && perInstance(target.gaugeMode) && !target.perInstance) {
      // Other instances' ids are not known here: match every field of the label set.
      removals = [{ shard, key, op: "p", field: seriesPrefix(text) }];
    } else {
      // A per-instance metric's series is this process's own: the others keep theirs.
      const instance = target.perInstance ? this.instanceId : "";
      const names = valueNames(target.type, target.buckets) ?? [""];
      removals = names.map((name) => ({ shard, key, op: "d", field: field(text, name, instance) }));
      // And the exemplars: a counter's, and a histogram's buckets' (every value but the sum).
      const marked = target.type === "counter"
        ? names
        : target.type === "histogram"
        ? names.slice(0, -1)
        : [];
      for (const name of marked) {
        removals.push({ shard, key, op: "d", field: exemplarField(text, name, instance) });
      }
    }
    this.#writer.remove(removals);
  }

  /**
   * Reads every series of these metrics.
   *
   * @throws {BackendUnavailableError} When Redis cannot be read.
   */
  collect(targets: readonly CollectTarget[]): Promise<MetricFamily[]> {
    const failed = this.#failedFlush();
    return failed === undefined ? this.#reader.collect(targets) : Promise.reject(failed);
  }

  /**
   * Reads every series of these metrics as parts, given as they are read.
   *
   * @throws {BackendUnavailableError} When Redis cannot be read.
   */
  stream(targets: readonly CollectTarget[]): AsyncGenerator<FamilyPart, void, undefined> {
    const failed = this.#failedFlush();
    if (failed === undefined) return this.#reader.parts(targets);
    return (async function* (): AsyncGenerator<FamilyPart, void, undefined> {
      yield* [];
      throw failed;
    })();
  }

  // Collection follows a flush; when that just failed, reading would only fail more slowly.
  #failedFlush(): BackendUnavailableError | undefined {
    const failed = this.#writer.stats.lastError;
    if (failed === undefined) return undefined;
    return new BackendUnavailableError(
      `Cannot write pending changes to ${this.transport.description}: ${failed}`,
    );
  }

  /** Reads fields of a metric hash, for `get()`. */
  read(key: string, fields: readonly string[]): Promise<number[]> {
    return this.#reader.read(key, fields);
  }

  /** Reads fields of a metric hash as text, for `exemplars()`. */
  readText(key: string, fields: readonly string[]): Promise<(string | undefined)[]> {
    return this.#reader.readText(key, fields);
  }

  /** Leaves the exit hooks and the health metrics, stops flushing and closes the transport it opened. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#writer.close();
    this.#leaveExitHooks();
    untrackHealth(this);
    if (this.transport.owned) await this.transport.close();
  }
}
