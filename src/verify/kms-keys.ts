// Signature keys held in a cloud KMS, named as cosign names them:
//   awskms://[ENDPOINT]/[ID | ALIAS | ARN]   e.g. awskms:///arn:aws:kms:eu-west-1:111122223333:key/1234…
//   azurekms://[VAULT]/[KEY][/VERSION]        e.g. azurekms://shop-signing.vault.azure.net/cosign
//   gcpkms://projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/V
// Only the public key is read (verification needs nothing else): AWS KMS GetPublicKey through
// the AWS SDK (SigV4, the SDK's credential chain: IRSA, pod identity, environment), Azure Key
// Vault's "get key" (a JWK, with an Entra ID token from @azure/identity for
// https://vault.azure.net), and Cloud KMS's cryptoKeyVersions.getPublicKey (a PEM, with a
// Google token). The operator's own cloud identity reads them, as for registries. A key read
// is cached for an hour (a rotated key version is a new URI); a failure is not cached: the
// next verification (the policy's retry) asks again.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { PromiseCache } from '../controllers/promise-cache.ts';
import { jsonApi } from '../runtime/http.ts';

export type KmsKeyRef =
  | { provider: 'aws'; endpoint?: string; keyId: string; region?: string }
  | { provider: 'azure'; vault: string; key: string; version?: string }
  | { provider: 'gcp'; name: string };

export class KmsError extends Error {}

const GCP_NAME = /^projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/]+\/cryptoKeyVersions\/[^/]+$/;
const AWS_ARN = /^arn:aws[a-z-]*:kms:([a-z0-9-]+):\d{12}:(key|alias)\/.+$/;

/** Reads a cosign KMS URI; throws KmsError naming what is wrong. */
export function parseKmsUri(uri: string): KmsKeyRef {
  const m = /^(awskms|azurekms|gcpkms):\/\/(.*)$/.exec(uri);
  if (!m) throw new KmsError(`"${uri}" is not a KMS key URI (awskms://, azurekms://, gcpkms://)`);
  const rest = m[2]!;
  switch (m[1]) {
    case 'awskms': {
      // awskms:///<id> (no endpoint) or awskms://<endpoint>/<id>.
      const slash = rest.indexOf('/');
      const endpoint = slash > 0 ? rest.slice(0, slash) : undefined;
      const keyId = slash >= 0 ? rest.slice(slash + 1) : rest;
      if (!keyId) throw new KmsError(`"${uri}" names no key`);
      const region = AWS_ARN.exec(keyId)?.[1];
      return { provider: 'aws', keyId, ...(endpoint ? { endpoint } : {}), ...(region ? { region } : {}) };
    }
    case 'azurekms': {
      const [vault, key, version, ...more] = rest.split('/');
      if (!vault || !key || more.length > 0) throw new KmsError(`"${uri}" is not azurekms://<vault>/<key>[/<version>]`);
      if (!/^[a-zA-Z0-9.-]+$/.test(vault) || !/^[a-zA-Z0-9-]+$/.test(key) || (version && !/^[a-f0-9]+$/i.test(version)))
        throw new KmsError(`"${uri}" names an invalid vault, key or version`);
      return {
        provider: 'azure',
        vault: vault.includes('.') ? vault : `${vault}.vault.azure.net`,
        key,
        ...(version ? { version } : {}),
      };
    }
    default: {
      if (!GCP_NAME.test(rest))
        throw new KmsError(
          `"${uri}" is not gcpkms://projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/V (a key version is needed to verify)`,
        );
      return { provider: 'gcp', name: rest };
    }
  }
}

export interface KmsKeysDeps {
  /** An Entra ID access token for https://vault.azure.net; default: DefaultAzureCredential. */
  azureToken?: () => Promise<string>;
  /** A Google access token; default: google-auth-library's application default credentials. */
  googleToken?: () => Promise<string>;
  now?: () => number;
}

const KEY_TTL_MS = 60 * 60_000;
const LIMIT = 64 * 1024;

export class KmsKeys {
  private readonly deps: KmsKeysDeps;
  private readonly keys: PromiseCache<KeyObject>;

  constructor(deps: KmsKeysDeps = {}) {
    this.deps = deps;
    this.keys = new PromiseCache({
      max: 1_000,
      ...(deps.now ? { now: deps.now } : {}),
      ttlMs: () => KEY_TTL_MS,
    });
  }

