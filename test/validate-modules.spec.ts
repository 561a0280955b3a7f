import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// `hostkit validate` reads the light registry (drivers/kinds.ts: each folder's
// definition.ts, manifest.ts and project.ts), never a driver's code: the modules
// the real command loads are recorded by a loader hook (test/support/record-loads.ts).
const DIST = path.resolve('dist');
const CLI = path.join(DIST, 'reconciler/cli.js');
const HOOK = pathToFileURL(path.join(DIST, 'test/support/record-loads.js')).href;

// What only observe, plan and apply need: the registry of drivers, a driver's index.ts or
// driver.ts, the code drivers share, and how they reach a host.
const DRIVER_CODE = /^reconciler\/(drivers\/(registry\.js|shared\/.*|[^/]+\/(index|driver)\.js)|hosts\/.*)$/;
// Constants of drivers/shared the manifests' checks use too (the TLS and ACME paths).
const SHARED_CONSTANTS = ['reconciler/drivers/shared/web.js'];

describe('hostkit validate', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'hostkit-validate-modules-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('loads no driver code: the kinds, their manifest kinds and the parts of a Project only', async () => {
    const out = path.join(dir, 'loaded.txt');
    const r = await execa(process.execPath, ['--import', HOOK, CLI, 'validate', '--repo', 'example-repo'], {
      reject: false,
      env: { HOSTKIT_LOADED_MODULES: out, HOSTKIT_CACHE_DIR: path.join(dir, 'cache'), NO_COLOR: '' },
    });
    expect(r.stdout).toMatch(/manifests valid/);
    const loaded = (await readFile(out, 'utf8'))
      .split('\n')
      .filter((url) => url.startsWith('file:') && fileURLToPath(url).startsWith(DIST + path.sep))
      .map((url) => path.relative(DIST, fileURLToPath(url)));
    // The hook saw the command's modules: validation, expansion and the light registry.
    expect(loaded).toEqual(expect.arrayContaining(['reconciler/commands/validate.js', 'reconciler/manifests/expand.js', 'reconciler/drivers/kinds.js']));
    expect(loaded.filter((f) => DRIVER_CODE.test(f) && !SHARED_CONSTANTS.includes(f))).toEqual([]);
  });
});
