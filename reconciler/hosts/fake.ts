import path from 'node:path';
import type { Duplex } from 'node:stream';
import { HostKitError } from '../core/errors.js';
import type { ConnectOptions, ExecOptions, ExecResult, FileStat, HeldLock, Host, Ownership } from './types.js';

interface Entry {
  type: 'file' | 'directory' | 'symlink';
  /** A file's bytes; a symlink's target. */
  content: Buffer;
  uid: number;
  gid: number;
  mode: number;
}

export interface ExecCall {
  file: string;
  args: string[];
  input?: string;
}

export type ExecHandler = (call: ExecCall, host: FakeHost) => ExecResult | undefined;

/** Answers a connection to one of the fake host's ports (e.g. with a local test server's socket). */
export type ConnectHandler = (port: number, address: string) => Promise<Duplex> | undefined;

const DEFAULT_PASSWD =
  'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n';
const DEFAULT_GROUP = 'root:x:0:\nnogroup:x:65534:\nwww-data:x:33:\n';

/**
 * A host in memory for unit tests: files and directories in a Map, and every
 * command recorded (the assertion is on that list). Commands are answered by
 * handlers; useradd/groupadd/usermod/userdel/groupdel (and systemd-sysusers) are simulated on
 * /etc/passwd and /etc/group so account plans can be applied and re-planned.
 */
export class FakeHost implements Host {
  readonly name = 'fake';
  /** What hostname() answers: the machine this fake stands for. */
  machineName = 'fake';
  /** Paths locked with lock() and not released. */
  readonly locks = new Set<string>();
  readonly calls: ExecCall[] = [];
  readonly writes: string[] = [];
  private readonly entries = new Map<string, Entry>();
  private readonly handlers: ExecHandler[] = [];
  private readonly connectHandlers: ConnectHandler[] = [];
  /** Every connection asked for, as "address:port". */
  readonly connections: string[] = [];
  /**
   * Installed OS packages (name -> version and what it provides), as `dpkg-query --show` lists
   * them: by default what HostKit's own kinds need, as on a Debian 12 host that has them.
   */
  readonly packages = new Map<string, { version: string; provides?: string[] }>([
    ['nginx', { version: '1.22.1-9+deb12u1', provides: ['httpd'] }],
    ['postgresql-15', { version: '15.10-0+deb12u1' }],
    ['nftables', { version: '1.0.6-2+deb12u2' }],
    ['python3', { version: '3.11.2-1+b1' }],
    ['sudo', { version: '1.9.13p3-1+deb12u1' }],
    ['restic', { version: '0.14.0-1+b5' }],
  ]);
  /** Make the next operation on a path throw (simulates a failing disk or a refused write). */
  readonly failOn = new Set<string>();

  constructor(files: Record<string, string> = {}) {
    this.entries.set('/', { type: 'directory', content: Buffer.alloc(0), uid: 0, gid: 0, mode: 0o755 });
    // The directories every Debian host has.
    for (const dir of ['/run', '/tmp', '/var/lib', '/etc/systemd/system']) this.seedDir(dir);
    this.seedFile('/etc/passwd', DEFAULT_PASSWD);
    this.seedFile('/etc/group', DEFAULT_GROUP);
    for (const [p, content] of Object.entries(files)) this.seedFile(p, content);
    this.handlers.push(simulateAccounts, listPackages);
  }

  /** Put a file (and its parent directories) in place without recording a write. */
  seedFile(p: string, content: string | Buffer, ownership: Partial<Ownership> = {}): void {
    this.seedDir(path.posix.dirname(p));
    this.entries.set(p, { type: 'file', content: Buffer.from(content), uid: ownership.uid ?? 0, gid: ownership.gid ?? 0, mode: ownership.mode ?? 0o644 });
  }

