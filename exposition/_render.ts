// Writes collected families as text 0.0.4 or OpenMetrics 1.0, in chunks, pausing for the
// event loop so that a large registry never holds it for long.

import { formatBound, formatValue } from "../core/_format.ts";
import { LabelMemo } from "../core/_labelmemo.ts";
import { SLICE_MS, yieldToEventLoop } from "../core/_slice.ts";
import type { Exemplar, Labels, MetricFamily } from "../core/types.ts";
import { escapeHelp, escapeLabelValue } from "./_escape.ts";
import type { FamilyPiece } from "../metrics/registry.ts";

/** The exposition formats: Prometheus text 0.0.4, or OpenMetrics 1.0. */
export type Format = "prometheus" | "openmetrics";

const CHUNK_CHARS = 1 << 16;
const CHECK_EVERY = 32;

// Rendered label sets, kept for frozen label objects (every theus child has one), so a series
// is escaped once, not at every scrape (in registries within the memo's bound).
const rendered = new LabelMemo<string>();

function labelText(labels: Labels): string {
  let text = rendered.get(labels);
  if (text !== undefined) return text;
  text = "";
  for (const name in labels) {
    text += `${text === "" ? "" : ","}${name}="${escapeLabelValue(labels[name])}"`;
  }
  // Kept flat: one string lives on, not the pieces it was joined from.
  if (Object.isFrozen(labels)) rendered.set(labels, text = flat(text));
  return text;
}

/**
 * A string built with += is a tree of small pieces until it is read; flattening each chunk
 * before it leaves lets the pieces die young instead of being copied by every minor GC.
 */
export function flat(text: string): string {
  text.charCodeAt(0);
  return text;
}

/**
 * Renders families as chunks of text. Between chunks it gives the event loop a turn whenever
 * it has worked for `sliceMs` milliseconds. Families may also come as pieces, as a scrape reads
 * them: a piece `continued` holds more series of the family before it.
 */
export async function* render(
  families: readonly MetricFamily[] | AsyncIterable<FamilyPiece>,
  format: Format,
  sliceMs: number = SLICE_MS,
): AsyncGenerator<string, void, undefined> {
  const state: RenderState = {
    om: format === "openmetrics",
    sliceMs,
    out: "",
    started: performance.now(),
    written: 0,
  };
  if (Array.isArray(families)) {
    yield* renderFamilies(families, false, state);
  } else {
    for await (const { family, continued } of families as AsyncIterable<FamilyPiece>) {
      yield* renderFamilies([family], continued, state);
    }
  }
  if (state.om) state.out += "# EOF\n";
  if (state.out !== "") yield flat(state.out);
}

// The text not yet given out, and the time and series count that decide when to give it.
interface RenderState {
  readonly om: boolean;
  readonly sliceMs: number;
  out: string;
  started: number;
  written: number;
}

// The loop every rendering runs, on locals (kept in `state` between calls).
async function* renderFamilies(
  families: readonly MetricFamily[],
  continued: boolean,
  state: RenderState,
): AsyncGenerator<string, void, undefined> {
  const { om, sliceMs } = state;
  let { out, started, written } = state;
  for (const family of families) {
    // More series of the family before: its metadata is written already.
    if (!continued) out += metadata(family, om);
    const write = seriesWriter(family, om);
    for (const series of family.series) {
      out += write(series);
      if (++written % CHECK_EVERY !== 0) continue;
      const busy = performance.now() - started >= sliceMs;
      if (busy || out.length >= CHUNK_CHARS) {
        yield flat(out);
        out = "";
      }
      if (busy) {
        await yieldToEventLoop();
        started = performance.now();
      }
    }
  }
  state.out = out;
  state.started = started;
  state.written = written;
}

type SeriesOf<F extends MetricFamily> = F["series"][number];

