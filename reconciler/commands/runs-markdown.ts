// `hostkit runs -o markdown`: the runs as a table, then quarantined commits and
// paused projects and release holds, for an incident note or an issue comment.
import type { RunEvent } from '../apply/journal.js';
import type { SafetyStatus } from '../apply/quarantine.js';
import type { RunSummary } from '../apply/rollback.js';
import { escapeCell } from '../diff/render/markdown.js';

const STATUS_MARK: Record<string, string> = { applied: '✅', restored: '↩️', open: '⏳' };

export function renderRunsMarkdown(
  stateDirectory: string,
  runs: readonly (RunSummary & { planned?: unknown[]; events?: RunEvent[] })[],
  safety: SafetyStatus,
): string {
  const out = [`### HostKit runs in \`${stateDirectory}/runs\``, ''];
  if (runs.length === 0) out.push('No runs recorded.', '');
  else {
    out.push('| Run | Type | Status | Commit | What |', '|---|---|---|---|---|');
    for (const r of runs) {
      const what = [
        r.type === 'rollback' ? `rollback of \`${r.target}\`` : `${r.changes} change(s)`,
        r.rolledBackBy ? `rolled back by \`${r.rolledBackBy}\`` : '',
        r.failed ? `failed at \`${r.failed.id}\`: ${r.failed.error.split('\n')[0]}` : '',
      ]
        .filter(Boolean)
        .join('; ');
      const status = `${STATUS_MARK[r.status] ?? '❌'} ${r.status}`;
      out.push(`| \`${r.id}\` | ${r.type} | ${status} | ${r.commit ? `\`${r.commit.slice(0, 12)}\`` : '-'} | ${escapeCell(what)} |`);
    }
    out.push('');
  }
  for (const r of runs) {
    if (!r.events) continue;
    const lines = r.events.map(({ t, ev, ...rest }) => `${t} ${ev} ${JSON.stringify(rest)}`);
    out.push(`<details><summary><code>${r.id}</code>: ${r.events.length} event(s)</summary>`, '', '```', ...lines, '```', '', '</details>', '');
  }
  if (safety.quarantined.length > 0) {
    out.push('**Quarantined commits** (`hostkit resume` retries them)', '');
    for (const q of safety.quarantined) out.push(`- \`${q.commit.slice(0, 12)}\` since ${q.at}: ${escapeCell(q.reason)}`);
    out.push('');
  }
  if (safety.paused.length > 0) {
    out.push('**Paused projects** (a commit that changes one, or `hostkit resume --project NAME`, un-pauses it)', '');
    for (const p of safety.paused) out.push(`- \`${p.project}\` since ${p.at}, after ${p.failures} failed applies`);
    out.push('');
  }
  if (safety.held.length > 0) {
    out.push('**Held on a release** (`hostkit rollback --to`; a commit that changes its source, or `hostkit resume --project NAME`, releases it)', '');
    for (const h of safety.held) out.push(`- \`${h.project}\` on \`${h.release}\` since ${h.at}`);
    out.push('');
  }
  return out.join('\n');
}
