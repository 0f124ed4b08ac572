// The operator's configuration file as one JSON Schema: every key, what it means, its type,
// its limits and its default. config-file.ts validates files against it (ajv) and
// docs/reference/config-file.md is generated from it (npm run docs:config). Keywords of this
// project's own (config-file.ts defines them for ajv):
//   x-invalid    the end of the sentence a user reads when a value breaks the key's rule
//                ("registries[0].host must be a registry host such as …");
//   x-file       a path, relative to the file's folder, to a readable file that is not empty;
//   x-unique     in a list of mappings: the key whose value no two items share;
//   x-exclusive  in a mapping: keys of which at most one may be set.
import type { JSONSchemaType } from 'ajv';
import { REGISTRY_DEFAULTS } from './registry/client.ts';
import { FORMATS, type WebhookFormat } from './registry/webhooks/formats.ts';
import { WEBHOOK_DEFAULTS } from './registry/webhooks/server.ts';

/** The file as written (paths not yet resolved, secrets not read). Absent and null both mean unset. */
export interface RawConfigFile {
  registries?: RawRegistry[] | null;
  webhooks?: RawWebhooks | null;
  sigstore?: RawSigstore | null;
}

export interface RawRegistry {
  host: string;
  insecure?: boolean | null;
  caFile?: string | null;
  maxConcurrency?: number | null;
  requestsPerMinute?: number | null;
  scanner?: RawScanner | null;
}

/** The registry's own vulnerability scanner, asked for policies that name none. */
export interface RawScanner {
  type: 'harbor' | 'ecr' | 'artifactAnalysis' | 'defender' | 'quay';
  url?: string | null;
  subscriptions?: string[] | null;
}

export interface RawWebhooks {
  maxBodyBytes?: number | null;
  requestsPerSecond?: number | null;
  burst?: number | null;
  buildCallbacks?: boolean | null;
  buildCallbackURL?: string | null;
  tls?: { certFile: string; keyFile: string } | null;
  receivers?: RawReceiver[] | null;
}

export type AuthType = 'bearer' | 'basic' | 'header' | 'hmac' | 'path';
const AUTH_TYPES: readonly AuthType[] = ['bearer', 'basic', 'header', 'hmac', 'path'];

export interface RawReceiver {
  name: string;
  format: WebhookFormat;
  registry?: string | null;
  auth: RawReceiverAuth;
}

export interface RawReceiverAuth {
  type: AuthType;
  tokenFile?: string | null;
  username?: string | null;
  passwordFile?: string | null;
  header?: string | null;
  valueFile?: string | null;
  keyFile?: string | null;
}

export interface RawSigstore {
  trustedRootFile?: string | null;
  tuf?: { mirrorURL?: string | null; rootFile?: string | null; cachePath?: string | null } | null;
}

const WHOLE_NUMBER = 'must be a whole number of at least 1';
const FILE = 'must be a file path';

const positive = (description: string, fallback: number) =>
  ({ type: 'integer', minimum: 1, nullable: true, default: fallback, description, 'x-invalid': WHOLE_NUMBER }) as const;
const filePath = (description: string) =>
  ({ type: 'string', minLength: 1, description, 'x-invalid': FILE, 'x-file': true }) as const;
const optionalFile = (description: string) => ({ ...filePath(description), nullable: true }) as const;

/** Which file each receiver authentication reads, and what else it needs. */
const AUTH_NEEDS: Record<AuthType, readonly (keyof RawReceiverAuth)[]> = {
  bearer: ['tokenFile'],
  basic: ['username', 'passwordFile'],
  header: ['header', 'valueFile'],
  hmac: ['keyFile'],
  path: ['tokenFile'],
};

