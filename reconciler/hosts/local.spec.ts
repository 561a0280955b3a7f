import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { LocalHost } from './local.js';

describe('reconciler/hosts/local exec', () => {
  const host = new LocalHost();

  it('returns exit code and output of a failing command without throwing', async () => {
    expect(await host.exec('sh', ['-c', 'echo out; echo err >&2; exit 3'])).toEqual({ exitCode: 3, stdout: 'out\n', stderr: 'err\n' });
  });

  it('passes input, extra environment (on top of its own) and working directory', async () => {
    expect((await host.exec('cat', [], { input: 'hello\n' })).stdout).toBe('hello\n');
    expect((await host.exec('sh', ['-c', 'echo "$HK_TEST_VALUE" "${PATH:+path}"'], { env: { HK_TEST_VALUE: 'v 1' } })).stdout).toBe('v 1 path\n');
    expect((await host.exec('pwd', [], { cwd: '/' })).stdout).toBe('/\n');
    expect((await host.exec('true', [], { input: 'x'.repeat(1 << 20) })).exitCode).toBe(0);
  });

  it('a command that cannot start, or runs out of time, is an error naming it', async () => {
    await expect(host.exec('hostkit-no-such-command', [])).rejects.toThrow(/Could not run hostkit-no-such-command: .*ENOENT/);
    await expect(host.exec('sleep', ['5'], { timeoutMs: 100 })).rejects.toMatchObject({
      code: 'EXEC_TIMED_OUT',
      retryable: true,
      message: 'sleep 5 on local timed out after 100 ms; its process group got SIGTERM',
    });
  });
});

describe('reconciler/hosts/local exec: timeouts end the whole process group', () => {
  const host = new LocalHost();

  it('a command that ignores SIGTERM gets SIGKILL after the grace, and its grandchildren go with it', async () => {
    const dir = await mkdtemp('/tmp/hk-exec-');
    // The shell ignores SIGTERM (so does the sleep it leaves in the background) and records the sleep's PID.
    const script = `trap "" TERM; sleep 300 & echo $! > ${dir}/grandchild; echo started; wait`;
    const started = Date.now();
    const error = await host.exec('sh', ['-c', script], { timeoutMs: 300, killGraceMs: 400 }).catch((e: unknown) => e);
    const elapsed = Date.now() - started;
    expect(error).toMatchObject({
      code: 'EXEC_TIMED_OUT',
      message: expect.stringMatching(/^sh -c trap .* on local timed out after 300 ms; its process group got SIGTERM, then SIGKILL after 400 ms$/),
      data: { timeoutMs: 300, killGraceMs: 400, signal: 'SIGKILL' },
    });
    expect(elapsed).toBeGreaterThanOrEqual(700);
    expect(elapsed).toBeLessThan(2_500);
    const grandchild = Number(await readFile(`${dir}/grandchild`, 'utf8'));
    await rm(dir, { recursive: true });
    expect(grandchild).toBeGreaterThan(1);
    expect(await alive(grandchild)).toBe(false);
  });

  it('a command that stops on SIGTERM is not waited for until the grace ends', async () => {
    const started = Date.now();
    await expect(host.exec('sleep', ['300'], { timeoutMs: 200 })).rejects.toMatchObject({ code: 'EXEC_TIMED_OUT', data: { signal: 'SIGTERM' } });
    expect(Date.now() - started).toBeLessThan(1_500);
  });

  it('a background process left holding the output open is ended with its group at the timeout, not waited for', async () => {
    const started = Date.now();
    await expect(host.exec('sh', ['-c', 'sleep 300 & exit 0'], { timeoutMs: 300 })).rejects.toMatchObject({ code: 'EXEC_TIMED_OUT' });
    expect(Date.now() - started).toBeLessThan(1_500);
  });
});

