// Notary Project signature envelopes (notaryproject/specifications, signature-envelope-jws.md
// and signature-envelope-cose.md), parsed into one shape and checked cryptographically: the
// signature over the signed bytes with the leaf certificate's key, and the algorithm the leaf
// key demands. Written here because no maintained npm package reads Notary envelopes; JWS needs
// only node:crypto, COSE a CBOR decoder (cborg). Whether the chain and signer are trusted is
// decided by notary.ts. No I/O.
import { constants, verify, X509Certificate, type KeyObject } from 'node:crypto';
import { decode, encode } from 'cborg';

export const NotaryMediaTypes = {
  signature: 'application/vnd.cncf.notary.signature',
  jws: 'application/jose+json',
  cose: 'application/cose',
  payload: 'application/vnd.cncf.notary.payload.v1+json',
} as const;

export const NotaryHeaders = {
  signingScheme: 'io.cncf.notary.signingScheme',
  signingTime: 'io.cncf.notary.signingTime',
  authenticSigningTime: 'io.cncf.notary.authenticSigningTime',
  expiry: 'io.cncf.notary.expiry',
  signingAgent: 'io.cncf.notary.signingAgent',
  timestamp: 'io.cncf.notary.timestampSignature',
  verificationPlugin: 'io.cncf.notary.verificationPlugin',
  verificationPluginMinVersion: 'io.cncf.notary.verificationPluginMinVersion',
} as const;

/** The critical headers a verifier must understand; others make the envelope unverifiable. */
const UNDERSTOOD_CRITICAL: ReadonlySet<string> = new Set([
  NotaryHeaders.signingScheme,
  NotaryHeaders.expiry,
  NotaryHeaders.authenticSigningTime,
]);

export type NotaryAlgorithm = 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512';

/** COSE algorithm identifiers (RFC 9053, RFC 8230) of the algorithms Notary allows. */
const COSE_ALGORITHMS: ReadonlyMap<number, NotaryAlgorithm> = new Map([
  [-37, 'PS256'],
  [-38, 'PS384'],
  [-39, 'PS512'],
  [-7, 'ES256'],
  [-35, 'ES384'],
  [-36, 'ES512'],
]);

export interface NotaryEnvelope {
  format: 'jws' | 'cose';
  algorithm: NotaryAlgorithm;
  signingScheme: string;
  signingTime?: Date;
  authenticSigningTime?: Date;
  expiry?: Date;
  /** Whether an RFC 3161 countersignature is attached (not verified: see notary.ts). */
  timestamped: boolean;
  signingAgent?: string;
  /** The signed payload: a JSON document naming the target artifact. */
  payload: Buffer;
  /** Leaf first. */
  chain: X509Certificate[];
  /** Whether the signature over the signed bytes verifies with the leaf certificate's key. */
  signatureValid: boolean;
}

export class NotaryEnvelopeError extends Error {}

const MAX_CHAIN = 10;

/** The algorithm a key must sign with (Notary allows exactly one per key type and size). */
export function algorithmForKey(key: KeyObject): NotaryAlgorithm | undefined {
  const details = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'ec') {
    return ({ prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' } as const)[
      (details?.namedCurve ?? '') as 'prime256v1'
    ];
  }
  if (key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'rsa-pss') {
    return ({ 2048: 'PS256', 3072: 'PS384', 4096: 'PS512' } as const)[(details?.modulusLength ?? 0) as 2048];
  }
  return undefined;
}

function signatureValid(alg: NotaryAlgorithm, key: KeyObject, signed: Buffer, signature: Buffer): boolean {
  const hash = `sha${alg.slice(2)}`;
  try {
    if (alg.startsWith('ES')) return verify(hash, signed, { key, dsaEncoding: 'ieee-p1363' }, signature);
    return verify(
      hash,
      signed,
      { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: Number(alg.slice(2)) / 8 },
      signature,
    );
  } catch {
    return false;
  }
}

function certificates(ders: readonly Uint8Array[]): X509Certificate[] {
  if (ders.length === 0) throw new NotaryEnvelopeError('the envelope carries no certificate chain');
  if (ders.length > MAX_CHAIN) throw new NotaryEnvelopeError(`the certificate chain has ${ders.length} certificates`);
  return ders.map((der, i) => {
    try {
      return new X509Certificate(der);
    } catch {
      throw new NotaryEnvelopeError(`certificate ${i} of the chain is not an X.509 certificate`);
    }
  });
}