const receiverAuth: JSONSchemaType<RawReceiverAuth> = {
  type: 'object',
  description: 'How senders prove who they are; every receiver is authenticated.',
  properties: {
    type: {
      type: 'string',
      enum: [...AUTH_TYPES],
      description:
        'bearer: Authorization: Bearer <token>; basic: user and password; header: a named header holding a secret; hmac: an HMAC-SHA256 of the body (GitHub, generic); path: a token in the URL path (Docker Hub).',
      'x-invalid': `must be one of ${AUTH_TYPES.join(', ')} (every receiver is authenticated)`,
    },
    tokenFile: optionalFile('bearer, path: file holding the token (a mounted Secret).'),
    username: { type: 'string', minLength: 1, nullable: true, description: 'basic: the user name.' },
    passwordFile: optionalFile('basic: file holding the password.'),
    header: {
      type: 'string',
      pattern: '^[A-Za-z0-9-]+$',
      nullable: true,
      description: 'header: the header holding the secret; hmac: the signature header, when not the format’s own.',
      'x-invalid': 'must be a header name',
    },
    valueFile: optionalFile('header: file holding the header’s value.'),
    keyFile: optionalFile('hmac: file holding the HMAC key.'),
  },
  required: ['type'],
  additionalProperties: false,
  allOf: AUTH_TYPES.map((type) => ({
    if: { properties: { type: { const: type } }, required: ['type'] },
    then: { required: [...AUTH_NEEDS[type]] },
  })),
};

