import { formatLocation, type Diagnostic } from '../../core/diagnostics.js';
import { countsText, diagnosticCounts, NOT_APPLICABLE, type Change, type FieldChange, type Plan } from '../model.js';
import { PLAIN, type Style } from './style.js';

export const SYMBOL: Record<Change['action'], string> = {
  create: '+',
  update: '~',
  replace: '-/+',
  delete: '-',
  noop: ' ',
  unsupported: '?',
};

const MAX_DIFF_LINES = 40;

export interface TextOptions {
  style?: Style;
  /** Show unchanged resources too. */
  verbose?: boolean;
}

// A plan a person reads at a glance: one line per change, field details
// indented under it, counts at the end.
export function renderText(plan: Plan, options: TextOptions = {}): string {
  const s = options.style ?? PLAIN;
  const colour: Record<Change['action'], (t: string) => string> = {
    create: s.green,
    update: s.yellow,
    replace: s.magenta,
    delete: s.red,
    noop: s.dim,
    unsupported: s.dim,
  };
  const lines: string[] = [];
  const at = plan.commit ? ` at commit ${plan.commit.slice(0, 12)}` : '';
  lines.push(s.bold(`HostKit plan for host ${plan.host}${at} (${plan.repository})`), '');
  let shown = 0;
  for (const c of plan.changes) {
    if (c.action === 'noop' && !c.orphan && !options.verbose && c.diagnostics.length === 0) continue;
    shown++;
    const symbol = c.orphan ? '!' : SYMBOL[c.action];
    const why = c.reason ?? (c.disruptive ? 'restarts or reloads its service' : '');
    const note = c.orphan ? `orphan: ${c.reason ?? 'kept'}` : c.owedBy === 'time' ? `owed by time: ${why}` : why;
    lines.push(colour[c.action](`${symbol.padStart(3)} ${c.id}`) + (note ? s.dim(`  (${note})`) : ''));
    for (const f of c.fields) {
      // A new resource's empty fields say nothing.
      if (c.action === 'create' && (f.after === '' || (Array.isArray(f.after) && f.after.length === 0))) continue;
      lines.push(...renderField(f, c.action, s));
    }
    for (const d of c.diagnostics) lines.push(indent(renderDiagnostic(d, s), '      '));
  }
  if (shown === 0) lines.push('  No changes. The host matches the manifests.');
  const planWide = plan.diagnostics.filter((d) => !plan.changes.some((c) => c.diagnostics.includes(d)));
  if (planWide.length > 0) {
    lines.push('');
    for (const d of planWide) lines.push(renderDiagnostic(d, s));
  }
  const n = plan.summary;
  const counts = diagnosticCounts(plan);
  lines.push('');
  if (counts.errors > 0) {
    lines.push(s.bold(s.red(NOT_APPLICABLE)));
  } else {
    let summary = `Plan: ${n.create} to create, ${n.update} to update, ${n.replace} to replace, ${n.delete} to delete, ${n.noop} unchanged.`;
    if (n.unsupported > 0) summary += ` ${n.unsupported} not yet supported (no driver yet; not applied).`;
    lines.push(s.bold(summary));
  }
  const tally = `${countsText(counts)}.`;
  lines.push(counts.errors > 0 ? s.red(tally) : counts.warnings > 0 ? s.yellow(tally) : tally);
  return lines.join('\n') + '\n';
}

function indent(text: string, by: string): string {
  return text
    .split('\n')
    .map((l) => by + l)
    .join('\n');
}

function renderField(f: FieldChange, action: Change['action'], s: Style): string[] {
  const name = f.field.replace(/^\//, '');
  const lines: string[] = [];
  if (f.diff !== undefined) {
    lines.push(`      ${name}:${f.redacted ? s.dim(' (secret values redacted)') : ''}`);
    const diffLines = f.diff.split('\n').filter((l) => l !== '');
    for (const l of diffLines.slice(0, MAX_DIFF_LINES)) {
      const painted = l.startsWith('+') ? s.green(l) : l.startsWith('-') ? s.red(l) : l.startsWith('@@') ? s.dim(l) : l;
      lines.push(`        ${painted}`);
    }
    if (diffLines.length > MAX_DIFF_LINES) lines.push(s.dim(`        ... ${diffLines.length - MAX_DIFF_LINES} more diff lines (-o json has them all)`));
    return lines;
  }
  const show = (v: unknown) => (v === undefined ? '(none)' : typeof v === 'string' ? v : JSON.stringify(v));
  if (action === 'create' || f.before === undefined) lines.push(`      ${name}: ${show(f.after)}`);
  else lines.push(`      ${name}: ${show(f.before)} -> ${show(f.after)}`);
  return lines;
}

export function renderDiagnostic(d: Diagnostic, s: Style = PLAIN): string {
  const severity = d.severity === 'error' ? s.red('error') : s.yellow('warning');
  const pointer = d.location?.pointer && d.location.pointer !== '/' ? s.dim(` (at ${d.location.pointer})`) : '';
  return `${formatLocation(d.location)}: ${severity}: ${d.summary}${pointer}\n    ${d.detail}`;
}