  seedDir(p: string, ownership: Partial<Ownership> = {}): void {
    const parts = p.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const dir = '/' + parts.slice(0, i).join('/');
      if (!this.entries.has(dir) || i === parts.length) {
        const existing = this.entries.get(dir);
        this.entries.set(dir, {
          type: 'directory',
          content: Buffer.alloc(0),
          uid: ownership.uid ?? existing?.uid ?? 0,
          gid: ownership.gid ?? existing?.gid ?? 0,
          mode: ownership.mode ?? existing?.mode ?? 0o755,
        });
      }
    }
  }

  onExec(handler: ExecHandler): void {
    this.handlers.unshift(handler);
  }

  onConnect(handler: ConnectHandler): void {
    this.connectHandlers.unshift(handler);
  }

  /** Connections are refused unless a handler (onConnect) answers the port. */
  async connect(port: number, options: ConnectOptions = {}): Promise<Duplex> {
    const address = options.address ?? '127.0.0.1';
    this.connections.push(`${address}:${port}`);
    for (const handler of this.connectHandlers) {
      const stream = handler(port, address);
      if (stream) return stream;
    }
    throw new HostKitError('HOST_CONNECT_FAILED', `Could not connect to ${address}:${port} on fake: ECONNREFUSED`, {
      data: { host: 'fake', port, address },
      retryable: true,
    });
  }

  text(p: string): string | undefined {
    return this.entries.get(p)?.content.toString('utf8');
  }

  paths(): string[] {
    return [...this.entries.keys()].sort();
  }

  async exec(file: string, args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    const call: ExecCall = { file, args: [...args], ...(options.input !== undefined ? { input: String(options.input) } : {}) };
    this.calls.push(call);
    for (const handler of this.handlers) {
      const result = handler(call, this);
      if (result) return result;
    }
    return { exitCode: 0, stdout: '', stderr: '' };
  }

  private check(p: string): void {
    if (this.failOn.has(p)) throw new Error(`simulated failure on ${p}`);
  }

  async readFile(p: string): Promise<Buffer | undefined> {
    const e = this.entries.get(p);
    return e?.type === 'file' ? Buffer.from(e.content) : undefined;
  }

  async stat(p: string): Promise<FileStat | undefined> {
    const e = this.entries.get(p);
    return e ? { type: e.type, mode: e.mode, uid: e.uid, gid: e.gid, size: e.content.length } : undefined;
  }

  async writeFile(p: string, data: Buffer | string, o: Ownership): Promise<void> {
    this.check(p);
    const parent = this.entries.get(path.posix.dirname(p));
    if (parent?.type !== 'directory') throw Object.assign(new Error(`ENOENT: no such directory ${path.posix.dirname(p)}`), { code: 'ENOENT' });
    this.writes.push(p);
    this.entries.set(p, { type: 'file', content: Buffer.from(data), uid: o.uid, gid: o.gid, mode: o.mode });
  }

  async appendFile(p: string, data: Buffer | string, o: Ownership): Promise<void> {
    const existing = this.entries.get(p);
    if (existing?.type !== 'file') return this.writeFile(p, data, o);
    this.check(p);
    this.writes.push(p);
    existing.content = Buffer.concat([existing.content, Buffer.from(data)]);
  }

  async mkdir(p: string, o: Ownership): Promise<void> {
    this.check(p);
    const parent = this.entries.get(path.posix.dirname(p));
    if (parent?.type !== 'directory') throw Object.assign(new Error(`ENOENT: no such directory ${path.posix.dirname(p)}`), { code: 'ENOENT' });
    if (!this.entries.has(p)) this.writes.push(p);
    this.entries.set(p, { type: 'directory', content: Buffer.alloc(0), uid: o.uid, gid: o.gid, mode: o.mode });
  }

  async setOwnership(p: string, o: Ownership): Promise<void> {
    this.check(p);
    const e = this.entries.get(p);
    if (!e) throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
    this.writes.push(p);
    Object.assign(e, o);
  }

  async remove(p: string): Promise<void> {
    this.check(p);
    const e = this.entries.get(p);
    if (!e) return;
    if (e.type === 'directory' && [...this.entries.keys()].some((k) => k.startsWith(p + '/'))) {
      throw Object.assign(new Error(`ENOTEMPTY: ${p}`), { code: 'ENOTEMPTY' });
    }
    this.writes.push(p);
    this.entries.delete(p);
  }

  async localPath(): Promise<undefined> {
    return undefined; // nothing of a fake host exists on this machine
  }

  async readdir(p: string): Promise<string[] | undefined> {
    if (this.entries.get(p)?.type !== 'directory') return undefined;
    const prefix = p === '/' ? '/' : p + '/';
    return [...this.entries.keys()].filter((k) => k !== p && k.startsWith(prefix) && !k.slice(prefix.length).includes('/')).map((k) => k.slice(prefix.length));
  }

  async readlink(p: string): Promise<string | undefined> {
    const e = this.entries.get(p);
    return e?.type === 'symlink' ? e.content.toString('utf8') : undefined;
  }

  async symlink(target: string, p: string): Promise<void> {
    this.check(p);
    const parent = this.entries.get(path.posix.dirname(p));
    if (parent?.type !== 'directory') throw Object.assign(new Error(`ENOENT: no such directory ${path.posix.dirname(p)}`), { code: 'ENOENT' });
    if (this.entries.get(p)?.type === 'directory') throw Object.assign(new Error(`EISDIR: ${p}`), { code: 'EISDIR' });
    this.writes.push(p);
    this.entries.set(p, { type: 'symlink', content: Buffer.from(target), uid: 0, gid: 0, mode: 0o777 });
  }

  async hostname(): Promise<string> {
    return this.machineName;
  }

  /** Locks in memory, by path: a held one is refused at once (a fake has no second process to wait for). */
  async lock(p: string): Promise<HeldLock | undefined> {
    if (this.locks.has(p)) return undefined;
    this.locks.add(p);
    return { release: async () => void this.locks.delete(p) };
  }
}

