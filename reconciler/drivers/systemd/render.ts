import { shownPlain } from '../../core/credentials.js';
import { HostKitError } from '../../core/errors.js';
import type { Fingerprint } from '../../core/secrets.js';
import type { TimerSpec, UnitSpec } from '../../core/specs.js';
import { programProblem, systemdText } from '../../core/strict-values.js';

import { HEADER, PROFILES } from '../shared/unit-files.js';

export { HEADER, UNIT_DIR } from '../shared/unit-files.js';

// systemd C-unescapes quoted words of Exec and Environment lines: a control
// character written as \xNN reads back as itself.
function quoted(text: string): string {
  const escaped = text
    .replace(/\\/g, '\\\\')
    .replace(/"/g, '\\"')
    .replace(/%/g, '%%')
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return `"${escaped}"`;
}

// One argument of an Exec line, quoted so systemd reads back exactly this
// string: no specifier (%) or variable ($, written $$) expansion, no word splitting.
export function execArg(arg: string): string {
  return quoted(arg).replace(/\$/g, '$$$$');
}

/**
 * An Exec line. Throws SYSTEMD_UNSAFE_PROGRAM when argv[0] could be read as
 * an Exec prefix (`+` runs as root, ignoring User= and the sandbox) or is not
 * a plain path or name: nothing is rendered, so nothing is written.
 */
export function execLine(command: readonly string[]): string {
  const [program, ...args] = command;
  const problem = programProblem(program);
  if (problem) throw new HostKitError('SYSTEMD_UNSAFE_PROGRAM', `refusing to render ${problem}`, { data: { program } });
  // A plain path or name (checked above); a bare name is looked up in PATH by systemd.
  return [program!, ...args.map(execArg)].join(' ');
}

// Environment= does no $ expansion (a $$ would reach the process as two
// dollars) but does expand specifiers and C escapes: quoted() alone is exact.
export function envAssignment(key: string, value: string): string {
  return quoted(`${key}=${value}`);
}

/** The KEY=value an Environment= word holds, as quoted() wrote it (\\xNN, \\\\, \\" and %% read back). */
function envWord(word: string): string {
  const inner = word.length >= 2 && word.startsWith('"') && word.endsWith('"') ? word.slice(1, -1) : word;
  return inner.replace(/\\x([0-9a-f]{2})|\\(["\\])|%%/g, (_match: string, hex?: string, escaped?: string) =>
    hex !== undefined ? String.fromCharCode(parseInt(hex, 16)) : (escaped ?? '%'),
  );
}

/**
 * A unit file as a plan may show it: an Environment= value that looks like a
 * credential is replaced by its length and fingerprint (core/credentials.ts).
 */
export function redactUnitText(text: string, fingerprint: Fingerprint): string {
  return text
    .split('\n')
    .map((line) => {
      if (!line.startsWith('Environment=')) return line;
      const assignment = envWord(line.slice('Environment='.length));
      const eq = assignment.indexOf('=');
      const shown = eq > 0 ? shownPlain(assignment.slice(0, eq), assignment.slice(eq + 1), fingerprint) : undefined;
      return shown === undefined ? line : `Environment=${assignment.slice(0, eq)}=${shown}`;
    })
    .join('\n');
}

/**
 * A service unit. `readsDigest` is the digest of every file the service reads
 * (its env file, its config files): it is part of the unit text, so "unit
 * unchanged" also means "its inputs unchanged", and a changed input restarts it.
 */
export function renderService(spec: UnitSpec, readsDigest: string | undefined, timerDriven: boolean): string {
  const lines: string[] = [HEADER.trimEnd()];
  if (readsDigest) lines.push(`# HostKit inputs: ${spec.reads.join(' ')} hmac:${readsDigest}`);
  lines.push('[Unit]', `Description=${systemdText(spec.description)}`, 'After=network-online.target', 'Wants=network-online.target', '');
  lines.push('[Service]', `Type=${spec.type}`, `User=${spec.user}`, `Group=${spec.group}`);
  if (spec.workingDirectory) lines.push(`WorkingDirectory=${spec.workingDirectory}`);
  if (spec.environmentFile) lines.push(`EnvironmentFile=${spec.environmentFile}`);
  for (const [k, v] of Object.entries(spec.environment)) lines.push(`Environment=${envAssignment(k, v)}`);
  lines.push(`ExecStart=${execLine(spec.command)}`);
  if (spec.type === 'simple') lines.push(`Restart=${spec.restart}`, 'RestartSec=2s');
  const profile = PROFILES[spec.isolation.profile];
  lines.push(...profile);
  if (profile.includes('ProtectSystem=strict') && spec.isolation.writablePaths.length > 0) {
    lines.push(`ReadWritePaths=${spec.isolation.writablePaths.map((p) => `-${p}`).join(' ')}`);
  }
  if (spec.isolation.network === 'loopback-only') lines.push('IPAddressDeny=any', 'IPAddressAllow=localhost');
  if (spec.limits.memoryMax) lines.push(`MemoryMax=${spec.limits.memoryMax}`);
  if (spec.limits.memoryHigh) lines.push(`MemoryHigh=${spec.limits.memoryHigh}`);
  if (spec.limits.cpuQuota) lines.push(`CPUQuota=${spec.limits.cpuQuota}`);
  if (spec.limits.tasksMax) lines.push(`TasksMax=${spec.limits.tasksMax}`);
  if (!timerDriven) lines.push('', '[Install]', 'WantedBy=multi-user.target');
  return lines.join('\n') + '\n';
}

export function renderTimer(spec: TimerSpec): string {
  return [
    HEADER.trimEnd(),
    `# schedule: ${spec.schedule}`,
    '[Unit]',
    `Description=Schedule of ${spec.service}`,
    '',
    '[Timer]',
    ...spec.onCalendar.map((e) => `OnCalendar=${e}`),
    // systemd's default accuracy is a minute; a schedule should fire when it says.
    'AccuracySec=1s',
    `Persistent=${spec.persistent ? 'true' : 'false'}`,
    `Unit=${spec.service}`,
    '',
    '[Install]',
    'WantedBy=timers.target',
    '',
  ].join('\n');
}
