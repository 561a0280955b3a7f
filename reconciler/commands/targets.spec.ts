import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { HostKitError } from '../core/errors.js';
import { FakeHost } from '../hosts/fake.js';
import { validateRepository } from '../manifests/index.js';
import type { HostManifest, Manifest } from '../manifests/types.js';
import { writeRepo } from '../../test/support/fixtures.js';
import { runs } from './safety.js';
import {
  addressTarget,
  identityFile,
  parseCount,
  parseSelector,
  resolveTargets,
  runOnTargets,
  runPool,
  type OpenedTarget,
  type TargetCommandOptions,
  type TargetSpec,
} from './targets.js';
import { capture, interceptOutput, renderGrouped, summaryLine, worstExitCode, type HostOutcome } from './target-output.js';

const host = (name: string, spec: string, labels = '') =>
  `apiVersion: hostkit.dev/v1\nkind: Host\nmetadata:\n  name: ${name}\n${labels ? `  labels: { ${labels} }\n` : ''}spec:\n${spec || '  {}\n'}`;

const REPO = {
  'hosts/web-1.yaml': host(
    'web-1',
    `  address: deploy@10.0.0.5
  ssh:
    port: 2222
    identityFile: { file: /home/op/.ssh/hostkit_ed25519 }
    knownHosts: /home/op/.ssh/known_hosts_prod
    sudo: true
`,
    'env: prod, role: web',
  ),
  'hosts/web-2.yaml': host('web-2', '  address: web-2.example.com\n', 'env: prod, role: web'),
  'hosts/db-1.yaml': host('db-1', '  ssh: { user: admin, identityFile: { env: DB1_SSH_KEY } }\n', 'env: prod, role: db'),
  'hosts/stage.yaml': host('stage', '  address: "2001:db8::7"\n', 'env: stage'),
  // A placement by a label named env: no secret reference.
  'hosts/motd.yaml': `apiVersion: hostkit.dev/v1
kind: File
metadata:
  name: motd
spec:
  placement:
    selector: { matchLabels: { env: prod } }
  path: /srv/motd
  content: "prod\\n"
`,
};

let hosts: Manifest<HostManifest>[];
let repoDir: string;

