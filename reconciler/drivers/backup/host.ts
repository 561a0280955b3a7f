import type { HostPart } from '../manifest-types.js';
import { RESTIC_ENV, resticEnv } from './project.js';

// The host's restic repository, from the Host's spec.backup: restic's environment file is the
// host's, written whether or not a project backs up yet, so that rolling back the run that
// first needed it never leaves the checkpoints and backups already taken unreachable.
export const hostBackupEnvironment: HostPart = {
  name: 'backup repository',
  expand(x) {
    const backup = x.host.spec.backup;
    if (backup) x.add('envfile', RESTIC_ENV, resticEnv(backup), x.host.at('/spec/backup'), { shared: true });
  },
};
