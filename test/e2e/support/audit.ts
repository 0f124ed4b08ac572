// Reads the API server's audit log (JSON lines, Metadata level, ServiceAccount requests).
import { readFileSync } from 'node:fs';
import { env } from './env.ts';

export interface AuditEvent {
  auditID: string;
  stage: 'ResponseStarted' | 'ResponseComplete' | 'Panic';
  verb: string;
  user: { username: string };
  /** Set when the request was made as someone else (Impersonate-User). */
  impersonatedUser?: { username?: string };
  userAgent?: string;
  objectRef?: { resource?: string; subresource?: string; apiGroup?: string; namespace?: string; name?: string };
  responseStatus?: { code?: number };
  requestURI: string;
  requestReceivedTimestamp?: string;
}

export function auditEvents(): AuditEvent[] {
  const path = env().cp.auditLog;
  if (!path) throw new Error('the control plane runs without an audit log');
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditEvent);
}

/** "group/resource[/subresource]:verb", the way RBAC rules name a permission. */
export function permissionOf(e: AuditEvent): string {
  const r = e.objectRef ?? {};
  return `${r.apiGroup ?? ''}/${r.resource ?? ''}${r.subresource ? `/${r.subresource}` : ''}:${e.verb}`;
}

/** Completed status writes (HTTP 200) of one object, by the given user. */
export function statusWrites(user: string, resource: string, namespace: string, name: string): AuditEvent[] {
  return auditEvents().filter(
    (e) =>
      e.stage === 'ResponseComplete' &&
      e.user.username === user &&
      e.verb === 'update' &&
      e.objectRef?.resource === resource &&
      e.objectRef.subresource === 'status' &&
      e.objectRef.namespace === namespace &&
      e.objectRef.name === name &&
      e.responseStatus?.code === 200,
  );
}
