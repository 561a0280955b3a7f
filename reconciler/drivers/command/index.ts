import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Diagnostic } from '../../core/diagnostics.js';
import { errorMessage, HostKitError, isHostKitError } from '../../core/errors.js';
import type { CommandSpec } from '../../core/specs.js';
import { programProblem } from '../../core/strict-values.js';
import { changeBase, hasOp, type Change } from '../../diff/model.js';
import { commandLine } from '../../hosts/process.js';
import { DEFAULT_KILL_GRACE_MS, describeExec, type ExecResult, type Host } from '../../hosts/types.js';
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

export const COMMAND_TIMEOUT_MS = 10 * 60 * 1000;

/** Between SIGTERM and SIGKILL when a command runs out of time (its unit's TimeoutStopSec). */
export const COMMAND_KILL_GRACE_MS = DEFAULT_KILL_GRACE_MS;

// How long the systemd-run client may outlive its unit's own limit (timeout
// plus grace) before it is killed here and the unit stopped from outside.
const CLIENT_BACKSTOP_MS = 15_000;

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

const COMMAND_UNIT_PREFIX = 'hostkit-command-';

/**
 * The transient unit a command runs as: hostkit-command-HEX.service, or
 * hostkit-command-PROJECT-HEX.service for a project's lifecycle command and its
 * down command, so the journal's lines about it name the project (`hostkit logs`).
 */
export function commandUnitName(project?: string): string {
  return `${COMMAND_UNIT_PREFIX}${project ? `${project}-` : ''}${randomBytes(5).toString('hex')}.service`;
}

/** Whether `unit` is one a lifecycle command of `project` ran as (exactly: ten hex digits follow the name). */
export function isLifecycleUnitOf(unit: string, project: string): boolean {
  return unit.startsWith(`${COMMAND_UNIT_PREFIX}${project}-`) && /^[0-9a-f]{10}\.service$/.test(unit.slice(COMMAND_UNIT_PREFIX.length + project.length + 1));
}

export interface CommandRun {
  argv: readonly string[];
  user: string;
  workingDirectory: string;
  environmentFile?: string;
  /** Default COMMAND_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Default COMMAND_KILL_GRACE_MS. */
  killGraceMs?: number;
  /** A lifecycle command's project: named in its unit's name (commandUnitName). */
  project?: string;
}

/**
 * Run one command the way its project's service runs; resolves with its exit
 * code and output (the tail, see ExecOptions.maxOutputBytes). Rejects with
 * COMMAND_TIMED_OUT when it runs out of time: its unit's processes got
 * SIGTERM, then SIGKILL after the grace, and the unit is gone (collected by
 * systemd, or, when systemd-run itself did not return, killed and stopped from
 * here). If stopping the unit fails too, the error says so and names the unit.
 * Rejects with SYSTEMD_UNSAFE_PROGRAM, before anything runs, when argv[0] is
 * not a plain path or name (a systemd Exec prefix such as `+`).
 */
export async function runCommand(host: Host, run: CommandRun): Promise<ExecResult> {
  // Checked again here (the schema refuses it first): nothing is started for a program systemd could read as a prefix.
  const problem = programProblem(run.argv[0]);
  if (problem) throw new HostKitError('SYSTEMD_UNSAFE_PROGRAM', `refusing to run ${problem}`, { data: { program: run.argv[0] } });
  const timeoutMs = run.timeoutMs ?? COMMAND_TIMEOUT_MS;
  const graceMs = run.killGraceMs ?? COMMAND_KILL_GRACE_MS;
  const unit = commandUnitName(run.project);
  // Not --quiet: systemd-run's closing "Finished with result: timeout" is what
  // tells a command stopped by RuntimeMaxSec= from one that exited 1.
  const args = [
    '--wait',
    '--pipe',
    '--collect',
    `--unit=${unit}`,
    '--service-type=exec',
    '-p',
    `User=${run.user}`,
    '-p',
    `WorkingDirectory=${run.workingDirectory}`,
    '-p',
    `RuntimeMaxSec=${timeoutMs}ms`,
    '-p',
    `TimeoutStopSec=${graceMs}ms`,
    '-p',
    'KillMode=control-group',
    ...(run.environmentFile ? ['-p', `EnvironmentFile=-${run.environmentFile}`] : []),
    '--',
    ...run.argv,
  ];
  const command = commandLine(run.argv[0]!, run.argv.slice(1));
  const data = { unit, command: [...run.argv], timeoutMs, killGraceMs: graceMs };
  let result: ExecResult;
  try {
    result = await host.exec('systemd-run', args, { timeoutMs: timeoutMs + graceMs + CLIENT_BACKSTOP_MS });
  } catch (error) {
    if (!isHostKitError(error) || error.code !== 'EXEC_TIMED_OUT') throw error;
    const left = await killUnit(host, unit);
    throw new HostKitError(
      'COMMAND_TIMED_OUT',
      `${command} timed out: systemd-run did not return within ${seconds(timeoutMs + graceMs + CLIENT_BACKSTOP_MS)}, ${left ?? `its unit ${unit} was killed`}`,
      { data, cause: error },
    );
  }
  const report = splitReport(result.stderr);
  if (report.result === 'timeout') {
    const end = report.killedBy === 'KILL' ? `SIGTERM, then SIGKILL after ${seconds(graceMs)}` : 'SIGTERM';
    throw new HostKitError('COMMAND_TIMED_OUT', `${command} timed out after ${seconds(timeoutMs)}: its unit ${unit} got ${end}`, {
      data: { ...data, stderr: report.stderr.slice(-2000) },
    });
  }
  return { ...result, stderr: report.stderr };
}

// systemd-run's own lines, printed to its stderr around the command's:
// "Running as unit: X" first, "Finished with result: R" and a few
// "Name: value" lines (exit status, runtime, ...) last.
function splitReport(stderr: string): { stderr: string; result?: string; killedBy?: string } {
  const body = stderr.replace(/^Running as unit: [^\n]*\n/, '');
  const at = body.lastIndexOf('Finished with result: ');
  if (at === -1 || (at > 0 && body[at - 1] !== '\n')) return { stderr: body };
  const trailer = body.slice(at);
  const result = /^Finished with result: (\S+)/.exec(trailer)?.[1];
  const killedBy = /^Main processes terminated with: code=killed\/status=(\w+)/m.exec(trailer)?.[1];
  return { stderr: body.slice(0, at), ...(result ? { result } : {}), ...(killedBy ? { killedBy } : {}) };
}

// The backstop: SIGKILL to every process of the unit, then stop it (a
// collected unit is already gone: "not loaded" is fine). Returns what could
// not be done, or undefined.
async function killUnit(host: Host, unit: string): Promise<string | undefined> {
  const problems: string[] = [];
  for (const args of [
    ['kill', '--signal=SIGKILL', '--', unit],
    ['stop', '--', unit],
  ]) {
    const r = await host.exec('systemctl', args, { timeoutMs: 30_000 }).catch((e: unknown) => ({ exitCode: -1, stdout: '', stderr: errorMessage(e) }));
    if (r.exitCode !== 0 && !/not loaded|not found/i.test(r.stderr)) problems.push(describeExec('systemctl', args, r));
  }
  return problems.length === 0 ? undefined : `and its unit ${unit} may still run: ${problems.join('; ')}`;
}

function seconds(ms: number): string {
  return `${ms / 1000} s`;
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
    const result = await runCommand(ctx.host, {
      argv: spec.command,
      user: spec.user,
      workingDirectory: spec.workingDirectory,
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
