import type { FileSummary } from '../agent/control/protocol';
import { duration, shown } from './format';

/** How long a stalled file has had nothing, as the state cell's suffix; '' for any other state. */
export function stalledFor (f: FileSummary): string {
  return f.stalled === null ? '' : ` (nothing for ${duration(Math.max(Date.now() - f.stalled.since, 0))})`;
}

/** When the URL in use stops working, as `fsctl info` shows it. */
export function expiryText (f: FileSummary): string {
  const at = f.urlExpiresAt;
  if (at === null && f.source === 'url') return '- (the URL does not say)';
  if (at === null && f.urlRefreshes === 0) return '- (no link minted yet)';
  if (at === null) return '- (the link it gave does not say; a new one is minted when it is refused)';
  const left = at - Date.now();
  const late = f.source === 'command' ? 'ago: the command is run again when needed' : 'ago: give a new one with fsctl set-url';
  return `${new Date(at).toISOString()} (${left > 0 ? `in ${duration(left)}` : `${duration(-left)} ${late}`})`;
}

/** The state cell's suffix in `fsctl ls`: how the file's content checked out, when it has a digest. */
export function verificationNote (f: FileSummary): string {
  const v = f.verification;
  if (v === null || v.state === 'pending') return '';
  return v.state === 'verified' ? `, verified (${v.algorithm})` : `, did not match its ${v.algorithm}`;
}

/** `fsctl info`'s content row. */
export function verificationText (f: FileSummary): string {
  const v = f.verification;
  if (v === null) return '- (no digest: the origin states none; fsctl add --sha256 gives one)';
  const said = `${v.algorithm} ${v.expected}, from ${v.source === 'user' ? '--sha256' : v.source}`;
  if (v.state === 'verified') return `verified (${said})`;
  if (v.state === 'failed') return `did not match twice (${said}; the last copy hashed to ${v.actual ?? '?'}); its bytes were dropped`;
  return `checked once complete (${said})` + (v.actual !== null ? `; a copy that hashed to ${v.actual} was dropped` : '');
}

/** Links pasted by hand that lapse within a day, of files not yet whole: the user must act, so `fsctl ls` says so. */
export function linkNote (f: FileSummary): string | null {
  if (f.source !== 'url' || f.urlExpiresAt === null || f.state === 'complete') return null;
  const left = f.urlExpiresAt - Date.now();
  if (left > 86_400_000) return null;
  const when = left > 0 ? `expires in ${duration(left)}` : `expired ${duration(-left)} ago`;
  return `${shown(f.name)}: its URL ${when}; give a new one with fsctl set-url (or a --url-command)`;
}
