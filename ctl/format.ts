/** Human output helpers for fsctl. */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function bytes (n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) { v /= 1024; u++; }
  return u === 0 ? `${n} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${UNITS[u]}`;
}

export function rate (bytesPerSecond: number): string {
  return bytesPerSecond > 0 ? `${bytes(bytesPerSecond)}/s` : '-';
}

export function percent (part: number, whole: number): string {
  return whole === 0 ? '100%' : `${Math.floor((part / whole) * 100)}%`;
}

export function duration (ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

/** Colours only on a terminal, and never when NO_COLOR is set (https://no-color.org). */
export function colorEnabled (stream: NodeJS.WriteStream = process.stdout): boolean {
  return stream.isTTY === true && (process.env.NO_COLOR ?? '') === '';
}

const STATE_COLORS: Record<string, number> = { complete: 32, downloading: 36, stalled: 33, error: 31, cancelled: 35 };

/** The state word, coloured by what it means when colour is on. */
export function stateText (state: string, color: boolean): string {
  const code = STATE_COLORS[state];
  return color && code !== undefined ? `\x1b[${code}m${state}\x1b[0m` : state;
}

const ESCAPES: Record<string, string> = { '\n': '\\n', '\t': '\\t', '\r': '\\r' };

/**
 * A file name as a terminal may show it: control characters as escapes (`\n`, `\x1b`), since
 * a newline would split a table row in two and an escape sequence would act on the terminal.
 * Names are otherwise shown as they are; `--json` gives them exactly.
 */
export function shown (name: string): string {
  // eslint-disable-next-line no-control-regex
  return name.replace(/[\x00-\x1f\x7f]/g, c => ESCAPES[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
