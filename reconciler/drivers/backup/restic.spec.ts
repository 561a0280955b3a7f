import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redactor } from '../../core/secrets.js';
import { LocalHost } from '../../hosts/local.js';
import {
  backupPaths,
  backupStream,
  checkRepository,
  forget,
  initRepository,
  listSnapshots,
  repositoryExists,
  restoreStream,
  unlockStale,
  type ResticAccess,
} from './restic.js';

// The restic layer against the real restic on this machine (.ci/run installs it), with a
// repository in a temporary directory.

const PASSWORD = 'canary-restic-password-6d1f';
let dir: string;

function access(repository: string, password = PASSWORD): ResticAccess {
  const redactor = new Redactor();
  redactor.add(password);
  return {
    host: new LocalHost(),
    env: { RESTIC_REPOSITORY: repository, RESTIC_PASSWORD: password },
    scrub: (t) => redactor.scrub(t),
    hostname: 'test-1',
  };
}

describe('reconciler/drivers/backup/restic (real restic)', () => {
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'hostkit-restic-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates the repository once; a wrong password is an error naming no secret', async () => {
    const a = access(path.join(dir, 'repo'));
    expect(await repositoryExists(a)).toBe(false);
    await initRepository(a);
    expect(await repositoryExists(a)).toBe(true);
    await initRepository(a); // already there: left alone
    const wrong = access(path.join(dir, 'repo'), 'not-the-password-91');
    const error = await repositoryExists(wrong).catch((e: unknown) => e as Error & { code: string });
    expect(error).toMatchObject({ code: 'BACKUP_FAILED' });
    expect((error as Error).message).toContain('wrong password');
    expect((error as Error).message).not.toContain('not-the-password-91');
  });

  it('backs up a stream and paths with tags, lists them, restores the stream byte for byte', async () => {
    const a = access(path.join(dir, 'repo'));
    const data = path.join(dir, 'data');
    await mkdir(data, { recursive: true });
    await writeFile(path.join(data, 'a.txt'), 'alpha\n');
    const stream = await backupStream(a, {
      what: 'project app: database app',
      producer: 'printf "%s\\n" "$1" "$2"',
      args: ['row one', 'row two'],
      filename: 'app/app.dump',
      tags: ['hostkit', 'project=app', 'kind=database'],
    });
    expect(stream).toMatchObject({ snapshot: expect.stringMatching(/^[0-9a-f]{8,}$/), bytes: 16 });
    const files = await backupPaths(a, { what: 'project app: files', paths: [data], tags: ['hostkit', 'project=app', 'kind=files'] });
    expect(files.bytes).toBe(6);
    const listed = await listSnapshots(a, ['project=app']);
    expect(listed.map((s) => s.kind)).toEqual(['database', 'files']);
    expect(listed[0]).toMatchObject({ project: 'app', paths: ['/app/app.dump'] });
    const out = path.join(dir, 'restored.txt');
    await restoreStream(a, { what: 'restore', snapshot: stream.snapshot, filename: '/app/app.dump', consumer: 'cat > "$1"', args: [out] });
    expect(execFileSync('cat', [out], { encoding: 'utf8' })).toBe('row one\nrow two\n');
    await checkRepository(a);
  });

  it('a producer that fails fails the backup and leaves no snapshot of its partial output', async () => {
    const a = access(path.join(dir, 'repo'));
    const before = (await listSnapshots(a, ['project=broken'])).length;
    const error = await backupStream(a, {
      what: 'project broken: database broken',
      producer: 'echo partial; exit 4',
      args: [],
      filename: 'broken/broken.dump',
      tags: ['hostkit', 'project=broken', 'kind=database'],
    }).catch((e: unknown) => e as Error & { code: string });
    expect(error).toMatchObject({ code: 'BACKUP_FAILED' });
    expect((error as Error).message).toContain('project broken: database broken');
    expect((await listSnapshots(a, ['project=broken'])).length).toBe(before);
  });

  it('keeps the declared number of snapshots per group', async () => {
    const a = access(path.join(dir, 'repo'));
    for (let i = 0; i < 4; i++) {
      await backupStream(a, {
        what: 'x',
        producer: 'echo "$1"',
        args: [String(i)],
        filename: 'keep/keep.dump',
        tags: ['hostkit', 'project=keep', 'kind=database'],
      });
    }
    expect((await listSnapshots(a, ['project=keep'])).length).toBe(4);
    await forget(a, ['hostkit', 'project=keep'], { last: 2 });
    expect((await listSnapshots(a, ['project=keep'])).length).toBe(2);
    expect((await listSnapshots(a, ['project=app'])).length).toBe(2); // other projects untouched
    await unlockStale(a);
    await checkRepository(a);
  });

  it('an unreachable repository is BACKUP_REPOSITORY_UNAVAILABLE', async () => {
    const a = access('sftp:nobody@127.0.0.1:/nowhere');
    a.env.RESTIC_SFTP_COMMAND = 'false'; // nothing to connect to: the transport exits at once
    const error = await repositoryExists(a).catch((e: unknown) => e as Error & { code: string });
    expect(error).toMatchObject({ code: 'BACKUP_REPOSITORY_UNAVAILABLE' });
  });
});
