import { randomBytes } from 'node:crypto';
import { errorMessage, HostKitError, isHostKitError } from '../../core/errors.js';
import { programProblem } from '../../core/strict-values.js';
import { commandLine } from '../../hosts/process.js';
import { DEFAULT_KILL_GRACE_MS, describeExec, type ExecResult, type Host } from '../../hosts/types.js';

// A command run the way a project's service runs, as a transient systemd unit
// (systemd-run): a lifecycle command and its down command (drivers/command),
// a command health check (apply/health.ts), a release's build step
// (drivers/release). Its unit's whole cgroup is stopped when it runs out of time.

export const COMMAND_TIMEOUT_MS = 10 * 60 * 1000;

/** Between SIGTERM and SIGKILL when a command runs out of time (its unit's TimeoutStopSec). */
export const COMMAND_KILL_GRACE_MS = DEFAULT_KILL_GRACE_MS;

// How long the systemd-run client may outlive its unit's own limit (timeout
// plus grace) before it is killed here and the unit stopped from outside.
const CLIENT_BACKSTOP_MS = 15_000;

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
  /** More unit properties (`-p`), e.g. a sandbox profile (a release's build). */
  properties?: readonly string[];
  /** Variables set in the unit (--setenv): plain values only, never secrets (they are in its arguments). */
  environment?: Readonly<Record<string, string>>;
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
    ...(run.properties ?? []).flatMap((p) => ['-p', p]),
    ...Object.entries(run.environment ?? {}).map(([k, v]) => `--setenv=${k}=${v}`),
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
