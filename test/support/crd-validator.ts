// Validates objects against a CRD's schema the way the API server does, without one:
//   1. defaults are applied (to objects that are present);
//   2. OpenAPI keywords (types, enums, lengths, ranges, formats, required) with ajv;
//   3. unknown fields are errors (kubectl's default field validation is Strict);
//   4. x-kubernetes-list-type set/map uniqueness;
//   5. x-kubernetes-validations CEL rules, with cel-js.
// Each issue has the API server's field path (spec.baseImages[0].image) and a kind, so
// that a fixture can say which rule it breaks. The real API server repeats these checks in
// the end-to-end suite.
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { evaluate } from '@marcbachmann/cel-js';
import { parse } from 'yaml';

export interface Schema {
  type?: string;
  description?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  required?: string[];
  default?: unknown;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-validations'?: { rule: string; message?: string; reason?: string; fieldPath?: string }[];
  [keyword: string]: unknown;
}

export interface Crd {
  spec: {
    group: string;
    names: { kind: string; plural: string; shortNames?: string[]; categories?: string[] };
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      schema: { openAPIV3Schema: Schema };
      subresources?: { status?: object };
      additionalPrinterColumns?: { name: string; jsonPath: string; type: string; priority?: number }[];
    }[];
  };
}

export interface ValidationIssue {
  path: string;
  kind: string;
  message: string;
}

export function loadCrd(path: string): Crd {
  return parse(readFileSync(path, 'utf8')) as Crd;
}

function joinPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  return base ? `${base}.${key}` : key;
}

function ajvPath(instancePath: string): string {
  return instancePath
    .split('/')
    .filter(Boolean)
    .reduce((acc, part) => (/^\d+$/.test(part) ? `${acc}[${part}]` : joinPath(acc, part.replace(/~1/g, '/'))), '');
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export class CrdValidator {
  readonly crd: Crd;
  private readonly ajv: Ajv;
  private readonly compiled = new Map<string, ReturnType<Ajv['compile']>>();

  constructor(crd: Crd) {
    this.crd = crd;
    this.ajv = new Ajv({ allErrors: true, strict: false });
    for (const keyword of [
      'x-kubernetes-preserve-unknown-fields',
      'x-kubernetes-list-type',
      'x-kubernetes-list-map-keys',
      'x-kubernetes-validations',
      'x-kubernetes-int-or-string',
      'x-kubernetes-embedded-resource',
    ]) {
      this.ajv.addKeyword(keyword);
    }
    this.ajv.addFormat('date-time', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i);
    this.ajv.addFormat('date', (s: string) => /^\d{4}-\d\d-\d\d$/.test(s) && !Number.isNaN(Date.parse(s)));
    this.ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isInteger(n) });
  }

  schemaFor(apiVersion: string | undefined): Schema {
    const version = this.crd.spec.versions.find((v) => `${this.crd.spec.group}/${v.name}` === apiVersion);
    if (!version) throw new Error(`${this.crd.spec.names.kind} has no version ${apiVersion}`);
    return version.schema.openAPIV3Schema;
  }

  /** The object after defaulting, as the API server would store it. */
  withDefaults<T>(obj: T): T {
    const copy = structuredClone(obj);
    applyDefaults(this.schemaFor((copy as { apiVersion?: string }).apiVersion), copy);
    return copy;
  }

  validate(obj: unknown): ValidationIssue[] {
    if (!isObject(obj)) return [{ path: '', kind: 'type', message: 'not an object' }];
    const apiVersion = obj.apiVersion as string | undefined;
    const schema = this.schemaFor(apiVersion);
    const value = this.withDefaults(obj);
    const issues: ValidationIssue[] = [];
    const key = apiVersion ?? '';
    let validate = this.compiled.get(key);
    if (!validate) {
      validate = this.ajv.compile(schema);
      this.compiled.set(key, validate);
    }
    if (!validate(value)) {
      for (const e of validate.errors ?? []) {
        let path = ajvPath(e.instancePath);
        if (e.keyword === 'required')
          path = joinPath(path, String((e.params as { missingProperty: string }).missingProperty));
        issues.push({ path, kind: e.keyword, message: e.message ?? e.keyword });
      }
    }
    walk(schema, value, '', issues);
    return issues;
  }
}