// /etc/passwd or /etc/group without the line of `name`.
function withoutEntry(text: string, name: string): string {
  return text
    .split('\n')
    .filter((l) => !l.startsWith(`${name}:`))
    .join('\n');
}

// dpkg-query --show over every installed package (drivers/package/apt.ts reads it).
function listPackages(call: ExecCall, host: FakeHost): ExecResult | undefined {
  if (call.file !== 'dpkg-query' || call.args[0] !== '--show') return undefined;
  const lines = [...host.packages].map(([name, p]) => `${name}\t${p.version}\tii \t${(p.provides ?? []).join(', ')}\n`);
  return { exitCode: 0, stdout: lines.join(''), stderr: '' };
}

// Just enough of shadow-utils to make account changes observable.
function simulateAccounts(call: ExecCall, host: FakeHost): ExecResult | undefined {
  const ok = { exitCode: 0, stdout: '', stderr: '' };
  const passwd = host.text('/etc/passwd') ?? '';
  const group = host.text('/etc/group') ?? '';
  const name = call.args[call.args.length - 1]!;
  const opt = (flag: string) => {
    const i = call.args.indexOf(flag);
    return i >= 0 ? call.args[i + 1] : undefined;
  };
  const nextId = (text: string) =>
    Math.max(
      999,
      ...text
        .split('\n')
        .filter(Boolean)
        .map((l) => Number(l.split(':')[2]))
        .filter((n) => n < 60000),
    ) + 1;
  const gidOf = (g: string) =>
    group
      .split('\n')
      .find((l) => l.startsWith(`${g}:`))
      ?.split(':')[2];
  switch (call.file) {
    case 'groupadd':
      if (gidOf(name)) return { exitCode: 9, stdout: '', stderr: `groupadd: group '${name}' already exists` };
      host.seedFile('/etc/group', `${group}${name}:x:${nextId(group)}:\n`);
      return ok;
    case 'useradd': {
      if (passwd.split('\n').some((l) => l.startsWith(`${name}:`))) return { exitCode: 9, stdout: '', stderr: `useradd: user '${name}' already exists` };
      const gid = gidOf(opt('--gid') ?? name);
      if (!gid) return { exitCode: 6, stdout: '', stderr: `useradd: group '${opt('--gid')}' does not exist` };
      host.seedFile('/etc/passwd', `${passwd}${name}:x:${nextId(passwd)}:${gid}::${opt('--home-dir') ?? '/'}:${opt('--shell') ?? '/bin/sh'}\n`);
      return ok;
    }
    case 'usermod': {
      const lines = passwd.split('\n').map((l) => {
        const f = l.split(':');
        if (f[0] !== name) return l;
        const gid = gidOf(opt('--gid') ?? '') ?? f[3];
        return [f[0], f[1], f[2], gid, f[4], opt('--home') ?? f[5], opt('--shell') ?? f[6]].join(':');
      });
      host.seedFile('/etc/passwd', lines.join('\n'));
      return ok;
    }
    case 'userdel':
      host.seedFile('/etc/passwd', withoutEntry(passwd, name));
      // Like Debian (USERGROUPS_ENAB yes): the user's own group goes too.
      host.seedFile('/etc/group', withoutEntry(group, name));
      return ok;
    case 'groupdel':
      host.seedFile('/etc/group', withoutEntry(group, name));
      return ok;
    case 'systemd-sysusers': {
      // --inline 'u NAME - - HOME SHELL' (a user with its own group) and 'm USER GROUP'.
      let [p, g] = [passwd, group];
      for (const line of call.args.filter((a) => a !== '--inline')) {
        const u = /^u (\S+) - - (\S+) (\S+)$/.exec(line);
        const m = /^m (\S+) (\S+)$/.exec(line);
        if (u && !p.split('\n').some((l) => l.startsWith(`${u[1]}:`))) {
          const id = Math.max(nextId(p), nextId(g));
          g += `${u[1]}:x:${id}:\n`;
          p += `${u[1]}:x:${id}:${id}::${u[2]}:${u[3]}\n`;
        } else if (m) {
          g = g
            .split('\n')
            .map((l) => (l.startsWith(`${m[2]}:`) ? `${l}${l.endsWith(':') ? '' : ','}${m[1]}` : l))
            .join('\n');
        } else if (!u) return { exitCode: 1, stdout: '', stderr: `systemd-sysusers: cannot parse "${line}"` };
      }
      host.seedFile('/etc/passwd', p);
      host.seedFile('/etc/group', g);
      return ok;
    }
    default:
      return undefined;
  }
}
