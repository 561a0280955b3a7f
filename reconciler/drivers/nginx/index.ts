import path from 'node:path';
import { error, warning, type Diagnostic, type Location } from '../../core/diagnostics.js';
import { errorMessage } from '../../core/errors.js';
import { describeRef } from '../../core/secrets.js';
import type { SiteSpec } from '../../core/specs.js';
import { changeBase, hasOp, refusedChange, type Change, type FieldChange } from '../../diff/model.js';
import type { Host, Ownership } from '../../hosts/types.js';
import { inputsDigest } from '../shared/inputs.js';
import { recordWritten, shownLive } from '../shared/owned.js';
import { unifiedDiff } from '../shared/text-diff.js';
import { UserDb } from '../shared/users.js';
import type { Driver, DriverContext, WithManifests } from '../types.js';
import { buildHtpasswd } from './htpasswd.js';
import { CHALLENGE_DIR, HTPASSWD_DIR, htpasswdFile, siteFile } from './paths.js';
import { renderSite, siteTlsFiles } from './render.js';
import { reloadOwed } from './run.js';
import { siteProblems } from './validate.js';
import type { sitePrimitive } from './manifest.js';
import { siteDefinition } from './definition.js';
import { siteRestore } from './restore.js';

/** nginx's worker user on Debian; its group reads the htpasswd files. */
export const NGINX_GROUP = 'www-data';
const HTPASSWD_MODE = 0o640;

export interface DesiredSite {
  file: string;
  content: string;
  generation: string;
  domains: string[];
  htpasswd?: { file: string; content: string; fingerprint: string; users: string[] };
  /** Dry runs only: the htpasswd secret could not be read (this reference). */
  htpasswdUnavailable?: string;
  /** Set when the spec failed validation: nothing is written, the plan carries the error. */
  refused?: string;
  /** The web root HostKit does not create, found on the host (the plan says so). */
  rootFound?: string;
}

export interface ObservedSite {
  content?: Buffer;
  /** What a plan says of a site file HostKit did not write (or that was edited since): size and fingerprint, never its text. */
  unowned?: string;
  /** `fingerprint` is how the plan shows the file found (keyed by the host, like every secret). */
  htpasswd?: { content: Buffer; fingerprint: string; mode: number; group: string };
  /** Dry runs only: what could not be read (e.g. not root). */
  unreadable?: string;
  /** A run stopped after writing nginx files and before nginx took them. */
  reloadOwed?: boolean;
}

/**
 * What apply does to a site: write its file, write or remove its htpasswd file, or remove
 * both; then nginx reloads (settle, once per run, after `nginx -t`).
 */
export type SiteOp = { op: 'write' } | { op: 'write-htpasswd' } | { op: 'remove-htpasswd' } | { op: 'remove' } | { op: 'reload' };

interface Snapshot {
  file: string;
  previous?: { content: Buffer } & Ownership;
}

export interface SiteUndo {
  snapshots: Snapshot[];
  createdDirs: string[];
}

function ownerLabel(resourceProject: string | undefined, id: string): string {
  return resourceProject ? `Project/${resourceProject}` : id;
}

// The bytes are asked for with the stat (one round trip over SSH); a site's files are HostKit's own, never a FIFO.
async function snapshot(host: Host, file: string): Promise<Snapshot> {
  const [st, early] = await Promise.all([host.stat(file), host.readFile(file).catch(() => undefined)]);
  if (st?.type !== 'file') return { file };
  const content = early ?? (await host.readFile(file)) ?? Buffer.alloc(0);
  return { file, previous: { content, mode: st.mode, uid: st.uid, gid: st.gid } };
}

