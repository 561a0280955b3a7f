import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Diagnostic } from '../../core/diagnostics.js';
import { HostKitError, isHostKitError } from '../../core/errors.js';
import type { CommandSpec } from '../../core/specs.js';
import { changeBase, hasOp, type Change } from '../../diff/model.js';
import { describeExec, type Host } from '../../hosts/types.js';
import { runCommand } from '../shared/transient.js';
import type { Driver, WithSettleFirst } from '../types.js';
import { commandRestore } from './restore.js';
import { writeRootFile } from '../../hosts/root-files.js';
import { commandDefinition } from './definition.js';

// Lifecycle commands (a project's `lifecycle:`): a migration before the new
// service starts, a cache warm-up after. A command runs when it never ran on
// this host, or when its spec or one of its project's inputs (config files,
// env file: the digests the project's service unit also carries) changed since
// it last ran successfully; otherwise it is left alone. What ran is recorded in
// STATE/commands.json. It runs as the project's user, in its working directory,
// with its env file, as an argument array (a transient systemd unit, so it sees
// exactly what the service sees), and is stopped after its `timeout` (default
// COMMAND_TIMEOUT_MS): systemd sends SIGTERM to the unit's whole cgroup, then
// SIGKILL after COMMAND_KILL_GRACE_MS, so nothing it started outlives it.

export { COMMAND_KILL_GRACE_MS, COMMAND_TIMEOUT_MS, commandUnitName, isLifecycleUnitOf, runCommand, type CommandRun } from '../shared/transient.js';

export interface DesiredCommand {
  digest: string;
  environmentFile?: string;
}

export interface CommandRecord {
  digest: string;
  at: string;
}

export interface CommandUndo {
  previous?: CommandRecord;
  ran: boolean;
}

export function commandStatePath(stateDirectory: string): string {
  return path.posix.join(stateDirectory, 'commands.json');
}

async function readRecords(host: Host, stateDirectory: string): Promise<Record<string, CommandRecord>> {
  const bytes = await host.readFile(commandStatePath(stateDirectory));
  if (!bytes) return {};
  try {
    return (JSON.parse(bytes.toString('utf8')) as { commands?: Record<string, CommandRecord> }).commands ?? {};
  } catch {
    return {};
  }
}

async function writeRecord(host: Host, stateDirectory: string, id: string, record: CommandRecord | undefined): Promise<void> {
  const records = await readRecords(host, stateDirectory);
  if (record) records[id] = record;
  else delete records[id];
  await writeRootFile(host, commandStatePath(stateDirectory), JSON.stringify({ commands: records }, null, 1) + '\n');
}

function specOf(change: Change): CommandSpec {
  return change.resource!.spec as CommandSpec;
}

/** What apply does: run the command (then record its digest), or forget its record (a removed command is not undone). */
export type CommandOp = { op: 'run' } | { op: 'forget' };

