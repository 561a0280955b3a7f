import { COUNT, many, type ConformanceFixture, type ManifestDoc } from '../../../test/support/conformance.js';
import { checkpointWorld } from '../../../test/support/fake-restic.js';

// Checkpoints of static projects' databases: each project has a database and one before-start
// command (a marker file in its directory, as the command fixture's); the projects without the
// command, their databases made, are what they need, so an apply of the commands dumps the
// databases first (a database the run creates is not dumped: the 20 of the observe check).
// restic and pg_dump are the fake ones (test/support/fake-restic.ts), over the fake PostgreSQL
// server the database drivers use.
const project = (set: string, i: number) => `ck-${set}-p${i}`;

function app(set: string, i: number, command?: { changed: boolean }): ManifestDoc {
  const marker = `marker${command?.changed ? 'b' : ''}`;
  return {
    kind: 'Project',
    name: project(set, i),
    spec: {
      runtime: 'static',
      files: [{ name: 'app.conf', content: 'mode=static\n' }],
      // A run that dies is recovered with the data back as its checkpoint holds it (the restore steps the kit's recoveries run).
      database: { password: { env: 'CK_DB_PASSWORD' }, restoreDataOnRollback: true },
      ...(command ? { lifecycle: [{ name: 'migrate', phase: 'before-start', command: ['/usr/bin/touch', marker], down: ['/usr/bin/rm', '-f', marker] }] } : {}),
    },
  };
}

// The COUNT projects, their databases made before any command is declared.
const needs = (set: string) => many(COUNT, false, (i) => app(set, i));

export const fixtures: ConformanceFixture[] = [
  {
    kind: 'checkpoint',
    needs,
    // All COUNT projects (a check of fewer would orphan the rest), the first `count` with their command and so a checkpoint.
    declare: (set, count, changed) => many(Math.max(count, COUNT), changed, (i, change) => app(set, i, i <= count ? { changed: change } : undefined)),
    // What the checkpoints guard: the commands' markers. The dumps themselves are in restic, not on the host.
    paths: ({ set, count }) => Array.from({ length: count }, (_, i) => `/srv/${project(set, i + 1)}`),
    host: { backup: { password: { env: 'CK_RESTIC_PASSWORD' } } },
    env: { CK_DB_PASSWORD: 'conformance-db-5c1a', CK_RESTIC_PASSWORD: 'conformance-restic-9d2b' },
    fake: checkpointWorld,
  },
];
