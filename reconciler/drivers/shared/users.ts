import { HostKitError } from '../../core/errors.js';
import type { Host } from '../../hosts/types.js';

export interface UserEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

// The host's users and groups, read from /etc/passwd and /etc/group in two
// file reads (not one `id` process per user).
export class UserDb {
  readonly users = new Map<string, UserEntry>();
  readonly groups = new Map<string, GroupEntry>();
  private readonly userById = new Map<number, string>();
  private readonly groupById = new Map<number, string>();

  constructor(passwd: string, group: string) {
    for (const line of passwd.split('\n')) {
      const f = line.split(':');
      if (f.length < 7 || line.startsWith('#')) continue;
      const entry = { name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]!, shell: f[6]! };
      this.users.set(entry.name, entry);
      if (!this.userById.has(entry.uid)) this.userById.set(entry.uid, entry.name);
    }
    for (const line of group.split('\n')) {
      const f = line.split(':');
      if (f.length < 4 || line.startsWith('#')) continue;
      const entry = { name: f[0]!, gid: Number(f[2]), members: f[3] ? f[3].split(',').filter(Boolean) : [] };
      this.groups.set(entry.name, entry);
      if (!this.groupById.has(entry.gid)) this.groupById.set(entry.gid, entry.name);
    }
  }

  static async read(host: Host): Promise<UserDb> {
    const [passwd, group] = await Promise.all([host.readFile('/etc/passwd'), host.readFile('/etc/group')]);
    return new UserDb(passwd?.toString('utf8') ?? '', group?.toString('utf8') ?? '');
  }

  userName(uid: number): string {
    return this.userById.get(uid) ?? `#${uid}`;
  }

  groupName(gid: number): string {
    return this.groupById.get(gid) ?? `#${gid}`;
  }

  /** Supplementary groups of a user, sorted. */
  memberOf(user: string): string[] {
    return [...this.groups.values()]
      .filter((g) => g.members.includes(user))
      .map((g) => g.name)
      .sort();
  }

  uid(name: string): number {
    const entry = this.users.get(name);
    if (!entry) throw new HostKitError('UNKNOWN_USER', `User "${name}" does not exist on the host`, { data: { user: name } });
    return entry.uid;
  }

  gid(name: string): number {
    const entry = this.groups.get(name);
    if (!entry) throw new HostKitError('UNKNOWN_GROUP', `Group "${name}" does not exist on the host`, { data: { group: name } });
    return entry.gid;
  }
}

/**
 * The user database as this run last read it (ctx.run.users): read once, shared by
 * every observe, apply and verify of the run until something changes accounts and
 * calls forget() (the account driver does, after each change it makes).
 */
export class RunUsers {
  private readonly host: Host;
  private db: Promise<UserDb> | undefined;

  constructor(host: Host) {
    this.host = host;
  }

  get(): Promise<UserDb> {
    if (!this.db) {
      const db = UserDb.read(this.host);
      this.db = db;
      db.catch(() => {
        if (this.db === db) this.db = undefined; // a failed read is not shared
      });
    }
    return this.db;
  }

  forget(): void {
    this.db = undefined;
  }
}
