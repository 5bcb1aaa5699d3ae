// Exemplars as the metrics take them: labels checked once, at the call that records them.

import { describe } from "../core/_names.ts";
import type { Exemplar, Labels } from "../core/types.ts";

/** The labels of an exemplar, such as `{ trace_id: "4bf92f3577b34da6a3ce929d0e0e4736" }`. */
export type ExemplarLabels = Readonly<Record<string, string>>;

/** OpenMetrics: the names and values of an exemplar's labels, together, in code points. */
export const EXEMPLAR_MAX_CHARS = 128;

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * Checks the labels and timestamp of an exemplar and returns it, frozen.
 *
 * @param labels The exemplar's labels.
 * @param value The value observed.
 * @param timestamp Unix seconds; now when undefined.
 * @param metric The metric, for error messages.
 * @throws {TypeError} For labels that are not an object of strings, or a bad label name.
 * @throws {RangeError} For labels longer than 128 code points together, or a bad timestamp.
 */
export function checkExemplar(labels: unknown, value: number, timestamp: unknown, metric: string): Exemplar {
  if (typeof labels !== "object" || labels === null || Array.isArray(labels)) {
    throw new TypeError(
      `Invalid exemplar for metric "${metric}": expected labels such as { trace_id: "…" }, got ${
        describe(labels)
      }`,
    );
  }
  let chars = 0;
  const copy: Record<string, string> = {};
  for (const [name, text] of Object.entries(labels)) {
    if (!LABEL_NAME.test(name)) {
      throw new TypeError(
        `Invalid exemplar label name ${
          JSON.stringify(name)
        } for metric "${metric}": must match [a-zA-Z_][a-zA-Z0-9_]*`,
      );
    }
    if (typeof text !== "string") {
      throw new TypeError(
        `Invalid value for exemplar label "${name}" of metric "${metric}": expected a string, got ${
          describe(text)
        }`,
      );
    }
    const well = text.toWellFormed();
    chars += codePoints(name) + codePoints(well);
    copy[name] = well;
  }
  if (chars > EXEMPLAR_MAX_CHARS) {
    throw new RangeError(
      `Invalid exemplar for metric "${metric}": its label names and values hold ${chars} characters, more than the ${EXEMPLAR_MAX_CHARS} OpenMetrics allows`,
    );
  }
  if (
    timestamp !== undefined && (typeof timestamp !== "number" || !Number.isFinite(timestamp) || timestamp < 0)
  ) {
    throw new RangeError(
      `Invalid exemplar timestamp for metric "${metric}": expected Unix seconds, got ${describe(timestamp)}`,
    );
  }
  return Object.freeze({
    labels: Object.freeze(copy) as Labels,
    value,
    timestamp: timestamp ?? Date.now() / 1000,
  });
}

function codePoints(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // A high surrogate followed by a low one is one code point.
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}
