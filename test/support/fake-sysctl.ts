import type { ExecHandler, FakeHost } from '../../reconciler/hosts/fake.js';

// The kernel's parameters as /proc/sys holds them, behind a fake `sysctl`:
// reads print "KEY = VALUE", --load FILE and --write KEY=VALUE set them; a key
// it lacks, or one that is read-only, is named on stderr and the rest go on.
export class FakeKernel {
  readonly values: Map<string, string>;
  readonly readOnly = new Set<string>();

  constructor(values: Record<string, string>) {
    this.values = new Map(Object.entries(values));
  }

  install(host: FakeHost): void {
    host.onExec(this.handler);
  }

  private readonly handler: ExecHandler = (call, host) => {
    if (call.file !== 'sysctl') return undefined;
    const args = call.args.filter((a) => a !== '--quiet' && a !== '--');
    const stdout: string[] = [];
    const stderr: string[] = [];
    const set = (key: string, value: string) => {
      if (!this.values.has(key)) stderr.push(`sysctl: cannot stat /proc/sys/${key.replaceAll('.', '/')}: No such file or directory`);
      else if (this.readOnly.has(key)) stderr.push(`sysctl: setting key "${key}": Read-only file system`);
      else this.values.set(key, value);
    };
    if (args[0] === '--load') {
      for (const line of (host.text(args[1]!) ?? '').split('\n')) {
        const m = /^\s*([^#;=\s][^=]*?)\s*=\s*(.*?)\s*$/.exec(line);
        if (m) set(m[1]!, m[2]!);
      }
    } else if (args[0] === '--write') {
      for (const pair of args.slice(1)) set(pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1));
    } else {
      for (const key of args) {
        const value = this.values.get(key);
        if (value === undefined) stderr.push(`sysctl: cannot stat /proc/sys/${key.replaceAll('.', '/')}: No such file or directory`);
        else stdout.push(`${key} = ${value}`);
      }
    }
    const text = (lines: string[]) => (lines.length > 0 ? lines.join('\n') + '\n' : '');
    return { exitCode: stderr.length > 0 ? 1 : 0, stdout: text(stdout), stderr: text(stderr) };
  };
}
