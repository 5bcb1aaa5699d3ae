// The escaping rules of both exposition formats, in one place.

const LABEL_SPECIAL = /[\\"\n]/;
const LABEL_SPECIALS = /[\\"\n]/g;
const HELP_SPECIAL = /[\\\n]/;
const HELP_SPECIALS = /[\\\n]/g;

function escapeChar(char: string): string {
  return char === "\n" ? "\\n" : `\\${char}`;
}

/** Escapes a label value: backslash, double quote and line feed, in both formats. */
export function escapeLabelValue(value: string): string {
  return LABEL_SPECIAL.test(value) ? value.replace(LABEL_SPECIALS, escapeChar) : value;
}

/**
 * Escapes help text. Text 0.0.4 escapes backslash and line feed only (a raw `"` stays raw);
 * OpenMetrics also escapes the double quote.
 */
export function escapeHelp(help: string, openMetrics: boolean): string {
  if (openMetrics) return escapeLabelValue(help);
  return HELP_SPECIAL.test(help) ? help.replace(HELP_SPECIALS, escapeChar) : help;
}