beforeAll(async () => {
  repoDir = await writeRepo(REPO);
  const repo = await validateRepository(repoDir);
  // spec.ssh's key lives on the operator's machine: outside the secret roots, a variable not in spec.secrets.env, and valid;
  // so is a placement on the label env.
  expect(repo.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  hosts = repo.manifests.filter((m): m is Manifest<HostManifest> => m.kind === 'Host');
});

describe('reconciler/commands/targets: options', () => {
  it.each([
    ['env=prod', { env: 'prod' }],
    ['env=prod,role=web', { env: 'prod', role: 'web' }],
    [' env=prod , tier= ', { env: 'prod', tier: '' }],
  ])('--hosts %j selects by labels', (text, labels) => {
    expect(parseSelector(text)).toEqual(labels);
  });

  it.each(['env', 'env!=prod', 'env=a=b', 'Env=prod', 'env=pr od', ''])('--hosts %j is refused, naming it', (text) => {
    expect(() => parseSelector(text)).toThrow(expect.objectContaining({ code: 'BAD_OPTION', message: expect.stringContaining('KEY=VALUE') }));
  });

  it('--parallel and --max-fail take whole numbers from 1', () => {
    expect(parseCount('--parallel', undefined)).toBeUndefined();
    expect(parseCount('--parallel', '8')).toBe(8);
    for (const bad of ['0', '-1', '2.5', 'four'])
      expect(() => parseCount('--max-fail', bad)).toThrow(expect.objectContaining({ code: 'BAD_OPTION', message: expect.stringContaining('--max-fail') }));
  });

  it('spec.address: user@host, a bare IPv6 address, and nothing that smuggles an option', () => {
    expect(addressTarget('deploy@10.0.0.5')).toEqual({ user: 'deploy', host: '10.0.0.5' });
    expect(addressTarget('2001:db8::7')).toEqual({ host: '2001:db8::7' });
    expect(() => addressTarget('-oProxyCommand=x')).toThrow(expect.objectContaining({ code: 'SSH_INVALID_TARGET' }));
  });
});

describe('reconciler/commands/targets: which hosts, reached how', () => {
  it('a --target by a Host name gets its spec.ssh and spec.address user; the command line wins', () => {
    const [byName] = resolveTargets({ target: ['ssh://web-1'] }, hosts);
    expect(byName).toEqual({
      hostName: 'web-1',
      ssh: { target: { user: 'deploy', host: 'web-1', port: 2222 }, knownHostsFile: '/home/op/.ssh/known_hosts_prod', sudo: true },
      identity: { ref: { file: '/home/op/.ssh/hostkit_ed25519' }, of: 'spec.ssh.identityFile of Host web-1' },
    });
    const [written] = resolveTargets({ target: ['ssh://root@web-1:22'], acceptNewHostKey: true, sshConfig: '/tmp/cfg' }, hosts);
    expect(written!.ssh).toEqual({
      target: { user: 'root', host: 'web-1', port: 22 },
      knownHostsFile: '/home/op/.ssh/known_hosts_prod',
      sudo: true,
      acceptNewHostKey: true,
      configFile: '/tmp/cfg',
    });
  });

  it('a --target by spec.address stands for that Host; spec.ssh.user wins over none', () => {
    expect(resolveTargets({ target: ['ssh://10.0.0.5'] }, hosts)[0]).toMatchObject({
      hostName: 'web-1',
      ssh: { target: { user: 'deploy', host: '10.0.0.5' } },
    });
    expect(resolveTargets({ target: ['db-1'] }, hosts)[0]).toMatchObject({
      hostName: 'db-1',
      ssh: { target: { user: 'admin', host: 'db-1' } },
      identity: { ref: { env: 'DB1_SSH_KEY' } },
    });
  });

  it('an unknown host is whatever --host says, else named once reached', () => {
    expect(resolveTargets({ target: ['ssh://root@198.51.100.9'] }, hosts)).toEqual([{ ssh: { target: { user: 'root', host: '198.51.100.9' } } }]);
    expect(resolveTargets({ target: ['ssh://198.51.100.9'], host: 'db-1' }, hosts)[0]).toMatchObject({
      hostName: 'db-1',
      ssh: { target: { user: 'admin', host: '198.51.100.9' } },
    });
    expect(() => resolveTargets({ target: ['ssh://web-2.example.com'], host: 'db-1' }, hosts)).toThrow(
      expect.objectContaining({ code: 'BAD_OPTION', message: expect.stringContaining('is Host web-2 (by its spec.address), but --host says db-1') }),
    );
  });

  it('--hosts selects by labels, in name order, each at its address or name; a host named twice is reached once', () => {
    const web = resolveTargets({ hosts: 'env=prod,role=web', target: ['ssh://web-2.example.com'] }, hosts);
    expect(web.map((s) => [s.hostName, s.ssh.target])).toEqual([
      ['web-2', { host: 'web-2.example.com' }],
      ['web-1', { user: 'deploy', host: '10.0.0.5', port: 2222 }],
    ]);
    expect(resolveTargets({ hosts: 'env=stage' }, hosts)[0]!.ssh.target).toEqual({ host: '2001:db8::7' });
    expect(resolveTargets({ hosts: 'env=prod' }, hosts).map((s) => s.hostName)).toEqual(['db-1', 'web-1', 'web-2']);
    expect(() => resolveTargets({ hosts: 'env=qa', repo: 'cfg' }, hosts)).toThrow(
      expect.objectContaining({ code: 'BAD_OPTION', message: expect.stringContaining('no Host manifest in cfg has these labels') }),
    );
  });

  it('--host names one host: with several it is refused', () => {
    expect(() => resolveTargets({ target: ['a', 'b'], host: 'web-1' }, hosts)).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    expect(() => resolveTargets({ target: ['ssh://bad host'] }, hosts)).toThrow(expect.objectContaining({ code: 'SSH_INVALID_TARGET' }));
  });
});

describe('reconciler/commands/targets: the identity file, resolved on this machine', () => {
  afterEach(() => vi.unstubAllEnvs());

  it('{env:} is written to a private file for the connection only; {file:} is used where it is', async () => {
    vi.stubEnv('HK_TEST_KEY', '-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----');
    const fromEnv = await identityFile({ ref: { env: 'HK_TEST_KEY' }, of: 'spec.ssh.identityFile of Host db-1' });
    expect((await stat(fromEnv.file)).mode & 0o777).toBe(0o600);
    expect(await readFile(fromEnv.file, 'utf8')).toBe('-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n');
    await fromEnv.dispose();
    await expect(stat(path.dirname(fromEnv.file))).rejects.toMatchObject({ code: 'ENOENT' });

    const dir = await mkdtemp(path.join(os.tmpdir(), 'hk-identity-'));
    const fromFile = await identityFile({ ref: { file: dir }, of: 'x' });
    expect(fromFile.file).toBe(dir);
    await rm(dir, { recursive: true });
  });

  it.each([
    [{ env: 'HK_TEST_UNSET' }, 'environment variable HK_TEST_UNSET): the variable is not set on this machine'],
    [{ file: '/nonexistent/id_ed25519' }, 'file /nonexistent/id_ed25519): cannot be read on this machine'],
    [
      { age: '-----BEGIN AGE ENCRYPTED FILE-----\nx\n-----END AGE ENCRYPTED FILE-----' },
      'age-encrypted value): an age-encrypted key would need an age identity',
    ],
  ])('%j that cannot be resolved: SSH_IDENTITY_UNAVAILABLE naming the Host', async (ref, why) => {
    await expect(identityFile({ ref, of: 'spec.ssh.identityFile of Host db-1' })).rejects.toMatchObject({
      code: 'SSH_IDENTITY_UNAVAILABLE',
      message: expect.stringContaining(`spec.ssh.identityFile of Host db-1 (${why}`),
    });
  });
});

describe('reconciler/commands/target-output', () => {
  it.each([
    [[0, 0], 0],
    [[0, 2], 2],
    [[2, 3, 0], 3],
    [[3, 1, 2], 1],
    [[1, 130], 130],
  ])('the worst of %j is %i', (codes, worst) => {
    expect(worstExitCode(codes)).toBe(worst);
  });

  const outcomes: HostOutcome[] = [
    { name: 'web-1', target: 'ssh://root@web-1', exitCode: 0, stdout: '{\n  "runs": []\n}\n' },
    {
      name: 'web-2',
      target: 'ssh://root@web-2',
      exitCode: 1,
      stdout: '',
      error: { code: 'SSH_CONNECT_FAILED', message: 'Could not open an SSH connection to ssh://root@web-2: refused' },
    },
    { name: 'web-3', target: 'ssh://root@web-3', exitCode: 1, stdout: '', skipped: 'not started: 1 host(s) had failed (--max-fail 1)' },
  ];

  it('JSON: one object keyed by host name; an unreached host its error, a skipped one why', () => {
    expect(JSON.parse(renderGrouped(outcomes, 'json'))).toEqual({
      'web-1': { runs: [] },
      'web-2': { error: { code: 'SSH_CONNECT_FAILED', message: 'Could not open an SSH connection to ssh://root@web-2: refused' }, exitCode: 1 },
      'web-3': { skipped: 'not started: 1 host(s) had failed (--max-fail 1)' },
    });
    // logs -o json prints one object a line: a host's value is their list.
    expect(JSON.parse(renderGrouped([{ name: 'a', target: 'ssh://a', exitCode: 0, stdout: '{"n":1}\n{"n":2}\n' }], 'json'))).toEqual({
      a: [{ n: 1 }, { n: 2 }],
    });
  });

  it('text: a heading line per host, its output under it, then who ended how', () => {
    expect(renderGrouped(outcomes, 'text')).toBe(
      [
        '== web-1 (ssh://root@web-1) ==',
        '{',
        '  "runs": []',
        '}',
        '',
        '== web-2 (ssh://root@web-2) ==',
        'failed: Could not open an SSH connection to ssh://root@web-2: refused [SSH_CONNECT_FAILED]',
        '',
        '== web-3 (ssh://root@web-3) ==',
        'skipped: not started: 1 host(s) had failed (--max-fail 1)',
        '',
        '3 hosts: exit 0: web-1; exit 1: web-2; skipped: web-3',
        '',
      ].join('\n'),
    );
    expect(renderGrouped(outcomes.slice(0, 1), 'markdown')).toMatch(/^## web-1 \(ssh:\/\/root@web-1\)\n\n\{/);
    expect(summaryLine([{ ...outcomes[0]!, exitCode: 2 }, outcomes[0]!])).toBe('2 hosts: exit 0: web-1; exit 2: web-1');
  });

  it("keeps each host's stdout apart while they run at once; their stderr lines go out at once, named", async () => {
    const out: string[] = [];
    const err: string[] = [];
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => (out.push(String(chunk)), true));
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => (err.push(String(chunk)), true));
    const restore = interceptOutput();
    try {
      const tick = () => new Promise((resolve) => setTimeout(resolve, 5));
      const [a, b] = await Promise.all(
        ['a', 'b'].map((name) =>
          capture(name, async () => {
            for (let i = 0; i < 3; i++) {
              process.stdout.write(`${name}${i}\n`);
              process.stderr.write(i === 0 ? `${name} half ` : `${name} line ${i}\n`);
              await tick();
            }
            if (name === 'b') throw new HostKitError('SSH_CONNECT_FAILED', 'gone');
            return 7;
          }),
        ),
      );
      process.stdout.write('outside\n');
      expect(a).toEqual({ stdout: 'a0\na1\na2\n', value: 7 });
      expect(b).toMatchObject({ stdout: 'b0\nb1\nb2\n', error: { code: 'SSH_CONNECT_FAILED' } });
    } finally {
      restore();
      stdout.mockRestore();
      stderr.mockRestore();
    }
    expect(out).toEqual(['outside\n']);
    expect(err.join('').split('\n').filter(Boolean).sort()).toEqual(
      ['a half a line 1', 'a line 2', 'b half b line 1', 'b line 2'].map((l) => `${l[0]}: ${l}`).sort(),
    );
  });
});

