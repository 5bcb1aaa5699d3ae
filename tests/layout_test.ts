// The Redis layout of the remote backends, as backends/_remote/layout.ts defines it: fields
// round-trip for any label set, value name and instance id; label order never matters; two
// different label sets never share a field; every key of a prefix shares one hash tag.

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  appliedKey,
  exemplarField,
  exemplarOf,
  exemplarText,
  field,
  instancesKey,
  labelsText,
  metricKey,
  parseExemplar,
  parseField,
  parseLabels,
  seriesPrefix,
} from "../backends/_remote/layout.ts";
import { formatBound } from "../core/_format.ts";
import { test } from "./_harness.ts";

// Characters that break naive encodings, and anything else.
const tricky = fc.string({
  unit: fc.oneof(
    fc.constantFrom("\n", '"', "\\", ",", "=", "{", "}", "[", "]", ":", "|", " ", "🎉", "\u0000", "\ud800"),
    fc.string({ unit: "binary", maxLength: 1 }),
  ),
  maxLength: 10,
});
const labelName = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,6}$/).filter((name) => !name.startsWith("__"));
const labelSet = fc.dictionary(labelName, tricky, { maxKeys: 5 });
// What a field's middle part holds: nothing, a histogram bound, "sum" or "count".
const valueName = fc.oneof(
  fc.constant(""),
  fc.constantFrom("sum", "count"),
  fc.double({ noNaN: true }).map(formatBound),
);
// Instance ids, as the config validates them.
const instance = fc.oneof(fc.constant(""), fc.stringMatching(/^[\w.:-]{1,12}$/));

test("a field splits back into the labels text, value name and instance id it was made of", () => {
  fc.assert(
    fc.property(labelSet, valueName, instance, (labels, value, id) => {
      const text = labelsText(labels);
      assert.deepEqual(parseField(field(text, value, id)), { labels: text, value, instance: id });
      assert.ok(field(text, value, id).startsWith(seriesPrefix(text)));
    }),
    { numRuns: 500 },
  );
});

test("labels text parses back to the same label set, in the order of the label names", () => {
  fc.assert(
    fc.property(labelSet, fc.boolean(), (labels, reverse) => {
      const names = Object.keys(labels).sort();
      if (reverse) names.reverse();
      const parsed = parseLabels(labelsText(labels), names);
      assert.ok(parsed !== undefined);
      assert.deepEqual(Object.keys(parsed), names);
      assert.deepEqual({ ...parsed }, labels);
      assert.ok(Object.isFrozen(parsed));
    }),
    { numRuns: 500 },
  );
});

test("labels text is the same whatever the key order, and differs for different label sets", () => {
  fc.assert(
    fc.property(labelSet, labelSet, (a, b) => {
      const reordered = Object.fromEntries(Object.entries(a).reverse());
      assert.equal(labelsText(reordered), labelsText(a));
      const same = JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());
      assert.equal(labelsText(a) === labelsText(b), same);
      // Never a prefix of another series' fields either (a per-instance removal matches by prefix).
      if (!same) assert.ok(!field(labelsText(b)).startsWith(seriesPrefix(labelsText(a))));
    }),
    { numRuns: 500 },
  );
});

test("labels text under other label names, or that is not a label set, parses to undefined", () => {
  assert.equal(parseLabels(labelsText({ a: "1" }), ["b"]), undefined);
  assert.equal(parseLabels(labelsText({ a: "1", b: "2" }), ["a"]), undefined);
  assert.equal(parseLabels(labelsText({}), ["a"]), undefined);
  assert.deepEqual(parseLabels(labelsText({}), []), {});
  assert.equal(parseLabels("not json", []), undefined);
  assert.equal(parseLabels('{"a":"1"}', ["a"]), undefined);
  assert.equal(parseField("no separators"), undefined);
  assert.equal(parseField("one|separator"), undefined);
});

