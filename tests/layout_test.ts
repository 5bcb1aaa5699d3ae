// The Redis layout of the remote backends, as backends/_remote/layout.ts defines it: fields
// round-trip for any label set, value name and instance id; label order never matters; two
// different label sets never share a field; keys hash to Redis Cluster slots as Redis does; a
// metric's series are spread evenly over 16 shards, each with a hash tag of its own in its own
// sixteenth of the slots.

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  appliedKey,
  exemplarField,
  exemplarOf,
  exemplarText,
  field,
  indexKey,
  indexMember,
  instancesKey,
  keySlot,
  labelsText,
  metricKey,
  parseExemplar,
  parseField,
  parseLabels,
  seriesPrefix,
  shardOf,
  SHARDS,
  shardTags,
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
  // The shard tags of "shop", as Redis itself places them (CLUSTER KEYSLOT of "shop:<n>"): for
  // shard i, the smallest n whose slot lies in the i-th sixteenth of the 16,384 slots.
  const shop = ["13", "22", "1", "40", "12", "23", "0", "41", "11", "20", "3", "42", "10", "21", "2", "43"];
  assert.deepEqual(shardTags("shop"), shop.map((n) => `shop:${n}`));
  assert.equal(metricKey("shop", "http_requests_total", 0), "{shop:13}:m:http_requests_total");
  assert.equal(metricKey("shop", "http_requests_total", 15), "{shop:43}:m:http_requests_total");
  assert.equal(indexKey("shop", "http_requests_total", 6), "{shop:0}:t:http_requests_total");
  assert.equal(appliedKey("shop", 2, "i0011"), "{shop:1}:applied:i0011");
  assert.equal(instancesKey("shop"), "{shop}:instances");
  assert.equal(indexMember('["a","x"]', "host-1"), '["a","x"]|host-1');
  assert.equal(indexMember("[]"), "[]|");
  assert.equal(labelsText({ status: "200", method: "GET" }), '["method","GET","status","200"]');
  assert.equal(field(labelsText({}), "1.0"), "[]|1.0|");
  assert.equal(field(labelsText({ a: "x" }), "", "host-1"), '["a","x"]||host-1');
  // Never valid JSON as a whole, so a client that parses JSON replies leaves fields alone.
  assert.throws(() => JSON.parse(field(labelsText({}))));
});

test("keySlot() is Redis Cluster's slot: CRC16 of the hash tag, or of the whole key, modulo 16384", () => {
  // Slots as `CLUSTER KEYSLOT` answers them (the first is CRC16/XMODEM's check value, 0x31C3).
  assert.equal(keySlot("123456789"), 12739);
  assert.equal(keySlot("foo"), 12182);
  assert.equal(keySlot("bar"), 5061);
  assert.equal(keySlot("hello"), 866);
  assert.equal(keySlot("é"), 10180);
  assert.equal(keySlot("🎉"), 13171);
  assert.equal(keySlot("{user1000}.following"), 3443);
  assert.equal(keySlot("{user1000}.following"), keySlot("{user1000}.followers"));
  assert.equal(keySlot("foo{bar}{zap}"), keySlot("bar"));
  // An empty tag "{}" does not count: the whole key is hashed.
  assert.equal(keySlot("{}foo"), 9500);
  assert.equal(keySlot("foo{}{bar}"), 8363);
  assert.notEqual(keySlot("{}foo"), keySlot(""));
  assert.equal(keySlot("foo{{bar}}zap"), 4015);
  assert.equal(keySlot("{"), 4092);
  assert.equal(keySlot("a{b"), 13340);
  fc.assert(
    fc.property(fc.string(), (key) => {
      const slot = keySlot(key);
      assert.ok(Number.isInteger(slot) && slot >= 0 && slot < 16384);
    }),
    { numRuns: 200 },
  );
});

test("shardTags() gives 16 distinct tags of the prefix, tag i in the i-th sixteenth of the slots", () => {
  // The default prefix's, as Redis places them (CLUSTER KEYSLOT of "theus:<n>").
  const theus = ["23", "12", "41", "0", "22", "13", "40", "1", "21", "10", "43", "2", "20", "11", "42", "3"];
  assert.deepEqual(shardTags("theus"), theus.map((n) => `theus:${n}`));
  assert.deepEqual(
    shardTags("theus").map((tag) => keySlot(tag)),
    [788, 1638, 2544, 3603, 4917, 5703, 6609, 7730, 9046, 9764, 10674, 11857, 13175, 13829, 14739, 15984],
  );
  const check = (prefix: string) => {
    const tags = shardTags(prefix);
    assert.equal(tags.length, SHARDS);
    assert.equal(new Set(tags).size, SHARDS, prefix);
    for (const [i, tag] of tags.entries()) {
      assert.match(tag, /:\d+$/);
      assert.ok(tag.startsWith(`${prefix}:`), tag);
      const slot = keySlot(tag);
      assert.ok(slot >= i * 1024 && slot < (i + 1) * 1024, `${prefix} shard ${i}: ${tag} in slot ${slot}`);
      // The smallest such n: no smaller one falls in that range.
      const n = Number(tag.slice(prefix.length + 1));
      for (let m = 0; m < n; m++) {
        assert.notEqual(Math.floor(keySlot(`${prefix}:${m}`) / 1024), i, `${prefix}:${m}`);
      }
    }
    // Stable: the same (frozen) tags every time.
    assert.equal(shardTags(prefix), tags);
    assert.ok(Object.isFrozen(tags));
  };
  for (const prefix of ["theus", "shop", "myapp", "a b", "é", "x", "app:prod", "🎉"]) check(prefix);
  fc.assert(fc.property(fc.stringMatching(/^[^{}]{1,12}$/), (prefix) => check(prefix)), { numRuns: 50 });
});

