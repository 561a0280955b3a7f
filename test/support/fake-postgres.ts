import { statementFailed, type Connect, type SqlSession } from '../../reconciler/drivers/postgresql/connection.js';
import { CATALOG_QUERY, EXTENSIONS_QUERY, OWNER_QUERY, ROLE_QUERY, VERSION_QUERY, type Statement } from '../../reconciler/drivers/postgresql/sql.js';

// A PostgreSQL server in memory: it answers the drivers' queries from its
// state, applies the DDL they send (parsed back from the quoted text), honours
// BEGIN/COMMIT/ROLLBACK, and records every statement with its database.
export interface FakeRole {
  login: boolean;
  connectionLimit: number;
  password: string | null;
}
export interface FakeDatabase {
  owner: string;
  encoding: string;
  collate: string;
  ctype: string;
  extensions: Set<string>;
}

export class FakePostgres {
  roles = new Map<string, FakeRole>([['postgres', { login: true, connectionLimit: -1, password: null }]]);
  databases = new Map<string, FakeDatabase>([['postgres', db('postgres')]]);
  available = new Set(['plpgsql', 'pg_trgm', 'pgcrypto', 'uuid-ossp', 'postgis']);
  version = 150020;
  readonly sent: { database: string; sql: string }[] = [];
  readonly sessions: string[] = [];
  /** Statements matching this fail with PostgreSQL's message. */
  failOn: { pattern: RegExp; message: string; code: string } | undefined;
  unreachable: string | undefined;

  readonly connect: Connect = async (_ctx, database) => {
    if (this.unreachable) throw new Error(this.unreachable);
    if (!this.databases.has(database)) throw Object.assign(new Error(`database "${database}" does not exist`), { code: '3D000' });
    this.sessions.push(database);
    let snapshot: { roles: Map<string, FakeRole>; databases: Map<string, FakeDatabase> } | undefined;
    const session: SqlSession = {
      query: async <R extends object>(statement: Statement, values?: readonly unknown[]) => {
        this.sent.push({ database, sql: statement.text });
        if (this.failOn?.pattern.test(statement.text)) {
          throw statementFailed(statement, database, Object.assign(new Error(this.failOn.message), { code: this.failOn.code }));
        }
        if (statement.text === 'BEGIN') snapshot = this.clone();
        else if (statement.text === 'COMMIT') snapshot = undefined;
        else if (statement.text === 'ROLLBACK') {
          if (snapshot) Object.assign(this, snapshot);
          snapshot = undefined;
        } else return this.answer(database, statement, values ?? []) as R[];
        return [];
      },
      close: async () => undefined,
    };
    return session;
  };

  statements(): string[] {
    return this.sent.map((s) => s.sql).filter((s) => !/^\s*SELECT/.test(s));
  }

  private clone() {
    const copy = <T>(m: Map<string, T>) => new Map([...m].map(([k, v]) => [k, structuredClone(v)]));
    return { roles: copy(this.roles), databases: copy(this.databases) };
  }

  private answer(database: string, statement: Statement, values: readonly unknown[]): object[] {
    const names = (i: number) => (values[i] as string[] | undefined) ?? [];
    if (statement === CATALOG_QUERY) {
      return [
        {
          version: this.version,
          roles: names(0)
            .filter((n) => this.roles.has(n))
            .map((n) => ({ name: n, ...this.roles.get(n)! })),
          databases: names(1)
            .filter((n) => this.databases.has(n))
            .map((n) => {
              const d = this.databases.get(n)!;
              return { name: n, owner: d.owner, encoding: d.encoding, collate: d.collate, ctype: d.ctype };
            }),
          available: names(2).filter((n) => this.available.has(n)),
        },
      ];
    }
    if (statement === VERSION_QUERY) return [{ version: this.version }];
    if (statement === EXTENSIONS_QUERY) return [...this.databases.get(database)!.extensions].sort().map((name) => ({ name }));
    if (statement === ROLE_QUERY) return this.roles.has(values[0] as string) ? [{ ...this.roles.get(values[0] as string)! }] : [];
    if (statement === OWNER_QUERY) return this.databases.has(values[0] as string) ? [{ owner: this.databases.get(values[0] as string)!.owner }] : [];
    this.ddl(database, statement.text);
    return [];
  }

  private ddl(database: string, sql: string): void {
    const id = '"((?:[^"]|"")*)"';
    const unquote = (s: string) => s.replace(/""/g, '"');
    let m: RegExpExecArray | null;
    const attributes = (text: string, into: Partial<FakeRole>) => {
      if (/ NOLOGIN/.test(text)) into.login = false;
      else if (/ LOGIN/.test(text)) into.login = true;
      const limit = / CONNECTION LIMIT (-?\d+)/.exec(text);
      if (limit) into.connectionLimit = Number(limit[1]);
      const password = / PASSWORD (?:'([^']*)'|NULL)/.exec(text);
      if (password) into.password = password[1] ?? null;
    };
    if ((m = new RegExp(`^CREATE ROLE ${id} WITH(.*)$`).exec(sql))) {
      const role: FakeRole = { login: false, connectionLimit: -1, password: null };
      attributes(m[2]!, role);
      this.roles.set(unquote(m[1]!), role);
    } else if ((m = new RegExp(`^ALTER ROLE ${id} WITH(.*)$`).exec(sql))) {
      attributes(m[2]!, this.roles.get(unquote(m[1]!))!);
    } else if ((m = new RegExp(`^DROP ROLE ${id}$`).exec(sql))) {
      this.roles.delete(unquote(m[1]!));
    } else if ((m = new RegExp(`^CREATE DATABASE ${id} WITH OWNER ${id} TEMPLATE template0 ENCODING '([^']*)'(?: LOCALE '([^']*)')?$`).exec(sql))) {
      this.databases.set(unquote(m[1]!), { ...db(unquote(m[2]!), m[3]!, m[4] ?? 'C.UTF-8') });
    } else if ((m = new RegExp(`^ALTER DATABASE ${id} OWNER TO ${id}$`).exec(sql))) {
      this.databases.get(unquote(m[1]!))!.owner = unquote(m[2]!);
    } else if ((m = new RegExp(`^DROP DATABASE (?:IF EXISTS )?${id}(?: WITH \\(FORCE\\))?$`).exec(sql))) {
      this.databases.delete(unquote(m[1]!));
    } else if ((m = new RegExp(`^CREATE EXTENSION IF NOT EXISTS ${id}$`).exec(sql))) {
      this.databases.get(database)!.extensions.add(unquote(m[1]!));
    } else if ((m = new RegExp(`^DROP EXTENSION IF EXISTS ${id}$`).exec(sql))) {
      this.databases.get(database)!.extensions.delete(unquote(m[1]!));
    } else {
      throw new Error(`the fake server does not understand: ${sql}`);
    }
  }
}

function db(owner: string, encoding = 'UTF8', locale = 'C.UTF-8'): FakeDatabase {
  return { owner, encoding, collate: locale, ctype: locale, extensions: new Set(['plpgsql']) };
}
