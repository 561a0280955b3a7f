import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it, vi } from 'vitest';
import { driverContext } from '../../../test/support/context.js';
import { JournaledRun } from '../../../test/support/undo.js';
import type { Resource } from '../../core/resource.js';
import type { CertificateSpec } from '../../core/specs.js';
import { FakeHost } from '../../hosts/fake.js';
import { certificateDriver, issuanceReason, type CertificateOp, type DesiredCertificate, type ObservedCertificate } from './index.js';
import { selfSignedArgs } from './selfsigned.js';
import { activeBackoff, backoffMs } from './state.js';
import { inspectCertificate, renewalTime, type CertificateInfo } from './x509.js';

const DAY = 86_400_000;
const T0 = Date.parse('2026-01-01T00:00:00Z');

function desired(overrides: Partial<DesiredCertificate> = {}): DesiredCertificate {
  return {
    name: 'web.example.com',
    domains: ['web.example.com', 'www.web.example.com'],
    issuer: 'acme',
    dir: '/etc/hostkit/tls/web.example.com',
    certificate: '/etc/hostkit/tls/web.example.com/fullchain.pem',
    key: '/etc/hostkit/tls/web.example.com/privkey.pem',
    now: T0 + 10 * DAY,
    renewBefore: 1 / 3,
    acme: { directory: 'https://acme.example.net/dir', email: 'ops@example.com' },
    ...overrides,
  };
}

function info(overrides: Partial<CertificateInfo> = {}): CertificateInfo {
  return {
    names: ['www.web.example.com', 'web.example.com'],
    notBefore: T0,
    notAfter: T0 + 90 * DAY,
    serial: 'ABC123',
    issuer: 'CN=Test CA',
    selfSigned: false,
    placeholder: false,
    keyMatches: true,
    ...overrides,
  };
}

const observed = (i: Partial<CertificateInfo> = {}, extra: object = {}): ObservedCertificate => ({
  exists: true,
  info: info(i),
  keyMode: 0o600,
  dirMode: 0o700,
  ...extra,
});
const resource: Resource<CertificateSpec> = {
  id: 'certificate/web.example.com',
  kind: 'certificate',
  name: 'web.example.com',
  spec: { name: 'web.example.com', domains: ['web.example.com', 'www.web.example.com'], issuer: 'acme' },
  dependsOn: [],
  origin: { file: 'projects/web.yaml', line: 9 },
};

