import { randomBytes } from 'node:crypto';
import type { Host } from '../../hosts/types.js';

// One `systemd-analyze verify` of candidate files in a private directory under /run,
// removed afterwards; its messages, by the unit each names.
export async function analyzeUnits(
  host: Host,
  files: readonly { unit: string; content: string }[],
): Promise<{ ok: boolean; messages: Map<string, string[]>; stderr: string }> {
  const root = { uid: 0, gid: 0, mode: 0o700 };
  const dir = `/run/hostkit/verify-${randomBytes(6).toString('hex')}`;
  await host.mkdir('/run/hostkit', root);
  await host.mkdir(dir, root);
  try {
    await Promise.all(files.map((f) => host.writeFile(`${dir}/${f.unit}`, f.content, { uid: 0, gid: 0, mode: 0o644 })));
    const result = await host.exec('systemd-analyze', ['verify', '--no-pager', ...files.map((f) => `${dir}/${f.unit}`)], {
      env: { SYSTEMD_LOG_COLOR: '0' },
    });
    const lines = result.stderr
      .split('\n')
      .map((l) => l.split(`${dir}/`).join(''))
      .filter((l) => l.trim() !== '');
    const messages = new Map(
      files.map((f) => {
        // hk-app-1.service must not collect the messages of hk-app-10.service.
        const named = new RegExp(`(^|[\\s/'"])${f.unit.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[\\s:'"])`);
        return [f.unit, lines.filter((l) => named.test(l))];
      }),
    );
    return { ok: result.exitCode === 0, messages, stderr: result.stderr };
  } finally {
    await Promise.all(files.map((f) => host.remove(`${dir}/${f.unit}`)));
    await host.remove(dir);
  }
}
