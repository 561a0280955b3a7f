import type { CertificateSpec } from '../../core/specs.js';
import type { Change } from '../../diff/model.js';
import type { Host } from '../../hosts/types.js';
import type { Restore } from '../types.js';
import { certificatePaths } from '../shared/web.js';
import { inspectCertificate } from './x509.js';
import { backupPath, describeRemoveDirectories, planRemoveDirectories, removeDirectories, type RemoveDirectoriesStep } from '../shared/undo.js';

// The undo of a certificate change: the previous certificate and key come back
// from the run journal (or go, if there were none); nginx reloads once after the
// restore because it reads them (nginx/restore.ts finds them by path). A
// certificate the CA issued since is kept when it covers every name the previous
// one did: it serves the restored sites, and ordering it again would burn rate limit.

interface PreviousRecord {
  /** The serial and names of the certificate before the change; absent when there was none. */
  serial?: string;
  names?: string[];
}

async function inspect(host: Host, name: string) {
  const { certificate, key } = certificatePaths(name);
  const chain = await host.readFile(certificate);
  if (!chain) return undefined;
  const info = inspectCertificate(chain, await host.readFile(key));
  return typeof info === 'string' ? undefined : info;
}

export const certificateRestore: Restore<Change<unknown, unknown, CertificateSpec>, PreviousRecord & { name: string }, RemoveDirectoriesStep> = {
  async backup(change, journal) {
    const name = change.resource?.spec.name;
    if (!name) return;
    const { certificate, key } = certificatePaths(name);
    const before = await inspect(journal.host, name);
    await journal.backupState('previous', { name, ...(before ? { serial: before.serial, names: before.names } : {}) });
    await backupPath(journal, certificate);
    await journal.backupFile(key);
  },

  // The directories made for it go again once empty.
  plan: (change, host) => planRemoveDirectories(change as never, host),
  apply: async (step, ctx) => removeDirectories(ctx.host, step),
  describe: describeRemoveDirectories,

  async keepFiles(change, host) {
    const previous = change.records.find((r) => r.key === 'previous')?.data;
    if (!previous) return undefined;
    const now = await inspect(host, previous.name);
    if (!now || now.selfSigned || now.placeholder || !now.keyMatches || now.notAfter <= Date.now() || now.serial === previous.serial) return undefined;
    if (!(previous.names ?? []).every((n) => now.names.includes(n))) return undefined;
    return `the certificate the CA issued (serial ${now.serial}) is kept: it covers the names before, and ordering it again would burn rate limit`;
  },
};
