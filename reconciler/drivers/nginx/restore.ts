import type { SiteSpec } from '../../core/specs.js';
import type { Change } from '../../diff/model.js';
import type { AfterRestore, Restore } from '../types.js';
import { reload, testConfig } from './nginx.js';
import { htpasswdFile, siteFile, TLS_DIR } from './paths.js';
import { reloadOwedPath } from './run.js';

// The undo of a site change: its site file and password file come back from the
// run journal, with the "reload owed" mark as it was before the run. Once every
// file nginx reads is back (sites, and certificates whoever backed them up), one
// `nginx -t`, then one reload; a configuration nginx rejects is not loaded.

export function isNginxPath(p: string): boolean {
  return p.startsWith('/etc/nginx/') || p.startsWith(`${TLS_DIR}/`);
}

const afterRestore: AfterRestore<{ reload: true }> = {
  async plan(steps) {
    const touched = steps.some((s) => (s.action === 'restore-file' || s.action === 'remove-file') && isNginxPath((s as { path: string }).path));
    return touched ? { reload: true } : undefined;
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
