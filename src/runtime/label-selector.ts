// Label selectors in the API's string form (`a=b,!c,d in (e,f)`), checked when the operator
// starts: a selector the API server would refuse would otherwise fail every list and watch
// of the informers it filters, forever, with a 400 in a log line. Written by hand because it
// is small and the only library that parses this syntax is client-go; the grammar is
// k8s.io/apimachinery's labels.Parse (=, ==, !=, in, notin, exists, !exists; gt/lt left out:
// no shard key is numeric).

export type Requirement =
  { key: string; operator: 'exists' | 'notExists' } | { key: string; operator: 'in' | 'notIn'; values: string[] };

const NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function checkKey(key: string): void {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix)))
    throw new Error(`"${key}": the prefix must be a DNS subdomain`);
  if (name.length > 63 || !NAME.test(name))
    throw new Error(
      `"${key}" is not a label key (at most 63 letters, digits, '-', '_', '.', alphanumeric at both ends)`,
    );
}

function checkValue(key: string, value: string): void {
  if (value !== '' && (value.length > 63 || !NAME.test(value)))
    throw new Error(`"${value}" (for ${key}) is not a label value`);
}

/** Splits at the commas that separate requirements, not those inside `in (…)`. */
function splitRequirements(selector: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < selector.length; i++) {
    const ch = selector[i];
    if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (ch === ',' && depth === 0) {
      parts.push(selector.slice(start, i));
      start = i + 1;
    }
    if (depth < 0 || depth > 1) throw new Error('unbalanced parentheses');
  }
  if (depth !== 0) throw new Error('unbalanced parentheses');
  parts.push(selector.slice(start));
  return parts.map((p) => p.trim());
}

function parseRequirement(text: string): Requirement {
  if (text === '') throw new Error('empty requirement (a stray comma?)');
  const set = /^(\S+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(text);
  if (set) {
    const [, key, op, list] = set as unknown as [string, string, string, string];
    checkKey(key);
    const values = list.split(',').map((v) => v.trim());
    for (const v of values) checkValue(key, v);
    return { key, operator: op === 'in' ? 'in' : 'notIn', values };
  }
  const compare = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(text);
  if (compare) {
    const [, key, op, value] = compare as unknown as [string, string, string, string];
    checkKey(key);
    checkValue(key, value);
    return { key, operator: op === '!=' ? 'notIn' : 'in', values: [value] };
  }
  if (text.startsWith('!')) {
    const key = text.slice(1).trim();
    checkKey(key);
    return { key, operator: 'notExists' };
  }
  checkKey(text);
  return { key: text, operator: 'exists' };
}

/** Parses a selector; throws an Error saying what is wrong. The empty selector selects everything. */
export function parseLabelSelector(selector: string): Requirement[] {
  if (selector.trim() === '') return [];
  return splitRequirements(selector).map(parseRequirement);
}
