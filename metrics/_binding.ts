// Which backend a metric's values live in. A binding is a backend class with its config, fixed
// when the metric is created. A binding chosen through the environment may still be loading:
// its series then get stand-ins that fold every change, and hand them to the real values once
// the class is there, so nothing recorded while it loads is lost.

import { MemoryBackend } from "../backends/memory.ts";
import type {
  Backend,
  BackendClass,
  BackendConfig,
  CollectTarget,
  MetricInfo,
  SeriesValues,
} from "../core/backend.ts";
import type { Exemplar, Labels } from "../core/types.ts";

/** A backend class with its config, as metrics created at one time use it. */
export class Binding {
  #cls: BackendClass | undefined;
  #config: BackendConfig;
  #loading: Promise<void> | undefined;
  #error: unknown;
  #waiting = new Set<Standin>();
  #removals: { target: CollectTarget; labels: Labels }[] = [];
  #definitions: CollectTarget[] = [];

  /**
   * A binding of a loaded class, or, with `load`, one whose class is still loading. A failed
   * load leaves the binding on local stand-ins; `settle()` then rejects with the error.
   */
  constructor(
    cls?: BackendClass,
    config: BackendConfig = {},
    load?: Promise<{ cls: BackendClass; config: BackendConfig }>,
  ) {
    this.#cls = cls;
    this.#config = config;
    if (load !== undefined) {
      this.#loading = load.then(
        (loaded) => this.#resolve(loaded.cls, loaded.config),
        (error) => this.#fail(error),
      ).finally(() => (this.#loading = undefined));
    }
  }

  /** The class, once loaded. */
  get cls(): BackendClass | undefined {
    return this.#cls;
  }

  /** The config the class gets. */
  get config(): BackendConfig {
    return this.#config;
  }

  /** Whether the class is still loading. */
  get loading(): boolean {
    return this.#loading !== undefined;
  }

  /** The values of one series: the class's own, per-value instances, or stand-ins while loading. */
  values(metric: MetricInfo, names: readonly string[] | undefined): SeriesValues {
    const cls = this.#cls;
    if (cls !== undefined) return createValues(cls, this.#config, metric, names);
    const standin = new Standin(this, metric, names);
    if (this.#error === undefined) this.#waiting.add(standin);
    return standin;
  }

  /** Tells the class of a new metric; a class still loading is told once it has loaded. */
  define(target: CollectTarget): void {
    if (this.#cls !== undefined) this.#cls.define?.(this.#config, target);
    else if (this.#error === undefined) this.#definitions.push(target);
  }

  /** Tells the class that a series was removed, now or once it has loaded. */
  remove(target: CollectTarget, labels: Labels): void {
    if (this.#cls !== undefined) this.#cls.remove?.(this.#config, target, labels);
    else if (this.#error === undefined) this.#removals.push({ target, labels });
  }

  /** Waits for the class to load; rejects with the reason it could not. */
  async ready(): Promise<void> {
    if (this.#loading !== undefined) await this.#loading;
    if (this.#error !== undefined) throw this.#error;
  }

  /** Waits for the class to load, then flushes what it buffered. */
  async settle(): Promise<void> {
    await this.ready();
    await this.#cls?.flush?.();
  }

  /** A stand-in that no longer waits for the class: its series was removed. */
  forget(standin: Standin): void {
    this.#waiting.delete(standin);
  }

  #resolve(cls: BackendClass, config: BackendConfig): void {
    this.#cls = cls;
    this.#config = config;
    for (const target of this.#definitions) cls.define?.(config, target);
    // Removals first: a series created again after its removal writes after it.
    for (const { target, labels } of this.#removals) cls.remove?.(config, target, labels);
    for (const standin of this.#waiting) {
      standin.attach(createValues(cls, config, standin.metric, standin.names));
    }
    this.#removals = [];
    this.#definitions = [];
    this.#waiting.clear();
  }

  #fail(error: unknown): void {
    this.#error = error;
    this.#removals = [];
    this.#definitions = [];
    this.#waiting.clear();
  }
}

function createValues(
  cls: BackendClass,
  config: BackendConfig,
  metric: MetricInfo,
  names: readonly string[] | undefined,
): SeriesValues {
  if (cls.values !== undefined) return cls.values(config, metric, names);
  const backends = names === undefined
    ? [new cls(config, metric)]
    : names.map((name) => new cls(config, metric, name));
  return new PerValue(backends);
}

// The values of a series on a class without a `values` hook: one instance per value.
class PerValue implements SeriesValues {
  #backends: Backend[];

  constructor(backends: Backend[]) {
    this.#backends = backends;
  }

  inc(index: number, value: number): void {
    this.#backends[index].inc(value);
  }

  dec(index: number, value: number): void {
    this.#backends[index].dec(value);
  }

  set(index: number, value: number): void {
    this.#backends[index].set(value);
  }

  get(index: number): number | Promise<number> {
    return this.#backends[index].get();
  }

  getAll(): number[] | Promise<number[]> {
    return settleAll(this.#backends.map((backend) => backend.get()));
  }

  dispose(): void {
    for (const backend of this.#backends) backend.dispose?.();
  }
}

// Stands in for the values of a series while the class loads: folds the changes per value,
// then replays them into the real values. A series removed meanwhile replays nothing.
class Standin implements SeriesValues {
  readonly metric: MetricInfo;
  readonly names: readonly string[] | undefined;
  #binding: Binding;
  #real: SeriesValues | undefined;
  #deltas: number[];
  #sets: (number | undefined)[];
  #exemplars: (Exemplar | undefined)[] | undefined;
  #disposed = false;

  constructor(binding: Binding, metric: MetricInfo, names: readonly string[] | undefined) {
    this.#binding = binding;
    this.metric = metric;
    this.names = names;
    const size = names?.length ?? 1;
    this.#deltas = new Array<number>(size).fill(0);
    this.#sets = new Array<number | undefined>(size).fill(undefined);
  }

  attach(real: SeriesValues): void {
    for (let i = 0; i < this.#deltas.length; i++) {
      const set = this.#sets[i];
      const delta = this.#deltas[i];
      if (set !== undefined) real.set(i, set);
      if (delta > 0) real.inc(i, delta);
      else if (delta < 0) real.dec(i, -delta);
      const exemplar = this.#exemplars?.[i];
      if (exemplar !== undefined) real.exemplar?.(i, exemplar);
    }
    this.#real = real;
  }

  exemplar(index: number, exemplar: Exemplar): void {
    if (this.#real !== undefined) this.#real.exemplar?.(index, exemplar);
    else (this.#exemplars ??= [])[index] = exemplar;
  }

  exemplars():
    | readonly (Exemplar | undefined)[]
    | undefined
    | Promise<readonly (Exemplar | undefined)[] | undefined> {
    if (this.#real !== undefined) return this.#real.exemplars?.();
    if (this.#disposed || !this.#binding.loading) return this.#exemplars?.slice();
    return this.#binding.ready().then(() => this.exemplars(), () => this.exemplars());
  }

  inc(index: number, value: number): void {
    if (this.#real !== undefined) this.#real.inc(index, value);
    else this.#deltas[index] += value;
  }

  dec(index: number, value: number): void {
    if (this.#real !== undefined) this.#real.dec(index, value);
    else this.#deltas[index] -= value;
  }

  set(index: number, value: number): void {
    if (this.#real !== undefined) return this.#real.set(index, value);
    this.#sets[index] = value;
    this.#deltas[index] = 0;
  }

  get(index: number): number | Promise<number> {
    if (this.#real !== undefined) return this.#real.get(index);
    // Loaded already (this series was removed) or failed: what was recorded here is all there is.
    if (this.#disposed || !this.#binding.loading) return (this.#sets[index] ?? 0) + this.#deltas[index];
    return this.#binding.ready().then(() => this.get(index), () => this.get(index));
  }

  getAll(): number[] | Promise<number[]> {
    return settleAll(this.#deltas.map((_, i) => this.get(i)));
  }

  dispose(): void {
    this.#disposed = true;
    this.#binding.forget(this);
    this.#real?.dispose?.();
  }
}

/** The values as an array of numbers, or a promise of one when any of them is a promise. */
export function settleAll(values: (number | Promise<number>)[]): number[] | Promise<number[]> {
  return values.every((value) => typeof value === "number") ? values as number[] : Promise.all(values);
}

const memory = new Binding(MemoryBackend);
let current: Binding | undefined;
let fromEnvironment: (() => Binding | undefined) | undefined;
const used = new Set<Binding>();

/** The binding of the memory backend, the default. */
export function memoryBinding(): Binding {
  return memory;
}

/**
 * The binding for a metric created now. The first call applies the environment, through the
 * hook that `useEnvironment` installed, and falls back to the memory backend.
 */
export function currentBinding(): Binding {
  current ??= fromEnvironment?.() ?? memory;
  used.add(current);
  return current;
}

/** Makes a binding the one metrics created from now on use. */
export function selectBinding(binding: Binding): void {
  current = binding;
}

/** Installs what reads the environment on the first metric (setup/load.ts does). */
export function useEnvironment(read: () => Binding | undefined): void {
  fromEnvironment = read;
}

/** Every binding a metric was created with, for `flush()`. */
export function usedBindings(): Iterable<Binding> {
  return used;
}
