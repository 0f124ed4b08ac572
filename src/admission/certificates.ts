// The admission webhook's TLS: a CA of its own and a serving certificate it signs, kept in a
// Secret and rotated before they expire. Keys are made by Node's crypto (native, fast);
// certificates are built with node-forge, because Node can parse X.509 but not create it.
// The rotation plan is a pure function of what the Secret holds and the time.
//
// Rotation without a gap: the caBundle the API server trusts holds the current CA and, for a
// while after a CA rotation, the previous one, so that a replica still serving a certificate
// of the old CA is trusted until it reloads.
import { X509Certificate, generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

export interface KeyPairPem {
  cert: string;
  key: string;
}

export interface TlsMaterial {
  ca: KeyPairPem;
  serving: KeyPairPem;
  /** PEM bundle of the CAs the API server should trust (current first). */
  caBundle: string;
}

const DAY = 86_400_000;
const CA_VALIDITY_DAYS = 5 * 365;
const SERVING_VALIDITY_DAYS = 90;

function newKeyPair(): { publicPem: string; privatePem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

function serial(): string {
  // Positive, 16 bytes: the first bit cleared.
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  return b.toString('hex');
}

export function issueCA(now: Date, commonName = 'patchline-admission-ca'): KeyPairPem {
  const keys = newKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(keys.publicPem);
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(now.getTime() - 5 * 60_000); // clock skew
  cert.validity.notAfter = new Date(now.getTime() + CA_VALIDITY_DAYS * DAY);
  const subject = [{ name: 'commonName', value: `${commonName} ${now.toISOString().slice(0, 10)}` }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(keys.privatePem), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: keys.privatePem };
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

export function issueServing(ca: KeyPairPem, hosts: readonly string[], now: Date): KeyPairPem {
  const keys = newKeyPair();
  const caCert = forge.pki.certificateFromPem(ca.cert);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(keys.publicPem);
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(now.getTime() - 5 * 60_000);
  cert.validity.notAfter = new Date(now.getTime() + SERVING_VALIDITY_DAYS * DAY);
  cert.setSubject([{ name: 'commonName', value: hosts[0] ?? 'patchline' }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: hosts.map((h) => (IPV4.test(h) ? { type: 7, ip: h } : { type: 2, value: h })),
    },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(ca.key), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: keys.privatePem };
}

/** The names a serving certificate must carry for a Service (and any extra names). */
export function serviceHosts(service: string, namespace: string, extra: readonly string[] = []): string[] {
  return [...new Set([`${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`, ...extra])];
}

function parse(pem: string | undefined): X509Certificate | undefined {
  if (!pem) return undefined;
  try {
    return new X509Certificate(pem);
  } catch {
    return undefined;
  }
}

/** Splits a PEM bundle into its certificates. */
export function pemCertificates(bundle: string): string[] {
  return (
    bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g)?.map((c) => c.trim() + '\n') ?? []
  );
}

export type RotationReason =
  | 'missing'
  | 'unreadable'
  | 'ca-expiring'
  | 'serving-expiring'
  | 'serving-hosts-changed'
  | 'serving-not-from-ca'
  | 'expired-ca-dropped';

export interface RotationPlan {
  /** What to store, or undefined when what is stored is good. */
  next?: TlsMaterial;
  reasons: RotationReason[];
}

/** Renew when less than a third of the validity is left. */
function expiring(cert: X509Certificate, now: Date): boolean {
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  return to - now.getTime() < (to - from) / 3;
}

function hostsOf(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '')
    .split(', ')
    .map((s) => s.replace(/^(DNS|IP Address):/, ''))
    .filter(Boolean)
    .sort();
}

/**
 * What to do with the stored material: keep it, or issue what is missing or expiring. A
 * new CA keeps the old one in the bundle while it is still valid.
 */
export function planRotation(
  stored: Partial<TlsMaterial> | undefined,
  hosts: readonly string[],
  now: Date,
): RotationPlan {
  const reasons: RotationReason[] = [];
  const caCert = parse(stored?.ca?.cert);
  const servingCert = parse(stored?.serving?.cert);
  let ca = stored?.ca;
  let caBundle = stored?.caBundle ?? '';
  if (!stored?.ca || !stored.serving) reasons.push('missing');
  else if (!caCert || !servingCert) reasons.push('unreadable');
  const caRenew = !ca || !caCert || expiring(caCert, now);
  if (ca && caCert && caRenew) reasons.push('ca-expiring');
  if (caRenew) {
    const previous = caCert && Date.parse(caCert.validTo) > now.getTime() ? [ca!.cert] : [];
    ca = issueCA(now);
    caBundle = [ca.cert, ...previous].map((c) => c.trim() + '\n').join('');
  }
  let serving = stored?.serving;
  if (!caRenew && servingCert && caCert) {
    if (expiring(servingCert, now)) reasons.push('serving-expiring');
    if (hostsOf(servingCert).join(',') !== [...hosts].sort().join(',')) reasons.push('serving-hosts-changed');
    if (!servingCert.checkIssued(caCert)) reasons.push('serving-not-from-ca');
  }
  if (caRenew || reasons.length > 0) serving = issueServing(ca!, hosts, now);
  // Drop CAs that have expired from the bundle; make sure the current one is in it.
  const kept = pemCertificates(caBundle).filter((c) => {
    const x = parse(c);
    return x && Date.parse(x.validTo) > now.getTime();
  });
  if (!kept.some((c) => c.trim() === ca!.cert.trim())) kept.unshift(ca!.cert.trim() + '\n');
  const bundle = kept.join('');
  if (reasons.length === 0 && bundle === caBundle) return { reasons };
  return {
    next: { ca: ca!, serving: serving!, caBundle: bundle },
    reasons: reasons.length ? reasons : ['expired-ca-dropped'],
  };
}
