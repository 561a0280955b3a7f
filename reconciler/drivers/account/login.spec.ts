import { describe, expect, it } from 'vitest';
import { BROKEN_SUDOERS_LINE, driversWithBrokenSudoers } from '../../../test/support/broken-sudoers.js';
import { driverContext, inventoryAfter } from '../../../test/support/context.js';
import { HOST_YAML, TEST_HOST, writeRepo } from '../../../test/support/fixtures.js';
import { manifestYaml } from '../../../test/support/manifests.js';
import { testKey } from '../../../test/support/ssh-keys.js';
import { JournaledRun } from '../../../test/support/undo.js';
import { HostKitError } from '../../core/errors.js';
import { silentLogger } from '../../core/log.js';
import { reconcileHost } from '../../engine.js';
import type { Resource } from '../../core/resource.js';
import type { AuthorizedKeysSpec, SudoersSpec } from '../../core/specs.js';
import { FakeHost } from '../../hosts/fake.js';
import { expandForHost, hostSettings } from '../../manifests/expand.js';
import { validateFiles } from '../../manifests/index.js';
import type { HostManifest, Manifest } from '../../manifests/types.js';
import type { DriverContext } from '../types.js';
import { authorizedKeysDriver, sudoersDriver, type ObservedKeys } from './index.js';
import { keyProblem } from './login.js';
import { checkPath } from './sudoers.js';

const ALICE = testKey('alice', 'alice@laptop');
const BOB = testKey('bob', 'bob@laptop');
const KEYS = '/home/alice/.ssh/authorized_keys';
const SUDOERS = '/etc/sudoers.d/hostkit-alice';

const keysResource = (keys: string[] = [ALICE]): Resource<AuthorizedKeysSpec> => ({
  id: 'authorizedkeys/alice',
  kind: 'authorizedkeys',
  name: 'alice',
  spec: { user: 'alice', group: 'alice', home: '/home/alice', path: KEYS, keys },
  dependsOn: ['account/alice'],
  origin: { file: 'hosts/people.yaml', line: 9 },
  hostLevel: true,
});

const sudoResource = (rules: SudoersSpec['rules']): Resource<SudoersSpec> => ({
  id: 'sudoers/alice',
  kind: 'sudoers',
  name: 'alice',
  spec: { user: 'alice', path: SUDOERS, rules },
  dependsOn: ['account/alice'],
  origin: { file: 'hosts/people.yaml', line: 12 },
  hostLevel: true,
});

/** A host with the account alice (uid and gid 1001) and /home; visudo accepts what `accept` says. */
function setup(options: { home?: boolean; visudo?: 'ok' | 'missing' | ((text: string) => string | undefined) } = {}) {
  const host = new FakeHost();
  host.seedFile('/etc/passwd', `${host.text('/etc/passwd')}alice:x:1001:1001::/home/alice:/bin/bash\n`);
  host.seedFile('/etc/group', `${host.text('/etc/group')}alice:x:1001:\n`);
  host.seedDir('/home');
  if (options.home !== false) host.seedDir('/home/alice', { uid: 1001, gid: 1001, mode: 0o755 });
  host.seedDir('/etc/sudoers.d', { mode: 0o755 });
  const visudo = options.visudo ?? 'ok';
  const checked: string[] = [];
  host.onExec((call) => {
    if (call.file !== 'visudo') return undefined;
    if (visudo === 'missing') throw new HostKitError('EXEC_FAILED', 'spawn visudo ENOENT');
    const file = call.args.at(-1)!;
    checked.push(host.text(file) ?? '(none)');
    const refusal = typeof visudo === 'function' ? visudo(host.text(file) ?? '') : undefined;
    return refusal
      ? { exitCode: 1, stdout: '', stderr: `>>> ${file}: ${refusal} <<<\nparse error in ${file} near line 2\n` }
      : { exitCode: 0, stdout: `${file}: parsed OK\n`, stderr: '' };
  });
  return { host, checked };
}

async function planKeys(ctx: DriverContext, r: Resource<AuthorizedKeysSpec>, orphan = false) {
  const desired = orphan ? undefined : (await authorizedKeysDriver.desire([r], ctx)).get(r.id)!.desired;
  const observed = (await authorizedKeysDriver.observe([r], ctx)).get(r.id);
  return authorizedKeysDriver.plan({ resource: r, desired, observed, orphan });
}

