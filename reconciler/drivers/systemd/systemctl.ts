import { HostKitError } from '../../core/errors.js';
import { describeExec, type Host } from '../../hosts/types.js';

export const SHOW_PROPERTIES = ['Id', 'LoadState', 'ActiveState', 'SubState', 'UnitFileState', 'NeedDaemonReload', 'InvocationID', 'Result'] as const;
export type UnitState = Record<(typeof SHOW_PROPERTIES)[number], string>;

/**
 * The state of many units from ONE `systemctl show` process (not one per
 * unit). systemctl prints one block per unit, in argument order, separated by
 * blank lines.
 */
export async function showUnits(host: Host, units: readonly string[]): Promise<Map<string, UnitState>> {
  const out = new Map<string, UnitState>();
  if (units.length === 0) return out;
  const result = await host.exec('systemctl', ['show', '--no-pager', `--property=${SHOW_PROPERTIES.join(',')}`, '--', ...units]);
  if (result.exitCode !== 0) throw new HostKitError('SYSTEMCTL_SHOW_FAILED', describeExec('systemctl', ['show', '...'], result), { retryable: true });
  const blocks = result.stdout.split(/\n\s*\n/).filter((b) => b.trim() !== '');
  blocks.forEach((block, i) => {
    const state = Object.fromEntries(SHOW_PROPERTIES.map((p) => [p, ''])) as UnitState;
    for (const line of block.split('\n')) {
      const eq = line.indexOf('=');
      if (eq > 0) (state as Record<string, string>)[line.slice(0, eq)] = line.slice(eq + 1);
    }
    const unit = units[i];
    if (unit) out.set(unit, state);
  });
  return out;
}

/** The last lines of a unit's journal, for diagnostics: of its latest invocation when known. */
export async function journalTail(host: Host, unit: string, invocationId?: string, lines = 20): Promise<string> {
  const filter = invocationId && /^[0-9a-f]{32}$/.test(invocationId) ? [`_SYSTEMD_INVOCATION_ID=${invocationId}`] : ['--unit', unit];
  const result = await host.exec('journalctl', [...filter, '--lines', String(lines), '--no-pager', '--output', 'cat']);
  return (result.stdout || result.stderr).trim();
}