// `dir`, and its parent when missing (root's, 0755); both looked at at once.
async function ensureDir(host: Host, dir: string, ownership: Ownership, created: string[]): Promise<void> {
  const parent = path.posix.dirname(dir);
  const [parentStat, dirStat] = await Promise.all([parent !== dir ? host.stat(parent) : undefined, host.stat(dir)]);
  if (dirStat) return;
  if (parent !== dir && !parentStat) await ensureDir(host, parent, { uid: 0, gid: 0, mode: 0o755 }, created);
  await host.mkdir(dir, ownership);
  created.push(dir);
}

/**
 * Whether the host's kernel has IPv6 (not booted with ipv6.disable=1): procfs
 * shows /proc/sys/net/ipv6 then. Where no procfs can be seen (a test double),
 * it is assumed, as on almost every host.
 */
export async function hostHasIpv6(host: Host): Promise<boolean> {
  const [net, ipv6] = await Promise.all([host.stat('/proc/sys/net').catch(() => undefined), host.stat('/proc/sys/net/ipv6').catch(() => undefined)]);
  return net === undefined || ipv6 !== undefined;
}

/**
 * A web root outside the project's own paths must already be there: HostKit does
 * not create it, and nginx would answer 404 for every path of the site. A dry run
 * that cannot look (not root) warns instead.
 */
async function webRootProblem(
  ctx: DriverContext,
  root: string,
  site: string,
  project: string | undefined,
  at: Location | undefined,
): Promise<Diagnostic | undefined> {
  const create = `create it on the host${project ? `, or move static.root under project ${project}'s own paths, where HostKit creates it` : ''}`;
  try {
    const st = await ctx.host.stat(root);
    if (!st) return error('web root missing', `site ${site} serves ${root}, which does not exist on the host; ${create}`, at);
    if (st.type !== 'directory' && st.type !== 'symlink')
      return error('web root missing', `site ${site} serves ${root}, which is a ${st.type} on the host, not a directory; ${create}`, at);
    return undefined;
  } catch (cause) {
    const detail = `site ${site}: its web root ${root} cannot be checked here (${errorMessage(cause)})`;
    return ctx.mode === 'plan' ? warning('web root not checked', detail, at) : error('web root not checked', detail, at);
  }
}

/**
 * nginx sites: one owned file per site, /etc/nginx/conf.d/hostkit-SITE.conf,
 * plus an htpasswd file for a gated site. apply writes files only; settle runs
 * one `nginx -t` for the whole configuration, one reload, and probes every
 * changed site for the generation header of its new file.
 */
