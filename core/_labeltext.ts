// The canonical text of a label set, where a store keeps series by their labels: the remote
// backends (in Redis fields) and the shared memory backend (in its arena).

import type { Labels } from "./types.ts";

/**
 * The canonical text of a label set: its name/value pairs sorted by name, as a JSON array. Equal
 * label sets give equal text whatever their key order; different ones never do.
 */
export function labelsText(labels: Labels): string {
  const names = Object.keys(labels).sort();
  const flat: string[] = [];
  for (const name of names) flat.push(name, labels[name]);
  return JSON.stringify(flat);
}

/**
 * The label set of a labels text, keys in the order of `names`; undefined when the text is not
 * a label set with exactly those names (a series written under other label names).
 */
export function parseLabels(text: string, names: readonly string[]): Labels | undefined {
  let flat: unknown;
  try {
    flat = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!Array.isArray(flat) || flat.length !== names.length * 2) return undefined;
  const given = new Map<unknown, unknown>();
  for (let i = 0; i < flat.length; i += 2) given.set(flat[i], flat[i + 1]);
  const labels: Record<string, string> = {};
  for (const name of names) {
    const value = given.get(name);
    if (typeof value !== "string") return undefined;
    labels[name] = value;
  }
  return Object.freeze(labels);
}