describe('reconciler/hosts/local exec: output is capped', () => {
  const host = new LocalHost();

  it('keeps the tail of each stream past the limit, says how much was cut, and cuts at a character', async () => {
    // 3000 lines of "line N", then "é" right at the cut, then the end.
    const script = 'i=0; while [ $i -lt 3000 ]; do echo "line $i"; i=$((i+1)); done; printf "é"; echo end; echo err-tail >&2';
    const result = await host.exec('sh', ['-c', script], { maxOutputBytes: 4 });
    expect(result.stdout).toMatch(/^\[\.\.\. \d+ bytes cut \.\.\.\]\nend\n$/);
    expect(result.stderr).toBe('[... 5 bytes cut ...]\nail\n');
    expect(result.truncated).toEqual({ stdout: expect.any(Number), stderr: 5 });
    expect(result.truncated!.stdout + 4).toBe(Buffer.byteLength(Array.from({ length: 3000 }, (_, i) => `line ${i}\n`).join('') + 'é' + 'end\n'));
  });

  it('keeps the last MiB by default, and all of it under the limit', async () => {
    const big = await host.exec('head', ['-c', String(3 * 1024 * 1024), '/dev/zero']);
    expect(big.truncated).toEqual({ stdout: 2 * 1024 * 1024, stderr: 0 });
    expect(big.stdout.length).toBe(1024 * 1024 + '[... 2097152 bytes cut ...]\n'.length);
    const small = await host.exec('head', ['-c', String(1024 * 1024), '/dev/zero']);
    expect(small.truncated).toBeUndefined();
    expect(small.stdout.length).toBe(1024 * 1024);
  });
});

// Running, not merely a zombie its new parent has not reaped yet.
async function alive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat !== '' && !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
}

describe('reconciler/hosts/local appendFile', () => {
  it('creates the file with owner and mode, appends in order, and does not follow a symlink in the last component', async () => {
    const { mkdtemp, readFile, stat, symlink, writeFile } = await import('node:fs/promises');
    const root = await mkdtemp('/tmp/hk-append-');
    const host = new LocalHost({ root });
    await host.appendFile('/events.jsonl', 'one\n', { uid: 0, gid: 0, mode: 0o600 });
    await host.appendFile('/events.jsonl', Buffer.from('two\n'), { uid: 0, gid: 0, mode: 0o600 });
    expect(await readFile(`${root}/events.jsonl`, 'utf8')).toBe('one\ntwo\n');
    expect((await stat(`${root}/events.jsonl`)).mode & 0o777).toBe(0o600);
    await writeFile(`${root}/target`, 'untouched\n');
    await symlink(`${root}/target`, `${root}/link`);
    await expect(host.appendFile('/link', 'x\n', { uid: 0, gid: 0, mode: 0o600 })).rejects.toMatchObject({ code: 'ELOOP' });
    expect(await readFile(`${root}/target`, 'utf8')).toBe('untouched\n');
  });
});

describe('reconciler/hosts/local symlink and readlink', () => {
  it('switches a link atomically to a new target, replaces the old link rather than following it, and reads it back as written', async () => {
    const { mkdir, readdir, readFile, writeFile } = await import('node:fs/promises');
    const root = await mkdtemp('/tmp/hk-link-');
    try {
      const host = new LocalHost({ root });
      await mkdir(`${root}/releases/a`, { recursive: true });
      await mkdir(`${root}/releases/b`, { recursive: true });
      await writeFile(`${root}/releases/a/app`, 'A');
      await writeFile(`${root}/releases/b/app`, 'B');
      expect(await host.readlink('/current')).toBeUndefined();
      await host.symlink('releases/a', '/current');
      expect(await host.readlink('/current')).toBe('releases/a');
      await host.symlink('releases/b', '/current');
      expect(await host.readlink('/current')).toBe('releases/b');
      expect(await readFile(`${root}/current/app`, 'utf8')).toBe('B');
      // The old target is untouched (a followed link would have put the new link inside it).
      expect(await readdir(`${root}/releases/a`)).toEqual(['app']);
      // No temporary link is left beside it.
      expect((await readdir(root)).sort()).toEqual(['current', 'releases']);
      expect(await host.readlink('/releases/a/app')).toBeUndefined();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