describe('reconciler/drivers/certificate', () => {
  it.each<[string, DesiredCertificate, ObservedCertificate | undefined, RegExp | undefined]>([
    ['valid, unchanged', desired(), observed(), undefined],
    ['missing', desired(), undefined, /missing/],
    ['names changed', desired({ domains: ['web.example.com', 'new.example.com'] }), observed(), /names changed/],
    ['placeholder', desired(), observed({ placeholder: true, selfSigned: true }), /placeholder/],
    ['self-signed while ACME is wanted', desired(), observed({ selfSigned: true }), /ACME is wanted/],
    ['CA-issued while self-signed is wanted', desired({ issuer: 'self-signed' }), observed(), /self-signed is wanted/],
    ['key does not match', desired(), observed({ keyMatches: false }), /key does not belong/],
    ['expired', desired({ now: T0 + 91 * DAY }), observed(), /expired/],
    ['past two thirds of the lifetime', desired({ now: T0 + 61 * DAY }), observed(), /renewal due/],
    ['before two thirds minus the largest jitter', desired({ now: T0 + 57 * DAY }), observed(), undefined],
    ['renewBefore 0.5 makes day 46 due', desired({ now: T0 + 46 * DAY, renewBefore: 0.5 }), observed(), /renewal due/],
  ])('%s', (_name, d, o, reason) => {
    const got = issuanceReason(d, o);
    if (reason) expect(got).toMatch(reason);
    else expect(got).toBeUndefined();
  });

  const backingOff = { domains: ['web.example.com', 'www.web.example.com'], failures: 2, lastError: 'DNS problem', lastAttempt: T0, retryAfter: T0 + 30 * DAY };
  it.each<[string, DesiredCertificate, ObservedCertificate | undefined, 'time' | undefined]>([
    ['renewal due', desired({ now: T0 + 61 * DAY }), observed(), 'time'],
    ['expired', desired({ now: T0 + 91 * DAY }), observed(), 'time'],
    ['self-signed, renewal due', desired({ issuer: 'self-signed', now: T0 + 61 * DAY }), observed({ selfSigned: true }), 'time'],
    ['renewal due and the names changed', desired({ now: T0 + 61 * DAY, domains: ['web.example.com', 'new.example.com'] }), observed(), undefined],
    ['missing', desired(), undefined, undefined],
    ['valid, key file left readable', desired(), observed({}, { keyMode: 0o644 }), undefined],
    ['renewal due while ACME backs off (nothing to place)', desired({ now: T0 + 61 * DAY, backoff: backingOff }), observed(), undefined],
  ])('owed by time: %s', (_name, d, o, owedBy) => {
    expect(certificateDriver.plan({ resource, desired: d, observed: o, orphan: false }).owedBy).toBe(owedBy);
  });

  it('renews between 2/3 of the lifetime minus 3 % jitter and 2/3, the same on every run for one certificate', () => {
    const times = ['01', '02', 'FF', 'A1B2', '1234567890'].map((serial) => renewalTime(info({ serial }), 1 / 3));
    for (const t of times) {
      expect(t).toBeGreaterThanOrEqual(T0 + 60 * DAY - 0.03 * 90 * DAY);
      expect(t).toBeLessThanOrEqual(T0 + 60 * DAY);
    }
    expect(new Set(times).size).toBeGreaterThan(1);
    expect(renewalTime(info({ serial: 'FF' }), 1 / 3)).toBe(times[2]);
  });

  it('plans nothing for a valid certificate, and fixes a key file left readable', () => {
    expect(certificateDriver.plan({ resource, desired: desired(), observed: observed(), orphan: false }).action).toBe('noop');
    const change = certificateDriver.plan({ resource, desired: desired(), observed: observed({}, { keyMode: 0o644 }), orphan: false });
    expect(change).toMatchObject({ action: 'update', disruptive: false, fields: [{ field: '/keyMode', before: '0644', after: '0600' }] });
  });

  it('a changed name list is an update that shows both lists', () => {
    const change = certificateDriver.plan({
      resource,
      desired: desired({ domains: ['web.example.com', 'new.example.com'] }),
      observed: observed(),
      orphan: false,
    });
    expect(change.action).toBe('update');
    expect(change.disruptive).toBe(true);
    expect(change.fields.find((f) => f.field === '/domains')).toMatchObject({ after: ['web.example.com', 'new.example.com'] });
  });

  it('while ACME backs off: no order is planned for a usable certificate, only a placeholder where there is none', () => {
    const backoff = { domains: ['web.example.com', 'www.web.example.com'], failures: 2, lastError: 'DNS problem', lastAttempt: T0, retryAfter: T0 + 30 * DAY };
    const renewing = certificateDriver.plan({ resource, desired: desired({ now: T0 + 61 * DAY, backoff }), observed: observed(), orphan: false });
    expect(renewing.action).toBe('noop');
    expect(renewing.diagnostics[0]).toMatchObject({ severity: 'warning', summary: 'acme backing off' });
    const missing = certificateDriver.plan({ resource, desired: desired({ backoff }), observed: undefined, orphan: false });
    expect(missing.action).toBe('create');
    expect(String(missing.fields[0]!.after)).toMatch(/^placeholder \(ACME backing off until /);
  });

  it('rollback restores the previous pair, but keeps a certificate the CA issued in this run', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'hk-cert-'));
    const f = (n: string) => path.join(dir, n);
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '30'];
    await execa('openssl', ['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-subj', '/CN=Test CA']);
    const names = 'subjectAltName=DNS:web.example.com,DNS:www.web.example.com';
    await execa('openssl', [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      f('issued.key'),
      '-out',
      f('issued.pem'),
      '-subj',
      '/CN=web.example.com',
      '-addext',
      names,
      '-CA',
      f('ca.pem'),
      '-CAkey',
      f('ca.key'),
    ]);
    await execa('openssl', selfSignedArgs(f('ph.key'), f('ph.pem'), ['web.example.com', 'www.web.example.com'], 'placeholder'));
    const [issuedCert, issuedKey, placeholderCert, placeholderKey] = await Promise.all(
      ['issued.pem', 'issued.key', 'ph.pem', 'ph.key'].map((n) => readFile(f(n))),
    );
    const paths = { certificate: '/etc/hostkit/tls/web.example.com/fullchain.pem', key: '/etc/hostkit/tls/web.example.com/privkey.pem' };
    const rolledBack = async (cert: Buffer, key: Buffer) => {
      const host = new FakeHost({ [paths.certificate]: 'OLD CERT', [paths.key]: 'OLD KEY' });
      const ctx = driverContext(host);
      const change = certificateDriver.plan({ resource, desired: desired(), observed: undefined, orphan: false });
      const run = await JournaledRun.open(ctx, [change]);
      // What apply and settle leave: the CA's certificate, or a placeholder while the order failed.
      await run.apply(
        {
          restore: certificateDriver.restore,
          apply: async () => {
            await host.writeFile(paths.certificate, cert, { uid: 0, gid: 0, mode: 0o644 });
            await host.writeFile(paths.key, key, { uid: 0, gid: 0, mode: 0o600 });
          },
        },
        change,
      );
      await run.rollback();
      return host;
    };
    const issuedHost = await rolledBack(issuedCert!, issuedKey!);
    expect(issuedHost.text(paths.certificate)).toBe(issuedCert!.toString());
    const placeholderHost = await rolledBack(placeholderCert!, placeholderKey!);
    expect(placeholderHost.text(paths.certificate)).toBe('OLD CERT');
    expect(placeholderHost.text(paths.key)).toBe('OLD KEY');
  });

  it('a dry run that may not read the certificate (not root) plans with a warning instead of failing', async () => {
    const host = new FakeHost({ '/etc/hostkit/tls/web.example.com/privkey.pem': 'KEY' });
    host.readFile = () => Promise.reject(Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' }));
    const ctx = driverContext(host, { mode: 'plan' });
    const observedNow = (await certificateDriver.observe([resource], ctx)).get(resource.id);
    const change = certificateDriver.plan({ resource, desired: desired(), observed: observedNow, orphan: false });
    expect(change.diagnostics[0]).toMatchObject({ severity: 'warning', summary: 'certificate not observed' });
    await expect(certificateDriver.observe([resource], driverContext(host, { mode: 'apply' }))).rejects.toThrow(/EACCES/);
  });

  // openssl as the driver runs it: the key and certificate files it is asked for.
  function opensslHost(): FakeHost {
    const host = new FakeHost();
    host.onExec((call, h) => {
      if (call.file !== 'openssl') return undefined;
      const arg = (flag: string) => call.args[call.args.indexOf(flag) + 1]!;
      void h.writeFile(arg('-keyout'), 'KEY', { uid: 0, gid: 0, mode: 0o600 });
      void h.writeFile(arg('-out'), 'CERT', { uid: 0, gid: 0, mode: 0o644 });
      return { exitCode: 0, stdout: '', stderr: '' };
    });
    return host;
  }

  it('apply on a host without /etc/hostkit: directories 0755/0700/0700, key 0600, openssl asked for a P-256 placeholder with every name', async () => {
    const host = opensslHost();
    const ctx = driverContext(host);
    const change = certificateDriver.plan({ resource, desired: desired(), observed: undefined, orphan: false });
    const run = await JournaledRun.open(ctx, [change]);
    const undo = await run.apply(certificateDriver, change);
    expect(undo).toMatchObject({ wrote: true, issue: true, createdDirs: ['/etc/hostkit', '/etc/hostkit/tls', '/etc/hostkit/tls/web.example.com'] });
    const modes = await Promise.all(
      ['/etc/hostkit', '/etc/hostkit/tls', '/etc/hostkit/tls/web.example.com', '/etc/hostkit/tls/web.example.com/privkey.pem'].map((p) => host.stat(p)),
    );
    expect(modes.map((m) => m?.mode)).toEqual([0o755, 0o700, 0o700, 0o600]);
    const openssl = host.calls.find((c) => c.file === 'openssl')!.args;
    expect(openssl).toEqual(
      expect.arrayContaining([
        'ec_paramgen_curve:prime256v1',
        '/O=HostKit placeholder/CN=web.example.com',
        'subjectAltName=DNS:web.example.com,DNS:www.web.example.com',
      ]),
    );
    expect(host.paths().filter((p) => p.includes('.new-'))).toEqual([]);
    await run.rollback();
    expect(host.paths().filter((p) => p.startsWith('/etc/hostkit'))).toEqual([]);
  });

  it.each([
    ["a Certificate primitive's name (no dots)", 'api-cert', []],
    ["a site's first domain", 'api.example.com', []],
    ['a name that is neither', 'api_cert/..', ['certificate not issued']],
  ])('its directory is named by %s: %s', async (_what, name, errors) => {
    const r: Resource<CertificateSpec> = { ...resource, id: `certificate/${name}`, name, spec: { name, domains: ['api.example.com'], issuer: 'self-signed' } };
    const { desired: d, diagnostics } = (await certificateDriver.desire([r], driverContext(new FakeHost()))).get(r.id)!;
    expect(diagnostics.map((x) => x.summary)).toEqual(errors);
    if (errors.length === 0) expect(certificateDriver.plan({ resource: r, desired: d, observed: undefined, orphan: false }).action).toBe('create');
  });

  it('a key and certificate openssl made for a run killed before it removed them are removed by the next one', async () => {
    const host = opensslHost();
    const left = ['/etc/hostkit/tls/web.example.com/.new-0a1b2c3d4e5f.key', '/etc/hostkit/tls/web.example.com/.new-0a1b2c3d4e5f.crt'];
    for (const p of left) host.seedFile(p, 'LEFT BY A KILLED RUN', { mode: 0o600 });
    const change = certificateDriver.plan({ resource, desired: desired(), observed: undefined, orphan: false });
    await certificateDriver.apply(change, driverContext(host));
    expect(host.paths().filter((p) => p.includes('.new-'))).toEqual([]);
    expect(host.text('/etc/hostkit/tls/web.example.com/privkey.pem')).toBe('KEY');
  });

  it('backs off 5 min, 20 min, 80 min ... up to a day, per name list', () => {
    expect([1, 2, 3, 4, 5, 6, 10].map((n) => backoffMs(n) / 60_000)).toEqual([5, 20, 80, 320, 1280, 1440, 1440]);
    const failures = { 'web.example.com': { domains: ['web.example.com'], failures: 1, lastError: 'x', lastAttempt: T0, retryAfter: T0 + 1000 } };
    expect(activeBackoff(failures, 'web.example.com', ['web.example.com'], T0)).toBeDefined();
    expect(activeBackoff(failures, 'web.example.com', ['web.example.com'], T0 + 1000)).toBeUndefined();
    expect(activeBackoff(failures, 'web.example.com', ['web.example.com', 'new.example.com'], T0)).toBeUndefined();
  });

  it('inspects a certificate and its key from disk (openssl-made)', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'hk-cert-'));
    const other = path.join(dir, 'other.key');
    await execa('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', other]);
    await execa('openssl', selfSignedArgs(path.join(dir, 'k.pem'), path.join(dir, 'c.pem'), ['a.example.com', 'b.example.com'], 'placeholder'));
    const [cert, key, wrong] = await Promise.all(['c.pem', 'k.pem', 'other.key'].map((f) => readFile(path.join(dir, f))));
    const parsed = inspectCertificate(cert!, key);
    expect(parsed).toMatchObject({ names: ['a.example.com', 'b.example.com'], placeholder: true, selfSigned: true, keyMatches: true });
    expect(inspectCertificate(cert!, wrong)).toMatchObject({ keyMatches: false });
    expect(inspectCertificate(Buffer.from('garbage'), key)).toBe('no PEM certificate in the file');
  });
});

