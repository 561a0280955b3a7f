import type { SiteSpec } from '../../core/specs.js';
import type { Change } from '../../diff/model.js';
import type { AfterRestore, FileRestoreStep, Restore } from '../types.js';
import { awaitGenerations, reload, testConfig } from './nginx.js';
import { GENERATION_HEADER, htpasswdFile, NGINX_SITE_DIR, SITE_PREFIX, siteFile, TLS_DIR } from './paths.js';
import { RELOAD_OWED, RELOADED, reloadOwedPath } from './run.js';

// The undo of a site change: its site file and password file come back from the
// run journal, with the "reload owed" mark as it was before the run. Once every
// file nginx reads is back (sites, and certificates whoever backed them up), one
// `nginx -t`, then one reload; a configuration nginx rejects is not loaded.

export function isNginxPath(p: string): boolean {
  return p.startsWith('/etc/nginx/') || p.startsWith(`${TLS_DIR}/`);
}

/** Reload, then wait until nginx answers each restored site with that file's generation (as an apply's settle does). */
interface ReloadPlan {
  reload: true;
  /** HostKit site files the restore puts back. */
  sites: string[];
}

// The first domain and the generation a HostKit site file answers with (render.ts writes both).
function servedBy(text: string): { domain: string; generation: string } | undefined {
  const domain = /^\s*server_name (\S+)/m.exec(text)?.[1]?.replace(/;$/, '');
  const generation = new RegExp(`add_header ${GENERATION_HEADER} "([0-9a-f]+)"`).exec(text)?.[1];
  return domain && generation ? { domain, generation } : undefined;
}

const afterRestore: AfterRestore<ReloadPlan> = {
  async plan(steps, _changes, host) {
    const files = steps.filter((s): s is FileRestoreStep & { path: string; unchanged: boolean } => s.action === 'restore-file' || s.action === 'remove-file');
    if (!files.some((s) => isNginxPath(s.path) && !s.unchanged)) return undefined;
    // The run marked a reload owed (the marker did not exist before it) and never reloaded since: nginx
    // still runs the configuration the restore puts back (a failed `nginx -t`, a kill before the reload).
    const marker = files.find((s) => s.action === 'remove-file' && !s.unchanged && s.path.endsWith(`/${RELOAD_OWED}`));
    const text = marker ? ((await host.readFile(marker.path))?.toString('utf8') ?? '') : '';
    const neverReloaded = marker !== undefined && !text.trimEnd().endsWith(` ${RELOADED}`);
    if (neverReloaded) return undefined;
    const sites = files.filter((s) => s.action === 'restore-file' && !s.unchanged && s.path.startsWith(`${NGINX_SITE_DIR}/${SITE_PREFIX}`));
    return { reload: true, sites: sites.map((s) => s.path) };
  },
  describe: () => ['  nginx -t, then reload nginx'],
  async apply(plan, ctx) {
    const test = await testConfig(ctx.host);
    if (!test.ok) throw new Error(`nginx -t rejected the restored configuration; nginx was not reloaded:\n${test.message}`);
    await reload(ctx.host);
    // A reload returns before the new workers answer: the restore ends once they serve the restored files.
    const expected = [];
    for (const file of plan.sites ?? []) {
      const served = servedBy((await ctx.host.readFile(file))?.toString('utf8') ?? '');
      if (served) expected.push(served);
    }
    const missing = await awaitGenerations(ctx.host, expected);
    if (missing.length > 0) {
      throw new Error(`nginx did not take the restored configuration (${missing.map((m) => `${m.domain} answered: ${m.seen || 'nothing'}`).join('; ')})`);
    }
  },
};

export const siteRestore: Restore<Change<unknown, unknown, SiteSpec>> = {
  async backup(change, journal) {
    const site = change.resource?.spec.site;
    if (!site) return;
    await journal.backupFiles([reloadOwedPath(journal.stateDirectory), siteFile(site), htpasswdFile(site)]);
  },
  after: afterRestore,
};
