// Packs a staged tree: a .deb with dpkg-deb, a tarball with GNU tar. Both list
// files sorted, owned by root, with the stage's fixed mtimes, and gzip them
// (fast, and every dpkg and tar reads it).
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { finished } from './child.js';
import { OWNED_PATHS } from './layout.js';

/** Runs dpkg-deb on `stage` (which holds DEBIAN/). If it fails, `file` may be partial. */
export async function writeDeb(stage: string, file: string, sourceDateEpoch: number, compress = true): Promise<void> {
  const args = ['--root-owner-group', '--build', ...(compress ? ['-Zgzip', '-z6'] : ['-Znone']), stage, file];
  const child = spawn('dpkg-deb', args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, SOURCE_DATE_EPOCH: String(sourceDateEpoch) } });
  const { code, stderr } = await finished(child);
  if (code !== 0) throw new Error(`dpkg-deb ${args.join(' ')} failed (${code}): ${stderr.trim()}`);
}

/**
 * The same tree for `tar -xzf FILE -C /`: only the paths HostKit owns, never
 * entries for /usr or /etc themselves (tar would reset their modes and times).
 */
export async function writeTarball(stage: string, file: string): Promise<void> {
  const entries = OWNED_PATHS.map((p) => `.${p}`);
  const args = ['--sort=name', '--format=gnu', '--owner=0', '--group=0', '--numeric-owner', '-C', stage, '-cf', '-', ...entries];
  const child = spawn('tar', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const [{ code, stderr }] = await Promise.all([finished(child), pipeline(child.stdout, createGzip({ level: 6 }), createWriteStream(file))]);
  if (code !== 0) throw new Error(`tar ${args.join(' ')} failed (${code}): ${stderr.trim()}`);
}
