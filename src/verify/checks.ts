// The checks a candidate image passes before it is rolled out, as a pipeline of small pure
// checks over facts gathered from the registry: approved registry, the digest as the
// registry serves it, maximum age,
// provenance, signature, vulnerabilities. A check whose facts are missing fails closed, so that
// nothing unverified is rolled out by mistake.
import type { ImagePolicy } from '../api/v1alpha1/index.ts';
import { formatDuration, parseDuration } from '../runtime/duration.ts';
import { parseReference, repositoryName } from '../registry/reference.ts';
import type { ProvenanceResult } from './provenance.ts';
import type { SignatureVerdict } from './signatures.ts';
import { gateVulnerabilities, type Finding } from './vulnerabilities.ts';
import { gateSecrets, type ExposedSecret } from './secrets.ts';
import { describeUser, effectiveUser, parseImageUser, type SecurityContextUser } from './run-as-user.ts';

export type VerifySpec = NonNullable<ImagePolicy['spec']['verify']>;

export interface CheckResult {
  name: 'registry' | 'digest' | 'age' | 'provenance' | 'signature' | 'vulnerabilities' | 'user' | 'secrets';
  passed: boolean;
  message: string;
  /** The vulnerabilities check: the scan's findings by severity. */
  findings?: { critical: number; high: number; medium: number; low: number; unknown: number };
  /** Not passed, but not refused either: a registry scanner is still scanning the candidate. */
  pending?: true;
}

export interface Candidate {
  /** The image as followed (repository and tag). */
  image: string;
  digest: string;
}

/** What the registry serves for the candidate's digest. */
export interface ServedManifest {
  /** The repository has a manifest for the digest, and its content hashes to it. */
  matches: boolean;
  message: string;
}

export interface CandidateFacts {
  /** The registry's answer for the candidate's digest; absent when not read. */
  served?: ServedManifest;
  /** The image config's created time; undefined when the config has none. */
  created?: Date;
  provenance?: ProvenanceResult;
  signature?: SignatureVerdict;
  /** The candidate's scan, from a VulnerabilityReport, a registry scanner or a signed attestation; absent when not scanned. */
  scan?: { findings: readonly Finding[]; source: string };
  /** No scan yet, but a registry scanner is scanning it: which, what it said, and since when the candidate waits. */
  scanPending?: { source: string; detail: string; since: Date };
  /** Why the registry scanners could not judge it (for the message when nothing did). */
  scanNotes?: readonly string[];
  /**
   * verify.runAsNonRoot: the candidate's image config User, and the securityContext of each
   * selected container it would run in.
   */
  runAs?: { imageUser: string; containers: readonly RunAsContainer[] };
  /** The candidate's secret scan (an ExposedSecretReport); absent when not scanned. */
  secretScan?: { secrets: readonly ExposedSecret[]; source: string };
}

/** A selected container, with who its pod and itself say it runs as. */
export interface RunAsContainer {
  /** Kind/name/container. */
  container: string;
  pod?: SecurityContextUser;
  own?: SecurityContextUser;
}

/**
 * Whether an image comes from an approved registry. An entry is a registry host
 * (myregistry.azurecr.io) or a host and path prefix (ghcr.io/acme), matched on whole path
 * segments, so ghcr.io/acme does not approve ghcr.io/acme-evil.
 */
export function approvedRegistry(image: string, approved: readonly string[]): boolean {
  let name: string;
  try {
    name = repositoryName(parseReference(image));
  } catch {
    return false;
  }
  return approved.some((entry) => {
    const prefix = entry.replace(/\/+$/, '');
    return name === prefix || name.startsWith(`${prefix}/`);
  });
}

/** One check: its result, or undefined when the policy does not ask for it. */
type Check = (v: VerifySpec, candidate: Candidate, facts: CandidateFacts, now: Date) => CheckResult | undefined;

const registryCheck: Check = (v, candidate) => {
  if (!v.registries?.length) return undefined;
  const ok = approvedRegistry(candidate.image, v.registries);
  return {
    name: 'registry',
    passed: ok,
    message: ok
      ? 'from an approved registry'
      : `${candidate.image} is not from an approved registry (${v.registries.join(', ')})`,
  };
};

/**
 * The digest came from a tag's HEAD or from a RebuildTrigger's status: the repository must
 * serve a manifest for it whose content hashes to it, or the pin would name what nobody
 * checked (a digest from another repository, or content altered on the way).
 */
const digestCheck: Check = (_v, candidate, facts) => ({
  name: 'digest',
  passed: facts.served?.matches === true,
  message: facts.served?.message ?? `the manifest of ${candidate.digest} was not read yet`,
});

const ageCheck: Check = (v, _candidate, facts, now) => {
  if (!v.maxAge) return undefined;
  const maxMs = parseDuration(v.maxAge);
  if (!facts.created || facts.created.getTime() <= 0) {
    return { name: 'age', passed: false, message: 'the image config has no created time; its age cannot be checked' };
  }
  // The message names the build time, not the age, so that it does not change (and cause a
  // status write) every time the policy is looked at.
  const age = now.getTime() - facts.created.getTime();
  const built = facts.created.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return {
    name: 'age',
    passed: age <= maxMs,
    message:
      age <= maxMs
        ? `built ${built}, within the maximum age ${formatDuration(maxMs)}`
        : `built ${built}, older than the maximum age ${formatDuration(maxMs)}`,
  };
};