async function planSudo(ctx: DriverContext, r: Resource<SudoersSpec>, orphan = false) {
  const desired = orphan ? undefined : (await sudoersDriver.desire([r], ctx)).get(r.id)!.desired;
  const observed = (await sudoersDriver.observe([r], ctx)).get(r.id);
  return sudoersDriver.plan({ resource: r, desired, observed, orphan });
}

const mode = async (host: FakeHost, p: string) => {
  const st = await host.stat(p);
  return st ? `${st.uid}:${st.gid} ${st.mode.toString(8)}` : undefined;
};

describe('reconciler/drivers/account (authorized keys)', () => {
  const dir = (over: Partial<NonNullable<ObservedKeys['home']>> = {}) => ({ type: 'directory' as const, owner: 'alice', group: 'alice', mode: 0o700, ...over });
  const file = { type: 'file' as const, owner: 'alice', group: 'alice', mode: 0o600, owned: true };

  it.each<[string, ObservedKeys, string, string[], string[]]>([
    [
      'nothing yet: the home, .ssh and the file',
      {},
      'create',
      ['/home', '/sshDirectory', '/content', '/owner', '/group', '/mode'],
      ['home', 'ssh-directory', 'write'],
    ],
    [
      'a home of root, 0755: .ssh and the file',
      { home: dir({ owner: 'root', group: 'root', mode: 0o755 }) },
      'create',
      ['/sshDirectory', '/content', '/owner', '/group', '/mode'],
      ['ssh-directory', 'write'],
    ],
    [
      '.ssh 0755: set to 0700',
      { home: dir(), sshDir: dir({ mode: 0o755 }) },
      'create',
      ['/sshDirectory', '/content', '/owner', '/group', '/mode'],
      ['ssh-directory', 'write'],
    ],
    ['the file 0644: chmod', { home: dir(), sshDir: dir(), file: { ...file, mode: 0o644 } }, 'update', ['/mode'], ['chmod']],
  ])('%s', async (_title, observed, action, fields, ops) => {
    const { host } = setup();
    const ctx = driverContext(host, { mode: 'plan' });
    const r = keysResource();
    const desired = (await authorizedKeysDriver.desire([r], ctx)).get(r.id)!.desired;
    const withContent = observed.file ? { ...observed, file: { ...observed.file, content: Buffer.from(desired.content) } } : observed;
    const change = authorizedKeysDriver.plan({ resource: r, desired, observed: withContent, orphan: false });
    expect([change.action, change.fields.map((f) => f.field), change.ops.map((o) => o.op), change.diagnostics]).toEqual([action, fields, ops, []]);
  });

  it.each([
    ['group-writable', { mode: 0o775 }, 'its mode 0775 lets its group or others write it'],
    ['world-writable', { owner: 'root', mode: 0o777 }, 'its mode 0777 lets its group or others write it'],
    ["another user's", { owner: 'bob', mode: 0o755 }, 'it is owned by bob, not by alice or root'],
  ])('a home sshd refuses (%s) is a plan error; HostKit leaves the home alone', (_t, over, why) => {
    const change = authorizedKeysDriver.plan({
      resource: keysResource(),
      desired: { path: KEYS, content: '', owner: 'alice', group: 'alice', mode: 0o600 },
      observed: { home: dir(over) },
      orphan: false,
    });
    expect(change.ops).toEqual([]);
    expect(change.diagnostics).toEqual([
      expect.objectContaining({
        summary: 'home not safe for sshd',
        detail: `sshd (StrictModes) ignores the keys of account alice: its home /home/alice is not safe (${why}); HostKit does not change a home it did not create`,
        location: { file: 'hosts/people.yaml', line: 9 },
      }),
    ]);
  });

  it("writes .ssh 0700 and the file 0600, both the account's; verify passes; the next plan is a noop", async () => {
    const { host } = setup({ home: false });
    const ctx = driverContext(host);
    const r = keysResource([ALICE, BOB]);
    const change = await planKeys(ctx, r);
    await authorizedKeysDriver.apply(change, ctx);
    expect(await mode(host, '/home/alice')).toBe('1001:1001 700');
    expect(await mode(host, '/home/alice/.ssh')).toBe('1001:1001 700');
    expect(await mode(host, KEYS)).toBe('1001:1001 600');
    expect(host.text(KEYS)).toBe(
      `# Written by HostKit (authorizedkeys/alice); HostKit owns this file: a change here is undone on its next run.\n${ALICE}\n${BOB}\n`,
    );
    expect(await authorizedKeysDriver.verify(change, ctx)).toEqual([]);
    const next = driverContext(host, { mode: 'plan', inventory: inventoryAfter(ctx, [r]) });
    expect((await planKeys(next, r)).action).toBe('noop');
  });

  it('a key file HostKit did not write: the plan shows its size and fingerprint, never a line; the list replaces it; rollback puts it back', async () => {
    const { host } = setup();
    const foreign = 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ secret-host-key-comment\n';
    host.seedDir('/home/alice/.ssh', { uid: 1001, gid: 1001, mode: 0o700 });
    host.seedFile(KEYS, foreign, { uid: 1001, gid: 1001, mode: 0o600 });
    const ctx = driverContext(host);
    const change = await planKeys(ctx, keysResource());
    expect(change.action).toBe('update');
    const content = change.fields.find((f) => f.field === '/content')!;
    expect(content.before).toMatch(/^exists, 63 bytes, fingerprint hmac:/);
    expect(JSON.stringify(change)).not.toContain('secret-host-key-comment');
    const run = await JournaledRun.open(ctx, [change]);
    await run.apply(authorizedKeysDriver, change);
    expect(host.text(KEYS)).not.toContain('secret-host-key-comment');
    await run.rollback();
    expect(host.text(KEYS)).toBe(foreign);
    expect(await mode(host, '/home/alice/.ssh')).toBe('1001:1001 700');
  });

  it('the rollback of a create removes the file, and the .ssh and home it made (empty); a changed .ssh gets its mode back', async () => {
    const { host } = setup({ home: false });
    const ctx = driverContext(host);
    const change = await planKeys(ctx, keysResource());
    const run = await JournaledRun.open(ctx, [change]);
    await run.apply(authorizedKeysDriver, change);
    expect((await run.plan()).steps.map((s) => s.action)).toEqual(expect.arrayContaining(['remove-file', 'remove-directories']));
    await run.rollback();
    expect([await host.stat(KEYS), await host.stat('/home/alice/.ssh'), await host.stat('/home/alice')]).toEqual([undefined, undefined, undefined]);

    const again = setup();
    again.host.seedDir('/home/alice/.ssh', { uid: 1001, gid: 1001, mode: 0o775 });
    const ctx2 = driverContext(again.host);
    const update = await planKeys(ctx2, keysResource());
    const run2 = await JournaledRun.open(ctx2, [update]);
    await run2.apply(authorizedKeysDriver, update);
    expect(await mode(again.host, '/home/alice/.ssh')).toBe('1001:1001 700');
    await run2.rollback();
    expect(await mode(again.host, '/home/alice/.ssh')).toBe('1001:1001 775');
    expect(await again.host.stat(KEYS)).toBeUndefined();
  });

  it('a home that became unsafe after the plan fails apply (LOGIN_HOME_UNSAFE) before any key is written', async () => {
    const { host } = setup({ home: false });
    const ctx = driverContext(host);
    const change = await planKeys(ctx, keysResource());
    host.seedDir('/home/alice', { uid: 1001, gid: 1001, mode: 0o777 }); // e.g. a Directory of the same run, declared 0777
    await expect(authorizedKeysDriver.apply(change, ctx)).rejects.toMatchObject({
      code: 'LOGIN_HOME_UNSAFE',
      message: expect.stringContaining('no key was written'),
    });
    expect(await host.stat('/home/alice/.ssh')).toBeUndefined();
  });

  it('an orphan: the file HostKit wrote is removed (the logins end); .ssh stays', async () => {
    const { host } = setup();
    const ctx = driverContext(host);
    const r = keysResource();
    await authorizedKeysDriver.apply(await planKeys(ctx, r), ctx);
    const later = driverContext(host, { inventory: inventoryAfter(ctx, [r]) });
    const orphan = await planKeys(later, r, true);
    expect([orphan.action, orphan.ops]).toEqual(['delete', [{ op: 'remove' }]]);
    await authorizedKeysDriver.apply(orphan, later);
    expect(await host.stat(KEYS)).toBeUndefined();
    expect(await mode(host, '/home/alice/.ssh')).toBe('1001:1001 700');
  });
});

