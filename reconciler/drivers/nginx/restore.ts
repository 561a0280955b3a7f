import type { SiteSpec } from '../../core/specs.js';
import type { Change } from '../../diff/model.js';
import type { AfterRestore, FileRestoreStep, Restore } from '../types.js';
import { reload, testConfig } from './nginx.js';
import { htpasswdFile, siteFile, TLS_DIR } from './paths.js';
import { RELOAD_OWED, RELOADED, reloadOwedPath } from './run.js';

// The undo of a site change: its site file and password file come back from the
// run journal, with the "reload owed" mark as it was before the run. Once every
// file nginx reads is back (sites, and certificates whoever backed them up), one
// `nginx -t`, then one reload; a configuration nginx rejects is not loaded.

export function isNginxPath(p: string): boolean {
  return p.startsWith('/etc/nginx/') || p.startsWith(`${TLS_DIR}/`);
}

const afterRestore: AfterRestore<{ reload: true }> = {
  async plan(steps, _changes, host) {
    const files = steps.filter((s): s is FileRestoreStep & { path: string; unchanged: boolean } => s.action === 'restore-file' || s.action === 'remove-file');
    if (!files.some((s) => isNginxPath(s.path) && !s.unchanged)) return undefined;
    // The run marked a reload owed (the marker did not exist before it) and never reloaded since: nginx
    // still runs the configuration the restore puts back (a failed `nginx -t`, a kill before the reload).
    const marker = files.find((s) => s.action === 'remove-file' && !s.unchanged && s.path.endsWith(`/${RELOAD_OWED}`));
    const text = marker ? ((await host.readFile(marker.path))?.toString('utf8') ?? '') : '';
    const neverReloaded = marker !== undefined && !text.trimEnd().endsWith(` ${RELOADED}`);
    return neverReloaded ? undefined : { reload: true };
  },
  describe: () => ['  nginx -t, then reload nginx'],
  async apply(_plan, ctx) {
    const test = await testConfig(ctx.host);
    if (!test.ok) throw new Error(`nginx -t rejected the restored configuration; nginx was not reloaded:\n${test.message}`);
    await reload(ctx.host);
  },
};

export const siteRestore: Restore<Change<unknown, unknown, SiteSpec>> = {
  async backup(change, journal) {
    const site = change.resource?.spec.site;
    if (!site) return;
    await journal.backupFile(reloadOwedPath(journal.stateDirectory));
    await journal.backupFile(siteFile(site));
    await journal.backupFile(htpasswdFile(site));
  },
  after: afterRestore,
};