const provenanceCheck: Check = (v, _candidate, facts) => {
  if (!v.provenance?.requireBase) return undefined;
  const p = facts.provenance;
  return { name: 'provenance', passed: p?.verdict === 'Verified', message: p ? p.message : 'provenance not read yet' };
};

const signatureCheck: Check = (v, _candidate, facts) => {
  if (!v.signature) return undefined;
  const sig = facts.signature;
  return { name: 'signature', passed: sig?.verified === true, message: sig?.message ?? 'signature not verified yet' };
};

const vulnerabilityCheck: Check = (v, candidate, facts, now) => {
  if (!v.vulnerabilities) return undefined;
  const scan = facts.scan;
  if (scan) {
    const gate = gateVulnerabilities(v.vulnerabilities, scan.findings, now);
    const c = gate.counts;
    return {
      name: 'vulnerabilities',
      passed: gate.passed,
      message: `${scan.source}: ${gate.message}`,
      findings: { critical: c.CRITICAL, high: c.HIGH, medium: c.MEDIUM, low: c.LOW, unknown: c.UNKNOWN },
    };
  }
  if (v.vulnerabilities.requireScan === false) {
    return {
      name: 'vulnerabilities',
      passed: true,
      message: 'not scanned yet; judged when Trivy Operator reports on it running (requireScan is false)',
    };
  }
  const pending = facts.scanPending;
  if (pending) {
    const limit = parseDuration(v.vulnerabilities.scanTimeout ?? '1h');
    const since = pending.since.toISOString();
    if (now.getTime() - pending.since.getTime() >= limit)
      return {
        name: 'vulnerabilities',
        passed: false,
        message: `${pending.source} is still scanning ${candidate.digest} (${pending.detail}), waited since ${since} (scanTimeout ${v.vulnerabilities.scanTimeout ?? '1h'})`,
      };
    return {
      name: 'vulnerabilities',
      passed: false,
      pending: true,
      message: `waiting for ${pending.source} to finish scanning ${candidate.digest} (${pending.detail}) since ${since}`,
    };
  }
  const notes = facts.scanNotes?.length ? `; ${facts.scanNotes.join('; ')}` : '';
  return {
    name: 'vulnerabilities',
    passed: false,
    message: `no scan of ${candidate.digest}: no VulnerabilityReport names it and no signed vulnerability attestation is attached${notes}`,
  };
};

/**
 * verify.runAsNonRoot: the candidate, in every selected container, runs as a user that is not
 * root (and, with allowedUserIds, one of them), and the kubelet would start it.
 */
const userCheck: Check = (v, _candidate, facts) => {
  if (!v.runAsNonRoot) return undefined;
  const runAs = facts.runAs;
  if (!runAs) return { name: 'user', passed: false, message: "the image's user not read yet" };
  const allowed = v.allowedUserIds ?? [];
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const c of runAs.containers) {
    const u = effectiveUser(runAs.imageUser, c.pod, c.own);
    seen.add(describeUser(u));
    if (u.refusedByKubelet) problems.push(`${c.container}: the kubelet would not start it: ${u.refusedByKubelet}`);
    else if (u.root === true) problems.push(`${c.container}: would run as ${describeUser(u)}`);
    else if (allowed.length > 0 && (u.uid === undefined || !allowed.includes(u.uid)))
      problems.push(`${c.container}: would run as ${describeUser(u)}, not one of ${allowed.join(', ')}`);
  }
  if (problems.length > 0) {
    const more = problems.length > 3 ? ` (and ${problems.length - 3} more)` : '';
    return { name: 'user', passed: false, message: `${problems.slice(0, 3).join('; ')}${more}` };
  }
  const image = parseImageUser(runAs.imageUser);
  const who = image.uid === 0 ? 'root' : image.uid !== undefined ? `uid ${image.uid}` : `"${image.written}"`;
  return {
    name: 'user',
    passed: true,
    message:
      runAs.containers.length > 0
        ? `runs as ${[...seen].sort().join(', ')}`
        : `the image runs as ${who}; no selected container to run it yet`,
  };
};

/** verify.secrets: no exposed secret above the gate, unless allowed. */
const secretsCheck: Check = (v, candidate, facts, now) => {
  if (!v.secrets) return undefined;
  const scan = facts.secretScan;
  if (scan) {
    const gate = gateSecrets(v.secrets, scan.secrets, now);
    return { name: 'secrets', passed: gate.passed, message: `${scan.source}: ${gate.message}` };
  }
  if (v.secrets.requireScan === true)
    return {
      name: 'secrets',
      passed: false,
      message: `no secret scan of ${candidate.digest}: no ExposedSecretReport names it`,
    };
  return {
    name: 'secrets',
    passed: true,
    message: 'not scanned for secrets yet; judged when Trivy Operator reports on it running',
  };
};

/** The checks, in the order status lists them. */
const CHECKS: readonly Check[] = [
  registryCheck,
  digestCheck,
  ageCheck,
  provenanceCheck,
  signatureCheck,
  vulnerabilityCheck,
  secretsCheck,
  userCheck,
];

export function runChecks(
  verify: VerifySpec | undefined,
  candidate: Candidate,
  facts: CandidateFacts,
  now: Date,
): CheckResult[] {
  return CHECKS.flatMap((check) => check(verify ?? {}, candidate, facts, now) ?? []);
}

/** The first failed check, for the condition message. */
export function firstFailure(results: readonly CheckResult[]): CheckResult | undefined {
  return results.find((r) => !r.passed);
}