export const CONFIG_FILE_SCHEMA: JSONSchemaType<RawConfigFile> = {
  type: 'object',
  description:
    'The operator’s configuration file (--config-file / PATCHLINE_CONFIG_FILE), usually a ConfigMap: settings that are lists rather than flags. Secrets are never in it: keys ending in File name files (a mounted Secret), read when needed, so that a rotated Secret takes effect without a restart. Relative paths are relative to the file.',
  'x-invalid': 'must be a mapping with "registries", "webhooks" and/or "sigstore"',
  properties: {
    registries: {
      type: 'array',
      nullable: true,
      description: 'Transport settings per registry host.',
      'x-invalid': 'must be a list',
      items: {
        type: 'object',
        'x-invalid': 'must be a mapping',
        properties: {
          host: {
            type: 'string',
            pattern: '^[a-zA-Z0-9.\\-[\\]:]+$',
            description: 'host[:port] as in image references.',
            'x-invalid': 'must be a registry host such as registry.example.com:5000',
          },
          insecure: {
            type: 'boolean',
            nullable: true,
            default: false,
            description: 'Plain http instead of https.',
            'x-invalid': 'must be true or false',
          },
          caFile: optionalFile('PEM file of extra CA certificates trusted for this registry.'),
          maxConcurrency: positive('Requests in flight at once.', REGISTRY_DEFAULTS.maxConcurrency),
          requestsPerMinute: {
            type: 'integer',
            minimum: 1,
            nullable: true,
            description:
              'Requests per minute, token requests included. Default: none, except where the registry documents a limit (docker.io: 1,000). When the followed references need more at their intervals, they are checked less often, evenly, and the resources say so (condition IntervalMet).',
            'x-invalid': WHOLE_NUMBER,
          },
          scanner: {
            type: 'object',
            nullable: true,
            description:
              'The registry’s own vulnerability scanner, asked about candidates of ImagePolicies with verify.vulnerabilities that name no scanners (verify.vulnerabilities.scanners), with the pull credentials (harbor), anonymously (quay) or with the operator’s cloud identity.',
            'x-invalid': 'must be a mapping with "type"',
            properties: {
              type: {
                type: 'string',
                enum: ['harbor', 'ecr', 'artifactAnalysis', 'defender', 'quay'],
                description: 'harbor, ecr, artifactAnalysis, defender or quay.',
                'x-invalid': 'must be one of harbor, ecr, artifactAnalysis, defender, quay',
              },
              url: {
                type: 'string',
                pattern: '^https?://\\S+$',
                nullable: true,
                description: 'The API’s base URL (harbor, quay); default https://<host>.',
                'x-invalid': 'must be an http(s) URL',
              },
              subscriptions: {
                type: 'array',
                nullable: true,
                items: { type: 'string', pattern: '^[0-9a-fA-F-]{36}$' },
                description: 'Azure subscriptions to query (defender); default all the identity can read.',
                'x-invalid': 'must be a list of subscription ids',
              },
            },
            required: ['type'],
            additionalProperties: false,
          },
        },
        required: ['host'],
        additionalProperties: false,
      },
    },
    webhooks: {
      type: 'object',
      nullable: true,
      description: 'The registry webhook receiver and build callbacks (served on --webhook-address).',
      'x-invalid': 'must be a mapping',
      properties: {
        maxBodyBytes: positive('Largest request body accepted.', WEBHOOK_DEFAULTS.maxBodyBytes),
        requestsPerSecond: positive('Requests per second per receiver.', WEBHOOK_DEFAULTS.requestsPerSecond),
        burst: positive('Burst above requestsPerSecond per receiver.', WEBHOOK_DEFAULTS.burst),
        buildCallbacks: {
          type: 'boolean',
          nullable: true,
          default: false,
          description: 'Serve POST /callbacks/builds/<id> for webhook build services that report back.',
          'x-invalid': 'must be true or false',
        },
        buildCallbackURL: {
          type: 'string',
          nullable: true,
          pattern: '^https?://[^\\s/@?#]+(/[^\\s?#]*)?$',
          maxLength: 2048,
          description:
            "How build services reach this instance's webhook endpoint (e.g. http://patchline-webhooks.patchline-system.svc): sent with every webhook build start as X-Patchline-Callback-URL (<URL>/callbacks/builds/<id>) and as $(build.callbackURL), so that a service calls back the instance (or shard) that started the build. Implies buildCallbacks.",
          'x-invalid': 'must be an http(s) URL without credentials, query or fragment',
        },
        tls: {
          type: 'object',
          nullable: true,
          description: 'Serve HTTPS with this certificate and key (PEM files); plain http without.',
          'x-invalid': 'must be a mapping with certFile and keyFile',
          properties: {
            certFile: filePath('The certificate chain.'),
            keyFile: filePath('The private key.'),
          },
          required: ['certFile', 'keyFile'],
          additionalProperties: false,
        },
        receivers: {
          type: 'array',
          nullable: true,
          description: 'One receiver per sender: POST /webhooks/<name>.',
          'x-invalid': 'must be a list',
          'x-unique': 'name',
          items: {
            type: 'object',
            'x-invalid': 'must be a mapping',
            properties: {
              name: {
                type: 'string',
                pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
                description: 'Unique; the last segment of the receiver’s path.',
                'x-invalid': 'must be lower-case letters, digits and dashes',
              },
              format: {
                type: 'string',
                enum: [...FORMATS],
                description: 'The payload format the sender posts.',
                'x-invalid': `must be one of ${FORMATS.join(', ')}`,
              },
              registry: {
                type: 'string',
                minLength: 1,
                nullable: true,
                description: 'Registry host for this receiver’s notices, overriding what payloads say.',
                'x-invalid': 'must be a registry host',
              },
              auth: receiverAuth,
            },
            required: ['name', 'format', 'auth'],
            additionalProperties: false,
          },
        },
      },
      additionalProperties: false,
    },
    sigstore: {
      type: 'object',
      nullable: true,
      description:
        'The trust root for keyless signatures and Rekor entries: a trusted_root.json (air-gapped or private Sigstore) or a TUF repository; without either, the public Sigstore TUF repository.',
      'x-invalid': 'must be a mapping',
      'x-exclusive': ['trustedRootFile', 'tuf'],
      properties: {
        trustedRootFile: optionalFile('A trusted_root.json, re-read when it changes.'),
        tuf: {
          type: 'object',
          nullable: true,
          description: 'A TUF repository serving trusted_root.json, refreshed daily.',
          'x-invalid': 'must be a mapping',
          properties: {
            mirrorURL: {
              type: 'string',
              pattern: '^https?://\\S+$',
              nullable: true,
              description: 'The repository’s URL (default: the public Sigstore one).',
              'x-invalid': 'must be an http(s) URL',
            },
            rootFile: optionalFile('The initial root.json to trust (needed for a private repository).'),
            cachePath: {
              type: 'string',
              minLength: 1,
              nullable: true,
              description: 'A writable directory for the TUF cache.',
              'x-invalid': 'must be a directory',
            },
          },
          additionalProperties: false,
        },
      },
      additionalProperties: false,
    },
  },
  additionalProperties: false,
};
