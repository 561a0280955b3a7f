import type { CommandSpec } from '../../core/specs.js';
import { hasOp, type Change } from '../../diff/model.js';
import { describeExec } from '../../hosts/types.js';
import type { DriverRestoreStep, Restore } from '../types.js';
import { commandStatePath, runCommand, type CommandOp, type DesiredCommand } from './index.js';

// The undo of a lifecycle command: STATE/commands.json from the run journal (so a
// rolled-back command runs again next time), and its down command, run once: the
// restore records that it ran (`ran`), so neither a repeated restore nor the
// recovery of a run killed after it runs it twice. An irreversible command, or one
// without a down command, is reported and left as it is.

/** What a down command needs, recorded before the command runs (older journals keep it in the run's plan). */
export type DownRecord = Pick<CommandSpec, 'phase' | 'down' | 'irreversible' | 'user' | 'workingDirectory' | 'project' | 'timeoutMs'> & {
  environmentFile?: string;
};

type CommandStep =
  | { action: 'run-down'; resource: string; command: string[]; down: DownRecord }
  | { action: 'skip-irreversible'; resource: string; detail: string }
  | { action: 'keep'; resource: string; detail: string };

export const commandRestore: Restore<Change<DesiredCommand, unknown, CommandSpec, CommandOp>, DownRecord, CommandStep & DriverRestoreStep> = {
  async backup(change, journal) {
    await journal.backupFile(commandStatePath(journal.stateDirectory));
    const s = change.resource?.spec;
    if (!s || !hasOp(change, 'run')) return;
    const environmentFile = change.desired?.environmentFile;
    await journal.backupState('command', {
      project: s.project,
      phase: s.phase,
      irreversible: s.irreversible,
      user: s.user,
      workingDirectory: s.workingDirectory,
      ...(s.down ? { down: s.down } : {}),
      ...(s.timeoutMs !== undefined ? { timeoutMs: s.timeoutMs } : {}),
      ...(environmentFile ? { environmentFile } : {}),
    } satisfies DownRecord);
  },

  async plan(change) {
    const c = change.records.find((r) => r.key === 'command')?.data ?? change.planned?.command;
    if (!c || !change.begun || change.planned?.action === 'delete') return [];
    if (c.irreversible) return [{ action: 'skip-irreversible', resource: change.id, detail: 'declared irreversible: not undone' }];
    if (!c.down) return [{ action: 'keep', resource: change.id, detail: 'no down command declared: not undone' }];
    return change.applied && !change.ran ? [{ action: 'run-down', resource: change.id, command: c.down, down: c }] : [];
  },

  async apply(step, ctx) {
    if (step.action !== 'run-down') return step.detail;
    const c = step.down;
    const result = await runCommand(ctx.host, {
      argv: step.command,
      user: c.user,
      workingDirectory: c.workingDirectory,
      ...(c.environmentFile ? { environmentFile: c.environmentFile } : {}),
      ...(c.timeoutMs !== undefined ? { timeoutMs: c.timeoutMs } : {}),
      project: c.project,
    });
    await ctx.ran(result.exitCode === 0);
    if (result.exitCode !== 0) throw new Error(`down command failed: ${describeExec(step.command[0]!, step.command.slice(1), result)}`);
    ctx.log.info({ resource: step.resource }, 'down command ran');
  },

  describe: (step) =>
    step.action === 'run-down' ? `  run down command of ${step.resource}: ${step.command.join(' ')}` : `  skip    ${step.resource}: ${step.detail}`,
};
