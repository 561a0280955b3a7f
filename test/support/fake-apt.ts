import type { ExecCall, FakeHost } from '../../reconciler/hosts/fake.js';
import type { ExecResult } from '../../reconciler/hosts/types.js';

/**
 * apt on a FakeHost: the packages its sources have (name -> versions, newest first), what
 * `apt-get update`, `apt-get install` (through `env VAR=... apt-get`) and `apt-cache policy`
 * do with them, and every apt command asked for. Installing adds to FakeHost.packages, which
 * the FakeHost's `dpkg-query --show` lists.
 */
export class FakeApt {
  readonly host: FakeHost;
  /** What the sources offer once the lists are updated. */
  readonly available = new Map<string, string[]>();
  /** What the local lists know (what `apt-cache policy` answers from): `available` as of the last update. */
  readonly lists = new Map<string, string[]>();
  /** apt-get and apt-cache command lines, without `env` and its variables. */
  readonly commands: string[] = [];
  /** The next apt-get fails with this stderr and exit 100 (a held lock, an unreachable mirror). */
  failNext?: string;
  /** What `apt-get update` warns about on stderr while it succeeds (a source it could not fetch). */
  updateWarning?: string;

  constructor(host: FakeHost, available: Record<string, string[]> = {}) {
    this.host = host;
    for (const [name, versions] of Object.entries(available)) this.available.set(name, versions);
    host.onExec((call) => this.answer(call));
  }

  /** The lists as if `apt-get update` ran just now. */
  updated(): this {
    this.lists.clear();
    for (const [k, v] of this.available) this.lists.set(k, [...v]);
    return this;
  }

  private answer(call: ExecCall): ExecResult | undefined {
    const ok = (stdout = ''): ExecResult => ({ exitCode: 0, stdout, stderr: '' });
    if (call.file === 'apt-cache' && call.args[0] === 'policy') {
      this.commands.push(['apt-cache', ...call.args].join(' '));
      const names = call.args.slice(1).filter((a) => a !== '--');
      return ok(names.map((n) => policy(n, this.lists.get(n))).join(''));
    }
    const at = call.file === 'env' ? call.args.indexOf('apt-get') : -1;
    if (at < 0) return undefined;
    const args = call.args.slice(at + 1);
    this.commands.push(['apt-get', ...args].join(' '));
    if (this.failNext !== undefined) {
      const stderr = this.failNext;
      delete this.failNext;
      return { exitCode: 100, stdout: '', stderr };
    }
    if (args[0] === 'update') return { ...ok(void this.updated()), stderr: this.updateWarning ?? '' };
    for (const a of args.slice(1).filter((x) => !x.startsWith('-') && !x.includes('::') && !/^DPkg|^Dpkg/.test(x))) {
      if (a.endsWith('-')) this.host.packages.delete(a.slice(0, -1));
      else {
        const [name, pin] = a.split('=') as [string, string | undefined];
        const versions = this.lists.get(name) ?? [];
        const version = pin === undefined ? versions[0] : versions.find((v) => (pin.endsWith('*') ? v.startsWith(pin.slice(0, -1)) : v === pin));
        if (version === undefined) return { exitCode: 100, stdout: '', stderr: `E: Unable to locate package ${name}` };
        this.host.packages.set(name, { version });
      }
    }
    return ok();
  }
}

// What `apt-cache policy NAME` prints: nothing for a name no list has (apt says so on stderr).
function policy(name: string, versions: string[] | undefined): string {
  if (versions === undefined) return '';
  const table = versions.map((v) => `     ${v} 500\n        500 http://deb.example/debian bookworm/main amd64 Packages\n`).join('');
  return `${name}:\n  Installed: (none)\n  Candidate: ${versions[0] ?? '(none)'}\n  Version table:\n${table}`;
}
