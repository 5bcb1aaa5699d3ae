// Number formatting for the exposition formats and the names of histogram buckets.

/** Formats a sample value: shortest round-trip digits, `NaN`, `+Inf`, `-Inf`. */
export function formatValue(value: number): string {
  if (value - value === 0) return "" + value;
  return value !== value ? "NaN" : value > 0 ? "+Inf" : "-Inf";
}

/**
 * Formats a bucket bound or quantile canonically, as client_golang and client_python do:
 * `0.001`, `1.0`, `10.0`, `100000.0`, `1e+06`, `1e-05`, `+Inf`. Written the same way in
 * both formats so that a series never changes name with the negotiated format.
 */
export function formatBound(value: number): string {
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  if (value !== value) return "NaN";
  if (value === 0) return Object.is(value, -0) ? "-0.0" : "0.0";
  const [mantissa, exponentText] = value.toExponential().split("e");
  const exponent = Number(exponentText);
  const sign = value < 0 ? "-" : "";
  const digits = mantissa.replace("-", "").replace(".", "");
  // Python's repr switches to exponent form below 1e-4 and from 1e16; Go's %g, which
  // Prometheus follows for positive bounds, from 1e6.
  if (exponent < -4 || exponent >= 16 || (value > 0 && exponent >= 6)) {
    const head = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const exp = String(Math.abs(exponent)).padStart(2, "0");
    return `${sign}${head}e${exponent < 0 ? "-" : "+"}${exp}`;
  }
  if (exponent < 0) return `${sign}0.${"0".repeat(-exponent - 1)}${digits}`;
  if (digits.length <= exponent + 1) return `${sign}${digits}${"0".repeat(exponent + 1 - digits.length)}.0`;
  return `${sign}${digits.slice(0, exponent + 1)}.${digits.slice(exponent + 1)}`;
}
