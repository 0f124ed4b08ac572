// The validating admission webhook, served by every replica over HTTPS:
//   POST /admission/enforce[/all]   namespaces labelled patchline.dev/admission=enforce: refuse
//   POST /admission/warn[/all]      namespaces labelled patchline.dev/admission=warn: allow, warn
// /all: the namespace is also labelled patchline.dev/admission-scope=all, and every policy
// judges every container; otherwise each container is judged by the policies that govern it
// (review.ts). The webhook configuration sends each namespace to its path by label, so no
// namespace is read here. Registry and digest rules are answered from the policy cache at once; signature
// checks go to the registry (cached verdicts are shared with the ImagePolicy reconciler) and
// must finish within a deadline below the API server's timeout. A check that cannot finish
// refuses in enforce mode and warns in warn mode, saying so. Bodies are size-limited and
// malformed reviews get a 400; every refusal and warning is an Event and an audit log line.
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ImagePolicy } from '../api/v1alpha1/index.ts';
import type { CredentialSource } from '../registry/auth/credentials.ts';
import { parseReference } from '../registry/reference.ts';
import type { EventRecorder } from '../runtime/events.ts';
import { close, listen } from '../runtime/listen.ts';
import type { Logger } from '../runtime/logger.ts';
import { counter, histogram, type Registry } from '../runtime/metrics.ts';
import type { ImageTrust, SignatureSpec } from '../controllers/image-trust.ts';
import {
  AdmissionFormatError,
  admissionResponse,
  describeFinding,
  introducedImages,
  judgeImages,
  parseAdmissionReview,
  type AdmissionFinding,
  owningWorkload,
  type AdmissionMode,
  type AdmissionResponse,
  type AdmissionScope,
  type OwningWorkload,
  type SignatureDemand,
} from './review.ts';

export interface AdmissionDeps {
  /** The ImagePolicies of a namespace (from the informer cache). */
  policies(namespace: string): ImagePolicy[];
  /** A cached Deployment, StatefulSet or DaemonSet, for the labels its policies select by. */
  workload?(namespace: string, kind: OwningWorkload['kind'], name: string): OwningWorkload | undefined;
  trust: ImageTrust;
  /** Registry credentials for reading a policy's signatures. */
  registrySource(policy: ImagePolicy): CredentialSource;
  events: EventRecorder;
  log: Logger;
  /** Time allowed for signature checks; keep it below the webhook's timeoutSeconds. */
  deadlineMs: number;
  registry?: Registry;
}

const MAX_BODY_BYTES = 3 * 1024 * 1024;

export class AdmissionReviewer {
  private readonly deps: AdmissionDeps;
  private readonly reviews;
  private readonly latency;

  constructor(deps: AdmissionDeps) {
    this.deps = deps;
    const r = deps.registry;
    this.reviews = r
      ? counter(r, {
          name: 'patchline_admission_reviews_total',
          help: 'Admission reviews, by mode and result (allowed, warned, denied).',
          labelNames: ['mode', 'result'] as const,
        })
      : undefined;
    this.latency = r
      ? histogram(r, {
          name: 'patchline_admission_review_duration_seconds',
          help: 'Time to answer an admission review.',
          labelNames: ['mode'] as const,
          buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 1, 2, 5, 10],
        })
      : undefined;
  }

  private async signatureFindings(
    kind: string,
    demands: readonly SignatureDemand[],
    namespace: string,
    signal: AbortSignal,
  ): Promise<AdmissionFinding[]> {
    const out: AdmissionFinding[] = [];
    await Promise.all(
      demands.map(async (d) => {
        if (!d.digest) {
          // A workload template may name a tag: Patchline pins it to a verified digest, and
          // its pods are checked then. A pod must name the digest its signature is about.
          if (kind === 'Pod')
            out.push({
              ...base(d),
              rule: 'signature',
              message: 'not pinned by digest, so its signature cannot be checked',
            });
          return;
        }
        // Every policy asking for a signature must be satisfied (any authority of each).
        for (const policy of d.policies) {
          const spec = policy.spec.verify?.signature as SignatureSpec;
          try {
            const authorities = await this.deps.trust.authorities(namespace, spec, signal);
            const verdict = await this.deps.trust.signature({
              image: parseReference(d.image),
              digest: d.digest,
              source: this.deps.registrySource(policy),
              authorities,
              signal,
            });
            if (!verdict.verified)
              out.push({
                ...base(d),
                rule: 'signature',
                message: `${verdict.message} (ImagePolicy ${policy.metadata?.name ?? ''})`,
              });
          } catch (err) {
            const why = signal.aborted
              ? `not verified within ${this.deps.deadlineMs} ms`
              : err instanceof Error
                ? err.message
                : String(err);
            out.push({ ...base(d), rule: 'signature', message: `cannot be checked: ${why}` });
          }
        }
      }),
    );
    return out;
  }

  /** Answers one review (the body as received). Throws AdmissionFormatError for a malformed one. */
  async review(body: unknown, mode: AdmissionMode, scope: AdmissionScope = 'governed'): Promise<AdmissionResponse> {
    const started = process.hrtime.bigint();
    const request = parseAdmissionReview(body);
    const images = introducedImages(request);
    const policies = this.deps.policies(request.namespace);
    let findings: AdmissionFinding[] = [];
    if (images.length > 0 && policies.length > 0) {
      const owner = owningWorkload(request, (kind, name) => this.deps.workload?.(request.namespace, kind, name));
      const judged = judgeImages(request.kind.kind, images, policies, { scope, ...(owner ? { owner } : {}) });
      findings = judged.findings;
      if (judged.signatures.length > 0) {
        const signal = AbortSignal.timeout(this.deps.deadlineMs);
        findings.push(
          ...(await this.signatureFindings(request.kind.kind, judged.signatures, request.namespace, signal)),
        );
      }
    }
    const response = admissionResponse(request.uid, mode, findings);
    const result = findings.length === 0 ? 'allowed' : mode === 'warn' ? 'warned' : 'denied';
    this.reviews?.inc({ mode, result });
    this.latency?.observe({ mode }, Number(process.hrtime.bigint() - started) / 1e9);
    if (findings.length > 0) {
      const note = `${request.operation} ${result === 'denied' ? 'refused' : 'admitted with warnings'}: ${findings.map(describeFinding).join('; ')}`;
      const details = {
        operation: request.operation,
        user: request.username,
        mode,
        result,
        rules: [...new Set(findings.map((f) => f.rule))],
        images: [...new Set(findings.map((f) => f.image))],
      };
      // A dry run has no side effects (sideEffects: NoneOnDryRun): a debug line only.
      if (request.dryRun) this.deps.log.debug('admission review (dry run)', { ...details, note });
      else
        this.deps.events.record(
          {
            apiVersion: request.kind.group ? `${request.kind.group}/${request.kind.version}` : request.kind.version,
            kind: request.kind.kind,
            metadata: { name: request.name, namespace: request.namespace },
          },
          'Warning',
          result === 'denied' ? 'AdmissionRejected' : 'AdmissionWarning',
          'Admit',
          note.slice(0, 1024),
          details,
        );
    }
    return response;
  }
}