function checkCritical(crit: unknown, present: (name: string) => boolean): void {
  if (!Array.isArray(crit) || !crit.every((c) => typeof c === 'string'))
    throw new NotaryEnvelopeError('the protected header has no "crit" list');
  for (const name of crit)
    if (!UNDERSTOOD_CRITICAL.has(name)) throw new NotaryEnvelopeError(`unsupported critical header "${name}"`);
  for (const name of [NotaryHeaders.signingScheme, NotaryHeaders.expiry, NotaryHeaders.authenticSigningTime])
    if (present(name) && !crit.includes(name)) throw new NotaryEnvelopeError(`"${name}" must be listed as critical`);
}

function finish(
  base: Omit<NotaryEnvelope, 'signatureValid' | 'algorithm'>,
  algorithm: NotaryAlgorithm | undefined,
  signed: Buffer,
  signature: Buffer,
): NotaryEnvelope {
  if (!algorithm) throw new NotaryEnvelopeError('unsupported signature algorithm');
  const leafKey = base.chain[0]!.publicKey;
  const expected = algorithmForKey(leafKey);
  if (expected !== algorithm)
    throw new NotaryEnvelopeError(
      `the envelope says ${algorithm} but the signing key needs ${expected ?? 'an unsupported algorithm'}`,
    );
  if (base.signingScheme !== 'notary.x509' && base.signingScheme !== 'notary.x509.signingAuthority')
    throw new NotaryEnvelopeError(`unknown signing scheme "${base.signingScheme}"`);
  return { ...base, algorithm, signatureValid: signatureValid(algorithm, leafKey, signed, signature) };
}

// ---- JWS (flattened JSON serialization) ----

const b64url = (s: unknown, what: string): Buffer => {
  if (typeof s !== 'string' || !/^[A-Za-z0-9_-]*$/.test(s)) throw new NotaryEnvelopeError(`${what} is not base64url`);
  return Buffer.from(s, 'base64url');
};

function rfc3339(v: unknown, name: string): Date | undefined {
  if (v === undefined) return undefined;
  const d = typeof v === 'string' ? new Date(v) : undefined;
  if (!d || Number.isNaN(d.getTime())) throw new NotaryEnvelopeError(`"${name}" is not a time`);
  return d;
}

function parseJws(body: Buffer): NotaryEnvelope {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new NotaryEnvelopeError('the JWS envelope is not JSON');
  }
  if (typeof doc !== 'object' || doc === null) throw new NotaryEnvelopeError('the JWS envelope is not an object');
  const protectedRaw = doc.protected;
  let protectedHeader: Record<string, unknown>;
  try {
    protectedHeader = JSON.parse(b64url(protectedRaw, 'the protected header').toString('utf8')) as Record<
      string,
      unknown
    >;
  } catch (err) {
    if (err instanceof NotaryEnvelopeError) throw err;
    throw new NotaryEnvelopeError('the protected header is not JSON');
  }
  const header = (doc.header ?? {}) as Record<string, unknown>;
  checkCritical(protectedHeader.crit, (name) => name in protectedHeader);
  if (protectedHeader.cty !== NotaryMediaTypes.payload)
    throw new NotaryEnvelopeError(`the payload content type is ${String(protectedHeader.cty)}`);
  const x5c = header.x5c;
  if (!Array.isArray(x5c) || !x5c.every((c) => typeof c === 'string'))
    throw new NotaryEnvelopeError('the unprotected header has no "x5c" chain');
  const chain = certificates(x5c.map((c: string) => Buffer.from(c, 'base64')));
  const payload = b64url(doc.payload, 'the payload');
  const signingAgent = header[NotaryHeaders.signingAgent];
  const signingTime = rfc3339(protectedHeader[NotaryHeaders.signingTime], NotaryHeaders.signingTime);
  const authentic = rfc3339(protectedHeader[NotaryHeaders.authenticSigningTime], NotaryHeaders.authenticSigningTime);
  const expiry = rfc3339(protectedHeader[NotaryHeaders.expiry], NotaryHeaders.expiry);
  return finish(
    {
      format: 'jws',
      signingScheme: String(protectedHeader[NotaryHeaders.signingScheme]),
      ...(signingTime ? { signingTime } : {}),
      ...(authentic ? { authenticSigningTime: authentic } : {}),
      ...(expiry ? { expiry } : {}),
      timestamped: header[NotaryHeaders.timestamp] !== undefined,
      ...(typeof signingAgent === 'string' ? { signingAgent } : {}),
      payload,
      chain,
    },
    (['PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'] as const).find((a) => a === protectedHeader.alg),
    Buffer.from(`${String(protectedRaw)}.${String(doc.payload)}`, 'ascii'),
    b64url(doc.signature, 'the signature'),
  );
}

