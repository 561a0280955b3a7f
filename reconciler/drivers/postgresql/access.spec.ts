import { describe, expect, it } from 'vitest';
import { driverContext } from '../../../test/support/context.js';
import { FakePostgres } from '../../../test/support/fake-postgres.js';
import { FakeHost } from '../../hosts/fake.js';
import type { Connect } from './connection.js';
import { makePostgresDrivers } from './index.js';
import type { RoleSpec } from './role.js';
import type { Resource } from '../../core/resource.js';
import { expandForHost, hostSettings } from '../../manifests/expand.js';
import { validateFiles } from '../../manifests/index.js';
import type { HostManifest, Manifest } from '../../manifests/types.js';
import { HBA_LINE, hasHbaLine, hasIdentMap, planAccess, withHbaLine, withIdentMap, type ObservedAccess } from './access.js';
import type { PgAccessSpec } from './spec.js';

// Debian 12's pg_hba.conf rules as postgresql-15 installs them (comments shortened).
const DEBIAN_HBA = `# PostgreSQL Client Authentication Configuration File
# Database administrative login by Unix domain socket
local   all             postgres                                peer

# TYPE  DATABASE        USER            ADDRESS                 METHOD
local   all             all                                     peer
host    all             all             127.0.0.1/32            scram-sha-256
`;
const DEBIAN_IDENT = `# PostgreSQL User Name Maps
# MAPNAME       SYSTEM-USERNAME         PG-USERNAME
`;
// The README's manual set-up (test/host/postgres-admin.ts does the same).
const MANUAL_HBA = DEBIAN_HBA.replace(/^local\s+all\s+postgres\s+peer$/m, 'local   all             postgres                                peer map=hostkit');
const MANUAL_IDENT = `${DEBIAN_IDENT}hostkit root postgres\nhostkit postgres postgres\n`;

const resource: Resource<PgAccessSpec> = {
  id: 'pgaccess/local',
  kind: 'pgaccess',
  name: 'local',
  spec: { socket: '/run/postgresql', port: 5432 },
  dependsOn: [],
  origin: { file: 'hosts/web-1.yaml', line: 3, pointer: '/metadata/name' },
};
const files = { hba: '/etc/postgresql/15/main/pg_hba.conf', ident: '/etc/postgresql/15/main/pg_ident.conf' };
const REFUSED = 'Peer authentication failed for user "postgres"';