function base(d: SignatureDemand) {
  return { container: d.container, image: d.image };
}

export interface AdmissionServerOptions {
  host: string;
  port: number;
  /** The serving certificate and key (PEM). */
  tls: { cert: string; key: string };
  /**
   * CA (PEM) of the client certificate the API server presents (its AdmissionConfiguration's
   * kubeConfigFile): set, a caller without a certificate it signed fails the TLS handshake.
   */
  clientCA?: string;
  reviewer: AdmissionReviewer;
  log: Logger;
}

export class AdmissionServer {
  private readonly options: AdmissionServerOptions;
  private server: Server | undefined;
  private served: { cert: string; key: string };

  constructor(options: AdmissionServerOptions) {
    this.options = options;
    this.served = options.tls;
  }

  async start(): Promise<AddressInfo> {
    const clientCA = this.options.clientCA;
    this.server = createServer(
      {
        cert: this.served.cert,
        key: this.served.key,
        minVersion: 'TLSv1.2',
        ...(clientCA ? { ca: clientCA, requestCert: true, rejectUnauthorized: true } : {}),
      },
      (req, res) => {
        void this.handle(req, res);
      },
    );
    return listen(this.server, this.options.host, this.options.port);
  }

  /** Serves a new certificate from the next connection on (rotation). */
  useCertificate(tls: { cert: string; key: string }): void {
    if (tls.cert === this.served.cert && tls.key === this.served.key) return;
    this.served = tls;
    this.server?.setSecureContext({
      cert: tls.cert,
      key: tls.key,
      ...(this.options.clientCA ? { ca: this.options.clientCA } : {}),
    });
    this.options.log.info('admission serving certificate reloaded');
  }

  async stop(): Promise<void> {
    await close(this.server);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const path = new URL(req.url ?? '/', 'https://x').pathname;
    const route = /^\/admission\/(enforce|warn)(\/all)?$/.exec(path);
    if (!route) return reply(404, { message: 'not found' });
    const mode = route[1] as AdmissionMode;
    const scope: AdmissionScope = route[2] ? 'all' : 'governed';
    if (req.method !== 'POST') return reply(405, { message: 'POST only' });
    if (!(req.headers['content-type'] ?? '').startsWith('application/json'))
      return reply(415, { message: 'expected application/json' });
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of req) {
        size += (chunk as Buffer).length;
        if (size > MAX_BODY_BYTES) return reply(413, { message: `body larger than ${MAX_BODY_BYTES} bytes` });
        chunks.push(chunk as Buffer);
      }
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return reply(400, { message: 'body is not JSON' });
      }
      reply(200, await this.options.reviewer.review(body, mode, scope));
    } catch (err) {
      if (err instanceof AdmissionFormatError) return reply(400, { message: err.message });
      this.options.log.error('admission review failed', { error: err instanceof Error ? err.message : String(err) });
      if (!res.headersSent) reply(500, { message: 'internal error' });
    }
  }
}
