import { HostKitError, isHostKitError } from '../../core/errors.js';
import { describeExec, PARSED_OUTPUT_MAX_BYTES, type Host } from '../../hosts/types.js';
import { run } from '../shared/exec.js';
import { TABLE_REF, type Table } from './model.js';
import { parseTable } from './parse.js';

// nft and systemd commands of the nftables driver: each one process, arguments
// as arrays, rules always on standard input (never on a command line).

export const REVERT_UNIT = 'hostkit-nft-revert';

/** `nft -j list table inet hostkit`: the table, or undefined when it does not exist. */
export async function readTable(host: Host): Promise<Table | undefined> {
  let result;
  try {
    result = await host.exec('nft', ['-j', 'list', 'table', ...TABLE_REF.split(' ')], { maxOutputBytes: PARSED_OUTPUT_MAX_BYTES });
  } catch (cause) {
    // No nft on the host yet (a package of this run installs it): no table of HostKit's can be loaded.
    if (isHostKitError(cause) && cause.code === 'EXEC_FAILED' && /No such file or directory|ENOENT/.test(cause.message)) return undefined;
    throw cause;
  }
  if (result.exitCode !== 0) {
    if (/No such file or directory/.test(result.stderr)) return undefined;
    throw nftFailed('NFT_LIST_FAILED', ['-j', 'list', 'table', ...TABLE_REF.split(' ')], result);
  }
  let json: unknown;
  try {
    json = JSON.parse(result.stdout);
  } catch (cause) {
    throw new HostKitError('NFT_OUTPUT_UNEXPECTED', `nft -j list table ${TABLE_REF} printed something that is not JSON: ${result.stdout.slice(0, 200)}`, {
      cause,
    });
  }
  return parseTable(json);
}

/** `nft list table inet hostkit` as text (loadable with nft -f), or undefined when it does not exist. */
export async function listTableText(host: Host): Promise<string | undefined> {
  const args = ['list', 'table', ...TABLE_REF.split(' ')];
  const result = await host.exec('nft', args, { maxOutputBytes: PARSED_OUTPUT_MAX_BYTES });
  if (result.exitCode === 0) return result.stdout;
  if (/No such file or directory/.test(result.stderr)) return undefined;
  throw nftFailed('NFT_LIST_FAILED', args, result);
}

/** `nft -c -f -`: the kernel checks the transaction without committing it. Throws with nft's message. */
export async function checkTransaction(host: Host, transaction: string): Promise<void> {
  const result = await host.exec('nft', ['-c', '-f', '-'], { input: transaction });
  if (result.exitCode !== 0) throw nftFailed('FIREWALL_REJECTED', ['-c', '-f', '-'], result, 'nft rejected the rendered table; nothing was changed');
}

/** `nft -f -`: one transaction; if it fails, the kernel applied none of it. */
export async function loadTransaction(host: Host, transaction: string): Promise<void> {
  const result = await host.exec('nft', ['-f', '-'], { input: transaction });
  if (result.exitCode !== 0) throw nftFailed('FIREWALL_LOAD_FAILED', ['-f', '-'], result, 'nft -f failed; the transaction was not applied');
}

/** Whether a revert timer is armed (left by a run that has not confirmed yet, or that died). */
export async function revertArmed(host: Host): Promise<boolean> {
  const result = await host.exec('systemctl', ['is-active', `${REVERT_UNIT}.timer`]);
  return result.stdout.trim() === 'active';
}

/**
 * Arm the timed revert: a transient timer that runs `nft -f revertFile` after
 * `timeoutMs` unless disarmed first. It lives in systemd, so it fires even if
 * this process dies or loses the host.
 */
export async function armRevert(host: Host, revertFile: string, timeoutMs: number): Promise<void> {
  await run(host, 'systemd-run', [
    `--unit=${REVERT_UNIT}`,
    '--description=HostKit: restore the previous firewall table (commit-confirmed)',
    `--on-active=${timeoutMs}ms`,
    '--timer-property=AccuracySec=100ms',
    '--collect',
    '--quiet',
    '--',
    'nft',
    '-f',
    revertFile,
  ]);
}

/** Cancel the timed revert. Succeeds when it is not armed (systemctl says "not loaded"). */
export async function disarmRevert(host: Host): Promise<void> {
  const args = ['stop', `${REVERT_UNIT}.timer`, `${REVERT_UNIT}.service`];
  const result = await host.exec('systemctl', args);
  const problems = result.stderr.split('\n').filter((l) => l.trim() !== '' && !/not loaded/.test(l));
  if (result.exitCode !== 0 && problems.length > 0) throw nftFailed('FIREWALL_DISARM_FAILED', args, result, 'could not cancel the timed revert', 'systemctl');
}

function nftFailed(
  code: string,
  args: readonly string[],
  result: { exitCode: number; stdout: string; stderr: string },
  what?: string,
  file = 'nft',
): HostKitError {
  const message = describeExec(file, args, result);
  return new HostKitError(code, what ? `${what}: ${message}` : message, {
    data: { file, args: [...args], exitCode: result.exitCode, stderr: result.stderr.slice(-2000) },
  });
}
