// Reading an exposition in tests: the samples of a text 0.0.4 body, and lookups by name and
// labels; the labels of the HTTP request metrics; console.warn captured.

import assert from "node:assert/strict";

/** One sample line of an exposition. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a text 0.0.4 exposition (prom-client's or theus'). */
export function parseSamples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$/.exec(line);
    assert.ok(match, `unparsable sample line ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key] = value;
    }
    out.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return out;
}

/** The samples of `name` whose labels include `labels`. */
export function find(text: string, name: string, labels: Record<string, string> = {}): Sample[] {
  return parseSamples(text).filter((s) =>
    s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  );
}

/**
 * The value of the one sample of `name` with exactly `labels` (`le` compared as a number);
 * undefined when there is none.
 */
export function valueOf(text: string, name: string, labels: Record<string, string>): number | undefined {
  const hits = parseSamples(text).filter((s) =>
    s.name === name && Object.keys(s.labels).length === Object.keys(labels).length &&
    Object.entries(labels).every(([k, v]) =>
      s.labels[k] === v || (k === "le" && Number(s.labels[k]) === Number(v))
    )
  );
  assert.ok(hits.length <= 1, `${hits.length} samples ${name}${JSON.stringify(labels)}`);
  return hits[0]?.value;
}

/** The labels of the HTTP request metrics for one method, status and route. */
export function httpLabels(method: string, status: number, route: string): Record<string, string> {
  return { method, status: String(status), ok: String(status >= 200 && status < 300), route };
}

/** Runs a body with console.warn captured, and returns what it warned. */
export async function warningsOf(body: () => Promise<void>): Promise<string[]> {
  const warn = console.warn;
  const warnings: string[] = [];
  console.warn = (...args: unknown[]) => {
    warnings.push(args.map(String).join(" "));
  };
  try {
    await body();
  } finally {
    console.warn = warn;
  }
  return warnings;
}