function applyDefaults(schema: Schema, value: unknown): void {
  if (isObject(value) && schema.properties) {
    for (const [name, sub] of Object.entries(schema.properties)) {
      if (value[name] === undefined && sub.default !== undefined) value[name] = structuredClone(sub.default);
      if (value[name] !== undefined) applyDefaults(sub, value[name]);
    }
  }
  if (isObject(value) && isObject(schema.additionalProperties)) {
    for (const v of Object.values(value)) applyDefaults(schema.additionalProperties, v);
  }
  if (Array.isArray(value) && schema.items) for (const v of value) applyDefaults(schema.items, v);
}

function walk(schema: Schema, value: unknown, path: string, issues: ValidationIssue[]): void {
  if (value === undefined) return;
  for (const rule of schema['x-kubernetes-validations'] ?? []) {
    let ok: unknown;
    try {
      ok = evaluate(rule.rule, { self: value });
    } catch (err) {
      issues.push({
        path,
        kind: 'cel-error',
        message: `${rule.rule}: ${err instanceof Error ? err.message : String(err)}`,
      });
      continue;
    }
    // A rule's fieldPath (".push.branch") names the field it is about, as the API server reports it.
    const at = rule.fieldPath ? `${path}${rule.fieldPath}` : path;
    if (ok !== true) issues.push({ path: at, kind: 'cel', message: rule.message ?? `failed rule: ${rule.rule}` });
  }
  if (schema['x-kubernetes-preserve-unknown-fields']) return;
  if (isObject(value)) {
    if (path === 'metadata') return;
    if (schema.properties) {
      for (const [k, v] of Object.entries(value)) {
        const sub = schema.properties[k];
        if (sub) walk(sub, v, joinPath(path, k), issues);
        else if (!schema.additionalProperties)
          issues.push({
            path: joinPath(path, k),
            kind: 'unknown-field',
            message: `unknown field "${joinPath(path, k)}"`,
          });
      }
    }
    if (isObject(schema.additionalProperties)) {
      for (const [k, v] of Object.entries(value)) walk(schema.additionalProperties, v, joinPath(path, k), issues);
    }
  }
  if (Array.isArray(value) && schema.items) {
    const listType = schema['x-kubernetes-list-type'];
    const seen = new Map<string, number>();
    value.forEach((item, i) => {
      const identity =
        listType === 'set'
          ? JSON.stringify(item)
          : listType === 'map'
            ? JSON.stringify(
                (schema['x-kubernetes-list-map-keys'] ?? []).map((k) => (item as Record<string, unknown>)[k]),
              )
            : undefined;
      if (identity !== undefined) {
        if (seen.has(identity))
          issues.push({ path: joinPath(path, i), kind: 'duplicate', message: `duplicate entry ${identity}` });
        seen.set(identity, i);
      }
      walk(schema.items as Schema, item, joinPath(path, i), issues);
    });
  }
}

/** Every property schema in the tree, with its path, for checks such as "has a description". */
export function allSchemas(schema: Schema, path = ''): { path: string; schema: Schema }[] {
  const out: { path: string; schema: Schema }[] = [{ path, schema }];
  for (const [k, sub] of Object.entries(schema.properties ?? {})) out.push(...allSchemas(sub, joinPath(path, k)));
  if (isObject(schema.additionalProperties)) out.push(...allSchemas(schema.additionalProperties, `${path}{}`));
  if (schema.items) out.push(...allSchemas(schema.items, `${path}[]`));
  return out;
}