describe('reconciler/drivers/account (sudo rules)', () => {
  const RULES: SudoersSpec['rules'] = [
    { commands: ['/usr/bin/systemctl', '/usr/bin/journalctl'], runAs: 'root', password: false },
    { commands: ['ALL'], runAs: 'postgres', password: true },
  ];
  const TEXT = `# Written by HostKit (sudoers/alice); a change here is undone on its next run.
alice ALL=(root) NOPASSWD: /usr/bin/systemctl, /usr/bin/journalctl
alice ALL=(postgres) ALL
`;

  it('checks the text with visudo -cf under a name sudo ignores, then writes it root:root 0440; the check copy is gone', async () => {
    const { host, checked } = setup();
    const ctx = driverContext(host);
    const r = sudoResource(RULES);
    const change = await planSudo(ctx, r);
    expect([change.action, change.ops]).toEqual(['create', [{ op: 'check' }, { op: 'write' }]]);
    await sudoersDriver.apply(change, ctx);
    expect(host.calls.filter((c) => c.file === 'visudo').map((c) => c.args)).toEqual([['-c', '-f', '/etc/sudoers.d/.hostkit-alice.check']]);
    expect(checked).toEqual([TEXT]);
    expect(host.text(SUDOERS)).toBe(TEXT);
    expect(await mode(host, SUDOERS)).toBe('0:0 440');
    expect(await host.stat(checkPath('alice'))).toBeUndefined();
    expect(await sudoersDriver.verify(change, ctx)).toEqual([]);
    const next = driverContext(host, { mode: 'plan', inventory: inventoryAfter(ctx, [r]) });
    expect((await planSudo(next, r)).action).toBe('noop');
  });

  it('a rule visudo refuses is never installed: SUDOERS_REFUSED names the manifest and the account; the previous file stays', async () => {
    const { host } = setup({ visudo: (text) => (text.includes('(postgres)') ? 'syntax error near line 3' : undefined) });
    host.seedFile(SUDOERS, 'alice ALL=(root) /usr/bin/true\n', { mode: 0o440 });
    const ctx = driverContext(host);
    const change = await planSudo(ctx, sudoResource(RULES));
    await expect(sudoersDriver.apply(change, ctx)).rejects.toMatchObject({
      code: 'SUDOERS_REFUSED',
      message:
        'sudo rules of account alice (hosts/people.yaml:12): visudo -cf refused them: >>> /etc/sudoers.d/.hostkit-alice.check: syntax error near line 3 <<<; parse error in /etc/sudoers.d/.hostkit-alice.check near line 2. Nothing was installed',
    });
    expect(host.text(SUDOERS)).toBe('alice ALL=(root) /usr/bin/true\n');
    expect(await host.stat(checkPath('alice'))).toBeUndefined();
  });

  it('without visudo (no sudo on the host) apply fails with VISUDO_MISSING and writes nothing', async () => {
    const { host } = setup({ visudo: 'missing' });
    const ctx = driverContext(host);
    const change = await planSudo(ctx, sudoResource(RULES));
    await expect(sudoersDriver.apply(change, ctx)).rejects.toMatchObject({
      code: 'VISUDO_MISSING',
      message: expect.stringContaining('install the package sudo'),
    });
    expect([await host.stat(SUDOERS), await host.stat(checkPath('alice'))]).toEqual([undefined, undefined]);
  });

  it('the run rolls back: keys written before a refused rule are removed again, and no sudo file stays', async () => {
    const { host } = setup({ visudo: () => 'syntax error' });
    const ctx = driverContext(host);
    const keys = await planKeys(ctx, keysResource());
    const sudo = await planSudo(ctx, sudoResource(RULES));
    const run = await JournaledRun.open(ctx, [keys, sudo]);
    await run.apply(authorizedKeysDriver, keys);
    expect(host.text(KEYS)).toContain(ALICE);
    await expect(run.apply(sudoersDriver, sudo)).rejects.toMatchObject({ code: 'SUDOERS_REFUSED' });
    await run.rollback();
    expect([await host.stat(KEYS), await host.stat('/home/alice/.ssh'), await host.stat(SUDOERS)]).toEqual([undefined, undefined, undefined]);
  });

  it('a whole run (reconcileHost): visudo refuses, the run fails at the sudo rules naming the manifest, and nothing of it stays', async () => {
    const { host } = setup({ home: false, visudo: (text) => (text.includes(BROKEN_SUDOERS_LINE) ? 'syntax error' : undefined) });
    host.machineName = TEST_HOST;
    const people = manifestYaml({
      kind: 'Account',
      name: 'frank',
      on: [TEST_HOST],
      spec: { home: '/home/frank', shell: '/bin/bash', authorizedKeys: [ALICE], sudo: [{ commands: ['/usr/bin/systemctl'] }] },
    });
    const repoDir = await writeRepo({ 'hosts/test-1.yaml': HOST_YAML, 'hosts/people.yaml': people });
    const input = { repoDir, hostName: TEST_HOST, host, log: silentLogger(), env: {} };
    const passwd = host.text('/etc/passwd');
    const outcome = await reconcileHost({ ...input, dryRun: false, drivers: driversWithBrokenSudoers() });
    if (outcome.stage !== 'applied' || outcome.result.status !== 'rolled-back') throw new Error(`expected a rolled-back run, got ${outcome.stage}`);
    expect(outcome.result.failed.id).toBe('sudoers/frank');
    expect(outcome.result.failed.error).toMatch(/^sudo rules of account frank \(hosts\/people\.yaml:\d+:\d+\): visudo -cf refused them: .*syntax error/);
    expect(outcome.result.rollbackErrors).toEqual([]);
    expect(host.text('/etc/passwd')).toBe(passwd);
    expect(host.paths().filter((p) => p.startsWith('/home/frank') || p.startsWith('/etc/sudoers.d/'))).toEqual([]);
    // Unbroken, the same repository applies.
    expect(await reconcileHost({ ...input, dryRun: false }).then((o) => (o.stage === 'applied' ? o.result.status : o.stage))).toBe('applied');
    expect(host.text('/etc/sudoers.d/hostkit-frank')).toContain('frank ALL=(root) /usr/bin/systemctl\n');
  });

  it('an orphan: the file is removed (its rules end) without a check', async () => {
    const { host } = setup();
    const ctx = driverContext(host);
    const r = sudoResource(RULES);
    await sudoersDriver.apply(await planSudo(ctx, r), ctx);
    const later = driverContext(host, { inventory: inventoryAfter(ctx, [r]) });
    const orphan = await planSudo(later, r, true);
    expect([orphan.action, orphan.ops]).toEqual(['delete', [{ op: 'remove' }]]);
    host.calls.length = 0;
    await sudoersDriver.apply(orphan, later);
    expect(await host.stat(SUDOERS)).toBeUndefined();
    expect(host.calls).toEqual([]);
  });
});

