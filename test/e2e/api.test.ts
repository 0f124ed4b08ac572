// The API server itself: it accepts every example, rejects every invalid fixture of the
// unit suite with a message a user can act on, and kubectl prints the printer columns.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ROOT, loadExamples, loadInvalidFixtures } from '../support/fixtures.ts';
import { kubectl, newNamespace } from './support/env.ts';
import { Operator } from './support/operator.ts';

/** What the API server says for each kind of rule, besides the field path. */
const SERVER_WORDING: Record<string, (message?: string) => RegExp> = {
  cel: (message) => new RegExp(escape(message ?? '')),
  enum: () => /Unsupported value/,
  required: () => /Required value/,
  minItems: () => /should have at least 1 items/,
  minimum: () => /should be greater than or equal to/,
  maximum: () => /should be less than or equal to/,
  format: () => /must be of type date/,
  'unknown-field': () => /unknown field/,
  duplicate: () => /Duplicate value/,
  pattern: () => /should match/,
};

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('API server: schemas, validation and printing', () => {
  let ns: string;
  before(() => {
    ns = newNamespace('api');
  });

  describe('accepts every example', () => {
    for (const { file, object } of loadExamples()) {
      it(`${file}: ${object.kind}/${object.metadata.name}`, () => {
        kubectl(['apply', '-n', ns, '-f', '-'], { input: stringify(object) });
      });
    }
  });

  describe('rejects every invalid fixture, saying which field and why', () => {
    for (const { file, expect } of loadInvalidFixtures()) {
      it(`${file}`, () => {
        const r = kubectl(['apply', '-n', ns, '-f', join(ROOT, 'test', 'fixtures', 'invalid', file)], {
          allowFailure: true,
        });
        assert.notEqual(r.code, 0, `accepted: ${r.stdout}`);
        assert.ok(r.stderr.includes(expect.field), `the message names ${expect.field}: ${r.stderr}`);
        const wording = SERVER_WORDING[expect.kind];
        assert.ok(wording, `no server wording known for ${expect.kind}`);
        assert.match(r.stderr, wording(expect.message));
      });
    }
  });

  describe('with the operator running', () => {
    let operator: Operator;
    let printNs: string;

    before(async () => {
      operator = await Operator.start({ identity: 'op-api', leaseName: 'e2e-api' });
      printNs = newNamespace('print');
      kubectl(['apply', '-n', printNs, '-f', join(ROOT, 'examples')]);
      kubectl(['patch', '-n', printNs, 'rebuildtrigger/storefront', '--type=merge', '-p', '{"spec":{"suspend":true}}']);
    });

    after(async () => {
      await operator.stop();
    });

    it('kubectl wait works on both kinds: triggers Ready, policies saying their registry cannot be read', () => {
      const r = kubectl([
        'wait',
        '-n',
        printNs,
        '--for=condition=Ready',
        '--timeout=60s',
        'rebuildtrigger/shop-web',
        'rebuildtrigger/billing-api',
      ]);
      assert.equal(r.stdout.trim().split('\n').length, 2);
      // The examples' registries (Azure, GitHub) are not reachable from here, and their
      // credentials do not exist: the policies say so rather than pretend to be Ready.
      const p = kubectl([
        'wait',
        '-n',
        printNs,
        '--for=condition=Ready=False',
        '--timeout=60s',
        'imagepolicy/shop-web',
        'imagepolicy/payments',
      ]);
      assert.equal(p.stdout.trim().split('\n').length, 2);
    });

    it('kubectl get imagepolicies prints its columns, Ready and the message filled in by the operator', () => {
      const out = kubectl(['get', 'imagepolicies', '-n', printNs]).stdout;
      const [header, ...rows] = out.trim().split('\n');
      assert.match(header!, /^NAME\s+IMAGE\s+DIGEST\s+COMPLIANT\s+UP-TO-DATE\s+READY\s+STATUS\s+AGE$/);
      const web = rows.find((r) => r.startsWith('shop-web '));
      assert.match(
        web ?? '',
        /shopregistry\.azurecr\.io\/shop\/web\s+True\s+0\/0\s+False\s+Following shopregistry\.azurecr\.io\/shop\/web:1\.4: /,
      );
    });

    it('kubectl get gitwritebacks prints its columns; one that cannot read its Secret says so', () => {
      kubectl(['wait', '-n', printNs, '--for=condition=Ready=False', '--timeout=60s', 'gitwriteback/fleet']);
      const out = kubectl(['get', 'gwb', '-n', printNs]).stdout;
      const [header, ...rows] = out.trim().split('\n');
      assert.match(header!, /^NAME\s+URL\s+BRANCH\s+COMMIT\s+COMMITTED\s+READY\s+AGE$/);
      assert.match(
        rows.find((r) => r.startsWith('fleet ')) ?? '',
        /https:\/\/git\.example\.com\/platform\/fleet\.git\s+main\s+False/,
      );
      const message = kubectl([
        'get',
        'gwb',
        'fleet',
        '-n',
        printNs,
        '-o',
        'jsonpath={.status.conditions[?(@.type=="Ready")].message}',
      ]).stdout;
      assert.match(message, /fleet-git/);
    });

    it('kubectl get rebuildtriggers prints its columns, with the phase and Ready filled in', async () => {
      await operator.waitUntil(
        () =>
          kubectl(['get', 'rbt', 'storefront', '-n', printNs, '-o', 'jsonpath={.status.phase}']).stdout === 'Suspended',
        'storefront suspended',
      );
      // The example's registries are not reachable from here: it says so, learning no digest.
      await operator.waitUntil(
        () =>
          kubectl([
            'get',
            'rbt',
            'shop-web',
            '-n',
            printNs,
            '-o',
            'jsonpath={.status.conditions[?(@.type=="Ready")].reason}',
          ]).stdout === 'RegistryError',
        'shop-web reports its unreachable registry',
      );
      const out = kubectl(['get', 'rebuildtriggers', '-n', printNs]).stdout;
      const [header, ...rows] = out.trim().split('\n');
      assert.match(header!, /^NAME\s+BASE\s+BASE DIGEST\s+PHASE\s+LAST BUILD\s+READY\s+AGE$/);
      assert.match(rows.find((r) => r.startsWith('storefront ')) ?? '', /node:22-alpine\s+Suspended\s+True/);
      assert.match(
        rows.find((r) => r.startsWith('shop-web ')) ?? '',
        /mcr\.microsoft\.com\/dotnet\/aspnet:8\.0\s+Idle\s+False/,
      );
      const wide = kubectl(['get', 'rebuildtriggers', '-n', printNs, '-o', 'wide']).stdout;
      assert.match(wide, /STATUS/);
      assert.match(wide, /cannot read base images: mcr\.microsoft\.com\/dotnet\/aspnet:8\.0/);
    });

    it('short names and the patchline category work', () => {
      assert.match(kubectl(['get', 'ipol', '-n', printNs]).stdout, /shop-web/);
      assert.match(kubectl(['get', 'rbt', '-n', printNs]).stdout, /billing-api/);
      assert.match(kubectl(['get', 'rebuild', '-n', printNs]).stdout, /storefront/);
      const all = kubectl(['get', 'patchline', '-n', printNs]).stdout;
      assert.match(all, /imagepolicy\.patchline\.dev\/payments/);
      assert.match(all, /rebuildtrigger\.patchline\.dev\/billing-api/);
    });

    it('kubectl explain shows the field descriptions', () => {
      const out = kubectl(['explain', 'rebuildtrigger.spec.settle']).stdout;
      assert.match(out, /How long a new base digest must stay unchanged/);
    });
  });
});
