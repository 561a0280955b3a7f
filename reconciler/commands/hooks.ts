// `hostkit hooks install`: puts HostKit's git hooks (hooks/ in the package)
// into a config repository's hooks directory, wherever core.hooksPath says it
// is. A hook HostKit did not write is left alone unless --force, and then it
// is kept beside the new one as NAME.hostkit-backup.
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { HostKitError } from '../core/errors.js';
import { isQuiet } from './quiet.js';
import { assertRepository } from './validate.js';

export const HOOKS = ['pre-commit'] as const;
export const HOOK_MARKER = '# hostkit-managed-hook';

export interface HooksInstallOptions {
  repo: string;
  force?: boolean;
}

export interface HookInstalled {
  name: string;
  path: string;
  action: 'installed' | 'updated' | 'unchanged' | 'replaced';
  backup?: string;
}

// The package's hooks/ folder: beside dist/ when built, beside reconciler/ in a checkout.
function hooksSourceDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(path.join(dir, 'hooks', 'pre-commit')) && existsSync(path.join(dir, 'package.json'))) return path.join(dir, 'hooks');
    dir = path.dirname(dir);
  }
  throw new HostKitError('HOOKS_NOT_FOUND', 'HostKit’s hooks/ folder was not found next to the installed package; reinstall hostkit');
}

/** The hooks directory git uses for the repository at `dir` (core.hooksPath respected). */
export async function gitHooksDir(dir: string): Promise<string> {
  const r = await execa('git', ['rev-parse', '--git-path', 'hooks'], { cwd: dir, reject: false });
  if (r.exitCode !== 0) {
    throw new HostKitError('NOT_A_GIT_REPOSITORY', `${dir} is not a git repository (git rev-parse: ${String(r.stderr).trim()}); pass --repo DIR`);
  }
  return path.resolve(dir, String(r.stdout).trim());
}

const shellQuote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

// The hook with the hostkit that installs it written in, for when none is on PATH.
function personalize(script: string): string {
  const cli = process.argv[1] ? path.resolve(process.argv[1]) : '';
  return script
    .replace(/^HOSTKIT_INSTALLED_NODE=.*$/m, `HOSTKIT_INSTALLED_NODE=${shellQuote(process.execPath)}`)
    .replace(/^HOSTKIT_INSTALLED_CLI=.*$/m, `HOSTKIT_INSTALLED_CLI=${shellQuote(cli)}`);
}

export async function installHooks(opts: HooksInstallOptions): Promise<HookInstalled[]> {
  const repo = await assertRepository(opts.repo);
  const target = await gitHooksDir(repo);
  const source = hooksSourceDir();
  await mkdir(target, { recursive: true });
  const done: HookInstalled[] = [];
  for (const name of HOOKS) {
    const content = personalize(await readFile(path.join(source, name), 'utf8'));
    const file = path.join(target, name);
    const existing = await readFile(file, 'utf8').catch(() => undefined);
    let action: HookInstalled['action'] = existing === undefined ? 'installed' : 'updated';
    let backup: string | undefined;
    if (existing === content) action = 'unchanged';
    else if (existing !== undefined && !existing.includes(HOOK_MARKER)) {
      if (!opts.force) {
        throw new HostKitError(
          'HOOK_EXISTS',
          `${file} exists and was not installed by HostKit; nothing was changed. Re-run with --force to replace it (it is kept as ${name}.hostkit-backup)`,
          {
            data: { file },
          },
        );
      }
      backup = `${file}.hostkit-backup`;
      await rename(file, backup);
      action = 'replaced';
    }
    if (action !== 'unchanged') {
      // Written beside (a name of its own, so two installs do not share it), synced and
      // renamed, so git never runs a half-written hook.
      const temp = `${file}.hostkit-${randomBytes(6).toString('hex')}`;
      await writeFile(temp, content, { mode: 0o755, flag: 'wx', flush: true });
      await rename(temp, file).catch(async (error: unknown) => {
        await rm(temp, { force: true });
        throw error;
      });
    }
    await chmod(file, 0o755);
    done.push({ name, path: file, action, ...(backup ? { backup } : {}) });
  }
  return done;
}

export async function hooksInstall(opts: HooksInstallOptions): Promise<number> {
  const done = await installHooks(opts);
  if (isQuiet()) return 0;
  for (const h of done) {
    process.stdout.write(`${h.name}: ${h.action} ${h.path}${h.backup ? ` (the previous hook is kept as ${h.backup})` : ''}\n`);
  }
  return 0;
}
