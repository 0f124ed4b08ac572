// Property-based fuzzing (fast-check, fixed seeds): every parser and decision that takes input
// from outside — image references, each webhook format, the config file, AdmissionReview
// bodies, the resources' specs — on hostile and near-valid input. Properties: no exception but
// the parser's own escapes, no 5xx from the webhook server, and nothing invalid handed on.
// The case counts add up to more than 10,000; the seeds make every run the same.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { stringify } from 'yaml';
import type { ImagePolicy, RebuildTrigger } from '../../src/api/v1alpha1/index.ts';
import {
  AdmissionFormatError,
  admissionResponse,
  introducedImages,
  judgeImages,
  parseAdmissionReview,
} from '../../src/admission/review.ts';
import { ConfigError } from '../../src/config.ts';
import { parseConfigFile } from '../../src/config-file.ts';
import { decideImagePolicy, specProblems as policyProblems } from '../../src/controllers/imagepolicy/decide.ts';
import { decideRebuildTrigger, specProblems as triggerProblems } from '../../src/controllers/rebuildtrigger/decide.ts';
import { ReferenceError, formatReference, parseReference, type ImageReference } from '../../src/registry/reference.ts';
import { FORMATS, PayloadError, parsePayload } from '../../src/registry/webhooks/formats.ts';
import { WebhookServer } from '../../src/registry/webhooks/server.ts';
import type { PushNotice } from '../../src/registry/watcher.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { harborFindings, harborOverview } from '../../src/verify/scanners/harbor.ts';
import { quayAnswer } from '../../src/verify/scanners/quay.ts';
import { occurrenceFindings } from '../../src/verify/scanners/artifact-analysis.ts';
import { defenderFindings } from '../../src/verify/scanners/defender.ts';
import { ecrFindings } from '../../src/verify/scanners/ecr.ts';
import type { ScanAnswer } from '../../src/verify/scanners/types.ts';
import type { Finding } from '../../src/verify/vulnerabilities.ts';
import { NotaryEnvelopeError, parseNotaryEnvelope } from '../../src/verify/notary-envelope.ts';

const REPORT_11 = 'application/vnd.security.vulnerability.report; version=1.1';

const SEED = 20261206;
const run = (numRuns: number) => ({ seed: SEED, numRuns });

// --- Generators -------------------------------------------------------------------------------

const nasty = fc.constantFrom(
  '',
  ' ',
  '\u0000',
  '\n',
  '\t1.0',
  'Ａｐｐ',
  'é',
  '%',
  '%ZZ',
  '..',
  '/',
  ':',
  '@',
  '__',
  '-',
  '.',
  '[',
  ']',
  `sha256:${'a'.repeat(64)}`,
  `sha512:${'b'.repeat(128)}`,
  'x'.repeat(300),
  'UPPER',
  'latest',
  '1.0',
  'v1.2.3-rc.1',
  'team/app',
  'ghcr.io/acme/app:',
  '[::1]:5000',
  '[fe80::1%eth0]',
  '127.0.0.1:5000',
);
const piece = fc.oneof(fc.stringMatching(/^[a-z0-9]{1,8}$/), fc.string({ maxLength: 10 }), nasty);
const host = fc.oneof(
  fc.constantFrom('ghcr.io', 'localhost:5000', '[::1]:5000', '127.0.0.1:5000', 'Registry.IO', 'docker.io', 'a'),
  piece,
);
const digest = fc.oneof(
  fc.constant(`sha256:${'c'.repeat(64)}`),
  fc.stringMatching(/^sha(256|512):[a-f0-9]{0,130}$/),
  piece,
);
/** Strings shaped like references (host, path, tag, digest from near-valid pieces) and any text. */
const referenceText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.string({ maxLength: 40 }),
  fc
    .tuple(
      fc.option(host),
      fc.array(fc.oneof(fc.stringMatching(/^[a-z0-9]+([._-][a-z0-9]+)*$/), piece), { minLength: 1, maxLength: 4 }),
      fc.option(piece),
      fc.option(digest),
    )
    .map(
      ([h, path, tag, d]) =>
        `${h !== null ? `${h}/` : ''}${path.join('/')}${tag !== null ? `:${tag}` : ''}${d !== null ? `@${d}` : ''}`,
    ),
);
const field = fc.oneof(piece, referenceText, fc.jsonValue({ maxDepth: 2 }));

