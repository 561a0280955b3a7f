import type { CertificateSpec } from '../../core/specs.js';
import type { Change } from '../../diff/model.js';
import type { Restore } from '../types.js';
import { certificatePaths } from '../nginx/paths.js';

// The undo of a certificate change: the previous certificate and key come back
// from the run journal (or go, if there were none); nginx reloads once after the
// restore because it reads them (nginx/restore.ts finds them by path).
export const certificateRestore: Restore<Change<unknown, unknown, CertificateSpec>> = {
  async backup(change, journal) {
    const name = change.resource?.spec.name;
    if (!name) return;
    const { certificate, key } = certificatePaths(name);
    await journal.backupFile(certificate);
    await journal.backupFile(key);
  },
};