// ---- COSE_Sign1 ----

/** CBOR tags that may appear: 18 wraps COSE_Sign1, 1 is an epoch time. Any other is refused. */
const COSE_TAGS: ((inner: () => unknown) => unknown)[] = [];
COSE_TAGS[1] = (inner) => {
  const v = inner();
  if (typeof v !== 'number') throw new NotaryEnvelopeError('a CBOR time is not a number');
  return new Date(v * 1000);
};
COSE_TAGS[18] = (inner) => inner();

function cbor(bytes: Uint8Array, what: string): unknown {
  try {
    return decode(bytes, { tags: COSE_TAGS, useMaps: true });
  } catch (err) {
    if (err instanceof NotaryEnvelopeError) throw err;
    throw new NotaryEnvelopeError(`${what} is not valid CBOR`);
  }
}

function coseTime(v: unknown, name: string): Date | undefined {
  if (v === undefined) return undefined;
  if (!(v instanceof Date) || Number.isNaN(v.getTime())) throw new NotaryEnvelopeError(`"${name}" is not a time`);
  return v;
}

function parseCose(body: Buffer): NotaryEnvelope {
  const message = cbor(body, 'the COSE envelope');
  if (!Array.isArray(message) || message.length !== 4) throw new NotaryEnvelopeError('not a COSE_Sign1 message');
  const [protectedBytes, unprotectedMap, payload, signature] = message as unknown[];
  if (!(protectedBytes instanceof Uint8Array) || !(payload instanceof Uint8Array) || !(signature instanceof Uint8Array))
    throw new NotaryEnvelopeError('not a COSE_Sign1 message');
  const protectedHeader = cbor(protectedBytes, 'the protected header');
  if (!(protectedHeader instanceof Map) || !(unprotectedMap instanceof Map))
    throw new NotaryEnvelopeError('the COSE headers are not maps');
  const p = protectedHeader as Map<unknown, unknown>;
  const u = unprotectedMap as Map<unknown, unknown>;
  checkCritical(p.get(2), (name) => p.has(name));
  if (p.get(3) !== NotaryMediaTypes.payload)
    throw new NotaryEnvelopeError(`the payload content type is ${String(p.get(3))}`);
  const x5chain = u.get(33);
  const ders = x5chain instanceof Uint8Array ? [x5chain] : x5chain;
  if (!Array.isArray(ders) || !ders.every((c) => c instanceof Uint8Array))
    throw new NotaryEnvelopeError('the unprotected header has no x5chain');
  const signingTime = coseTime(p.get(NotaryHeaders.signingTime), NotaryHeaders.signingTime);
  const authentic = coseTime(p.get(NotaryHeaders.authenticSigningTime), NotaryHeaders.authenticSigningTime);
  const expiry = coseTime(p.get(NotaryHeaders.expiry), NotaryHeaders.expiry);
  const signingAgent = u.get(NotaryHeaders.signingAgent);
  // Sig_structure (RFC 9052 §4.4): the protected header exactly as received, no external data.
  const signed = Buffer.from(encode(['Signature1', protectedBytes, new Uint8Array(0), payload]));
  const alg = p.get(1);
  return finish(
    {
      format: 'cose',
      signingScheme: String(p.get(NotaryHeaders.signingScheme)),
      ...(signingTime ? { signingTime } : {}),
      ...(authentic ? { authenticSigningTime: authentic } : {}),
      ...(expiry ? { expiry } : {}),
      timestamped: u.has(NotaryHeaders.timestamp),
      ...(typeof signingAgent === 'string' ? { signingAgent } : {}),
      payload: Buffer.from(payload),
      chain: certificates(ders),
    },
    typeof alg === 'number' ? COSE_ALGORITHMS.get(alg) : undefined,
    signed,
    Buffer.from(signature),
  );
}

/** Parses an envelope of the given media type; throws NotaryEnvelopeError when it is malformed. */
export function parseNotaryEnvelope(mediaType: string, body: Buffer): NotaryEnvelope {
  if (mediaType === NotaryMediaTypes.jws) return parseJws(body);
  if (mediaType === NotaryMediaTypes.cose) return parseCose(body);
  throw new NotaryEnvelopeError(`unknown envelope type ${mediaType}`);
}
