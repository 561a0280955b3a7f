import { chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultCacheDir } from './parse-cache.js';

// Ownership is only checked as root (only root can write where it does not own), so the
// "another user's home" cases run as root, which is how the suite runs on this project's machines.
const asRoot = process.geteuid?.() === 0;

describe('reconciler/manifests/parse-cache: where the cache lives', () => {
  let tmp: string;
  let alice: string; // a home of another user, as `sudo` may leave in HOME
  let rootHome: string;
  let state: string;

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'hk-cachedir-'));
    alice = path.join(tmp, 'home-alice');
    rootHome = path.join(tmp, 'root-home');
    state = path.join(tmp, 'state');
    for (const dir of [alice, rootHome, state]) await mkdir(dir);
    if (asRoot) await chown(alice, 4242, 4242);
    await writeFile(path.join(tmp, 'a-file'), '');
  });
  afterAll(async () => rm(tmp, { recursive: true, force: true }));

  it('$HOSTKIT_CACHE_DIR when it can be written, else no cache at all (not a place the user did not name)', () => {
    expect(defaultCacheDir({ env: { HOSTKIT_CACHE_DIR: path.join(tmp, 'new', 'cache'), HOME: rootHome } })).toBe(path.join(tmp, 'new', 'cache'));
    expect(defaultCacheDir({ env: { HOSTKIT_CACHE_DIR: path.join(tmp, 'a-file', 'cache'), HOME: rootHome } })).toBeUndefined();
    expect(defaultCacheDir({ env: { HOSTKIT_CACHE_DIR: 'relative/cache', HOME: rootHome } })).toBeUndefined();
  });

  it('for a user: $XDG_CACHE_HOME/hostkit (an absolute one), else ~/.cache/hostkit from $HOME; nothing writable, no cache', () => {
    const user = { uid: 1000, userHome: '/nonexistent' };
    expect(defaultCacheDir({ ...user, env: { XDG_CACHE_HOME: path.join(tmp, 'xdg'), HOME: rootHome } })).toBe(path.join(tmp, 'xdg', 'hostkit'));
    expect(defaultCacheDir({ ...user, env: { XDG_CACHE_HOME: 'xdg', HOME: rootHome } })).toBe(path.join(rootHome, '.cache', 'hostkit'));
    expect(defaultCacheDir({ ...user, env: { HOME: path.join(tmp, 'a-file') } })).toBeUndefined();
  });

  it.runIf(asRoot)('as root: the state directory when it exists, else root’s own home from the password database, never $HOME', () => {
    const env = { HOME: alice };
    expect(defaultCacheDir({ uid: 0, env, stateDirectory: state, userHome: rootHome })).toBe(path.join(state, 'cache'));
    expect(defaultCacheDir({ uid: 0, env, stateDirectory: path.join(tmp, 'no-state'), userHome: rootHome })).toBe(path.join(rootHome, '.cache', 'hostkit'));
  });

  it.runIf(asRoot)('as root: nothing inside another user’s directory, whatever XDG_CACHE_HOME or HOSTKIT_CACHE_DIR say (sudo -E)', () => {
    const inAlice = path.join(alice, '.cache');
    expect(defaultCacheDir({ uid: 0, env: { HOME: alice, XDG_CACHE_HOME: inAlice }, stateDirectory: state, userHome: rootHome })).toBe(
      path.join(state, 'cache'),
    );
    expect(defaultCacheDir({ uid: 0, env: { HOME: alice, HOSTKIT_CACHE_DIR: inAlice }, stateDirectory: state, userHome: rootHome })).toBeUndefined();
    // Root's own home, if it were another user's, is not used either.
    expect(defaultCacheDir({ uid: 0, env: {}, stateDirectory: path.join(tmp, 'no-state'), userHome: alice })).toBeUndefined();
  });
});
