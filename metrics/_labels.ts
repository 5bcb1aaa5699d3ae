// Label sets: the checks of names and values, and the constructor that makes a family's label
// sets.

import { checkLabelName, describe, quoteList } from "../core/_names.ts";
import type { Labels } from "../core/types.ts";

/** Makes the label sets of one family, keys in declaration order. */
export type LabelSetConstructor = new (labels: Readonly<Record<string, string>>) => Labels;

let codeFromStrings = true;

// A constructor of the label sets of one family: plain objects (Object.prototype, like a
// literal) with the label names as keys, in declaration order. One per family sizes the objects
// to the family: V8 learns the size by slack tracking, JavaScriptCore from the `this.x = `
// assignments written in the constructor, so it is written for the family's names (32 bytes for
// two labels instead of 64). Label names match [a-zA-Z_][a-zA-Z0-9_]*, so they are safe to
// write into code. Where code cannot be made from strings (Workers, a strict CSP), a loop does
// the same work, at the larger size on JavaScriptCore.
export function labelSetConstructor(names: readonly string[]): LabelSetConstructor {
  let make: LabelSetConstructor | undefined;
  if (codeFromStrings) {
    try {
      const body = names.map((name) => `this[${JSON.stringify(name)}] = labels[${JSON.stringify(name)}];`);
      make = new Function("labels", body.join("\n")) as LabelSetConstructor;
    } catch {
      codeFromStrings = false;
    }
  }
  make ??= function (this: Record<string, string>, labels: Readonly<Record<string, string>>) {
    for (const name of names) this[name] = labels[name];
  } as unknown as LabelSetConstructor;
  make.prototype = Object.prototype;
  return make;
}

/** Validates and freezes the label names of a metric. */
export function checkLabelNames(
  value: unknown,
  metric: string,
  reserved: string | undefined,
): readonly string[] {
  if (value === undefined) return Object.freeze([]);
  if (!Array.isArray(value)) {
    throw new TypeError(
      `Invalid labelNames for metric "${metric}": expected an array, got ${describe(value)}`,
    );
  }
  const seen = new Set<string>();
  for (const name of value) {
    checkLabelName(name, metric, reserved);
    if (seen.has(name)) throw new TypeError(`Duplicate label name "${name}" for metric "${metric}"`);
    seen.add(name);
  }
  return Object.freeze([...value]);
}

/**
 * Returns the labels if every name is known and every value a string, or throws a TypeError.
 * A value with a lone surrogate comes back as a copy with U+FFFD in its place.
 */
export function checkLabels(
  labels: unknown,
  metric: string,
  known: ReadonlySet<string>,
  what: string,
): Record<string, string> {
  if (typeof labels !== "object" || labels === null || Array.isArray(labels)) {
    throw new TypeError(`Invalid labels for metric "${metric}": expected an object, got ${describe(labels)}`);
  }
  for (const [name, value] of Object.entries(labels)) {
    if (!known.has(name)) {
      const expected = known.size > 0 ? `expected one of ${quoteList([...known])}` : "it has no labels";
      throw new TypeError(`Unknown ${what} "${name}" for metric "${metric}": ${expected}`);
    }
    if (typeof value !== "string") {
      // prom-client takes numbers and booleans and turns them into text; theus takes text only.
      const hint = typeof value === "number" || typeof value === "boolean"
        ? `; write { ${name}: "${String(value)}" }`
        : "";
      throw new TypeError(
        `Invalid value for ${what} "${name}" of metric "${metric}": expected a string, got ${
          describe(value)
        }${hint}`,
      );
    }
  }
  const given = labels as Record<string, string>;
  for (const name in given) if (!given[name].isWellFormed()) return wellFormedLabels(given);
  return given;
}

// UTF-8 cannot carry a lone surrogate: the exposition writes U+FFFD for it. Label values are
// made well formed when they are given, so that two values that are written the same are one
// series, not two series with the same labels. (isWellFormed: Node 20, Deno, Bun, workerd.)

/** The string with every lone surrogate replaced by U+FFFD, as UTF-8 writes it. */
export function toWellFormed(value: string): string {
  return value.isWellFormed() ? value : value.toWellFormed();
}

function wellFormedLabels(labels: Record<string, string>): Record<string, string> {
  const copy: Record<string, string> = {};
  for (const name in labels) copy[name] = toWellFormed(labels[name]);
  return copy;
}
