// The sysctl command: live values read for many keys in one process, a file of
// /etc/sysctl.d loaded, values written back.
import type { Host } from '../../hosts/types.js';
import { run } from '../shared/exec.js';

/** Live values by key; a key missing here was not read, and `problems` says why when sysctl did. */
export interface LiveValues {
  values: Record<string, string>;
  problems: Record<string, string>;
}

/** How sysctl prints a value may differ in spacing from how it was written (tabs in net.ipv4.tcp_rmem). */
export function sameValue(a: string, b: string): boolean {
  return a.trim().split(/\s+/).join(' ') === b.trim().split(/\s+/).join(' ');
}

/**
 * One `sysctl KEY...` for every key: "KEY = VALUE" lines (the names, not -n, so a
 * key the kernel lacks cannot shift the values of those after it). sysctl goes on
 * past keys it cannot read and names each on stderr.
 */
export async function readLive(host: Host, keys: readonly string[]): Promise<LiveValues> {
  const live: LiveValues = { values: {}, problems: {} };
  if (keys.length === 0) return live;
  const wanted = new Set(keys);
  const result = await host.exec('sysctl', ['--', ...wanted]);
  for (const line of result.stdout.split('\n')) {
    const at = line.indexOf(' = ');
    const key = at > 0 ? line.slice(0, at) : line.endsWith(' =') ? line.slice(0, -2) : '';
    if (wanted.has(key)) live.values[key] = at > 0 ? line.slice(at + 3) : '';
  }
  const errors = result.stderr.split('\n').filter((l) => l.trim() !== '');
  for (const key of wanted) {
    if (key in live.values) continue;
    const proc = `/proc/sys/${key.replaceAll('.', '/')}`;
    const said = errors.find((l) => l.includes(`${proc}:`) || l.includes(`'${key}'`) || l.includes(`"${key}"`));
    live.problems[key] =
      said?.replace(/^sysctl: /, '') ??
      `sysctl printed no value for it${result.exitCode !== 0 ? ` (exit ${result.exitCode}${errors[0] ? `: ${errors[0]}` : ''})` : ''}`;
  }
  return live;
}

/** Apply a file's parameters now (`sysctl --load FILE`); throws naming the keys sysctl refused. */
export async function loadFile(host: Host, file: string): Promise<void> {
  await run(host, 'sysctl', ['--quiet', '--load', file]);
}

/** Write values now, all in one `sysctl --write`. */
export async function writeValues(host: Host, values: Record<string, string>): Promise<void> {
  const args = Object.entries(values).map(([k, v]) => `${k}=${v}`);
  if (args.length > 0) await run(host, 'sysctl', ['--quiet', '--write', ...args]);
}