test("the layout matches the documented text: keys, fields and the labels' JSON", () => {
  assert.equal(metricKey("shop", "http_requests_total"), "{shop}:m:http_requests_total");
  assert.equal(appliedKey("shop", "i0011"), "{shop}:applied:i0011");
  assert.equal(instancesKey("shop"), "{shop}:instances");
  assert.equal(labelsText({ status: "200", method: "GET" }), '["method","GET","status","200"]');
  assert.equal(field(labelsText({}), "1.0"), "[]|1.0|");
  assert.equal(field(labelsText({ a: "x" }), "", "host-1"), '["a","x"]||host-1');
  // Never valid JSON as a whole, so a client that parses JSON replies leaves fields alone.
  assert.throws(() => JSON.parse(field(labelsText({}))));
});

test("every key of a prefix shares the prefix's Redis Cluster hash tag", () => {
  fc.assert(
    fc.property(fc.stringMatching(/^[^{}]{1,10}$/), fc.string({ maxLength: 10 }), (prefix, name) => {
      for (const key of [metricKey(prefix, name), appliedKey(prefix, name), instancesKey(prefix)]) {
        assert.equal(key.slice(key.indexOf("{") + 1, key.indexOf("}")), prefix);
        assert.ok(key.startsWith("{"));
      }
    }),
    { numRuns: 200 },
  );
});

test("an exemplar's field parses to its value's name, marked; a value's field never reads as an exemplar's", () => {
  fc.assert(
    fc.property(labelSet, valueName, instance, (labels, value, id) => {
      const text = labelsText(labels);
      const parts = parseField(exemplarField(text, value, id));
      assert.ok(parts !== undefined);
      assert.equal(parts.labels, text);
      assert.equal(parts.instance, id);
      assert.equal(exemplarOf(parts.value), value);
      assert.equal(exemplarOf(parseField(field(text, value, id))!.value), undefined);
      assert.notEqual(exemplarField(text, value, id), field(text, value, id));
      // Removed with the series' other fields by a prefix match too.
      assert.ok(exemplarField(text, value, id).startsWith(seriesPrefix(text)));
    }),
    { numRuns: 500 },
  );
});

test("an exemplar's text parses back to the same exemplar, and is never valid JSON", () => {
  const exemplarLabels = fc.dictionary(labelName, tricky.map((text) => text.toWellFormed()), { maxKeys: 4 });
  const value = fc.oneof(fc.double(), fc.constantFrom(Infinity, -Infinity, 0));
  const timestamp = fc.oneof(
    fc.double({ min: 0, max: 1e10, noNaN: true }),
    fc.constantFrom(0, 1700000000.123),
  );
  fc.assert(
    fc.property(exemplarLabels, value, timestamp, (labels, v, ts) => {
      const text = exemplarText({ labels, value: v, timestamp: ts });
      const parsed = parseExemplar(text);
      assert.ok(parsed !== undefined, text);
      assert.deepEqual({ ...parsed.labels }, labels);
      assert.ok(Object.is(parsed.value, v === 0 ? 0 : v) || (v !== v && parsed.value !== parsed.value));
      assert.equal(parsed.timestamp, ts);
      assert.ok(Object.isFrozen(parsed) && Object.isFrozen(parsed.labels));
      // The flush script compares the text before the first space as a number.
      assert.equal(Number(text.slice(0, text.indexOf(" "))), ts);
      assert.throws(() => JSON.parse(text));
    }),
    { numRuns: 500 },
  );
});

test("an exemplar's field and text match the documented layout; other text is no exemplar", () => {
  assert.equal(exemplarField(labelsText({ a: "x" })), '["a","x"]|#|');
  assert.equal(exemplarField(labelsText({}), "+Inf", "host-1"), "[]|#+Inf|host-1");
  assert.equal(
    exemplarText({ labels: { trace_id: "abc" }, value: 0.5, timestamp: 1700000000.25 }),
    '1700000000.25 0.5 {"trace_id":"abc"}',
  );
  for (
    const text of [
      "",
      "1",
      "1 2",
      " 1 {}",
      "1  {}",
      "x 1 {}",
      "1 x {}",
      "1 2 []",
      '1 2 {"a":1}',
      "1 2 {",
      "-1 2 {}",
    ]
  ) {
    assert.equal(parseExemplar(text), undefined, text);
  }
  assert.deepEqual(parseExemplar("1 NaN {}")?.value, NaN);
});
