import { formatLocation, type Diagnostic } from '../../core/diagnostics.js';
import { countsText, diagnosticCounts, NOT_APPLICABLE, type Change, type Plan } from '../model.js';

const LABEL: Record<Change['action'], string> = {
  create: 'create',
  update: 'update',
  replace: 'replace',
  delete: 'delete',
  noop: 'unchanged',
  unsupported: 'not yet supported',
};

/** Text safe in a table cell or a list item: pipes escaped, one line. */
export function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** One diagnostic as a list item: severity, `FILE:LINE:COL`, summary (with the field's pointer) and detail. */
export function diagnosticItem(d: Diagnostic): string {
  const pointer = d.location?.pointer && d.location.pointer !== '/' ? ` (at \`${d.location.pointer}\`)` : '';
  return `- **${d.severity}** \`${formatLocation(d.location)}\`: ${d.summary}${pointer}: ${escapeCell(d.detail)}`;
}

// For pull-request comments and reports: a summary line, a table of changes,
// and the diffs in collapsible blocks.
export function renderMarkdown(plan: Plan): string {
  const n = plan.summary;
  const counts = diagnosticCounts(plan);
  const out: string[] = [];
  out.push(`### HostKit plan for \`${plan.host}\`${plan.commit ? ` at \`${plan.commit.slice(0, 12)}\`` : ''}`, '');
  out.push(
    counts.errors > 0
      ? `**${NOT_APPLICABLE}** ${countsText(counts)}.`
      : `**${n.create}** to create, **${n.update}** to update, **${n.replace}** to replace, **${n.delete}** to delete, ${n.noop} unchanged${n.unsupported ? `, ${n.unsupported} not yet supported` : ''}.${counts.warnings > 0 ? ` ${countsText(counts)}.` : ''}`,
    '',
  );
  const visible = plan.changes.filter((c) => c.action !== 'noop' || c.orphan || c.diagnostics.length > 0);
  if (visible.length > 0) {
    out.push('| | Resource | Action | Notes |', '|---|---|---|---|');
    for (const c of visible) {
      const symbol = c.orphan ? '⚠️' : { create: '➕', update: '✏️', replace: '♻️', delete: '➖', noop: '', unsupported: '❔' }[c.action];
      const notes = [
        c.orphan ? 'orphan, kept' : '',
        c.owedBy === 'time' ? 'owed by time' : '',
        c.reason ?? '',
        c.disruptive ? 'restarts or reloads' : '',
        ...c.diagnostics.map((d) => `${d.severity}: ${d.summary}`),
      ]
        .filter(Boolean)
        .join('; ');
      out.push(`| ${symbol} | \`${c.id}\` | ${LABEL[c.action]} | ${escapeCell(notes)} |`);
    }
    out.push('');
  }
  for (const c of visible) {
    if (c.fields.length === 0) continue;
    out.push(`<details><summary><code>${c.id}</code> (${LABEL[c.action]})</summary>`, '');
    for (const f of c.fields) {
      if (f.diff !== undefined) {
        out.push(`\`${f.field}\`${f.redacted ? ' (secret values redacted)' : ''}`, '', '```diff', f.diff.replace(/```/g, '`\u200b``'), '```', '');
      } else {
        const show = (v: unknown) => (v === undefined ? '(none)' : `\`${escapeCell(typeof v === 'string' ? v : JSON.stringify(v))}\``);
        out.push(`- \`${f.field}\`: ${f.before !== undefined ? `${show(f.before)} → ` : ''}${show(f.after)}`);
      }
    }
    out.push('', '</details>', '');
  }
  if (plan.diagnostics.length > 0) {
    out.push('#### Diagnostics', '');
    for (const d of plan.diagnostics) out.push(diagnosticItem(d));
    out.push('');
  }
  return out.join('\n');
}