// --- What "valid" means, independently of the parser ---------------------------------------------

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

function assertValidReference(ref: ImageReference): void {
  assert.ok(ref.repository.length <= 255, 'path at most 255');
  for (const c of ref.repository.split('/')) assert.match(c, PATH_COMPONENT);
  if (ref.tag !== undefined) assert.match(ref.tag, TAG);
  if (ref.digest !== undefined) assert.match(ref.digest, DIGEST);
  assert.doesNotMatch(ref.registry, /\s/);
  assert.deepEqual(parseReference(formatReference(ref)), ref, 'the canonical form parses to the same reference');
}

function assertValidNotice(n: PushNotice): void {
  const text = `${n.registry ?? 'docker.io'}/${n.repository}${n.tag !== undefined ? `:${n.tag}` : ''}`;
  const ref = parseReference(text);
  assert.equal(ref.repository, n.repository, `repository handed on as parsed: ${text}`);
  if (n.tag !== undefined) assert.match(n.tag, TAG);
  if (n.digest !== undefined) {
    assert.match(n.digest, /^sha256:[a-f0-9]{64}$/);
    assert.notEqual(n.tag, undefined, 'an announced digest comes with its tag');
  }
}

/** Runs `f`; an exception must be one of `allowed`. Returns the value, or undefined when refused. */
function refusedOnlyAs<T>(f: () => T, ...allowed: (new (...args: never[]) => Error)[]): T | undefined {
  try {
    return f();
  } catch (err) {
    if (allowed.some((E) => err instanceof E)) return undefined;
    throw err;
  }
}

// --- Targets -----------------------------------------------------------------------------------

