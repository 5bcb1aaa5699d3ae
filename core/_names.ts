// Name and label validation, shared by metrics, the registry and the checks of custom collectors.

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Throws a TypeError unless `name` is a valid metric name. */
export function checkMetricName(name: unknown, what = "metric name"): string {
  if (typeof name !== "string") {
    throw new TypeError(`Invalid ${what}: expected a string, got ${describe(name)}`);
  }
  if (!METRIC_NAME.test(name)) {
    throw new TypeError(
      `Invalid ${what} ${JSON.stringify(name)}: must match [a-zA-Z_:][a-zA-Z0-9_:]*`,
    );
  }
  return name;
}

/** Throws a TypeError unless `name` is a valid label name, not reserved for `metric`. */
export function checkLabelName(name: unknown, metric: string, reserved?: string): string {
  if (typeof name !== "string") {
    throw new TypeError(`Invalid label name for metric "${metric}": got ${describe(name)}`);
  }
  if (!LABEL_NAME.test(name)) {
    throw new TypeError(
      `Invalid label name ${JSON.stringify(name)} for metric "${metric}": must match [a-zA-Z_][a-zA-Z0-9_]*`,
    );
  }
  if (name.startsWith("__")) {
    throw new TypeError(
      `Invalid label name ${
        JSON.stringify(name)
      } for metric "${metric}": names starting with "__" are reserved`,
    );
  }
  if (name === reserved) {
    throw new TypeError(
      `Invalid label name "${name}" for metric "${metric}": "${name}" is reserved for this metric type`,
    );
  }
  return name;
}

/** A short description of a value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "object") return "an object";
  return `${typeof value} ${String(value)}`;
}

/** Names quoted and joined for error messages: `"a", "b"`. */
export function quoteList(names: readonly string[]): string {
  return names.map((name) => `"${name}"`).join(", ");
}
