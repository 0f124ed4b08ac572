// Outbound notices: what happened to a write-back's changes (a pull request opened, merged or
// closed, a commit pushed, workloads rolled out or rolled back), sent to the places teams
// already watch. Two bodies: Patchline's own JSON, signed with HMAC-SHA256 over the timestamp
// and the body (so a receiver can refuse forgeries and replays), and a Slack-compatible
// incoming-webhook body ({text}, which Slack, Mattermost and Rocket.Chat accept).
import { createHmac, randomUUID } from 'node:crypto';

const NOTICE_EVENTS = [
  'PullRequestOpened',
  'PullRequestMerged',
  'PullRequestClosed',
  'Committed',
  'RolledOut',
  'RolledBack',
] as const;
export type NoticeEvent = (typeof NOTICE_EVENTS)[number];

export function isNoticeEvent(reason: string): reason is NoticeEvent {
  return (NOTICE_EVENTS as readonly string[]).includes(reason);
}

export type NoticeDetails = Record<string, string | number | boolean | readonly string[]>;

export interface Notice {
  /** Unique per notice: a receiver can drop a repeated delivery. */
  id: string;
  event: NoticeEvent;
  severity: 'info' | 'warning';
  time: string;
  /** namespace/name of the GitWriteBack whose notify list this came through. */
  writeBack: string;
  /** What it is about. */
  object: { kind: string; namespace: string; name: string };
  message: string;
  details: NoticeDetails;
}

const MESSAGE_LIMIT = 2000;

export function notice(
  event: NoticeEvent,
  warning: boolean,
  writeBack: string,
  object: Notice['object'],
  message: string,
  details: Readonly<Record<string, unknown>> | undefined,
  now: Date,
): Notice {
  const clean: NoticeDetails = {};
  for (const [k, v] of Object.entries(details ?? {})) {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') clean[k] = v;
    else if (Array.isArray(v) && v.every((x) => typeof x === 'string')) clean[k] = v;
  }
  return {
    id: randomUUID(),
    event,
    severity: warning ? 'warning' : 'info',
    time: now.toISOString(),
    writeBack,
    object,
    message: message.slice(0, MESSAGE_LIMIT),
    details: clean,
  };
}

/** Patchline's JSON body. */
export function genericBody(n: Notice): string {
  return JSON.stringify({ apiVersion: 'patchline.dev/v1alpha1', kind: 'Notice', ...n });
}

const TITLES: Record<NoticeEvent, string> = {
  PullRequestOpened: 'Pull request opened',
  PullRequestMerged: 'Pull request merged',
  PullRequestClosed: 'Pull request closed without merging',
  Committed: 'Committed',
  RolledOut: 'Rolled out',
  RolledBack: 'Rolled back',
};

/** Slack's mrkdwn escapes: &, < and > (the rest is text). */
function slackEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A Slack-compatible incoming-webhook body. */
export function slackBody(n: Notice): string {
  const lines = [
    `${n.severity === 'warning' ? ':warning: ' : ''}*${TITLES[n.event]}* · ${slackEscape(`${n.object.kind} ${n.object.namespace}/${n.object.name}`)}`,
    slackEscape(n.message),
  ];
  const pr = n.details.pullRequest;
  if (typeof pr === 'string' && /^https?:\/\/[^\s<>|]+$/.test(pr)) lines.push(`<${pr}|pull request>`);
  return JSON.stringify({ text: lines.join('\n') });
}

/**
 * Headers of a signed generic notice: X-Patchline-Signature is
 * `sha256=<hex HMAC-SHA256(token, "<timestamp>.<body>")>`, the timestamp in
 * X-Patchline-Timestamp (Unix seconds) so that a receiver can refuse old deliveries.
 */
export function signatureHeaders(token: string, body: string, now: Date): Record<string, string> {
  const timestamp = String(Math.floor(now.getTime() / 1000));
  const mac = createHmac('sha256', token).update(`${timestamp}.${body}`).digest('hex');
  return { 'x-patchline-timestamp': timestamp, 'x-patchline-signature': `sha256=${mac}` };
}
