import { escapeCell } from '../diff/render/markdown.js';
import { PLAIN, type Style } from '../diff/render/style.js';
import { SYMBOL } from '../diff/render/text.js';
import type { RecordPart } from '../drivers/backup/job.js';
import type { BackupStatus, ProjectStatus, ReleaseStatus, SiteStatus, StatusDocument, UnitStatus } from './status.js';

// How `hostkit status` reads: rows of (what, name, state, tone) for the host
// and for each project, laid out as aligned text (colour on a terminal) or as
// markdown tables. The tone of a project's worst row colours its bullet.

type Tone = 'ok' | 'warn' | 'bad' | 'plain';

const short = (sha: string | undefined) => (sha ? sha.slice(0, 12) : '-');
const when = (iso: string) => iso.replace(/\.\d{3}Z$/, 'Z');

function ago(iso: string, now: string): string {
  const s = Math.max(0, Math.round((Date.parse(now) - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}min ago`;
  if (s < 2 * 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

function bytes(n: number): string {
  const units = ['B', 'K', 'M', 'G', 'T'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v}B` : `${v.toFixed(1)}${units[i]}`;
}

/** One line of a project block: what it is, its name, its state, and how that state reads. */
export interface Row {
  label: string;
  name: string;
  state: string;
  tone: Tone;
}

export function unitRow(u: UnitStatus, now: string): Row {
  const parts = [`${u.active} (${u.sub})`];
  if (u.since && u.active !== 'inactive') parts[0] += ` since ${when(u.since)}; ${ago(u.since, now)}`;
  if (u.restarts !== undefined && u.role !== 'timer') parts.push(`${u.restarts} restart${u.restarts === 1 ? '' : 's'}`);
  if (u.memoryBytes !== undefined) parts.push(bytes(u.memoryBytes));
  if (u.load !== 'loaded') parts.push(`load state ${u.load}`);
  const tone: Tone =
    u.active === 'failed' || u.load !== 'loaded'
      ? 'bad'
      : u.active === 'active' || (u.active === 'inactive' && u.role === 'timer' && u.unit.endsWith('.service'))
        ? 'ok'
        : 'warn';
  return { label: u.choice.split('/')[0]!, name: u.unit, state: parts.join(', '), tone };
}

function siteRow(s: SiteStatus): Row {
  const name = [s.domain, ...s.aliases].join(' ');
  const c = s.certificate;
  if (!c) return { label: 'site', name, state: 'no TLS', tone: 'plain' };
  if (c.state === 'missing') return { label: 'site', name, state: `certificate missing (${c.file})`, tone: 'bad' };
  if (c.state === 'unreadable') return { label: 'site', name, state: `certificate unreadable: ${c.problem ?? c.file}`, tone: 'bad' };
  const kind = c.placeholder ? 'placeholder certificate' : c.selfSigned ? 'self-signed certificate' : 'certificate';
  if (c.state === 'expired') return { label: 'site', name, state: `${kind} expired on ${when(c.notAfter!)}`, tone: 'bad' };
  return {
    label: 'site',
    name,
    state: `${kind} valid until ${when(c.notAfter!)} (${c.daysLeft} days)`,
    tone: c.placeholder || (c.daysLeft ?? 0) < 14 ? 'warn' : 'ok',
  };
}

/** The release a project with a source serves: its id, its commit (or archive), and the switch that put it there. */
export function releaseRow(project: string, r: ReleaseStatus, now: string): Row {
  if (!r.id) return { label: 'release', name: 'none yet', state: 'the next apply builds one and switches to it', tone: 'warn' };
  if (r.incomplete)
    return {
      label: 'release',
      name: r.id,
      state: 'no completion marker (current was changed by hand); the next apply switches to a complete release',
      tone: 'bad',
    };
  const parts = [r.commit ? `commit ${short(r.commit)}` : r.archiveSha256 ? `archive sha256 ${short(r.archiveSha256)}` : 'no source recorded'];
  if (r.switchedAt) parts.push(`switched at ${when(r.switchedAt)}; ${ago(r.switchedAt, now)}${r.run ? ` by run ${r.run}` : ''}`);
  if (r.held) parts.push(`held there by \`hostkit rollback --to\` since ${when(r.held.at)}; \`hostkit resume --project ${project}\` ends it`);
  return { label: 'release', name: r.id, state: parts.join(', '), tone: r.held ? 'warn' : 'ok' };
}

/** One part's backups: the last one, when, how big; a failure with the last good one. */
export function backupRow(part: string, b: BackupStatus[RecordPart] & object, now: string): Row {
  const last = b.last;
  if (!last) return { label: 'backup', name: part, state: 'none yet: its timer has not run', tone: 'warn' };
  if (last.ok)
    return { label: 'backup', name: part, state: `ok at ${when(last.at)}; ${ago(last.at, now)}, snapshot ${last.snapshot?.slice(0, 8) ?? '?'}`, tone: 'ok' };
  const good = b.lastGood ? `last good at ${when(b.lastGood.at)}; ${ago(b.lastGood.at, now)}` : 'none good yet';
  return { label: 'backup', name: part, state: `FAILED at ${when(last.at)}: ${last.error ?? 'unknown error'}; ${good}`, tone: 'bad' };
}

export function projectRows(p: ProjectStatus, now: string): Row[] {
  const rows: Row[] = p.release ? [releaseRow(p.name, p.release, now)] : [];
  rows.push(...p.units.map((u) => unitRow(u, now)));
  rows.push(...p.sites.map(siteRow));
  if (p.database) rows.push({ label: 'database', name: p.database.name, state: p.database.state, tone: p.database.state === 'present' ? 'ok' : 'warn' });
  for (const [part, b] of Object.entries(p.backups ?? {})) rows.push(backupRow(part, b, now));
  for (const o of p.firewall) {
    rows.push({
      label: 'firewall',
      name: `${o.protocol}/${o.port}`,
      state: `from ${o.from.length > 0 ? o.from.join(' ') : 'anywhere'}, ${o.state}`,
      tone: o.state === 'applied' ? 'ok' : 'warn',
    });
  }
  if (p.health.state === 'passing') rows.push({ label: 'health', name: 'passing', state: p.health.checked ?? '', tone: 'ok' });
  else if (p.health.state === 'failing') rows.push({ label: 'health', name: 'FAILING', state: p.health.detail ?? '', tone: 'bad' });
  else rows.push({ label: 'health', name: 'none declared', state: '', tone: 'plain' });
  if (p.paused)
    rows.push({
      label: 'paused',
      name: `since ${when(p.paused.at)}`,
      state: `after ${p.paused.failures} failures; \`hostkit resume --project ${p.name}\``,
      tone: 'warn',
    });
  for (const c of p.drift.changes) rows.push({ label: 'drift', name: `${SYMBOL[c.action]} ${c.id}`, state: c.reason ?? '', tone: 'warn' });
  return rows;
}

/** The project's headline: healthy or not, and whether changes are pending; its tone is the worst of its rows. */
export function projectHeadline(p: ProjectStatus, now: string): { text: string; tone: Tone } {
  const rows = projectRows(p, now);
  const tone: Tone = rows.some((r) => r.tone === 'bad') ? 'bad' : rows.some((r) => r.tone === 'warn') ? 'warn' : 'ok';
  const parts = [p.health.state === 'failing' ? 'unhealthy' : p.health.state === 'passing' ? 'healthy' : 'no health check'];
  if (p.units.some((u) => u.active === 'failed')) parts.push(`${p.units.filter((u) => u.active === 'failed').length} unit(s) failed`);
  if (p.paused) parts.push('paused');
  parts.push(p.drift.pending > 0 ? `${p.drift.pending} change(s) pending` : 'in sync');
  return { text: parts.join(', '), tone };
}

/** The host's lines: applied commit, last run, holds, drift. */
export function hostRows(doc: StatusDocument): Row[] {
  const rows: Row[] = [];
  rows.push(
    doc.applied
      ? {
          label: 'applied',
          name: `commit ${short(doc.applied.commit)}`,
          state: doc.applied.at ? `at ${when(doc.applied.at)}; ${ago(doc.applied.at, doc.checkedAt)}` : '',
          tone: 'plain',
        }
      : { label: 'applied', name: 'nothing yet', state: '', tone: 'warn' },
  );
  const r = doc.lastRun;
  if (r) {
    const good = r.status === 'applied' || r.status === 'restored';
    const failed = r.failed ? `; failed at ${r.failed.id}: ${r.failed.error.split('\n')[0]}` : '';
    rows.push({
      label: 'last run',
      name: r.id,
      state: `${r.type} ${r.status}, commit ${short(r.commit)}, ${r.changes} change(s)${failed}`,
      tone: good ? 'ok' : r.status === 'open' ? 'warn' : 'bad',
    });
  } else rows.push({ label: 'last run', name: 'none recorded', state: '', tone: 'plain' });
  for (const q of doc.quarantined)
    rows.push({
      label: 'quarantined',
      name: `commit ${short(q.commit)}`,
      state: `since ${when(q.at)} (${q.reason}); \`hostkit resume\` retries it`,
      tone: 'warn',
    });
  for (const p of doc.paused)
    rows.push({ label: 'paused', name: `project ${p.project}`, state: `since ${when(p.at)} after ${p.failures} failures`, tone: 'warn' });
  if (doc.quarantined.length === 0 && doc.paused.length === 0) rows.push({ label: 'holds', name: 'none', state: '', tone: 'plain' });
  const d = doc.drift;
  if (d.state === 'unknown') rows.push({ label: 'drift', name: 'unknown', state: `the dry run has errors: ${d.errors?.[0] ?? ''}`, tone: 'bad' });
  else if (d.state === 'pending') rows.push({ label: 'drift', name: `${d.pending} change(s) pending`, state: '`hostkit plan` shows them', tone: 'warn' });
  else rows.push({ label: 'drift', name: 'in sync', state: 'the host matches the manifests', tone: 'ok' });
  for (const c of d.host) rows.push({ label: 'drift', name: `${SYMBOL[c.action]} ${c.id}`, state: c.reason ?? '', tone: 'warn' });
  return rows;
}

function paint(style: Style, tone: Tone, text: string): string {
  return tone === 'ok' ? style.green(text) : tone === 'warn' ? style.yellow(text) : tone === 'bad' ? style.red(text) : text;
}

/** Compact text in the spirit of `systemctl status`: the host's lines, then one block per project. */
export function renderStatusText(doc: StatusDocument, style: Style = PLAIN): string {
  const lines: string[] = [
    style.bold(`HostKit status of ${doc.host}`) + ` (${doc.repository}${doc.commit ? ` at ${short(doc.commit)}` : ''}, ${when(doc.checkedAt)})`,
  ];
  const table = (rows: Row[], indent: string) => {
    const label = Math.max(...rows.map((r) => r.label.length));
    const name = Math.max(...rows.map((r) => r.name.length));
    for (const r of rows) lines.push(`${indent}${r.label.padEnd(label)}  ${paint(style, r.tone, r.name.padEnd(name))}  ${r.state}`.trimEnd());
  };
  table(hostRows(doc), '  ');
  if (doc.projects.length === 0) lines.push('', 'No project is placed on this host.');
  for (const p of doc.projects) {
    const head = projectHeadline(p, doc.checkedAt);
    lines.push('', `${paint(style, head.tone, '●')} ${style.bold(p.name)}  ${paint(style, head.tone, head.text)}`);
    table(projectRows(p, doc.checkedAt), '    ');
  }
  return lines.join('\n') + '\n';
}

/** For an issue or a chat: the same rows as tables. */
export function renderStatusMarkdown(doc: StatusDocument): string {
  const out: string[] = [
    `### HostKit status of \`${doc.host}\``,
    '',
    `${doc.repository}${doc.commit ? ` at \`${short(doc.commit)}\`` : ''}, checked ${when(doc.checkedAt)}`,
    '',
  ];
  const table = (rows: Row[]) => {
    out.push('| | | |', '|---|---|---|');
    for (const r of rows) out.push(`| ${escapeCell(r.label)} | ${escapeCell(r.name)} | ${escapeCell(r.state)} |`);
    out.push('');
  };
  table(hostRows(doc));
  for (const p of doc.projects) {
    out.push(`#### ${p.name}: ${projectHeadline(p, doc.checkedAt).text}`, '');
    table(projectRows(p, doc.checkedAt));
  }
  return out.join('\n');
}