// FNV-1a, 32 bits, over UTF-16 code units, written apart from the library's (in BigInt).
function fnv1a32(text: string): number {
  let hash = 0x811c9dc5n;
  for (let i = 0; i < text.length; i++) {
    hash = ((hash ^ BigInt(text.charCodeAt(i))) * 0x01000193n) & 0xffffffffn;
  }
  return Number(hash);
}

test("shardOf() is FNV-1a of the name, a newline and the labels text, modulo 16: stable and even", () => {
  // Values of fnv1a32() above, checked against a third implementation (Python, over UTF-16LE).
  const known: [string, string, number, number][] = [
    ["http_requests_total", '["method","GET","status","200"]', 2951832166, 6],
    ["http_requests_total", '["method","POST","status","500"]', 2908695931, 11],
    ["http_requests_total", "[]", 79065117, 13],
    ["a", "[]", 4039454274, 2],
    ["", "[]", 2447111549, 13],
    ["x_total", '["k","🎉"]', 656303648, 0],
    ["latency_seconds", '["route","/r1"]', 3586094598, 6],
    ["selected_total", "[]", 574376601, 9],
    ["é_total", labelsText({ a: "\u0000" }), 4284732923, 11],
  ];
  assert.equal(labelsText({ a: "\u0000" }), '["a","\\u0000"]');
  for (const [name, labels, hash, shard] of known) {
    assert.equal(fnv1a32(`${name}\n${labels}`), hash, `${name} ${labels}`);
    assert.equal(hash % SHARDS, shard);
    assert.equal(shardOf(name, labels), shard, `${name} ${labels}`);
  }
  fc.assert(
    fc.property(fc.string({ maxLength: 20 }), labelSet, (name, labels) => {
      const text = labelsText(labels);
      const shard = shardOf(name, text);
      assert.ok(Number.isInteger(shard) && shard >= 0 && shard < SHARDS);
      assert.equal(shard, fnv1a32(`${name}\n${text}`) % SHARDS);
      assert.equal(shardOf(name, labelsText(Object.fromEntries(Object.entries(labels).reverse()))), shard);
    }),
    { numRuns: 500 },
  );
  // Even: 10,000 label sets of one metric, each shard within 20 % of 625.
  for (const name of ["http_requests_total", "x"]) {
    const counts = new Array<number>(SHARDS).fill(0);
    for (let i = 0; i < 10_000; i++) {
      counts[shardOf(name, labelsText({ route: `/api/${i}`, method: "GET" }))]++;
    }
    for (const count of counts) assert.ok(count >= 500 && count <= 750, `${name}: ${counts.join(" ")}`);
  }
});

test("every key of a metric's series carries its shard's tag; the heartbeats the prefix's own", () => {
  fc.assert(
    fc.property(
      fc.stringMatching(/^[^{}]{1,10}$/),
      fc.string({ maxLength: 10 }),
      fc.integer({ min: 0, max: SHARDS - 1 }),
      fc.stringMatching(/^[\w.:-]{1,12}$/),
      (prefix, name, shard, processId) => {
        const tag = shardTags(prefix)[shard];
        assert.equal(metricKey(prefix, name, shard), `{${tag}}:m:${name}`);
        assert.equal(indexKey(prefix, name, shard), `{${tag}}:t:${name}`);
        assert.equal(appliedKey(prefix, shard, processId), `{${tag}}:applied:${processId}`);
        for (
          const key of [
            metricKey(prefix, name, shard),
            indexKey(prefix, name, shard),
            appliedKey(prefix, shard, processId),
          ]
        ) {
          assert.ok(key.startsWith("{"));
          assert.equal(key.slice(1, key.indexOf("}")), tag);
          assert.equal(keySlot(key), keySlot(tag));
          assert.equal(Math.floor(keySlot(key) / 1024), shard);
        }
        const instances = instancesKey(prefix);
        assert.equal(instances, `{${prefix}}:instances`);
        assert.equal(keySlot(instances), keySlot(prefix));
      },
    ),
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
