// The examples and the invalid-resource fixtures, shared by the unit suite (offline schema
// and CEL checks) and the end-to-end suite (the real API server).
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

export const ROOT = join(import.meta.dirname, '..', '..');

export interface ResourceDoc {
  file: string;
  object: {
    apiVersion: string;
    kind: string;
    metadata: { name: string; annotations?: Record<string, string> };
    spec: Record<string, unknown>;
  };
}

export interface InvalidFixture extends ResourceDoc {
  expect: { field: string; kind: string; message?: string };
}

function loadDir(dir: string): ResourceDoc[] {
  const docs: ResourceDoc[] = [];
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, file), 'utf8'))) {
      const object = doc.toJS() as ResourceDoc['object'] | null;
      if (object) docs.push({ file, object });
    }
  }
  return docs;
}

export function loadExamples(): ResourceDoc[] {
  return loadDir(join(ROOT, 'examples'));
}

export function loadInvalidFixtures(): InvalidFixture[] {
  return loadDir(join(ROOT, 'test', 'fixtures', 'invalid')).map((doc) => {
    const a = doc.object.metadata.annotations ?? {};
    const field = a['test.patchline.dev/expect-field'];
    const kind = a['test.patchline.dev/expect-kind'];
    if (!field || !kind) throw new Error(`${doc.file}: missing test.patchline.dev/expect-field or expect-kind`);
    const message = a['test.patchline.dev/expect-message'];
    return { ...doc, expect: { field, kind, ...(message ? { message } : {}) } };
  });
}
