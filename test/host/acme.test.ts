import { beforeAll, expect, it } from 'vitest';
import { describeHost, useHost, type TestHost } from './harness.js';
import { ACME_HOST, pebbleCount, served, startPebble } from './pebble.js';
import { applied, appliedOk, reconcile, service } from './reconcile.js';
import { writeRepo } from '../support/fixtures.js';

function app(names: string[], hostManifest = ACME_HOST): Record<string, string> {
  const [name, ...aliases] = names;
  return {
    'hosts/test-host.yaml': hostManifest,
    'projects/app.yaml': service('app', 9401, `  domains:\n    - name: ${name}\n      aliases: [${aliases.join(', ')}]\n      tls: acme\n`),
  };
}

async function workers(m: TestHost): Promise<string> {
  const master = (await m.exec('cat', ['/run/nginx.pid'])).stdout.trim();
  return `${master}:${(await m.exec('pgrep', ['-P', master])).stdout.trim().split('\n').sort().join(',')}`;
}

describeHost('reconciler/drivers/certificate (ACME with pebble, HTTP-01 through nginx) on a real host', () => {
  const machine = useHost();

  beforeAll(() => startPebble(machine()));

  it('tls: acme ends with nginx serving a certificate from pebble for the names, HTTP redirecting to HTTPS', async () => {
    const m = machine();
    const result = appliedOk(await reconcile(m, await writeRepo(app(['app.hk.test', 'www.app.hk.test']))));
    expect(result.warnings.filter((w) => w.summary === 'certificate not issued')).toEqual([]);
    const tls = await served(m, 'app.hk.test');
    expect(tls.verify).toBe('0 (ok)');
    expect(tls.san).toBe('DNS:app.hk.test, DNS:www.app.hk.test');
    expect((await served(m, 'www.app.hk.test')).verify).toBe('0 (ok)');
    const redirect = await m.exec('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', 'http://app.hk.test/x']);
    expect(redirect.stdout).toBe('301 https://app.hk.test/x');
    const https = await m.exec('curl', ['-s', '--cacert', '/tmp/pebble-root.pem', '-o', '/dev/null', '-w', '%{http_code}', 'https://app.hk.test/']);
    expect(https.stdout).toBe('200');
    // Keys 0600 in 0700 directories; the ACME account key kept in the state directory.
    const modes = await m.exec('stat', [
      '-c',
      '%a %n',
      '/etc/hostkit/tls/app.hk.test',
      '/etc/hostkit/tls/app.hk.test/privkey.pem',
      '/var/lib/hostkit/acme',
      '/var/lib/hostkit/acme/account-127.0.0.1_14000.pem',
    ]);
    expect(
      modes.stdout
        .trim()
        .split('\n')
        .map((l) => l.split(' ')[0]),
    ).toEqual(['700', '600', '700', '600']);
    expect(await pebbleCount(m, 'Issued certificate serial')).toBe(1);
  });

  it('applying again places no ACME order and does not reload nginx', async () => {
    const m = machine();
    const orders = await pebbleCount(m, '/order-plz');
    const accounts = await pebbleCount(m, '/sign-me-up');
    const before = await workers(m);
    const serial = (await served(m, 'app.hk.test')).serial;
    const outcome = await reconcile(m, await writeRepo(app(['app.hk.test', 'www.app.hk.test'])));
    expect(applied(outcome).status).toBe('no-changes');
    expect(await pebbleCount(m, '/order-plz')).toBe(orders);
    expect(await pebbleCount(m, '/sign-me-up')).toBe(accounts);
    expect(await workers(m)).toBe(before);
    expect((await served(m, 'app.hk.test')).serial).toBe(serial);
  });

  it('a changed domain list gets a new certificate with the new names, with one more order on the same account', async () => {
    const m = machine();
    const old = (await served(m, 'app.hk.test')).serial;
    const key = (await m.exec('sha256sum', ['/var/lib/hostkit/acme/account-127.0.0.1_14000.pem'])).stdout;
    const orders = await pebbleCount(m, '/order-plz');
    const result = appliedOk(await reconcile(m, await writeRepo(app(['app.hk.test', 'www.app.hk.test', 'new.app.hk.test']))));
    expect(result.status).toBe('applied');
    const now = await served(m, 'new.app.hk.test');
    expect(now.verify).toBe('0 (ok)');
    expect(now.san).toBe('DNS:app.hk.test, DNS:www.app.hk.test, DNS:new.app.hk.test');
    expect(now.serial).not.toBe(old);
    expect(await pebbleCount(m, '/order-plz')).toBe(orders + 1);
    expect((await m.exec('sha256sum', ['/var/lib/hostkit/acme/account-127.0.0.1_14000.pem'])).stdout).toBe(key);
  });

  it('a name the CA cannot validate: the site stays up on a placeholder, the failure is remembered, and the next run places no order', async () => {
    const m = machine();
    const files = {
      ...app(['app.hk.test', 'www.app.hk.test', 'new.app.hk.test']),
      'projects/lost.yaml': service('lost', 9402, '  domains:\n    - name: lost.hk.test\n      tls: acme\n'),
    };
    const orders = await pebbleCount(m, '/order-plz');
    const result = appliedOk(await reconcile(m, await writeRepo(files)));
    const failed = result.warnings.find((w) => w.summary === 'certificate not issued');
    expect(failed?.detail).toMatch(/lost\.hk\.test.*failure 1, next attempt after/);
    expect(await pebbleCount(m, '/order-plz')).toBe(orders + 1);
    // nginx runs, serving the placeholder for the lost name and the real certificate for the others.
    const placeholder = await m.exec('sh', [
      '-c',
      'openssl s_client -connect 127.0.0.1:443 -servername lost.hk.test </dev/null 2>/dev/null | openssl x509 -noout -subject',
    ]);
    expect(placeholder.stdout).toContain('HostKit placeholder');
    expect((await served(m, 'app.hk.test')).verify).toBe('0 (ok)');
    const state = JSON.parse((await m.exec('cat', ['/var/lib/hostkit/acme/failures.json'])).stdout) as Record<string, { failures: number }>;
    expect(state['lost.hk.test']?.failures).toBe(1);

    const again = await reconcile(m, await writeRepo(files));
    expect(applied(again).status).toBe('no-changes');
    if (again.stage === 'applied') {
      const change = again.planned.plan.changes.find((c) => c.id === 'certificate/lost.hk.test');
      expect(change?.diagnostics.map((d) => d.summary)).toContain('acme backing off');
    }
    expect(await pebbleCount(m, '/order-plz')).toBe(orders + 1);
  });

  it('renewal: once the renewal point has passed, one new order; a removed project loses its site and certificate', async () => {
    const m = machine();
    const names = ['app.hk.test', 'www.app.hk.test', 'new.app.hk.test'];
    const old = (await served(m, 'app.hk.test')).serial;
    const orders = await pebbleCount(m, '/order-plz');
    // Renew with a millionth of the lifetime left: the renewal point (minus its jitter) is already past.
    const renewing = ACME_HOST.replace('    email: ops@hk.test\n', '    email: ops@hk.test\n    renewBefore: 0.999999\n');
    const outcome = await reconcile(m, await writeRepo(app(names, renewing)));
    const result = appliedOk(outcome);
    expect(result.warnings.filter((w) => w.summary === 'certificate not issued')).toEqual([]);
    if (outcome.stage === 'applied') {
      expect(outcome.planned.plan.changes.find((c) => c.id === 'certificate/app.hk.test')?.reason).toMatch(/^renewal due since /);
      expect(outcome.planned.plan.changes.find((c) => c.id === 'certificate/lost.hk.test')?.action).toBe('delete');
    }
    expect(await pebbleCount(m, '/order-plz')).toBe(orders + 1);
    const now = await served(m, 'app.hk.test');
    expect(now.verify).toBe('0 (ok)');
    expect(now.serial).not.toBe(old);
    expect((await m.host.exec('test', ['-e', '/etc/hostkit/tls/lost.hk.test'])).exitCode).toBe(1);
    expect((await m.host.exec('test', ['-e', '/etc/nginx/conf.d/hostkit-lost.hk.test.conf'])).exitCode).toBe(1);
  });
});