describe('reconciler/drivers/account/manifest (login access)', () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  const HOST = 'apiVersion: hostkit.dev/v1\nkind: Host\nmetadata: { name: web-1 }\nspec: {}\n';
  const account = (body: string, project = '') =>
    `apiVersion: hostkit.dev/v1\nkind: Account\nmetadata:\n  name: alice\n${project}spec:\n  placement: { hosts: [web-1] }\n${body}`;
  const validate = (files: Record<string, string>) =>
    validateFiles(Object.entries({ 'hosts/web-1.yaml': HOST, ...files }).map(([file, text]) => ({ file, bytes: enc(text) })));

  it('expands into the account, its keys and its sudo rules (runAs root and a password unless given)', async () => {
    const repo = await validate({
      'hosts/people.yaml': account(
        `  home: /home/alice\n  shell: /bin/bash\n  authorizedKeys:\n    - ${ALICE}\n  sudo:\n    - commands: [/usr/bin/systemctl]\n      password: false\n    - commands: [ALL]\n      runAs: postgres\n`,
      ),
    });
    expect(repo.diagnostics).toEqual([]);
    const host = hostSettings(repo.manifests.find((m): m is Manifest<HostManifest> => m.kind === 'Host')!);
    const resources = expandForHost(repo.manifests, host).resources;
    expect(resources.map((r) => [r.id, r.spec, r.dependsOn])).toEqual([
      ['account/alice', { user: 'alice', group: 'alice', home: '/home/alice', shell: '/bin/bash', groups: [] }, []],
      ['authorizedkeys/alice', { user: 'alice', group: 'alice', home: '/home/alice', path: KEYS, keys: [ALICE] }, ['account/alice']],
      [
        'sudoers/alice',
        {
          user: 'alice',
          path: SUDOERS,
          rules: [
            { commands: ['/usr/bin/systemctl'], runAs: 'root', password: false },
            { commands: ['ALL'], runAs: 'postgres', password: true },
          ],
        },
        ['account/alice'],
      ],
      // visudo checks the rules: the package sudo is implied.
      ['package/sudo', { name: 'sudo', neededBy: ['sudo (implied)'] }, []],
    ]);
    expect(resources[2]!.fieldOrigins?.['rules/1']).toMatchObject({ file: 'hosts/people.yaml', line: 14 });
  });

  it.each([
    ['a key with an options prefix', `  home: /home/alice\n  authorizedKeys:\n    - 'command="/bin/sh" ${ALICE}'\n`, '/spec/authorizedKeys/0'],
    ['a key over two lines', `  home: /home/alice\n  authorizedKeys:\n    - "${ALICE}\\nssh-ed25519 AAAA"\n`, '/spec/authorizedKeys/0'],
    ['a DSA key', `  home: /home/alice\n  authorizedKeys:\n    - ${ALICE.replace('ssh-ed25519', 'ssh-dss')}\n`, '/spec/authorizedKeys/0'],
    ['a command with a comma (a second command)', '  sudo:\n    - commands: ["/usr/bin/true, /bin/sh"]\n', '/spec/sudo/0/commands/0'],
    ['a command with a newline (a second rule)', '  sudo:\n    - commands: ["/usr/bin/true\\nalice ALL=(ALL) ALL"]\n', '/spec/sudo/0/commands/0'],
    ['a command with arguments', '  sudo:\n    - commands: ["/usr/bin/systemctl restart x"]\n', '/spec/sudo/0/commands/0'],
    ['a relative command', '  sudo:\n    - commands: [systemctl]\n', '/spec/sudo/0/commands/0'],
    ['a command through ..', '  sudo:\n    - commands: [/usr/bin/../../bin/sh]\n', '/spec/sudo/0/commands/0'],
    ['a command with a sudo wildcard', '  sudo:\n    - commands: ["/usr/bin/*"]\n', '/spec/sudo/0/commands/0'],
    ['a runAs list', '  sudo:\n    - commands: [ALL]\n      runAs: "root,alice"\n', '/spec/sudo/0/runAs'],
    ['a rule without commands', '  sudo:\n    - commands: []\n', '/spec/sudo/0/commands'],
    ['a rule with a field of its own', '  sudo:\n    - commands: [ALL]\n      tag: NOEXEC\n', '/spec/sudo/0/tag'],
  ])('the schema refuses %s', async (_title, body, pointer) => {
    const repo = await validate({ 'hosts/people.yaml': account(body) });
    expect(repo.valid).toBe(false);
    expect(repo.diagnostics.map((d) => d.location?.pointer)).toContain(pointer);
  });

  it('a key whose data is not of its type, and keys without a home, are errors naming the field', async () => {
    const repo = await validate({ 'hosts/people.yaml': account(`  authorizedKeys:\n    - ${ALICE.replace('ssh-ed25519', 'ssh-rsa')}\n`) });
    expect(repo.diagnostics).toEqual([
      expect.objectContaining({ summary: 'login needs a home', location: expect.objectContaining({ pointer: '/spec/authorizedKeys' }) }),
      expect.objectContaining({
        summary: 'not a public key',
        detail: 'authorizedKeys[0] of account alice: its key data is not a ssh-rsa key (it says "ssh-ed25519")',
        location: expect.objectContaining({ pointer: '/spec/authorizedKeys/0' }),
      }),
    ]);
    expect(keyProblem(ALICE)).toBeUndefined();
    expect(keyProblem('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA')).toBe('its base64 does not decode cleanly');
  });

  it.each([
    ['keys', 'account-login', '  home: /srv/alice\n  authorizedKeys:\n    - KEY\n', '/spec/authorizedKeys'],
    ['sudo rules', 'account-sudo', '  sudo:\n    - commands: [/usr/bin/systemctl]\n', '/spec/sudo'],
  ])('a project manifest may not give its own account %s (rule %s)', async (_t, rule, body, pointer) => {
    const repo = await validate({ 'projects/alice.yaml': account(body.replace('KEY', ALICE), '  project: alice\n') });
    expect(repo.diagnostics).toEqual([
      expect.objectContaining({
        summary: 'not allowed in a project manifest',
        detail: expect.stringContaining(`rule ${rule}:`),
        location: expect.objectContaining({ file: 'projects/alice.yaml', pointer }),
      }),
    ]);
  });
});
