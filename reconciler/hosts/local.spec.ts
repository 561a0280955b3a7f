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
    await expect(host.exec('sleep', ['5'], { timeoutMs: 100 })).rejects.toMatchObject({ code: 'EXEC_FAILED', retryable: true });
  });
});

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