export const commandDriver: Driver<CommandSpec, DesiredCommand, CommandRecord, CommandUndo, 'command', void, CommandOp> & WithSettleFirst = {
  ...commandDefinition,

  // An after-start command runs once the services before it were restarted (and, in apply, are past their grace).
  settleFirst: (change) => specOf(change).phase === 'after-start',

  // The digest covers the spec and the project's inputs (files and env file it depends on).
  async desire(resources, ctx) {
    const out = new Map<string, { desired: DesiredCommand; diagnostics: Diagnostic[] }>();
    for (const r of resources) {
      const inputs = r.dependsOn
        .filter((id) => id.startsWith('file/') || id.startsWith('envfile/'))
        .sort()
        .map((id) => {
          const p = '/' + id.slice(id.indexOf('/') + 1);
          return `${p}:${ctx.fileDigests.get(p) ?? 'unknown'}`;
        });
      // Run in a project's current release (drivers/release): a new release is a new input.
      const release = ctx.fileDigests.get(r.spec.workingDirectory);
      if (release) inputs.push(`${r.spec.workingDirectory}:${release}`);
      // How long it may take is not what it does: a new timeout alone does not run it again.
      const { timeoutMs: _timeout, ...what } = r.spec;
      const digest = createHash('sha256')
        .update(JSON.stringify({ ...what, inputs }))
        .digest('hex')
        .slice(0, 32);
      const env = r.dependsOn.find((id) => id.startsWith('envfile/'));
      out.set(r.id, { desired: { digest, ...(env ? { environmentFile: '/' + env.slice('envfile/'.length) } : {}) }, diagnostics: [] });
    }
    return out;
  },

  async observe(resources, ctx) {
    const records = await readRecords(ctx.host, ctx.stateDirectory);
    const out = new Map<string, CommandRecord>();
    for (const r of resources) if (records[r.id]) out.set(r.id, records[r.id]!);
    return out;
  },

  plan({ resource, desired, observed, orphan }) {
    const base = changeBase(resource);
    const spec = resource.spec;
    if (orphan || !desired) {
      // A removed command is forgotten; its down command is not run (that is what a down plan is for).
      if (!observed) return { ...base, action: 'noop', fields: [], ops: [], disruptive: false, reason: 'already forgotten' };
      const reason = 'no manifest declares it any more: forgotten, not undone';
      return { ...base, action: 'delete', fields: [], ops: [{ op: 'forget' }], disruptive: false, reason, observed };
    }
    const fields = [{ field: '/command', after: spec.command.join(' ') }];
    const ops: CommandOp[] = [{ op: 'run' }];
    const when = spec.phase === 'before-start' ? 'before the service (re)starts' : 'after the service (re)started';
    if (!observed) return { ...base, action: 'create', fields, ops, disruptive: true, reason: `never ran here: runs ${when}`, desired };
    if (observed.digest !== desired.digest) {
      const reason = `its spec or the project's inputs changed: runs ${when}`;
      return { ...base, action: 'update', fields, ops, disruptive: true, reason, desired, observed };
    }
    return { ...base, action: 'noop', fields: [], ops: [], disruptive: false, desired, observed };
  },

  // If the command fails, nothing is recorded (it runs again next time) and the run rolls back.
  async apply(change, ctx) {
    const previous = (await readRecords(ctx.host, ctx.stateDirectory))[change.id];
    const undo: CommandUndo = { ran: false, ...(previous ? { previous } : {}) };
    if (hasOp(change, 'forget')) await writeRecord(ctx.host, ctx.stateDirectory, change.id, undefined);
    if (!hasOp(change, 'run')) return undo;
    const spec = specOf(change);
    const desired = change.desired!;
    if (spec.phase === 'after-start') await ctx.run.restarts.allUp();
    // A blue-green project's `current` switches with nginx, after its before-start commands: they run in the release being deployed.
    const deferred = ctx.run.switches.of(spec.project);
    const workingDirectory = deferred && spec.workingDirectory === deferred.link ? deferred.directory : spec.workingDirectory;
    const result = await runCommand(ctx.host, {
      argv: spec.command,
      user: spec.user,
      workingDirectory,
      ...(desired.environmentFile ? { environmentFile: desired.environmentFile } : {}),
      ...(spec.timeoutMs !== undefined ? { timeoutMs: spec.timeoutMs } : {}),
      project: spec.project,
    }).catch((error: unknown) => {
      if (!isHostKitError(error) || error.code !== 'COMMAND_TIMED_OUT') throw error;
      throw new HostKitError('LIFECYCLE_COMMAND_FAILED', `lifecycle command ${spec.name} of ${spec.project} failed: ${error.message}`, {
        data: { resourceId: change.id, timedOut: true, unit: error.data.unit },
        cause: error,
      });
    });
    if (result.exitCode !== 0) {
      throw new HostKitError(
        'LIFECYCLE_COMMAND_FAILED',
        `lifecycle command ${spec.name} of ${spec.project} failed: ${describeExec(spec.command[0]!, spec.command.slice(1), result)}`,
        {
          data: { resourceId: change.id, exitCode: result.exitCode },
        },
      );
    }
    undo.ran = true;
    await writeRecord(ctx.host, ctx.stateDirectory, change.id, { digest: desired.digest, at: new Date().toISOString() });
    return undo;
  },

  async verify() {
    return [];
  },

  // Its record comes back from the run journal and its down command runs once (restore.ts).
  restore: commandRestore,
};
