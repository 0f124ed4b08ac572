import assert from 'node:assert/strict';
import { join } from 'node:path';
import { validateCronExpression } from 'cron';
import { evaluate } from '@marcbachmann/cel-js';
import { CrdValidator, allSchemas, loadCrd, type Crd, type Schema } from '../support/crd-validator.ts';
import { ROOT, loadExamples, loadInvalidFixtures } from '../support/fixtures.ts';

const crds: Record<string, Crd> = {
  ImagePolicy: loadCrd(join(ROOT, 'crds', 'imagepolicies.patchline.dev.yaml')),
  RebuildTrigger: loadCrd(join(ROOT, 'crds', 'rebuildtriggers.patchline.dev.yaml')),
  GitWriteBack: loadCrd(join(ROOT, 'crds', 'gitwritebacks.patchline.dev.yaml')),
};
const validators = Object.fromEntries(Object.entries(crds).map(([k, crd]) => [k, new CrdValidator(crd)]));

function validatorFor(kind: string): CrdValidator {
  const v = validators[kind];
  if (!v) throw new Error(`no CRD for kind ${kind}`);
  return v;
}

describe('CRDs', () => {
  describe('examples', () => {
    const examples = loadExamples();

    it('include at least one of each kind', () => {
      const kinds = new Set(examples.map((e) => e.object.kind));
      assert.ok(kinds.has('ImagePolicy') && kinds.has('RebuildTrigger'));
    });

    for (const { file, object } of examples) {
      it(`${file} (${object.kind} ${object.metadata.name}) is valid`, () => {
        assert.deepEqual(validatorFor(object.kind).validate(object), []);
      });
    }
  });

  describe('invalid resources', () => {
    const fixtures = loadInvalidFixtures();

    it('there are at least 20 of them, covering both kinds', () => {
      assert.ok(fixtures.length >= 20, `${fixtures.length} fixtures`);
      assert.ok(fixtures.some((f) => f.object.kind === 'ImagePolicy'));
      assert.ok(fixtures.some((f) => f.object.kind === 'RebuildTrigger'));
    });

    for (const { file, object, expect } of fixtures) {
      it(`${file} is rejected, only because ${expect.field} breaks a ${expect.kind} rule`, () => {
        const issues = validatorFor(object.kind).validate(object);
        assert.equal(issues.length, 1, `expected exactly one issue, got ${JSON.stringify(issues)}`);
        const [issue] = issues;
        assert.equal(issue?.path, expect.field);
        assert.equal(issue?.kind, expect.kind);
        if (expect.message) assert.ok(issue?.message.includes(expect.message), `message: ${issue?.message}`);
      });
    }
  });

  for (const [kind, crd] of Object.entries(crds)) {
    describe(`${kind} definition`, () => {
      const version = crd.spec.versions[0]!;
      const schema = version.schema.openAPIV3Schema;

      it('is namespaced v1alpha1 in group patchline.dev, served and stored', () => {
        assert.equal(crd.spec.group, 'patchline.dev');
        assert.equal(crd.spec.versions.length, 1);
        assert.equal(version.name, 'v1alpha1');
        assert.ok(version.served && version.storage);
      });

      it('documents every field (kubectl explain is useful)', () => {
        const missing = allSchemas(schema.properties!.spec!, 'spec')
          .concat(allSchemas(schema.properties!.status!, 'status'))
          .filter(({ path, schema: s }) => !s.description && !path.endsWith('{}') && !path.endsWith('[]'))
          .map(({ path }) => path);
        assert.deepEqual(missing, []);
      });

      it('bounds every string that a CEL rule reads, so the API server can estimate its cost', () => {
        const unbounded = allSchemas(schema)
          .filter(({ schema: s }) => s.type === 'string' && s['x-kubernetes-validations'] && s.maxLength === undefined)
          .map(({ path }) => path);
        assert.deepEqual(unbounded, []);
      });

      it('has a status subresource with observedGeneration and conditions as a list map keyed by type', () => {
        assert.deepEqual(version.subresources?.status, {});
        const status = schema.properties!.status!;
        assert.equal(status.properties!.observedGeneration!.type, 'integer');
        const conditions = status.properties!.conditions!;
        assert.equal(conditions['x-kubernetes-list-type'], 'map');
        assert.deepEqual(conditions['x-kubernetes-list-map-keys'], ['type']);
        const item = conditions.items as Schema;
        assert.deepEqual(item.required, ['type', 'status', 'lastTransitionTime', 'reason', 'message']);
      });

      it('has short names that do not clash with Flux, and the patchline category', () => {
        const names = crd.spec.names.shortNames ?? [];
        assert.ok(names.length > 0);
        for (const flux of ['imgpol', 'imagepol', 'imgrepo', 'imagerepo', 'iua', 'imgupd', 'imgauto']) {
          assert.ok(!names.includes(flux), `${flux} is Flux's`);
        }
        assert.deepEqual(crd.spec.names.categories, ['patchline']);
      });

      it('has a printer column for Ready and Age', () => {
        const cols = (version.additionalPrinterColumns ?? []).map((c) => c.name);
        assert.ok(cols.includes('Ready') && cols.includes('Age'));
      });
    });
  }

  it('ImagePolicy prints image, short digest, compliant, up-to-date, Ready, its message and age', () => {
    const cols = crds.ImagePolicy!.spec.versions[0]!.additionalPrinterColumns!;
    assert.deepEqual(
      cols.map((c) => [c.name, c.jsonPath]),
      [
        ['Image', '.spec.image'],
        ['Digest', '.status.latest.shortDigest'],
        ['Compliant', '.status.conditions[?(@.type=="Compliant")].status'],
        ['Up-To-Date', '.status.upToDate'],
        ['Ready', '.status.conditions[?(@.type=="Ready")].status'],
        ['Status', '.status.conditions[?(@.type=="Ready")].message'],
        ['Age', '.metadata.creationTimestamp'],
      ],
    );
  });

  it('RebuildTrigger prints base, short base digest, phase, last build, Ready and age', () => {
    const cols = crds.RebuildTrigger!.spec.versions[0]!.additionalPrinterColumns!.filter((c) => !c.priority);
    assert.deepEqual(
      cols.map((c) => c.name),
      ['Base', 'Base Digest', 'Phase', 'Last Build', 'Ready', 'Age'],
    );
  });

  describe('the cron rule agrees with the scheduler', () => {
    const rule = (
      crds.RebuildTrigger!.spec.versions[0]!.schema.openAPIV3Schema.properties!.spec!.properties!.window!.properties!
        .schedule!['x-kubernetes-validations'] as { rule: string }[]
    )[0]!.rule;
    const cases = [
      '0 2 * * 1-5',
      '*/15 * * * *',
      '0 0 1 1 *',
      '30 3 * * MON-FRI',
      '0 22 * JAN,jul sun',
      '5,10,15-20/2 0-6 1,15 * *',
      '@daily',
      '@hourly',
      '0 0 * * 7',
      '60 * * * *',
      '0 24 * * *',
      '0 0 32 * *',
      '0 0 0 * *',
      '0 0 * 13 *',
      '0 0 * * 8',
      '* * * *',
      '@often',
      'daily',
    ];
    for (const expr of cases) {
      it(`"${expr}"`, () => {
        const byCel = evaluate(rule, { self: expr }) === true;
        const byScheduler = validateCronExpression(expr).valid;
        assert.equal(byCel, byScheduler, `CEL says ${byCel}, the cron library says ${byScheduler}`);
      });
    }
  });
});