describe('reconciler/commands/targets: runPool', () => {
  it('runs at most N at a time, in order', async () => {
    let running = 0;
    let most = 0;
    const order: number[] = [];
    const results = await runPool([1, 2, 3, 4, 5, 6, 7], { parallel: 3 }, async (n) => {
      order.push(n);
      most = Math.max(most, ++running);
      await new Promise((resolve) => setTimeout(resolve, 10 + (n % 3) * 5));
      running--;
      return { result: n * 10, failed: false };
    });
    expect(most).toBe(3);
    expect(order).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(results).toEqual([10, 20, 30, 40, 50, 60, 70].map((result) => ({ result })));
  });

  it('--max-fail 1: once one failed none is started; those are skipped', async () => {
    const started: string[] = [];
    const results = await runPool(['a', 'b', 'c', 'd', 'e'], { parallel: 2, maxFail: 1 }, async (name) => {
      started.push(name);
      await new Promise((resolve) => setTimeout(resolve, name === 'a' ? 5 : 20));
      return { result: name, failed: name !== 'a' };
    });
    // a ends first and c starts; b fails, so d and e never start (c, started before, runs to its end).
    expect(started).toEqual(['a', 'b', 'c']);
    expect(results).toEqual([{ result: 'a' }, { result: 'b' }, { result: 'c' }, { skipped: true }, { skipped: true }]);
  });
});