  /** The public key a KMS URI names. */
  publicKey(uri: string, signal?: AbortSignal): Promise<KeyObject> {
    const ref = parseKmsUri(uri);
    return this.keys.get(uri, async () => {
      try {
        switch (ref.provider) {
          case 'aws':
            return await this.aws(ref, signal);
          case 'azure':
            return await this.azure(ref, signal);
          case 'gcp':
            return await this.gcp(ref, signal);
        }
      } catch (err) {
        if (err instanceof KmsError) throw err;
        throw new KmsError(`cannot read the public key of ${uri}: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
  }

  private async aws(ref: Extract<KmsKeyRef, { provider: 'aws' }>, signal?: AbortSignal): Promise<KeyObject> {
    const { KMSClient, GetPublicKeyCommand } = await import('@aws-sdk/client-kms');
    const client = new KMSClient({
      ...(ref.region ? { region: ref.region } : {}),
      ...(ref.endpoint ? { endpoint: `https://${ref.endpoint}` } : {}),
    });
    try {
      const out = await client.send(
        new GetPublicKeyCommand({ KeyId: ref.keyId }),
        signal ? { abortSignal: signal } : {},
      );
      if (!out.PublicKey) throw new KmsError(`AWS KMS returned no public key for ${ref.keyId}`);
      if (out.KeyUsage && out.KeyUsage !== 'SIGN_VERIFY')
        throw new KmsError(`the AWS KMS key ${ref.keyId} is not a signing key (${out.KeyUsage})`);
      return createPublicKey({ key: Buffer.from(out.PublicKey), format: 'der', type: 'spki' });
    } finally {
      client.destroy();
    }
  }

  private async azure(ref: Extract<KmsKeyRef, { provider: 'azure' }>, signal?: AbortSignal): Promise<KeyObject> {
    const token = await (this.deps.azureToken ?? defaultAzureToken)();
    const path = `/keys/${encodeURIComponent(ref.key)}${ref.version ? `/${encodeURIComponent(ref.version)}` : ''}`;
    const body = await getJson(`https://${ref.vault}${path}?api-version=7.4`, token, 'Azure Key Vault', signal);
    const jwk = (body as { key?: Record<string, unknown> }).key;
    if (!jwk || (jwk.kty !== 'EC' && jwk.kty !== 'EC-HSM' && jwk.kty !== 'RSA' && jwk.kty !== 'RSA-HSM'))
      throw new KmsError(`Azure Key Vault key ${ref.vault}/${ref.key} is not an EC or RSA key`);
    const kty = String(jwk.kty).replace('-HSM', '');
    const publicJwk =
      kty === 'EC'
        ? { kty, crv: String(jwk.crv), x: String(jwk.x), y: String(jwk.y) }
        : { kty, n: String(jwk.n), e: String(jwk.e) };
    return createPublicKey({ key: publicJwk, format: 'jwk' });
  }

  private async gcp(ref: Extract<KmsKeyRef, { provider: 'gcp' }>, signal?: AbortSignal): Promise<KeyObject> {
    const token = await (this.deps.googleToken ?? defaultGoogleToken)();
    const body = await getJson(`https://cloudkms.googleapis.com/v1/${ref.name}/publicKey`, token, 'Cloud KMS', signal);
    const pem = (body as { pem?: unknown }).pem;
    if (typeof pem !== 'string') throw new KmsError(`Cloud KMS returned no PEM for ${ref.name}`);
    return createPublicKey(pem);
  }
}

function getJson(url: string, token: string, service: string, signal?: AbortSignal): Promise<unknown> {
  return jsonApi(url, service, {
    headers: { authorization: `Bearer ${token}` },
    limit: LIMIT,
    ...(signal ? { signal } : {}),
  });
}

async function defaultAzureToken(): Promise<string> {
  const { DefaultAzureCredential } = await import('@azure/identity');
  const token = await new DefaultAzureCredential().getToken('https://vault.azure.net/.default');
  if (!token) throw new KmsError('no Entra ID token for Azure Key Vault');
  return token.token;
}

async function defaultGoogleToken(): Promise<string> {
  const { GoogleAuth } = await import('google-auth-library');
  const token = await new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloudkms'] }).getAccessToken();
  if (!token) throw new KmsError('no Google access token for Cloud KMS');
  return token;
}
