import assert from 'node:assert/strict';
import { enumsToUnions, postProcess } from '../../scripts/generate-api-types.ts';

describe('API type generation post-processing', () => {
  const raw = `export interface ImagePolicy {
  metadata?: { [key: string]: any };
  spec: Spec;
  status?: StatusObject;
}
export interface Spec {
  template: { [key: string]: any };
}
export interface StatusObject {
  since?: Date;
  state?: State;
}
export enum State {
  Failed = "Failed",
  UpToDate = "UpToDate",
}
`;

  it('turns enums into string-literal unions', () => {
    assert.equal(
      enumsToUnions('export enum Mode {\n  Auto = "Auto",\n  GitOps = "GitOps",\n}'),
      'export type Mode = "Auto" | "GitOps";',
    );
  });

  it('types timestamps as strings, metadata as ObjectMeta, and open objects as unknown', () => {
    const out = postProcess(raw, 'ImagePolicy', 'crds/x.yaml');
    assert.match(out, /since\?: string;/);
    assert.match(out, /metadata\?: ObjectMeta;/);
    assert.match(out, /template: Record<string, unknown>;/);
    assert.doesNotMatch(out, /\bany\b/);
    assert.doesNotMatch(out, /\bDate\b/);
    assert.doesNotMatch(out, /\benum\b/);
  });

  it('names the spec and status after the kind', () => {
    const out = postProcess(raw, 'ImagePolicy', 'crds/x.yaml');
    assert.match(out, /export interface ImagePolicySpec \{/);
    assert.match(out, /spec: ImagePolicySpec;/);
    assert.match(out, /status\?: ImagePolicyStatus;/);
  });

  it('says where the file came from', () => {
    assert.match(postProcess(raw, 'ImagePolicy', 'crds/x.yaml'), /^\/\/ Generated from crds\/x\.yaml/);
  });
});
