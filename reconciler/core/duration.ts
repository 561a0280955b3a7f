// Durations as manifests and the agent configuration write them ("500ms",
// "30s", "5m", "1h"; common.schema.json#/$defs/duration), in one place.

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
const DURATION = /^([1-9][0-9]{0,5})(ms|s|m|h)$/;

/** Milliseconds, or undefined when `text` is not a duration (a zero duration is not one). */
export function parseDuration(text: string): number | undefined {
  const m = DURATION.exec(text);
  return m ? Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS] : undefined;
}

/** For a value the schema already checked: a duration, or a bug. */
export function durationMs(text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) throw new Error(`not a duration: ${text}`);
  return ms;
}

/** A command-line wait that may be zero ("0", "0s"): milliseconds, or undefined when it is neither. */
export function parseWait(text: string): number | undefined {
  return /^0(ms|s|m|h)?$/.test(text) ? 0 : parseDuration(text);
}