describe('reconciler/commands/targets: runOnTargets with fake hosts', () => {
  type Options = TargetCommandOptions & { output: string; stateDir: string };
  const fakeOpener = (failing: ReadonlySet<string> = new Set(), closeFails: ReadonlySet<string> = new Set()) => {
    const closed: string[] = [];
    const opened: string[] = [];
    const open = async (spec: TargetSpec): Promise<OpenedTarget> => {
      const name = spec.ssh.target.host;
      if (failing.has(name)) throw new HostKitError('SSH_CONNECT_FAILED', `Could not open an SSH connection to ssh://${name}: refused`);
      opened.push(name);
      const fake = new FakeHost();
      fake.machineName = `${name}.example.com`;
      fake.seedDir('/var/lib/hostkit/runs');
      const close = async () => {
        closed.push(name);
        // As SshHost.close() does when a write sent without waiting failed on the host.
        if (closeFails.has(name))
          throw Object.assign(new Error(`ENOSPC: No space left on device, write '/var/lib/hostkit/x' on ssh:${name}`), { code: 'ENOSPC' });
      };
      return { host: fake, hostName: spec.hostName ?? name, target: `ssh://${name}`, close };
    };
    return { open, opened, closed };
  };

  async function captured(work: () => Promise<number>): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
    const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
    try {
      return { code: await work(), stdout, stderr };
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
  }

  it('one target: the command output exactly as a local run prints it, on the target host, closed after', async () => {
    const { open, closed } = fakeOpener();
    const seen: string[] = [];
    const run = await captured(() =>
      runOnTargets(
        { target: ['ssh://root@web-1'], repo: repoDir, output: 'json', stateDir: '/var/lib/hostkit' } as Options,
        async (o) => {
          seen.push(`${o.on!.hostName} ${await o.on!.host.hostname()}`);
          return runs(o);
        },
        undefined,
        open,
      ),
    );
    expect(seen).toEqual(['web-1 web-1.example.com']);
    expect(JSON.parse(run.stdout)).toEqual({ runs: [], quarantined: [], paused: [], held: [] });
    expect(run.code).toBe(0);
    expect(closed).toEqual(['web-1']);
  });

  it('several: JSON keyed by host name, the unreachable one its error; exit code the worst; every connection closed, also when the command throws', async () => {
    const { open, closed, opened } = fakeOpener(new Set(['web-2.example.com']));
    const run = await captured(() =>
      runOnTargets(
        { hosts: 'env=prod', repo: repoDir, output: 'json', stateDir: '/var/lib/hostkit' } as Options,
        async (o) => {
          if (o.on!.hostName === 'db-1') throw new HostKitError('RUN_LOCKED', 'held by another run');
          return runs(o);
        },
        undefined,
        open,
      ),
    );
    expect(JSON.parse(run.stdout)).toEqual({
      'db-1': { error: { code: 'RUN_LOCKED', message: 'held by another run' }, exitCode: 3 },
      'web-1': { runs: [], quarantined: [], paused: [], held: [] },
      'web-2': { error: { code: 'SSH_CONNECT_FAILED', message: 'Could not open an SSH connection to ssh://web-2.example.com: refused' }, exitCode: 1 },
    });
    expect(run.code).toBe(1);
    expect(opened.sort()).toEqual(['10.0.0.5', 'db-1']);
    expect(closed.sort()).toEqual(['10.0.0.5', 'db-1']);
    expect(run.stderr).toContain('web-2: hostkit: error: Could not open an SSH connection to ssh://web-2.example.com: refused [SSH_CONNECT_FAILED]\n');
    expect(run.stderr).toContain('db-1: hostkit: error: held by another run [RUN_LOCKED]\n');
  });

  it('several, text: grouped under a heading per host; --max-fail 1 --parallel 1 skips the rest', async () => {
    const { open, opened } = fakeOpener(new Set(['db-1']));
    const run = await captured(() =>
      runOnTargets(
        { hosts: 'env=prod', repo: repoDir, output: 'text', maxFail: '1', parallel: '1', stateDir: '/var/lib/hostkit' },
        (o) => runs(o),
        undefined,
        open,
      ),
    );
    expect(opened).toEqual([]);
    expect(run.stdout).toBe(
      [
        '== db-1 (ssh://admin@db-1) ==',
        'failed: Could not open an SSH connection to ssh://db-1: refused [SSH_CONNECT_FAILED]',
        '',
        '== web-1 (ssh://deploy@10.0.0.5:2222) ==',
        'skipped: not started: 1 host(s) had failed (--max-fail 1)',
        '',
        '== web-2 (ssh://web-2.example.com) ==',
        'skipped: not started: 1 host(s) had failed (--max-fail 1)',
        '',
        '3 hosts: exit 1: db-1; skipped: web-1, web-2',
        '',
      ].join('\n'),
    );
    expect(run.code).toBe(1);
  });

  it('a close that fails (a write the host did not make) fails the command that succeeded; a command that failed keeps its own error', async () => {
    const one = fakeOpener(new Set(), new Set(['web-1']));
    await expect(runOnTargets({ target: ['ssh://root@web-1'], repo: repoDir }, async () => 0, undefined, one.open)).rejects.toMatchObject({
      code: 'ENOSPC',
    });
    expect(one.closed).toEqual(['web-1']);
    await expect(
      runOnTargets(
        { target: ['ssh://root@web-1'], repo: repoDir },
        async () => {
          throw new HostKitError('RUN_LOCKED', 'held by another run');
        },
        undefined,
        one.open,
      ),
    ).rejects.toMatchObject({ code: 'RUN_LOCKED' });

    const several = fakeOpener(new Set(), new Set(['db-1']));
    const run = await captured(() =>
      runOnTargets({ hosts: 'env=prod', repo: repoDir, output: 'json', stateDir: '/var/lib/hostkit' } as Options, async () => 0, undefined, several.open),
    );
    const outcomes = JSON.parse(run.stdout) as Record<string, { exitCode?: number; error?: { message: string } }>;
    expect(outcomes['db-1']).toMatchObject({ exitCode: 1, error: { message: expect.stringContaining('ENOSPC') } });
    expect(outcomes['web-1']?.exitCode ?? 0).toBe(0);
    expect(run.code).toBe(1);
    expect(several.closed.sort()).toEqual(['10.0.0.5', 'db-1', 'web-2.example.com']);
  });

  it('plan --exit-code: 2 (changes pending) is no failure for --max-fail, and the worst code', async () => {
    const { open, opened } = fakeOpener();
    const run = await captured(() =>
      runOnTargets(
        { target: ['web-1', 'web-2', 'db-1'], repo: repoDir, output: 'text', maxFail: '1', parallel: '1' },
        async () => 2,
        (c) => c === 0 || c === 2,
        open,
      ),
    );
    expect(opened).toHaveLength(3);
    expect(run.code).toBe(2);
  });

  it.each([
    [{ parallel: '2' }, '--parallel, --max-fail, --accept-new-host-key and --ssh-config go with --target'],
    [{ target: ['a'], root: '/tmp/x' }, '--root acts on a directory of this machine'],
    [{ target: ['web-1', 'web-2'], follow: true }, '--follow runs until interrupted and prints as it goes: give it one host (2 are named)'],
    [{ hosts: 'env=prod', watch: '5' }, '--watch runs until interrupted'],
  ])('%j is refused before any host is reached', async (opts, message) => {
    const { open, opened } = fakeOpener();
    await expect(runOnTargets({ repo: repoDir, ...opts }, async () => 0, undefined, open)).rejects.toMatchObject({
      code: 'BAD_OPTION',
      message: expect.stringContaining(message),
    });
    expect(opened).toEqual([]);
  });
});
