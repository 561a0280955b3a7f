import type { FakeHost } from '../../reconciler/hosts/fake.js';

// systemctl and systemd-analyze, simulated just enough: units load on daemon-reload, states by name,
// InvocationIDs that change on (re)start, enablement as .wants/ links.
export function fakeSystemd(host: FakeHost, opts: { failStart?: string; dies?: { unit: string; afterMs: number } } = {}) {
  const units = new Map<string, { active: string; sub: string; invocation: number }>();
  const loaded = new Set<string>();
  let invocations = 0;
  const wants = (n: string) => `/etc/systemd/system/${n.endsWith('.timer') ? 'timers.target' : 'multi-user.target'}.wants/${n}`;
  host.onExec((call) => {
    const ok = { exitCode: 0, stdout: '', stderr: '' };
    if (call.file === 'systemd-analyze') return ok;
    if (call.file === 'journalctl') return { exitCode: 0, stdout: 'app[1]: listen EADDRINUSE', stderr: '' };
    if (call.file !== 'systemctl') return undefined;
    const [verb, ...rest] = call.args;
    const names = rest.filter((a) => !a.startsWith('-'));
    const state = (n: string) => units.get(n) ?? { active: 'inactive', sub: 'dead', invocation: 0 };
    switch (verb) {
      case 'daemon-reload':
        loaded.clear();
        for (const p of host.paths()) if (/^\/etc\/systemd\/system\/[^/]+$/.test(p)) loaded.add(p.split('/').pop()!);
        return ok;
      case 'list-units':
        return {
          exitCode: 0,
          stdout: names
            .filter((n) => loaded.has(n))
            .map((n) => `${n} loaded ${state(n).active} ${state(n).sub} HostKit unit`)
            .join('\n'),
          stderr: '',
        };
      case 'show':
        return {
          exitCode: 0,
          stdout: names
            .map(
              (n) =>
                `Id=${n}\nLoadState=${loaded.has(n) ? 'loaded' : 'not-found'}\nActiveState=${state(n).active}\nSubState=${state(n).sub}\nNeedDaemonReload=no\nInvocationID=${state(n).invocation || ''}\nResult=success\n`,
            )
            .join('\n'),
          stderr: '',
        };
      case 'enable':
        for (const n of names) host.seedFile(wants(n), '');
        return ok;
      case 'restart':
        for (const n of names) {
          if (n === opts.failStart) {
            units.set(n, { ...state(n), active: 'failed', sub: 'failed' });
            return { exitCode: 1, stdout: '', stderr: `Job for ${n} failed.` };
          }
          units.set(n, { active: 'active', sub: 'running', invocation: ++invocations });
          if (n === opts.dies?.unit) setTimeout(() => units.set(n, { ...state(n), active: 'failed', sub: 'failed' }), opts.dies.afterMs);
        }
        return ok;
      case 'disable':
        for (const n of names) {
          units.delete(n);
          void host.remove(wants(n));
        }
        return ok;
      default:
        return ok;
    }
  });
  return units;
}
