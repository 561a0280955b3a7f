import type { SudoRule } from './spec.js';

// What an Account's login access looks like as text on the host, and the checks
// the schema's patterns cannot make. Light (no driver code): manifest.ts uses it
// for validation, the drivers for rendering.

/** Key types sshd (OpenSSH 9) accepts by default; DSA is off there since 7.0. */
export const KEY_TYPES = [
  'ssh-ed25519',
  'ssh-rsa',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
] as const;

/**
 * One authorized_keys line as HostKit takes it: key type, base64 blob, optional comment
 * (printable, one line). No options prefix (`command=`, `from=`...): a key grants a login.
 */
export const KEY_PATTERN = `^(?:${KEY_TYPES.map((t) => t.replaceAll('.', '\\.')).join('|')}) [A-Za-z0-9+/]{16,16384}={0,3}(?: [^\\u0000-\\u001f\\u007f]{1,256})?$`;

/** A sudo command: an absolute path of plain characters (no `.` or `..` step), or ALL. */
export const SUDO_COMMAND_PATTERN = '^(?:ALL|(?:/(?!\\.\\.?(?:/|$))[A-Za-z0-9._+-]+)+)$';

/**
 * Why a key line that matches KEY_PATTERN is still not a key, or undefined: its blob must
 * decode to the same key type it is written with (a pasted line with a piece missing
 * would otherwise be written, and sshd would skip it without a word).
 */
export function keyProblem(line: string): string | undefined {
  const [type, blob] = line.split(' ');
  const bytes = Buffer.from(blob!, 'base64');
  if (bytes.toString('base64') !== blob) return 'its base64 does not decode cleanly';
  const length = bytes.length >= 4 ? bytes.readUInt32BE(0) : -1;
  const inner = length >= 0 && length <= bytes.length - 4 ? bytes.subarray(4, 4 + length).toString('latin1') : undefined;
  if (inner !== type) return `its key data is not a ${type} key${inner ? ` (it says ${JSON.stringify(inner.slice(0, 40))})` : ''}`;
  return undefined;
}

/** The authorized_keys file: a header, then one key a line. */
export function renderKeys(resourceId: string, keys: readonly string[]): string {
  return `# Written by HostKit (${resourceId}); HostKit owns this file: a change here is undone on its next run.\n${keys.map((k) => `${k}\n`).join('')}`;
}

/** The sudoers file: one `USER ALL=(RUNAS) [NOPASSWD:] CMD, CMD` line a rule. */
export function renderSudoers(resourceId: string, user: string, rules: readonly SudoRule[]): string {
  const lines = rules.map((r) => `${user} ALL=(${r.runAs}) ${r.password ? '' : 'NOPASSWD: '}${r.commands.join(', ')}`);
  return `# Written by HostKit (${resourceId}); a change here is undone on its next run.\n${lines.map((l) => `${l}\n`).join('')}`;
}
