import path from 'node:path';
import { findOp, type Change } from '../../diff/model.js';
import { describeExec } from '../../hosts/types.js';
import type { AfterRestore, Restore } from '../types.js';
import { pendingPath, readPending, writePending } from './pending.js';
import { journalTail, RESTART_GRACE_MS, showUnits } from './systemctl.js';
import { UNIT_DIR } from './render.js';
import type { ObservedUnit, UnitOp } from './driver.js';

// The undo of a unit or timer change: its file and the drop-ins apply removes
// come back from the run journal, with the list of owed restarts as it was
// before the run (STATE/systemd-pending.json); whether the unit was running and
// enabled is a record of the journal. Once the files are back, one `systemctl
// disable --now` of the units that did not exist before (before their files go),
// then one daemon-reload, and one restart of the restored units that were
// running. The units are found by path, whoever backed them up (the firewall's
// boot unit is the firewall driver's file).

interface UnitRecord {
  unit: string;
  active: boolean;
  enabled: boolean;
}

export interface UnitsAfterRestore {
  restart: string[];
  stop: string[];
  /** Enabled again, as they were (a unit that does not run, e.g. the firewall's boot unit, is not started). */
  enable: string[];
}

function isUnitPath(p: string): boolean {
  return p.startsWith(`${UNIT_DIR}/`) && !p.slice(UNIT_DIR.length + 1).includes('/');
}

// Whether a unit, as its file reads, should be running (journals without a unit record): services that are not timer-driven, and timers.
function unitRuns(name: string, content: Buffer | undefined): boolean {
  if (!content) return false;
  if (name.endsWith('.timer')) return true;
  return name.endsWith('.service') && !/^Type=oneshot$/m.test(content.toString('utf8'));
}

export function unitRestore(
  unitOf: (change: Change<unknown, ObservedUnit>) => string | undefined,
  options: { after: boolean },
): Restore<Change<unknown, ObservedUnit, unknown, UnitOp>, UnitRecord> {
  return {
    async backup(change, journal) {
      const unit = unitOf(change);
      if (!unit) return;
      const file = `${UNIT_DIR}/${unit}`;
      const dropIns = (findOp(change, 'remove-drop-ins')?.dropIns ?? []).map((name) => `${file}.d/${name}`);
      await journal.backupFiles([pendingPath(journal.stateDirectory), file, ...dropIns]);
      const state = change.observed?.state;
      if (state) await journal.backupState('unit', { unit, active: state.active === 'active', enabled: state.enabled } satisfies UnitRecord);
    },
    ...(options.after ? { after: afterRestore } : {}),
  };
}

const afterRestore: AfterRestore<UnitsAfterRestore> = {
  async plan(steps, changes, _host, readBackup) {
    const records = new Map(
      changes.flatMap((c) =>
        c.records.filter((r) => r.key === 'unit').map((r) => [(r.data as UnitRecord).unit, { ...(r.data as UnitRecord), applied: c.applied }] as const),
      ),
    );
    const out: UnitsAfterRestore = { restart: [], stop: [], enable: [] };
    for (const s of steps) {
      if ((s.action !== 'restore-file' && s.action !== 'remove-file') || !isUnitPath((s as { path: string }).path)) continue;
      const unit = path.posix.basename((s as { path: string }).path);
      const unchanged = (s as { unchanged: boolean }).unchanged;
      if (s.action === 'remove-file') {
        if (!unchanged) out.stop.push(unit); // else never written: nothing to stop
        continue;
      }
      const record = records.get(unit);
      if (record) {
        // A change that applied may have restarted it for an input (an env file) now put back, its file as before;
        // one that failed before its file changed (systemd-analyze rejected it) left it running as it was.
        if (unchanged && !record.applied) continue;
        if (record.active) out.restart.push(unit);
        if (record.enabled) out.enable.push(unit);
        continue;
      }
      if (unchanged) continue; // a file another driver wrote (the firewall's boot unit), left as it was
      const before = await readBackup((s as { backup: string }).backup);
      if (unitRuns(unit, before)) out.restart.push(unit);
      if (before && /^\[Install\]$/m.test(before.toString('utf8'))) out.enable.push(unit);
    }
    const unique = { restart: [...new Set(out.restart)], stop: [...new Set(out.stop)], enable: [...new Set(out.enable)] };
    return unique.restart.length + unique.stop.length + unique.enable.length > 0 ? unique : undefined;
  },

  describe: (p) => [
    ...(p.stop.length > 0 ? [`  stop and disable ${p.stop.join(' ')}`] : []),
    ...(p.restart.length > 0 ? [`  daemon-reload, then restart ${p.restart.join(' ')}`] : []),
    ...(p.enable.length > 0 ? [`  enable ${p.enable.join(' ')} (as before)`] : []),
  ],

  // Before their files go: a unit whose file is gone cannot be disabled by name.
  async before(p, ctx) {
    for (const unit of p.stop) await ctx.host.exec('systemctl', ['disable', '--now', unit]); // best effort: it may not be loaded
  },

  async apply(p, ctx) {
    const host = ctx.host;
    // Links only: the daemon-reload below loads them.
    if (p.enable.length > 0) {
      const r = await host.exec('systemctl', ['enable', '--no-reload', '--', ...p.enable]);
      if (r.exitCode !== 0) throw new Error(describeExec('systemctl', ['enable', '--no-reload', '--', ...p.enable], r));
    }
    const reload = await host.exec('systemctl', ['daemon-reload']);
    if (reload.exitCode !== 0) throw new Error(describeExec('systemctl', ['daemon-reload'], reload));
    if (p.restart.length > 0) {
      const r = await host.exec('systemctl', ['restart', '--', ...p.restart]);
      if (r.exitCode !== 0) throw new Error(describeExec('systemctl', ['restart', ...p.restart], r));
    }
    const pending = await readPending(host, ctx.stateDirectory);
    for (const u of [...p.restart, ...p.stop]) pending.delete(u);
    await writePending(host, ctx.stateDirectory, pending);
    // The restore ends with the previous version serving, not starting: the restarted services must stay up past
    // the grace an apply gives them; one that does not is the restore's error, naming it with its journal.
    if (p.restart.length === 0) return;
    await new Promise((resolve) => setTimeout(resolve, RESTART_GRACE_MS));
    const states = await showUnits(host, p.restart);
    const down = p.restart.filter((u) => u.endsWith('.service') && states.get(u)?.ActiveState !== 'active');
    if (down.length > 0) {
      const tails = await Promise.all(down.map(async (u) => `${u}:\n${await journalTail(host, u, states.get(u)?.InvocationID)}`));
      throw new Error(`${down.join(', ')} did not stay up after the restore:\n${tails.join('\n')}`);
    }
  },
};
