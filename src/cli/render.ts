// How `kubectl patchline` prints: tables fitted to the terminal's width (the last column is cut
// first), JSON or YAML for scripts, and colour only on a terminal that wants it (not when piped,
// not with NO_COLOR). Pure functions of rows and a terminal description.
import { stringify } from 'yaml';
import type { Row } from './views.ts';

export type OutputFormat = 'table' | 'json' | 'yaml';

export interface Terminal {
  /** Columns; undefined when not a terminal (no fitting). */
  width?: number;
  color: boolean;
}

const COLORS: Record<string, string> = {
  True: '\x1b[32m',
  UpToDate: '\x1b[32m',
  False: '\x1b[31m',
  Failed: '\x1b[31m',
  Stalled: '\x1b[31m',
  Blocked: '\x1b[31m',
  Unknown: '\x1b[33m',
  Rolling: '\x1b[33m',
  Suspended: '\x1b[33m',
  PendingApproval: '\x1b[33m',
};
const RESET = '\x1b[0m';

/** A table: upper-case headers, columns as wide as their widest cell, the last cut to the width. */
export function table(rows: readonly Row[], columns: readonly string[], term: Terminal): string {
  const header = columns.map((c) => c.replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase());
  const cells = rows.map((r) => columns.map((c) => r[c] ?? ''));
  const widths = columns.map((_, i) => Math.max(header[i]!.length, ...cells.map((row) => row[i]!.length)));
  const line = (values: readonly string[], colored: boolean): string => {
    let out = '';
    let used = 0;
    for (const [i, v] of values.entries()) {
      const last = i === values.length - 1;
      let text = last ? v : v.padEnd(widths[i]!);
      if (term.width !== undefined && used + text.length > term.width) {
        const room = Math.max(0, term.width - used);
        text = room > 1 && text.length > room ? `${text.slice(0, room - 1)}…` : text.slice(0, room);
      }
      const color = colored && term.color ? COLORS[v] : undefined;
      out += color ? `${color}${text}${RESET}` : text;
      used += text.length;
      if (!last) {
        out += '   ';
        used += 3;
      }
    }
    return out.trimEnd();
  };
  return [line(header, false), ...cells.map((c) => line(c, true))].join('\n') + '\n';
}

/** The value as the format asks (JSON and YAML keep every field; tables are for people). */
export function structured(value: unknown, format: 'json' | 'yaml'): string {
  return format === 'json' ? `${JSON.stringify(value, null, 2)}\n` : stringify(value);
}
