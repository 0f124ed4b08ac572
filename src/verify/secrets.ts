// The exposed-secret gate (verify.secrets): secrets a scanner found in an image's files —
// by rule id, file and severity, never their text — judged against a maximum severity and an
// allow-list of rule ids (optionally per file) with expiry and reason, as the CVE allow-list.
import type { ImagePolicy } from '../api/v1alpha1/index.ts';
import type { Severity, SeverityCounts } from './vulnerabilities.ts';

export interface ExposedSecret {
  ruleId: string;
  /** The file it was found in. */
  target: string;
  severity: Severity;
  category?: string;
}

export type SecretsSpec = NonNullable<NonNullable<ImagePolicy['spec']['verify']>['secrets']>;

export interface SecretsGate {
  passed: boolean;
  counts: SeverityCounts;
  blocking: ExposedSecret[];
  /** Rule ids found, for the status (never the secrets themselves). */
  rules: string[];
  message: string;
}

const RANK: Record<Severity | 'NONE', number> = { NONE: 0, UNKNOWN: 0, LOW: 1, MEDIUM: 2, HIGH: 3, CRITICAL: 4 };
const MAX_NAMED = 5;

/**
 * Exposed secrets above spec.maxSeverity that no allow-list entry covers (an entry names the
 * rule id and, optionally, the file; it lapses after `expires`). UNKNOWN severity blocks too:
 * a secret whose severity the scanner could not tell is still a secret.
 */
export function gateSecrets(spec: SecretsSpec, secrets: readonly ExposedSecret[], now: Date): SecretsGate {
  const max = RANK[spec.maxSeverity];
  const blocking: ExposedSecret[] = [];
  const expired = new Set<string>();
  const counts: SeverityCounts = { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 };
  for (const s of secrets) {
    counts[s.severity]++;
    if (s.severity !== 'UNKNOWN' && RANK[s.severity] <= max) continue;
    const allow = (spec.allow ?? []).find((a) => a.ruleId === s.ruleId && (!a.path || a.path === s.target));
    if (allow) {
      const until = Date.parse(allow.expires);
      if (Number.isFinite(until) && now.getTime() < until) continue; // as the CVE allow-list
      expired.add(allow.path ? `${allow.ruleId} in ${allow.path}` : allow.ruleId);
    }
    blocking.push(s);
  }
  const rules = [...new Set(secrets.map((s) => s.ruleId))].sort();
  const named = blocking
    .slice(0, MAX_NAMED)
    .map((s) => `${s.ruleId} (${s.severity}) in ${s.target || '?'}`)
    .join(', ');
  const more = blocking.length > MAX_NAMED ? ` and ${blocking.length - MAX_NAMED} more` : '';
  const expiredNote = expired.size > 0 ? `; allow-list entries expired: ${[...expired].sort().join(', ')}` : '';
  const message =
    blocking.length === 0
      ? `no exposed secret above ${spec.maxSeverity} that is not allowed${expiredNote}`
      : `${blocking.length} exposed secret(s) above ${spec.maxSeverity}: ${named}${more}${expiredNote}`;
  return { passed: blocking.length === 0, counts, blocking, rules, message };
}
