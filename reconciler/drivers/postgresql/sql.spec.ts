import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { makeVerifier } from './scram.js';
import {
  alterDatabaseOwner,
  alterRole,
  createDatabase,
  createExtension,
  createRole,
  dropDatabase,
  dropExtension,
  dropRole,
  escapeIdentifier,
  escapeLiteral,
  type Statement,
} from './sql.js';

const VERIFIER = makeVerifier('pencil', { salt: Buffer.alloc(16, 7) });

// Names the schema would reject, to show that quoting alone keeps them names.
const HOSTILE = ['plain', 'Mixed Case', 'a"b', 'x"; DROP DATABASE postgres; --', "o'brien", 'back\\slash', 'semi;colon', 'ünïcode'];

// What is left of a statement once its quoted identifiers and literals are
// removed: only keywords, numbers and punctuation may remain, so nothing from
// a name or value reached the text unquoted.
function skeleton(text: string): string {
  return text
    .replace(/"(?:[^"]|"")*"/g, 'ID')
    .replace(/ E'(?:[^'\\]|''|\\.)*'/g, ' LIT')
    .replace(/'(?:[^']|'')*'/g, 'LIT');
}

describe('reconciler/drivers/postgresql/sql', () => {
  it.each<[string, Statement, string]>([
    [
      'create role',
      createRole('shop', { login: true, connectionLimit: 20, password: VERIFIER }),
      `CREATE ROLE "shop" WITH LOGIN CONNECTION LIMIT 20 PASSWORD '${VERIFIER}'`,
    ],
    ['create role without password', createRole('shop', { login: true, connectionLimit: -1 }), 'CREATE ROLE "shop" WITH LOGIN CONNECTION LIMIT -1'],
    ['alter one attribute', alterRole('shop', { connectionLimit: 5 }), 'ALTER ROLE "shop" WITH CONNECTION LIMIT 5'],
    ['rotate a password', alterRole('shop', { password: VERIFIER }), `ALTER ROLE "shop" WITH PASSWORD '${VERIFIER}'`],
    [
      'restore everything',
      alterRole('shop', { login: false, connectionLimit: 3, password: null }),
      'ALTER ROLE "shop" WITH NOLOGIN CONNECTION LIMIT 3 PASSWORD NULL',
    ],
    ['restore an md5 hash', alterRole('shop', { password: `md5${'0'.repeat(32)}` }), `ALTER ROLE "shop" WITH PASSWORD 'md5${'0'.repeat(32)}'`],
    ['drop role', dropRole('shop'), 'DROP ROLE "shop"'],
    [
      'create database',
      createDatabase('shop', { owner: 'shop', encoding: 'UTF8' }),
      `CREATE DATABASE "shop" WITH OWNER "shop" TEMPLATE template0 ENCODING 'UTF8'`,
    ],
    [
      'create database with a locale',
      createDatabase('shop', { owner: 'shop', encoding: 'UTF8', locale: 'C.UTF-8' }),
      `CREATE DATABASE "shop" WITH OWNER "shop" TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8'`,
    ],
    ['change owner', alterDatabaseOwner('shop', 'admin'), 'ALTER DATABASE "shop" OWNER TO "admin"'],
    ['drop database', dropDatabase('shop', { force: false }), 'DROP DATABASE "shop"'],
    ['undo a created database', dropDatabase('shop', { force: true }), 'DROP DATABASE "shop" WITH (FORCE)'],
    ['create extension', createExtension('uuid-ossp'), 'CREATE EXTENSION IF NOT EXISTS "uuid-ossp"'],
    ['drop extension', dropExtension('pg_trgm'), 'DROP EXTENSION IF EXISTS "pg_trgm"'],
  ])('%s', (_name, statement, text) => {
    expect(statement.text).toBe(text);
  });

  it.each(HOSTILE)('quotes the name %j everywhere: it stays one identifier or literal, never SQL', (name) => {
    const quoted = `"${name.replace(/"/g, '""')}"`;
    const all = [
      createRole(name, { login: true, connectionLimit: 1, password: VERIFIER }),
      alterRole(name, { login: false }),
      dropRole(name),
      createDatabase(name, { owner: name, encoding: name, locale: name }),
      alterDatabaseOwner(name, name),
      dropDatabase(name, { force: true }),
      createExtension(name),
      dropExtension(name),
    ];
    for (const s of all) {
      expect(s.text).toContain(quoted);
      expect(skeleton(s.text)).toMatch(/^(?:[A-Z0-9 ()_-]|template0)*$/);
    }
    // Literals: the client's escaping, E'' with doubled backslashes where needed.
    expect(createDatabase('d', { owner: 'o', encoding: 'UTF8', locale: name }).text).toMatch(
      name.includes('\\') ? /LOCALE +E'back\\\\slash'$/ : new RegExp(`LOCALE '${name.replace(/'/g, "''").replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}'$`),
    );
  });

  it('shows a verifier only as redacted in the display form', () => {
    const create = createRole('shop', { login: true, connectionLimit: -1, password: VERIFIER });
    const alter = alterRole('shop', { password: VERIFIER });
    expect(create.display).toBe('CREATE ROLE "shop" WITH LOGIN CONNECTION LIMIT -1 PASSWORD (redacted)');
    expect(alter.display).toBe('ALTER ROLE "shop" WITH PASSWORD (redacted)');
    expect(dropRole('shop').display).toBe('DROP ROLE "shop"');
  });

  it.each(['pencil', '', "SCRAM-SHA-256$4096:abc$def:ghi' OR '1", 'md5xyz', 'SCRAM-SHA-256$'])(
    'refuses to send %j as a password: only verifiers reach the server',
    (value) => {
      expect(() => alterRole('shop', { password: value })).toThrow(expect.objectContaining({ code: 'PG_PLAINTEXT_PASSWORD' }));
      expect(() => createRole('shop', { login: true, password: value })).toThrow(expect.objectContaining({ code: 'PG_PLAINTEXT_PASSWORD' }));
    },
  );

  it('takes only integers for a connection limit, and an ALTER ROLE must change something', () => {
    expect(() => createRole('shop', { connectionLimit: 1.5 })).toThrow(expect.objectContaining({ code: 'PG_INVALID_VALUE' }));
    expect(() => createRole('shop', { connectionLimit: Number.NaN })).toThrow(expect.objectContaining({ code: 'PG_INVALID_VALUE' }));
    expect(() => alterRole('shop', {})).toThrow(expect.objectContaining({ code: 'PG_EMPTY_ALTER' }));
  });
});

describe('escaping, as node-postgres does it', () => {
  const samples = [
    'app',
    'App"s',
    "o'brien",
    'back\\slash',
    "both ' and \\",
    '',
    '"; DROP TABLE x; --',
    "'; DROP ROLE postgres; --",
    'ünïcødé',
    '\\\\',
    'a\nb',
  ];
  it.each(samples)('%j', (sample) => {
    expect(escapeIdentifier(sample)).toBe(pg.escapeIdentifier(sample));
    expect(escapeLiteral(sample)).toBe(pg.escapeLiteral(sample));
  });
});