describe('fuzzing (fast-check, seeded)', function () {
  this.timeout(120_000);

  it('image references: parsed valid and canonical, or refused with a ReferenceError (4,000 cases)', () => {
    fc.assert(
      fc.property(referenceText, (text) => {
        const ref = refusedOnlyAs(() => parseReference(text), ReferenceError);
        if (ref) {
          assertValidReference(ref);
          assert.equal(text.trim(), text, 'surrounding whitespace is refused');
        }
      }),
      run(4_000),
    );
  });

  const payloads: Record<(typeof FORMATS)[number], fc.Arbitrary<unknown>> = {
    distribution: fc.record({
      events: fc.array(
        fc.record({
          action: fc.oneof(fc.constantFrom('push', 'delete', 'pull'), field),
          target: fc.record(
            {
              mediaType: fc.oneof(fc.constant('application/vnd.oci.image.manifest.v1+json'), field),
              repository: field,
              tag: field,
              digest: fc.oneof(digest, field),
              url: field,
            },
            { requiredKeys: [] },
          ),
          request: fc.record({ host: field }, { requiredKeys: [] }),
        }),
        { maxLength: 4 },
      ),
    }),
    acr: fc.oneof(
      fc.record({
        action: fc.oneof(fc.constant('push'), field),
        target: fc.record({ repository: field, tag: field, digest }),
        request: fc.record({ host: field }),
      }),
      fc.array(
        fc.record({
          eventType: fc.oneof(
            fc.constantFrom(
              'Microsoft.ContainerRegistry.ImagePushed',
              'ImagePushed',
              'ImageDeleted',
              'Microsoft.EventGrid.SubscriptionValidationEvent',
            ),
            field,
          ),
          data: fc.record(
            {
              target: fc.record({ repository: field, tag: field, digest }),
              request: fc.record({ host: field }),
              validationCode: field,
            },
            { requiredKeys: [] },
          ),
        }),
        { maxLength: 3 },
      ),
    ),
    harbor: fc.record({
      type: fc.oneof(fc.constantFrom('PUSH_ARTIFACT', 'harbor.artifact.pushed'), field),
      specversion: fc.option(fc.constant('1.0'), { nil: undefined }),
      event_data: fc.record({
        repository: fc.record({ repo_full_name: field }),
        resources: fc.array(fc.record({ tag: field, digest, resource_url: field }), { maxLength: 3 }),
      }),
      data: fc.record({
        repository: fc.record({ repo_full_name: field }),
        resources: fc.array(fc.record({ tag: field, digest, resource_url: field }), { maxLength: 3 }),
      }),
    }),
    dockerhub: fc.record({ repository: fc.record({ repo_name: field }), push_data: fc.record({ tag: field }) }),
    quay: fc.record(
      { repository: field, docker_url: field, updated_tags: fc.oneof(fc.array(field, { maxLength: 3 }), field) },
      { requiredKeys: [] },
    ),
    github: fc.record({
      registry_package: fc.record(
        {
          name: field,
          namespace: field,
          package_type: fc.oneof(fc.constant('container'), field),
          package_version: fc.record(
            {
              package_url: fc.oneof(referenceText, field),
              container_metadata: fc.record({ tag: fc.record({ name: field }) }),
            },
            { requiredKeys: [] },
          ),
          registry: fc.record({ url: field }),
        },
        { requiredKeys: [] },
      ),
    }),
    generic: fc.oneof(fc.record({ image: field }), fc.record({ images: fc.array(field, { maxLength: 5 }) })),
  };

  for (const format of FORMATS) {
    it(`${format} payloads: only valid references handed on, or refused with a PayloadError (700 cases)`, () => {
      fc.assert(
        fc.property(
          fc.oneof({ weight: 4, arbitrary: payloads[format] }, { weight: 1, arbitrary: fc.jsonValue() }),
          (body) => {
            const parsed = refusedOnlyAs(() => parsePayload(format, body, 'registry_package'), PayloadError);
            for (const n of parsed?.notices ?? []) assertValidNotice(n);
          },
        ),
        run(700),
      );
    });
  }

  it('the webhook server answers hostile requests with a status below 500 (400 cases)', async () => {
    const server = new WebhookServer({
      host: '127.0.0.1',
      port: 0,
      receivers: [
        { name: 'reg', format: 'distribution', auth: { type: 'bearer', token: () => 'secret' } },
        { name: 'hub', format: 'dockerhub', auth: { type: 'path', token: () => 'path-token-0123456789' } },
        { name: 'gh', format: 'github', auth: { type: 'hmac', key: () => 'k' } },
      ],
      sink: { checkNow: () => 1 },
      logger: silentLogger(),
      maxBodyBytes: 4096,
      requestsPerSecond: 1_000_000,
      burst: 1_000_000,
      callbacks: {
        receive: () => Promise.resolve({ status: 404, message: 'unknown build' }),
        check: () => Promise.resolve({ status: 404, message: 'unknown build' }),
      },
    });
    const { port } = await server.start();
    const send = (method: string, path: string, headers: Record<string, string>, body: string) =>
      new Promise<number | undefined>((resolve, reject) => {
        let req;
        try {
          req = request(
            // Framed as a sender frames it: without a length, Node sends a DELETE's or GET's
            // body unframed, and the server rightly reads it as a malformed next request.
            {
              host: '127.0.0.1',
              port,
              method,
              path,
              headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
            },
            (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode));
            },
          );
        } catch {
          resolve(undefined); // the client refuses to send it (invalid characters): nothing to test
          return;
        }
        req.on('error', reject);
        req.end(body);
      });
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom('POST', 'GET', 'PUT', 'DELETE'),
          fc.oneof(
            fc.constantFrom('/hooks/reg', '/hooks/hub/path-token-0123456789', '/hooks/gh', '/callbacks/builds/x'),
            fc
              .tuple(fc.constantFrom('/hooks/', '/callbacks/builds/', '/'), fc.string({ maxLength: 30 }))
              .map(([a, b]) => a + b),
          ),
          fc.oneof(
            fc.constant({ authorization: 'Bearer secret' }),
            fc.dictionary(
              fc.constantFrom('authorization', 'x-hub-signature-256', 'x-github-event', 'content-type'),
              fc.string({ maxLength: 20 }),
            ),
          ),
          fc.oneof(
            fc.jsonValue().map((v) => JSON.stringify(v) ?? ''),
            fc.string({ maxLength: 200 }),
            payloads.distribution.map((v) => JSON.stringify(v)),
          ),
          async (method, path, headers, body) => {
            const status = await send(method, path, headers, body);
            if (status !== undefined) assert.ok(status < 500, `${method} ${path}: ${status}`);
          },
        ),
        run(400),
      );
    } finally {
      await server.stop();
    }
  });

  it('the config file: read, or refused with a ConfigError listing the problems (600 cases)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'patchline-fuzz-'));
    const registry = fc.record(
      {
        host: field,
        insecure: fc.oneof(fc.boolean(), field),
        requestsPerMinute: fc.oneof(fc.integer(), field),
        maxConcurrency: fc.oneof(fc.integer(), field),
        credentials: field,
      },
      { requiredKeys: [] },
    );
    const receiver = fc.record(
      {
        name: field,
        format: fc.oneof(fc.constantFrom(...FORMATS), field),
        registry: field,
        auth: fc.record(
          {
            type: fc.oneof(fc.constantFrom('bearer', 'basic', 'path', 'hmac', 'header'), field),
            tokenFile: field,
            header: field,
          },
          { requiredKeys: [] },
        ),
      },
      { requiredKeys: [] },
    );
    const doc = fc.record(
      {
        registries: fc.oneof(fc.array(registry, { maxLength: 3 }), field),
        webhooks: fc.record(
          {
            receivers: fc.array(receiver, { maxLength: 2 }),
            maxBodyBytes: fc.oneof(fc.integer(), field),
            requestsPerSecond: field,
          },
          { requiredKeys: [] },
        ),
        sigstore: fc.oneof(fc.record({ trustedRootFile: field }), field),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(
        fc.oneof(
          doc.map((d) => stringify(d)),
          fc.string({ maxLength: 200 }),
          fc.jsonValue().map((v) => stringify(v)),
        ),
        (text) => {
          refusedOnlyAs(() => parseConfigFile(text, dir), ConfigError);
        },
      ),
      run(600),
    );
  });

  it('AdmissionReview bodies: a response for the same uid, or refused as malformed (1,500 cases)', () => {
    const policy = (registries: string[], signature: boolean, requireDigest: boolean): ImagePolicy => ({
      apiVersion: 'patchline.dev/v1alpha1',
      kind: 'ImagePolicy',
      metadata: { name: 'p', namespace: 'ns' },
      spec: {
        image: 'ghcr.io/acme/app',
        follow: { tag: 'stable' },
        workloads: { names: ['web'] },
        verify: {
          registries,
          requireDigest,
          ...(signature ? { signature: { keys: [{ secretRef: { name: 'k' } }] } } : {}),
        },
      },
    });
    const policies = [policy(['ghcr.io'], true, true), policy([], false, false)];
    const container = fc.record({ name: field, image: fc.oneof(referenceText, field) }, { requiredKeys: [] });
    const podSpec = fc.record(
      {
        containers: fc.oneof(fc.array(container, { maxLength: 4 }), field),
        initContainers: fc.array(container, { maxLength: 2 }),
      },
      { requiredKeys: [] },
    );
    const object = fc.oneof(
      fc.record({ metadata: fc.record({ name: field }), spec: podSpec }),
      fc.record({ spec: fc.record({ template: fc.record({ spec: podSpec }) }) }),
      fc.record({
        spec: fc.record({ jobTemplate: fc.record({ spec: fc.record({ template: fc.record({ spec: podSpec }) }) }) }),
      }),
      field,
    );
    const review = fc.record(
      {
        kind: fc.oneof(fc.constant('AdmissionReview'), field),
        apiVersion: fc.oneof(fc.constant('admission.k8s.io/v1'), field),
        request: fc.record(
          {
            uid: fc.oneof(fc.uuid(), field),
            kind: fc.record(
              { kind: fc.oneof(fc.constantFrom('Pod', 'Deployment', 'CronJob', 'Job', 'Secret'), field) },
              { requiredKeys: [] },
            ),
            operation: fc.constantFrom('CREATE', 'UPDATE', 'DELETE'),
            object,
            oldObject: object,
            dryRun: fc.oneof(fc.boolean(), field),
          },
          { requiredKeys: [] },
        ),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(
        fc.oneof({ weight: 5, arbitrary: review }, { weight: 1, arbitrary: fc.jsonValue() }),
        fc.constantFrom('enforce', 'warn' as const),
        (body, mode) => {
          const request = refusedOnlyAs(() => parseAdmissionReview(body), AdmissionFormatError);
          if (!request) return;
          const images = introducedImages(request);
          const { findings } = judgeImages(request.kind.kind, images, policies);
          const answer = admissionResponse(request.uid, mode, findings);
          assert.equal(answer.response.uid, request.uid);
          assert.equal(typeof answer.response.allowed, 'boolean');
          assert.ok((answer.response.status?.message.length ?? 0) <= 4096);
          assert.ok(JSON.stringify(answer).length > 0);
        },
      ),
      run(1_500),
    );
  });

  const duration = fc.oneof(fc.constantFrom('30s', '1m', '5m', '1h30m', '0', '-1s', '1.5h', '999999999h'), piece);
  const selector = fc.record(
    {
      matchLabels: fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 2 }),
      matchExpressions: fc.array(
        fc.record({
          key: piece,
          operator: fc.constantFrom('In', 'NotIn', 'Exists', 'DoesNotExist'),
          values: fc.array(piece, { maxLength: 2 }),
        }),
        { maxLength: 2 },
      ),
    },
    { requiredKeys: [] },
  );

  it('ImagePolicy specs through specProblems and the decision: no exception, a Ready condition (1,000 cases)', () => {
    const spec = fc.record(
      {
        image: referenceText,
        follow: fc.oneof(
          fc.record({ tag: piece }),
          fc.record({ semver: fc.record({ range: piece }) }),
          fc.record({ pattern: fc.record({ regex: piece }) }),
        ),
        workloads: fc.record(
          {
            names: fc.array(piece, { maxLength: 2 }),
            selector,
            kinds: fc.array(fc.constantFrom('Deployment', 'StatefulSet', 'DaemonSet'), { maxLength: 2 }),
            containers: fc.array(piece, { maxLength: 2 }),
          },
          { requiredKeys: [] },
        ),
        interval: duration,
        suspend: fc.boolean(),
        verify: fc.record(
          {
            maxAge: duration,
            registries: fc.array(piece, { maxLength: 2 }),
            requireDigest: fc.boolean(),
            signature: fc.record({
              keyless: fc.array(fc.record({ issuerRegExp: piece, subjectRegExp: piece }), { maxLength: 2 }),
            }),
            vulnerabilities: fc.record(
              {
                allow: fc.array(fc.record({ id: piece, expires: piece }), { maxLength: 2 }),
                maxSeverity: fc.constantFrom('CRITICAL', 'HIGH', 'LOW'),
              },
              { requiredKeys: [] },
            ),
          },
          { requiredKeys: [] },
        ),
        rollout: fc.record(
          {
            mode: fc.constantFrom('Auto', 'Manual', 'GitOps'),
            progressDeadline: duration,
            maxConcurrent: fc.integer({ min: -1, max: 100 }),
            window: fc.record({ schedule: piece, duration, timeZone: piece }, { requiredKeys: [] }),
          },
          { requiredKeys: [] },
        ),
      },
      { requiredKeys: ['image', 'follow', 'workloads'] },
    );
    fc.assert(
      fc.property(spec, fc.integer({ min: 0, max: 5 }), (s, generation) => {
        const policy = {
          apiVersion: 'patchline.dev/v1alpha1',
          kind: 'ImagePolicy',
          metadata: { name: 'p', namespace: 'ns', generation, uid: 'u' },
          spec: s,
        } as unknown as ImagePolicy;
        const problems = policyProblems(policy);
        assert.ok(problems.every((p) => typeof p.field === 'string' && typeof p.message === 'string'));
        const decision = decideImagePolicy(policy, new Date('2026-12-06T12:00:00Z'));
        assert.ok(
          decision.status.conditions?.some((c) => c.type === 'Ready'),
          'a Ready condition',
        );
      }),
      run(1_000),
    );
  });

  it('RebuildTrigger specs through specProblems and the decision: no exception, a Ready condition (1,000 cases)', () => {
    const spec = fc.record(
      {
        baseImages: fc.array(fc.record({ image: referenceText }), { minLength: 1, maxLength: 3 }),
        target: fc.record({ image: referenceText }),
        build: fc.oneof(
          fc.record(
            {
              webhook: fc.record({ url: piece, statusURL: piece }, { requiredKeys: ['url'] }),
              credentialsRef: fc.record({ name: piece }),
            },
            { requiredKeys: ['webhook'] },
          ),
          fc.record({ acr: fc.record({ registry: piece, taskName: piece }) }),
        ),
        interval: duration,
        timeout: duration,
        retries: fc.integer({ min: -1, max: 10 }),
        schedule: piece,
        suspend: fc.boolean(),
      },
      { requiredKeys: ['baseImages', 'target', 'build'] },
    );
    fc.assert(
      fc.property(spec, (s) => {
        const trigger = {
          apiVersion: 'patchline.dev/v1alpha1',
          kind: 'RebuildTrigger',
          metadata: { name: 't', namespace: 'ns', generation: 1, uid: 'u' },
          spec: s,
        } as unknown as RebuildTrigger;
        const problems = triggerProblems(trigger);
        assert.ok(problems.every((p) => typeof p.field === 'string' && typeof p.message === 'string'));
        const decision = decideRebuildTrigger(trigger, new Date('2026-12-06T12:00:00Z'));
        assert.ok(
          decision.status.conditions?.some((c) => c.type === 'Ready'),
          'a Ready condition',
        );
      }),
      run(1_000),
    );
  });
  it('registry scanner answers and Notary envelopes: read or refused, never a crash (2,400 cases)', () => {
    const isFinding = (f: Finding) => typeof f.id === 'string' && f.id !== '' && typeof f.severity === 'string';
    const answer = (a: ScanAnswer) => assert.ok(a.state !== 'scanned' || a.findings.every(isFinding));
    // Bodies shaped like each service's, with anything where a value goes.
    const anything = fc.jsonValue({ maxDepth: 3 });
    const harbor = fc.record({ scan_overview: fc.dictionary(fc.constantFrom(REPORT_11, 'x'), anything) });
    const additions = fc.dictionary(
      fc.constantFrom(REPORT_11, 'x'),
      fc.record({ vulnerabilities: fc.array(anything) }),
    );
    fc.assert(
      fc.property(fc.oneof(harbor, additions, anything), fc.oneof(anything, fc.array(anything)), (body, rows) => {
        const overview = harborOverview(body);
        if (overview.state !== 'finished') answer(overview);
        assert.ok(harborFindings(body).every(isFinding));
        answer(quayAnswer(body));
        assert.ok(occurrenceFindings(body).every(isFinding));
        assert.ok(defenderFindings(Array.isArray(rows) ? rows : [rows]).every(isFinding));
        assert.ok(
          ecrFindings([{ imageScanFindings: { findings: [body], enhancedFindings: [rows] } }]).every(isFinding),
        );
      }),
      run(1_200),
    );
    fc.assert(
      fc.property(
        fc.constantFrom('application/jose+json', 'application/cose'),
        fc.uint8Array({ maxLength: 400 }),
        fc.jsonValue(),
        (type, bytes, json) => {
          for (const body of [Buffer.from(bytes), Buffer.from(JSON.stringify(json) ?? '')]) {
            try {
              parseNotaryEnvelope(type, body);
            } catch (err) {
              assert.ok(err instanceof NotaryEnvelopeError, String(err));
            }
          }
        },
      ),
      run(1_200),
    );
  });
});
