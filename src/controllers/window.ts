// Maintenance windows: a cron schedule for when a window opens, how long it stays open,
// and the time zone the schedule is read in. Pure date arithmetic (the cron library's
// CronTime); no timers: a reconciler asks "open now?" and requeues for the opening, so
// schedules only ever act on the leader.
import { CronTime } from 'cron';
import { parseDuration } from '../runtime/duration.ts';

export interface WindowSpec {
  schedule: string;
  duration?: string;
  timeZone?: string;
}

export interface WindowState {
  open: boolean;
  /** When the current window closes, if open. */
  closesAt?: Date;
  /** When the next window opens, if closed. */
  opensAt?: Date;
}

function nextFire(cron: CronTime, from: Date, timeZone: string): Date {
  // The zone must be passed here too: CronTime's own zone does not apply to this call.
  return cron.getNextDateFrom(from, timeZone).toJSDate();
}

/** Whether `now` falls inside a window; with no window, it always does. */
export function windowState(window: WindowSpec | undefined, now: Date): WindowState {
  if (!window) return { open: true };
  const durationMs = parseDuration(window.duration ?? '1h');
  const zone = window.timeZone ?? 'UTC';
  const cron = new CronTime(window.schedule, zone);
  // The latest opening at or before now is the first opening after (now - duration), if it
  // is not after now.
  const candidate = nextFire(cron, new Date(now.getTime() - durationMs - 1), zone);
  if (candidate.getTime() <= now.getTime() && now.getTime() < candidate.getTime() + durationMs) {
    return { open: true, closesAt: new Date(candidate.getTime() + durationMs) };
  }
  return { open: false, opensAt: nextFire(cron, now, zone) };
}
