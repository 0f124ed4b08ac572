// Go duration strings ("1h30m", "10s", "1.5h", "0"), the format Kubernetes users know
// from every other controller and the one the CRDs validate.

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const PART = /([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)/y;

/** Milliseconds in a Go duration string; throws a readable error when it is not one. */
export function parseDuration(text: string): number {
  const input = text.trim();
  if (input === '0') return 0;
  if (!input) throw new Error('empty duration');
  let sign = 1;
  let pos = 0;
  if (input[0] === '-' || input[0] === '+') {
    sign = input[0] === '-' ? -1 : 1;
    pos = 1;
  }
  let total = 0;
  let parts = 0;
  while (pos < input.length) {
    PART.lastIndex = pos;
    const m = PART.exec(input);
    if (!m) throw new Error(`invalid duration "${text}": use a number and a unit (ms, s, m, h), such as 90s or 1h30m`);
    total += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
    pos = PART.lastIndex;
    parts++;
  }
  if (parts === 0) throw new Error(`invalid duration "${text}"`);
  return sign * total;
}

/** Formats milliseconds as a short Go-style duration: 1h30m, 45s, 250ms. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const sign = ms < 0 ? '-' : '';
  let rest = Math.abs(ms);
  if (rest < 1000) return `${sign}${Math.round(rest)}ms`;
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  const s = Math.round(rest / 1000);
  return sign + (h ? `${h}h` : '') + (m ? `${m}m` : '') + (s || (!h && !m) ? `${s}s` : '');
}
