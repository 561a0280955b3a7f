// The documented PostgreSQL admin set-up (README, PostgreSQL admin connection)
// on a booted host: HostKit, as root, logs in as postgres over the socket
// through a pg_ident map.
import { expect } from 'vitest';
import type { TestHost } from './harness.js';

export const CLUSTER = 'postgresql@15-main';
export const CONF = '/etc/postgresql/15/main';

/** psql as the postgres OS user over the socket (peer). */
export async function admin(m: TestHost, sql: string, database = 'postgres'): Promise<string> {
  return (await m.exec('runuser', ['-u', 'postgres', '--', 'psql', '-XtAq', '-d', database, '-c', sql])).stdout.trim();
}

/** Map root to postgres in pg_ident.conf and pg_hba.conf, as the README says; the caller reloads the cluster. */
export async function mapRootToPostgres(m: TestHost): Promise<void> {
  const hba = (await m.host.readFile(`${CONF}/pg_hba.conf`))!.toString();
  const mapped = hba.replace(/^local\s+all\s+postgres\s+peer\s*$/m, 'local   all             postgres                                peer map=hostkit');
  expect(mapped).not.toBe(hba);
  const st = (await m.host.stat(`${CONF}/pg_hba.conf`))!;
  const ownership = { uid: st.uid, gid: st.gid, mode: st.mode };
  await m.host.writeFile(`${CONF}/pg_hba.conf`, mapped, ownership);
  const ident = (await m.host.readFile(`${CONF}/pg_ident.conf`))!.toString();
  await m.host.writeFile(`${CONF}/pg_ident.conf`, `${ident}hostkit root postgres\nhostkit postgres postgres\n`, ownership);
}