describe('reconciler/drivers/postgresql/access: the files', () => {
  it("puts HostKit's line just before the distribution's postgres rule, marked, and keeps every other line", () => {
    const hba = withHbaLine(DEBIAN_HBA);
    const lines = hba.split('\n');
    const ours = lines.indexOf(HBA_LINE);
    expect(ours).toBeGreaterThan(0);
    expect(lines[ours - 1]).toMatch(/^# HostKit \(pgaccess\/local\)/);
    expect(lines[ours + 1]).toBe('local   all             postgres                                peer');
    expect(lines.filter((l) => l !== HBA_LINE && !l.startsWith('# HostKit'))).toEqual(DEBIAN_HBA.split('\n'));
    expect(withHbaLine(hba)).toBe(hba);
  });

  it('without a distribution rule, goes before the first rule (the first match wins)', () => {
    const hba = withHbaLine('# only comments\nhost all all 0.0.0.0/0 reject\n');
    expect(hba.split('\n')[2]).toBe(HBA_LINE);
  });

  it('appends the map as a marked block; a second pass changes nothing', () => {
    const ident = withIdentMap(DEBIAN_IDENT);
    expect(ident.startsWith(DEBIAN_IDENT)).toBe(true);
    expect(ident.slice(DEBIAN_IDENT.length)).toMatch(/^# BEGIN HostKit.*\nhostkit root postgres\nhostkit postgres postgres\n# END HostKit\n$/);
    expect(withIdentMap(ident)).toBe(ident);
    expect(withIdentMap('no newline')).toMatch(/^no newline\n# BEGIN HostKit/);
  });

  it("recognizes the README's manual map as HostKit's lines (nothing to add)", () => {
    expect([hasHbaLine(MANUAL_HBA), hasIdentMap(MANUAL_IDENT)]).toEqual([true, true]);
    expect([hasHbaLine(DEBIAN_HBA), hasIdentMap(DEBIAN_IDENT)]).toEqual([false, false]);
  });
});

describe('reconciler/drivers/postgresql/access: plan', () => {
  it.each<[string, ObservedAccess | undefined, string, string[]]>([
    ['root logs in already (a manual map, or HostKit applied before)', { login: 'ok' }, 'noop', []],
    ['refused, stock files', { login: 'refused', reason: REFUSED, files, identMap: false, hbaLine: false }, 'create', ['ident', 'hba', 'reload']],
    ['refused, the map there but not the line', { login: 'refused', reason: REFUSED, files, identMap: true, hbaLine: false }, 'update', ['hba', 'reload']],
    ['refused, both there (another rule shadows them)', { login: 'refused', reason: REFUSED, files, identMap: true, hbaLine: true }, 'update', ['reload']],
    ['not running yet (installed by this run)', { login: 'unreachable', reason: 'ENOENT' }, 'create', ['ident', 'hba', 'reload']],
    [
      'a socket HostKit cannot open from where it runs (a warning, no edit)',
      { login: 'unreachable', reason: 'PG_SOCKET_UNREACHABLE', remote: true },
      'noop',
      [],
    ],
  ])('%s', (_, observed, action, ops) => {
    const change = planAccess({ resource, observed, orphan: false });
    expect(change.action).toBe(action);
    expect(change.ops.map((o) => o.op)).toEqual(ops);
  });

  it("shows only HostKit's own lines, never the files' content", () => {
    const change = planAccess({ resource, observed: { login: 'refused', reason: REFUSED, files, identMap: false, hbaLine: false }, orphan: false });
    expect(change.fields).toEqual([
      { field: '/pg_ident.conf', after: 'hostkit root postgres, hostkit postgres postgres' },
      { field: '/pg_hba.conf', after: 'local all postgres peer map=hostkit' },
    ]);
    expect(JSON.stringify(change)).not.toContain('scram-sha-256');
  });

  it('an orphan is kept (orphaned roles and databases are still observed through it)', () => {
    const change = planAccess({ resource, observed: { login: 'ok' }, orphan: true });
    expect([change.action, change.orphan, change.ops]).toEqual(['noop', true, []]);
  });
});

const enc = (s: string) => new TextEncoder().encode(s);
const host = (postgresql = '') => `apiVersion: hostkit.dev/v1
kind: Host
metadata:
  name: web-1
spec:
${postgresql || '  allowedRoots: [/srv, /etc/hostkit]'}
`;
const project = (database: boolean) => `apiVersion: hostkit.dev/v1
kind: Project
metadata: { name: shop }
spec:
  placement: { hosts: [web-1] }
  runtime: node
  service: { command: [/usr/bin/node, server.js] }
${database ? '  database: { password: { file: /etc/hostkit/secrets/shop/db-password } }\n' : ''}`;

async function expand(hostYaml: string, withDatabase: boolean): Promise<Map<string, Resource>> {
  const repo = await validateFiles(
    Object.entries({ 'hosts/web-1.yaml': hostYaml, 'projects/shop.yaml': project(withDatabase) }).map(([file, text]) => ({ file, bytes: enc(text) })),
  );
  expect(repo.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  const manifest = repo.manifests.find((m) => m.kind === 'Host') as Manifest<HostManifest>;
  return new Map(expandForHost(repo.manifests, hostSettings(manifest)).resources.map((r) => [r.id, r]));
}

describe('reconciler/drivers/postgresql/access: expansion', () => {
  it('a host with a database gets pgaccess/local, before its role and database', async () => {
    const resources = await expand(host(), true);
    expect(resources.get('pgaccess/local')?.spec).toEqual({ socket: '/run/postgresql', port: 5432 });
    expect(resources.get('pgrole/shop')?.dependsOn).toContain('pgaccess/local');
    expect(resources.get('pgdatabase/shop')?.dependsOn).toContain('pgaccess/local');
  });

  it('the socket and port the Host names', async () => {
    const resources = await expand(host('  postgresql: { socket: /var/run/postgresql, port: 5433 }'), true);
    expect(resources.get('pgaccess/local')?.spec).toEqual({ socket: '/var/run/postgresql', port: 5433 });
  });

  it.each([
    ['no database', host(), false],
    ['a TCP admin connection', host('  postgresql: { host: 127.0.0.1, user: admin, password: { file: /etc/hostkit/secrets/pg-admin } }'), true],
    ['another admin user', host('  postgresql: { user: dba }'), true],
  ])('none for %s', async (_, hostYaml, withDatabase) => {
    expect((await expand(hostYaml, withDatabase)).has('pgaccess/local')).toBe(false);
  });
});

describe('reconciler/drivers/postgresql/access: how roles are observed meanwhile (apply mode)', () => {
  const role: Resource<RoleSpec> = { ...resource, id: 'pgrole/shop', kind: 'pgrole', name: 'shop', spec: { role: 'shop', connectionLimit: 5 } };
  const refusedRoot: Connect = async () => {
    throw Object.assign(new Error(REFUSED), { code: '28000' });
  };
  const absent: Connect = async () => {
    throw Object.assign(new Error('connect ENOENT /run/postgresql/.s.PGSQL.5432'), { code: 'ENOENT' });
  };

  // Both observes started together, as the engine does (access first: it ranks before roles).
  async function observe(root: Connect, asPostgres: Connect) {
    const host = new FakeHost();
    host.onExec((call) =>
      call.file === 'runuser'
        ? { exitCode: 2, stdout: '', stderr: 'psql: error: connection to server on socket failed: No such file or directory' }
        : undefined,
    );
    const ctx = driverContext(host, { mode: 'apply' });
    const { access, role: roles } = makePostgresDrivers(root, () => asPostgres);
    const accessSeen = access.observe([resource], ctx);
    const rolesSeen = roles.observe([role], ctx);
    return { access: (await accessSeen).get(resource.id), role: (await rolesSeen).get(role.id) };
  }

  it('root refused: the catalog is read as postgres, and the role is seen as it is', async () => {
    const server = new FakePostgres();
    server.roles.set('shop', { login: true, connectionLimit: 5, password: null });
    const seen = await observe(refusedRoot, server.connect);
    expect(seen.access).toMatchObject({ login: 'unreachable' }); // psql (fake) cannot name the files here
    expect(seen.role).toMatchObject({ exists: true, connectionLimit: 5 });
  });

  it('no server at all (installed by this run): the role is planned as absent instead of stopping the apply', async () => {
    const seen = await observe(absent, absent);
    expect(seen.access).toMatchObject({ login: 'unreachable' });
    expect(seen.role).toMatchObject({ exists: false, unreachable: expect.stringContaining('ENOENT') });
  });

  it('without HostKit setting up access, an unreachable server still stops an apply', async () => {
    const ctx = driverContext(new FakeHost(), { mode: 'apply' });
    await expect(makePostgresDrivers(absent).role.observe([role], ctx)).rejects.toThrow(/ENOENT/);
  });
});