export const nginxSiteDriver: Driver<SiteSpec, DesiredSite, ObservedSite, SiteUndo, 'site', void, SiteOp> & WithManifests<typeof sitePrimitive> = {
  ...siteDefinition,

  async desire(resources, ctx) {
    const out = new Map<string, { desired: DesiredSite; diagnostics: Diagnostic[] }>();
    let ipv6: Promise<boolean> | undefined;
    for (const r of resources) {
      const diagnostics: Diagnostic[] = [];
      const file = siteFile(r.spec.site);
      const problems = siteProblems(r.spec);
      if (problems.length > 0) {
        diagnostics.push(error('site not rendered', `site ${r.spec.site}: ${problems.join('; ')}; nothing was written`, r.origin));
        out.set(r.id, { desired: { file, content: '', generation: '', domains: r.spec.domains, refused: problems.join('; ') }, diagnostics });
        continue;
      }
      const named = typeof r.spec.tls === 'object' ? r.spec.tls : undefined;
      let certificateDigest: string | undefined;
      if (named) {
        try {
          certificateDigest = await inputsDigest(ctx, [named.certificate]);
        } catch (cause) {
          // A dry run as a user who cannot read it still plans, and says what it could not see.
          if (ctx.mode !== 'plan') throw cause;
          const detail = `site ${r.spec.site}: TLS file ${named.certificate} cannot be read here (${errorMessage(cause)}); whether it was replaced is not known`;
          diagnostics.push(warning('tls file unreadable', detail, r.origin));
          certificateDigest = 'unreadable';
        }
      }
      const rendered = renderSite(r.spec, ownerLabel(r.project, r.id), {
        ipv6: await (ipv6 ??= hostHasIpv6(ctx.host)),
        ...(certificateDigest ? { certificateDigest } : {}),
      });
      const desired: DesiredSite = { file, content: rendered.content, generation: rendered.generation, domains: r.spec.domains };
      recordWritten(ctx, r.id, file, desired.content);
      const auth = r.spec.gate?.basicAuth;
      if (auth) {
        const secret = await ctx.secrets.resolve(auth.htpasswd);
        if (!secret.ok) {
          // A dry run can still show the rest of the plan; an apply must not run without the gate.
          const make = ctx.mode === 'plan' ? warning : error;
          diagnostics.push(make('secret unavailable', `site ${r.spec.site} basic auth: ${secret.reason}`, r.origin));
          desired.htpasswdUnavailable = describeRef(auth.htpasswd);
        } else {
          const built = buildHtpasswd(secret.value, r.spec.site);
          if (!built.content) diagnostics.push(error('invalid htpasswd secret', `site ${r.spec.site} basic auth: ${built.problem}`, r.origin));
          else
            desired.htpasswd = {
              file: htpasswdFile(r.spec.site),
              content: built.content,
              fingerprint: ctx.secrets.fingerprint(built.content),
              users: built.users,
            };
        }
      }
      // Certificate files named by the manifest must exist: nginx -t would fail on every site otherwise.
      const tls = typeof r.spec.tls === 'object' ? siteTlsFiles(r.spec) : undefined;
      if (tls) {
        for (const p of [tls.certificate, tls.key]) {
          const st = await ctx.host.stat(p).catch(() => undefined);
          if (st?.type !== 'file') {
            const detail = `site ${r.spec.site}: TLS file ${p} does not exist on ${ctx.host.name}`;
            diagnostics.push(ctx.mode === 'apply' ? error('tls file missing', detail, r.origin) : warning('tls file missing', detail, r.origin));
          }
        }
      }
      if (r.spec.rootMustExist && r.spec.root) {
        const problem = await webRootProblem(ctx, r.spec.root, r.spec.site, r.project, r.fieldOrigins?.root ?? r.origin);
        if (problem) diagnostics.push(problem);
        else desired.rootFound = r.spec.root;
      }
      out.set(r.id, { desired, diagnostics });
    }
    return out;
  },

  // Two file reads per site and one read of the user database. A dry run as a
  // user who cannot read them still plans, saying what it could not see.
  async observe(resources, ctx) {
    const out = new Map<string, ObservedSite>();
    if (resources.length === 0) return out;
    const users = await UserDb.read(ctx.host).catch(() => undefined);
    const owed = await reloadOwed(ctx.host, ctx.stateDirectory).catch(() => false);
    await Promise.all(
      resources.map(async (r) => {
        try {
          const [content, auth, authStat] = await Promise.all([
            ctx.host.readFile(siteFile(r.spec.site)),
            ctx.host.readFile(htpasswdFile(r.spec.site)),
            ctx.host.stat(htpasswdFile(r.spec.site)),
          ]);
          const observed: ObservedSite = {};
          if (content) {
            observed.content = content;
            const shown = shownLive(ctx, r.id, siteFile(r.spec.site), content);
            if (!shown.owned) observed.unowned = shown.summary;
          }
          if (auth && authStat) {
            const group = users?.groupName(authStat.gid) ?? `#${authStat.gid}`;
            observed.htpasswd = { content: auth, fingerprint: ctx.secrets.fingerprint(auth.toString('utf8')), mode: authStat.mode, group };
          }
          if (owed) observed.reloadOwed = true;
          if (observed.content || observed.htpasswd || owed) out.set(r.id, observed);
        } catch (cause) {
          if (ctx.mode !== 'plan') throw cause;
          out.set(r.id, { unreadable: errorMessage(cause) });
        }
      }),
    );
    return out;
  },

  plan({ resource, desired, observed, orphan }) {
    type SiteChange = Change<DesiredSite, ObservedSite, SiteSpec, SiteOp>;
    const base = changeBase(resource);
    if (observed?.unreadable !== undefined) {
      const remove = orphan || !desired;
      return {
        ...base,
        action: remove ? 'delete' : 'update',
        fields: [],
        ops: remove
          ? [{ op: 'remove' }, { op: 'reload' }]
          : [{ op: 'write' }, { op: desired.htpasswd ? 'write-htpasswd' : 'remove-htpasswd' }, { op: 'reload' }],
        disruptive: true,
        reason: 'the site files could not be read',
        diagnostics: [warning('site not observed', `${siteFile(resource.spec.site)}: ${observed.unreadable}`, resource.origin)],
        observed,
        ...(desired && !orphan ? { desired } : {}),
      } as SiteChange;
    }
    if (orphan || !desired) {
      if (!observed) return { ...base, action: 'noop', fields: [], ops: [], disruptive: false, reason: 'already removed' } as SiteChange;
      return {
        ...base,
        action: 'delete',
        ops: [{ op: 'remove' }, { op: 'reload' }],
        fields: observed.content
          ? [
              observed.unowned !== undefined
                ? { field: '/content', before: observed.unowned, after: 'removed' }
                : { field: '/content', before: 'site file', diff: unifiedDiff(observed.content.toString('utf8'), '') },
            ]
          : [{ field: '/reload', before: 'owed by an interrupted run', after: 'reloaded' }],
        disruptive: true,
        reason: 'no manifest declares it any more: its files are removed and nginx reloaded',
        observed,
      } as SiteChange;
    }
    if (desired.refused !== undefined) return refusedChange(base, { reason: 'not rendered (see the error)' });
    const fields: FieldChange[] = [];
    const ops: SiteOp[] = [];
    const before = observed?.content?.toString('utf8');
    if (before !== desired.content) ops.push({ op: 'write' });
    if (before !== desired.content && observed?.unowned !== undefined) {
      // Not HostKit's bytes: their size and fingerprint, never their text.
      fields.push({ field: '/content', before: observed.unowned, after: 'site file' });
    } else if (before !== desired.content) {
      fields.push({
        field: '/content',
        ...(before !== undefined ? { before: 'site file' } : {}),
        after: 'site file',
        diff: unifiedDiff(before ?? '', desired.content),
      });
    }
    const auth = observed?.htpasswd;
    if (desired.htpasswd) {
      if (!auth || !auth.content.equals(Buffer.from(desired.htpasswd.content))) {
        fields.push({
          field: '/gate/basicAuth/htpasswd',
          ...(auth ? { before: auth.fingerprint } : {}),
          after: `${desired.htpasswd.fingerprint} (${desired.htpasswd.users.length} user${desired.htpasswd.users.length === 1 ? '' : 's'})`,
          redacted: true,
        });
        ops.push({ op: 'write-htpasswd' });
      } else if (auth.mode !== HTPASSWD_MODE || auth.group !== NGINX_GROUP) {
        fields.push({ field: '/gate/basicAuth/mode', before: `${auth.group} 0${auth.mode.toString(8)}`, after: `${NGINX_GROUP} 0640` });
        ops.push({ op: 'write-htpasswd' });
      }
    } else if (desired.htpasswdUnavailable) {
      // A dry run without the secret: an apply (which must read it) writes the file.
      fields.push({ field: '/gate/basicAuth/htpasswd', after: `from ${desired.htpasswdUnavailable} (unavailable here)`, redacted: true });
      ops.push({ op: 'write-htpasswd' });
    } else if (auth) {
      fields.push({ field: '/gate/basicAuth/htpasswd', before: auth.fingerprint, after: 'removed', redacted: true });
      ops.push({ op: 'remove-htpasswd' });
    }
    if (fields.length === 0 && observed?.reloadOwed) fields.push({ field: '/reload', before: 'owed by an interrupted run', after: 'reloaded' });
    const action = !observed?.content ? 'create' : fields.length > 0 ? 'update' : 'noop';
    if (action === 'create' && desired.rootFound) fields.push({ field: '/root', after: `${desired.rootFound} (exists; HostKit does not create it)` });
    if (action !== 'noop') ops.push({ op: 'reload' });
    return { ...base, action, fields, ops, disruptive: action !== 'noop', desired, ...(observed ? { observed } : {}) } as SiteChange;
  },

  // Writes files only; nothing is live until settle reloads nginx. If this
  // throws part-way, it puts back what it had already written before
  // rethrowing: the site's files are as they were.
  async apply(change, ctx) {
    const spec = change.resource!.spec;
    const file = siteFile(spec.site);
    const auth = htpasswdFile(spec.site);
    const undo: SiteUndo = { snapshots: await Promise.all([snapshot(ctx.host, file), snapshot(ctx.host, auth)]), createdDirs: [] };
    if (hasOp(change, 'reload')) await ctx.run.nginx.changing({ path: file, resourceId: change.id });
    try {
      await writeSite(change, ctx, undo);
    } catch (cause) {
      await putBack(undo, ctx).catch(() => undefined);
      throw cause;
    }
    return undo;
  },

  async settle(items, ctx) {
    if (items.length === 0) return;
    await ctx.run.nginx.flush(items[0]!.change.id);
  },

  async verify(change, ctx) {
    const file = siteFile(change.resource!.spec.site);
    const live = await ctx.host.readFile(file);
    if (hasOp(change, 'remove')) return live ? [error('site not removed', `${file} still exists`, change.origin)] : [];
    if (!live?.equals(Buffer.from(change.desired!.content))) return [error('site not as desired', `${file} differs from what was written`, change.origin)];
    return [];
  },

  // Its files, and the reload they need, come back from the run journal (restore.ts).
  restore: siteRestore,
};

