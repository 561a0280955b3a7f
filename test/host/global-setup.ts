// vitest globalSetup for the `host` project: before any host test file runs,
// make sure the pristine root file systems (standard and bare) and the local
// apt repository exist (building each on first use, one after the other)
// and clean up hosts a crashed earlier run left behind; after the run, clean
// up after test processes that were killed before they could stop their hosts.
import { sweepStaleMachines } from './machine.js';
import { hostSuiteUnavailable, inCi } from './prerequisites.js';
import { ensureAptRepo } from './apt-repo.js';
import { ensureRootfs } from './rootfs.js';

export default async function setup(): Promise<(() => Promise<void>) | undefined> {
  const reason = hostSuiteUnavailable();
  if (reason !== undefined) {
    if (inCi()) throw new Error(`The real-host suite must run in CI but cannot: ${reason}`);
    process.stderr.write(`[host] real-host tests will be skipped: ${reason}\n`);
    return undefined;
  }
  await ensureRootfs();
  await ensureRootfs({ variant: 'bare' });
  await ensureAptRepo();
  await sweepStaleMachines();
  return sweepStaleMachines;
}