// HELP, TYPE and, in OpenMetrics, UNIT. Text 0.0.4 knows neither info nor state set: both are
// gauges there, an info named with its `_info` suffix (as client_python writes them).
function metadata(family: MetricFamily, om: boolean): string {
  const name = family.name;
  let head = name;
  let type: string = family.type;
  if (om) {
    if (type === "untyped") type = "unknown";
  } else if (type === "counter") {
    head = `${name}_total`;
  } else if (type === "info") {
    head = `${name}_info`;
    type = "gauge";
  } else if (type === "stateset") {
    type = "gauge";
  }
  const text = `# HELP ${head} ${escapeHelp(family.help, om)}\n# TYPE ${head} ${type}\n`;
  const unit = om && family.type !== "info" && family.type !== "stateset" ? family.unit : undefined;
  return unit === undefined || unit === "" ? text : `${text}# UNIT ${name} ${unit}\n`;
}

// An exemplar as OpenMetrics writes it after a sample: ` # {trace_id="…"} value timestamp`.
function exemplarText(exemplar: Exemplar | undefined): string {
  if (exemplar === undefined) return "";
  const time = exemplar.timestamp === undefined ? "" : ` ${formatValue(exemplar.timestamp)}`;
  return ` # {${labelText(exemplar.labels)}} ${formatValue(exemplar.value)}${time}`;
}

// Returns the function that writes one series of the family, with what it can precompute.
function seriesWriter(family: MetricFamily, om: boolean): (series: SeriesOf<MetricFamily>) => string {
  const name = family.name;
  // OpenMetrics makes `_sum` a counter: never negative or NaN, and absent from a histogram with a
  // negative bound. A histogram's `_count` is written if and only if its `_sum` is; a summary's
  // stands alone. Text 0.0.4 has no such rule and always writes both.
  const negativeBound = om && family.type === "histogram" && family.buckets[0] < 0;
  const sumAndCount = (labels: string, sum: number, count: number): string => {
    const braces = labels === "" ? "" : `{${labels}}`;
    const countLine = `${name}_count${braces} ${formatValue(count)}\n`;
    if (om && (negativeBound || !(sum >= 0))) return family.type === "histogram" ? "" : countLine;
    return `${name}_sum${braces} ${formatValue(sum)}\n${countLine}`;
  };
  if (family.type === "histogram") {
    const les = family.buckets.map((bound) => `le="${formatBound(bound)}"} `);
    const bucket = `${name}_bucket{`;
    return (series) => {
      const { labels: set, buckets, sum, count, exemplars } = series as SeriesOf<typeof family>;
      const labels = labelText(set);
      const open = labels === "" ? bucket : `${bucket}${labels},`;
      let text = "";
      if (om && exemplars !== undefined) {
        for (let i = 0; i < les.length; i++) {
          text += `${open}${les[i]}${formatValue(buckets[i])}${exemplarText(exemplars[i])}\n`;
        }
      } else {
        for (let i = 0; i < les.length; i++) text += `${open}${les[i]}${formatValue(buckets[i])}\n`;
      }
      return text + sumAndCount(labels, sum, count);
    };
  }
  if (family.type === "summary") {
    // Quantile label texts, made once per rank.
    const ranks = new Map<number, string>();
    const rankText = (q: number) => {
      let text = ranks.get(q);
      if (text === undefined) ranks.set(q, text = `quantile="${formatBound(q)}"} `);
      return text;
    };
    return (series) => {
      const { labels: set, sum, count, quantiles } = series as SeriesOf<typeof family>;
      const labels = labelText(set);
      let text = "";
      if (quantiles !== undefined) {
        const open = labels === "" ? `${name}{` : `${name}{${labels},`;
        for (const { quantile, value } of quantiles) {
          // OpenMetrics has no negative quantile values: they are left out there, as a negative sum is.
          if (om && value < 0) continue;
          text += `${open}${rankText(quantile)}${formatValue(value)}\n`;
        }
      }
      return text + sumAndCount(labels, sum, count);
    };
  }
  const sample = family.type === "counter" ? `${name}_total` : family.type === "info" ? `${name}_info` : name;
  // Exemplars belong to counters, and only OpenMetrics has them.
  const exemplars = om && family.type === "counter";
  return (series) => {
    const { labels: set, value, exemplar } = series as SeriesOf<typeof family>;
    const labels = labelText(set);
    const tail = exemplars ? exemplarText(exemplar) : "";
    return labels === ""
      ? `${sample} ${formatValue(value)}${tail}\n`
      : `${sample}{${labels}} ${formatValue(value)}${tail}\n`;
  };
}