describe('reconciler/drivers/certificate operations', () => {
  const backoff = { domains: desired().domains, failures: 2, lastError: 'rate limited', lastAttempt: T0, retryAfter: T0 + 20 * DAY };
  it.each<[string, DesiredCertificate | undefined, ObservedCertificate | undefined, CertificateOp[]]>([
    ['ACME, nothing on disk: a placeholder, then the order', desired(), undefined, [{ op: 'placeholder' }, { op: 'issue', issuer: 'acme' }]],
    ['ACME, due for renewal: the order (the old one serves meanwhile)', desired({ now: T0 + 61 * DAY }), observed(), [{ op: 'issue', issuer: 'acme' }]],
    ['ACME backing off, nothing usable: a placeholder only', desired({ backoff }), undefined, [{ op: 'placeholder' }]],
    ['ACME backing off, the old one usable: nothing', desired({ backoff, now: T0 + 61 * DAY }), observed(), []],
    ['self-signed, missing', desired({ issuer: 'self-signed' }), undefined, [{ op: 'issue', issuer: 'self-signed' }]],
    ['the key readable by others: chmod', desired(), observed({}, { keyMode: 0o644 }), [{ op: 'chmod' }]],
    ['valid and unchanged: nothing', desired(), observed(), []],
    ['orphan: removed', undefined, observed(), [{ op: 'remove' }]],
    ['refused names: nothing', desired({ refused: 'not lower-case DNS names' }), undefined, []],
  ])('%s', (_title, d, o, ops) => {
    expect(certificateDriver.plan({ resource, desired: d, observed: o, orphan: d === undefined }).ops).toEqual(ops);
  });

  it('apply of a chmod sets the modes and writes no certificate', async () => {
    const host = new FakeHost();
    const { dir, certificate, key } = desired();
    for (const d of ['/etc/hostkit', '/etc/hostkit/tls', dir]) host.seedDir(d, { mode: 0o700 });
    host.seedFile(certificate, 'CERT', { mode: 0o644 });
    host.seedFile(key, 'KEY', { mode: 0o644 });
    const change = certificateDriver.plan({ resource, desired: desired(), observed: observed({}, { keyMode: 0o644 }), orphan: false });
    const write = vi.spyOn(host, 'writeFile');
    const undo = await certificateDriver.apply(change, driverContext(host));
    expect(write).not.toHaveBeenCalled();
    expect(undo).toMatchObject({ wrote: false, issue: false });
    expect((await host.stat(key))?.mode).toBe(0o600);
  });
});