// What apply wrote so far, put back when it fails part-way.
async function putBack(undo: SiteUndo, ctx: DriverContext): Promise<void> {
  for (const s of undo.snapshots) {
    if (s.previous) await ctx.host.writeFile(s.file, s.previous.content, { mode: s.previous.mode, uid: s.previous.uid, gid: s.previous.gid });
    else await ctx.host.remove(s.file);
  }
  for (const dir of [...undo.createdDirs].reverse()) await ctx.host.remove(dir);
  ctx.run.nginx.restored();
}

async function writeSite(change: Change<DesiredSite, ObservedSite, SiteSpec, SiteOp>, ctx: DriverContext, undo: SiteUndo): Promise<void> {
  const spec = change.resource!.spec;
  const file = siteFile(spec.site);
  const auth = htpasswdFile(spec.site);
  if (hasOp(change, 'remove')) {
    await ctx.host.remove(file);
    await ctx.host.remove(auth);
    return;
  }
  const desired = change.desired!;
  const root = { uid: 0, gid: 0, mode: 0o755 };
  await ensureDir(ctx.host, CHALLENGE_DIR, root, undo.createdDirs);
  if (hasOp(change, 'write-htpasswd') && desired.htpasswd) {
    const gid = (await UserDb.read(ctx.host)).gid(NGINX_GROUP);
    await ensureDir(ctx.host, HTPASSWD_DIR, { uid: 0, gid, mode: 0o750 }, undo.createdDirs);
    await ctx.host.writeFile(auth, desired.htpasswd.content, { uid: 0, gid, mode: HTPASSWD_MODE });
  }
  if (hasOp(change, 'remove-htpasswd')) await ctx.host.remove(auth);
  if (hasOp(change, 'write')) await ctx.host.writeFile(file, desired.content, { uid: 0, gid: 0, mode: 0o644 });
  ctx.run.nginx.expect(desired.domains[0]!, desired.generation, change.id);
}
