import { describe, expect, it, vi } from 'vitest';
import { driverContext, inventoryAfter } from '../../../test/support/context.js';
import type { Inventory } from '../../apply/inventory.js';
import type { HostKitError } from '../../core/errors.js';
import type { Resource } from '../../core/resource.js';
import type { SiteSpec } from '../../core/specs.js';
import { summarize } from '../../diff/model.js';
import { toJsonPlan } from '../../diff/render/json.js';
import { FakeHost } from '../../hosts/fake.js';
import { buildHtpasswd, sha512Crypt } from './htpasswd.js';
import { hostHasIpv6, nginxSiteDriver, type DesiredSite, type ObservedSite, type SiteOp } from './index.js';
import { siteFile } from './paths.js';
import { renderSite } from './render.js';
import { reloadOwedPath } from './run.js';
import { siteProblems } from './validate.js';
import { JournaledRun } from '../../../test/support/undo.js';

// A host with Debian's nginx directories (and www-data, as FakeHost has).
function nginxHost(): FakeHost {
  return new FakeHost({ '/etc/nginx/conf.d/.keep': '' });
}

const origin = { file: 'projects/web.yaml', line: 9 };

function site(overrides: Partial<SiteSpec> = {}): Resource<SiteSpec> {
  const spec: SiteSpec = {
    site: 'web.example.com',
    domains: ['web.example.com', 'www.web.example.com'],
    upstream: { host: '127.0.0.1', port: 8080 },
    tls: 'acme',
    redirectHttp: true,
    locations: [],
    ...overrides,
  };
  return { id: `site/${spec.site}`, kind: 'site', name: spec.site, spec, dependsOn: [], origin, project: 'web' };
}

describe('reconciler/drivers/nginx/validate', () => {
  // The schema refuses these first (test/corpus/bad); the driver refuses them again before rendering.
  it.each([
    ['domain with ;', { domains: ['a.example.com;'] }],
    ['domain with newline and brace', { domains: ['a.example.com\n}'] }],
    ['domain with $host', { domains: ['$host'] }],
    ['wildcard domain', { domains: ['*.example.com'] }],
    ['upper-case domain', { domains: ['Web.example.com'] }],
    ['domain with trailing dot', { domains: ['web.example.com.'] }],
    ['domain with a space', { domains: ['web example.com'] }],
    ['non-ASCII domain', { domains: ['wеb.example.com'] }],
    ['location path with ;', { locations: [{ path: '/a; return 200 x' }] }],
    ['location path with {', { locations: [{ path: '/a{' }] }],
    ['location path with a quote', { locations: [{ path: '/a"b' }] }],
    ['location path with ..', { locations: [{ path: '/static/../etc' }] }],
    ['location path with a regex modifier', { locations: [{ path: '~ .*' }] }],
    ['location path with percent-encoding', { locations: [{ path: '/%2e%2e/' }] }],
    ['location path hiding the ACME challenge', { locations: [{ path: '/.well-known/acme-challenge/x' }] }],
    ['location root with ;', { locations: [{ path: '/s/', root: '/var/www/s; autoindex on' }] }],
    ['static root with a newline', { upstream: undefined, root: '/var/www/x\nautoindex on' } as Partial<SiteSpec>],
    ['upstream host that is a name', { upstream: { host: 'evil;', port: 80 } }],
    ['upstream port out of range', { upstream: { host: '127.0.0.1', port: 70000 } }],
    ['allow with a directive', { gate: { allow: ['10.0.0.0/8; allow all'] } }],
    ['allow with a bad prefix', { gate: { allow: ['10.0.0.0/33'] } }],
    ['realm with a quote', { gate: { basicAuth: { realm: 'a" ; allow all; "', htpasswd: { env: 'X' } } } }],
    ['TLS file with ;', { tls: { certificate: '/etc/ssl/a.pem; include /etc/shadow', key: '/etc/ssl/a.key' } }],
  ])('refuses %s', (_name, overrides) => {
    expect(siteProblems(site(overrides as Partial<SiteSpec>).spec).length).toBeGreaterThan(0);
  });

  it('accepts a plain site', () => {
    expect(
      siteProblems(
        site({
          locations: [
            { path: '/api/', port: 9000 },
            { path: '/static/', root: '/var/www/static' },
          ],
          gate: { allow: ['10.0.0.0/8', '2001:db8::/32'] },
        }).spec,
      ),
    ).toEqual([]);
  });

  it('a refused site is planned with an error and nothing to write', async () => {
    const host = new FakeHost();
    const ctx = driverContext(host);
    const r = site({ domains: ['a.example.com;\nlocation / { return 200 x; }'] });
    const desired = (await nginxSiteDriver.desire([r], ctx)).get(r.id)!;
    expect(desired.diagnostics[0]).toMatchObject({ severity: 'error', summary: 'site not rendered' });
    const change = nginxSiteDriver.plan({ resource: r, desired: desired.desired, observed: undefined, orphan: false });
    expect(change.action).toBe('noop');
    expect(host.calls).toEqual([]);
  });
});

describe('reconciler/drivers/nginx/render', () => {
  it('redirects HTTP to HTTPS, serves the challenge from the webroot, proxies on 443 with the certificate', () => {
    const { content, generation } = renderSite(site().spec, 'Project/web');
    expect(content).toContain('    server_name web.example.com www.web.example.com;');
    expect(content).toContain('        return 301 https://$host$request_uri;');
    expect(content).toContain('    location ^~ /.well-known/acme-challenge/ {\n        root /var/www/hostkit-acme;');
    expect(content).toContain('    listen 443 ssl;');
    expect(content).toContain('    ssl_certificate /etc/hostkit/tls/web.example.com/fullchain.pem;');
    expect(content).toContain('        proxy_pass http://127.0.0.1:8080;');
    expect(content.split(`add_header X-HostKit-Generation "${generation}" always;`).length).toBe(3);
  });

  it('gates the server, but not the challenge location', () => {
    const { content } = renderSite(site({ gate: { allow: ['10.0.0.1/8'], basicAuth: { realm: 'Staff', htpasswd: { env: 'X' } } } }).spec, 'Project/web');
    expect(content).toContain(
      '    allow 10.0.0.0/8;\n    deny all;\n    auth_basic "Staff";\n    auth_basic_user_file /etc/nginx/hostkit-htpasswd/web.example.com;',
    );
    expect(content).toContain('        auth_basic off;\n        allow all;');
  });

  it('tls: none serves on port 80 only; IPv6 upstreams are bracketed', () => {
    const { content } = renderSite(site({ tls: 'none', redirectHttp: false, upstream: { host: '::1', port: 8080 } }).spec, 'Project/web');
    expect(content).not.toContain('443');
    expect(content).toContain('proxy_pass http://[::1]:8080;');
  });

  it('the generation is stable for the same spec and changes with it', () => {
    expect(renderSite(site().spec, 'Project/web').generation).toBe(renderSite(site().spec, 'Project/web').generation);
    expect(renderSite(site({ upstream: { host: '127.0.0.1', port: 8081 } }).spec, 'Project/web').generation).not.toBe(
      renderSite(site().spec, 'Project/web').generation,
    );
  });
});

describe('reconciler/drivers/nginx/htpasswd', () => {
  it('SHA-512 crypt matches openssl passwd -6', () => {
    // openssl passwd -6 -salt abcdEFGH12345678 's3cret pass'
    expect(sha512Crypt('s3cret pass', 'abcdEFGH12345678')).toBe(
      '$6$abcdEFGH12345678$xI0BtILyzzLdETjR/da7LUkAF3Qm1.qM41sapmu6/wShjQboEk9iYRvHktajoTo40dfHCsPfqNrqwpNaeNRHo0',
    );
  });

  it('is the same on every run for the same secret, different per site, and keeps given hashes', () => {
    const a = buildHtpasswd('alice:pw one\nbob:$apr1$abcdefgh$0123456789abcdefghijkl\n', 'a.example.com');
    expect(buildHtpasswd('alice:pw one\nbob:$apr1$abcdefgh$0123456789abcdefghijkl\n', 'a.example.com')).toEqual(a);
    expect(buildHtpasswd('alice:pw one\n', 'b.example.com').content!.split('\n')[0]).not.toBe(a.content!.split('\n')[0]);
    expect(a.content).toMatch(/^alice:\$6\$[./A-Za-z0-9]{16}\$[./A-Za-z0-9]{86}\nbob:\$apr1\$abcdefgh\$0123456789abcdefghijkl\n$/);
    expect(a.users).toEqual(['alice', 'bob']);
  });

  it.each([
    ['no user', ':pw'],
    ['a user with a space', 'al ice:pw'],
    ['an empty password', 'alice:'],
    ['a user twice', 'alice:first-pw\nalice:second-pw'],
    ['nothing', '\n# comment\n'],
  ])('refuses %s without echoing the secret', (_name, secret) => {
    const result = buildHtpasswd(secret, 'a.example.com');
    expect(result.content).toBeUndefined();
    expect(result.problem).toBeDefined();
    if (secret.includes(':') && secret.split(':')[1]) expect(result.problem).not.toContain(secret.split(':')[1]!.split('\n')[0]);
  });
});

describe('reconciler/drivers/nginx (driver)', () => {
  const gated = site({ gate: { basicAuth: { realm: 'Staff', htpasswd: { env: 'HTPASSWD' } } } });
  const env = { HTPASSWD: 'alice:hunter2-secret' };

  async function planned(r: Resource<SiteSpec>, host: FakeHost, orphan = false, inventory?: Inventory) {
    const ctx = driverContext(host, { env, ...(inventory ? { inventory } : {}) });
    const desired = orphan ? undefined : (await nginxSiteDriver.desire([r], ctx)).get(r.id)!.desired;
    const observed = (await nginxSiteDriver.observe([r], ctx)).get(r.id);
    return { ctx, change: nginxSiteDriver.plan({ resource: r, desired, observed, orphan }) };
  }

  it('creates, then an unchanged site is a noop; the htpasswd value never appears in the plan', async () => {
    const host = nginxHost();
    const { ctx, change } = await planned(gated, host);
    expect(change.action).toBe('create');
    expect(JSON.stringify(change.fields)).not.toContain('hunter2');
    expect(change.fields.find((f) => f.field === '/gate/basicAuth/htpasswd')).toMatchObject({
      redacted: true,
      after: expect.stringMatching(/^hmac:[0-9a-f]{12} \(1 user\)$/),
    });
    await nginxSiteDriver.apply(change, ctx);
    expect(host.text(siteFile('web.example.com'))).toContain('auth_basic "Staff"');
    expect(host.text('/etc/nginx/hostkit-htpasswd/web.example.com')).toMatch(/^alice:\$6\$/);
    await expect(host.stat('/etc/nginx/hostkit-htpasswd/web.example.com')).resolves.toMatchObject({ mode: 0o640, gid: 33 });
    // Stopped before settle: the files are right but nginx never took them, so the next plan reloads.
    expect((await planned(gated, host)).change).toMatchObject({ action: 'update', fields: [{ field: '/reload', before: 'owed by an interrupted run' }] });
    await host.remove(reloadOwedPath('/var/lib/hostkit')); // what a successful settle does
    expect((await planned(gated, host)).change.action).toBe('noop');
  });

  it('a change of the site file HostKit wrote is shown as a diff', async () => {
    const host = nginxHost();
    const first = await planned(site(), host);
    await nginxSiteDriver.apply(first.change, first.ctx);
    const { change } = await planned(site({ upstream: { host: '127.0.0.1', port: 9999 } }), host, false, inventoryAfter(first.ctx, [site()]));
    expect(change.action).toBe('update');
    expect(change.fields[0]!.diff).toContain('-        proxy_pass http://127.0.0.1:8080;');
  });

  it('a hand edit is drift, shown as changed by hand (size and fingerprint, never its lines) and put back', async () => {
    const host = nginxHost();
    const first = await planned(site(), host);
    await nginxSiteDriver.apply(first.change, first.ctx);
    const edited = host.text(siteFile('web.example.com'))!.replace('8080', '9999') + '# CANARY-7f3e9a\n';
    await host.writeFile(siteFile('web.example.com'), edited, { uid: 0, gid: 0, mode: 0o644 });
    const { change } = await planned(site(), host, false, inventoryAfter(first.ctx, [site()]));
    expect(change.action).toBe('update');
    expect(change.fields[0]).toEqual({
      field: '/content',
      before: expect.stringMatching(/^changed by hand, \d+ bytes, fingerprint hmac:[0-9a-f]{12}$/),
      after: 'site file',
    });
    expect(JSON.stringify(change.fields)).not.toContain('CANARY');
  });

  it('a site file HostKit did not write (not in its inventory) is never shown, not even when removed as an orphan', async () => {
    const host = nginxHost();
    host.seedFile(siteFile('web.example.com'), 'server { # CANARY-7f3e9a\n}\n');
    const { change } = await planned(site(), host);
    expect(change.fields[0]!.before).toMatch(/^exists, \d+ bytes, fingerprint hmac:/);
    const gone = await planned(site(), host, true);
    expect(gone.change.fields[0]).toMatchObject({ field: '/content', before: expect.stringMatching(/^exists, /), after: 'removed' });
    expect(JSON.stringify([change.fields, gone.change.fields])).not.toContain('CANARY');
  });

  it('certificate files the manifest names: a replaced certificate is a new site file (so a reload); the same one is a noop', async () => {
    const host = nginxHost();
    host.seedFile('/etc/ssl/web.pem', 'CERT ONE\n');
    host.seedFile('/etc/ssl/web.key', 'KEY ONE\n');
    const named = site({ tls: { certificate: '/etc/ssl/web.pem', key: '/etc/ssl/web.key' } });
    const first = await planned(named, host);
    expect(first.change.action).toBe('create');
    await nginxSiteDriver.apply(first.change, first.ctx);
    await host.remove(reloadOwedPath('/var/lib/hostkit'));
    const owned = inventoryAfter(first.ctx, [named]);
    expect((await planned(named, host, false, owned)).change.action).toBe('noop');
    host.seedFile('/etc/ssl/web.pem', 'CERT TWO\n');
    const renewed = (await planned(named, host, false, owned)).change;
    expect(renewed.action).toBe('update');
    expect(renewed.fields[0]!.diff).toMatch(/^\+# HostKit inputs: \/etc\/ssl\/web.pem hmac:[0-9a-f]{16}$/m);
    expect((renewed.desired as DesiredSite).generation).not.toBe((first.change.desired as DesiredSite).generation);
    // A certificate HostKit writes in the same run counts with its new bytes (the File driver records them first).
    const ctx = driverContext(host, { env });
    ctx.fileDigests.set('/etc/ssl/web.pem', 'f'.repeat(64));
    const ahead = (await nginxSiteDriver.desire([named], ctx)).get(named.id)!.desired;
    expect(ahead.content).not.toBe((renewed.desired as DesiredSite).content);
  });

  it('a host without IPv6 (booted with ipv6.disable=1) gets no [::] listen, which nginx would refuse to start with', async () => {
    const without = nginxHost();
    without.seedFile('/proc/sys/net/core/somaxconn', '4096\n');
    expect(await hostHasIpv6(without)).toBe(false);
    const v4 = (await planned(site(), without)).change.desired as DesiredSite;
    expect(v4.content).toMatch(/^ {4}listen 80;$/m);
    expect(v4.content).toMatch(/^ {4}listen 443 ssl;$/m);
    expect(v4.content).not.toContain('[::]');
    const dual = nginxHost();
    dual.seedFile('/proc/sys/net/core/somaxconn', '4096\n');
    dual.seedFile('/proc/sys/net/ipv6/conf/all/disable_ipv6', '0\n');
    expect(await hostHasIpv6(dual)).toBe(true);
    const both = (await planned(site(), dual)).change.desired as DesiredSite;
    expect(both.content).toMatch(/^ {4}listen \[::\]:80;$/m);
    expect(both.content).toMatch(/^ {4}listen \[::\]:443 ssl;$/m);
    expect(await hostHasIpv6(nginxHost())).toBe(true); // no procfs to ask: assumed
  });

  it('an orphan site is deleted with its htpasswd file', async () => {
    const host = nginxHost();
    const first = await planned(gated, host);
    await nginxSiteDriver.apply(first.change, first.ctx);
    const { ctx, change } = await planned(gated, host, true);
    expect(change.action).toBe('delete');
    await nginxSiteDriver.apply(change, ctx);
    expect(host.text(siteFile('web.example.com'))).toBeUndefined();
    expect(host.text('/etc/nginx/hostkit-htpasswd/web.example.com')).toBeUndefined();
  });

  it('settle: nginx -t failing names the site, does not reload, and rollback restores the previous file', async () => {
    const host = new FakeHost({ [siteFile('web.example.com')]: 'previous\n' });
    host.onExec((call) =>
      call.file === 'nginx'
        ? {
            exitCode: 1,
            stdout: '',
            stderr: `nginx: [emerg] could not build server_names_hash in ${siteFile('web.example.com')}:3\nnginx: configuration file /etc/nginx/nginx.conf test failed\n`,
          }
        : undefined,
    );
    const { ctx, change } = await planned(site(), host);
    const run = await JournaledRun.open(ctx, [change]);
    const undo = await run.apply(nginxSiteDriver, change);
    const settling = nginxSiteDriver.settle!([{ change, undo }], ctx, 'apply');
    await expect(settling).rejects.toThrow(/nginx -t rejected the configuration[\s\S]*server_names_hash/);
    await settling.catch((e: HostKitError) => expect(e.data.resourceId).toBe('site/web.example.com'));
    await run.rollback(); // nginx never loaded the new file: the restore puts it back and does not reload
    expect(host.text(siteFile('web.example.com'))).toBe('previous\n');
    expect(host.calls.map((c) => c.file)).toEqual(['nginx']);
  });

  it('a dry run that cannot read the files still plans and says so', async () => {
    const host = new FakeHost();
    const ctx = driverContext(host, { mode: 'plan', env });
    host.readFile = () => Promise.reject(new Error('EACCES: permission denied'));
    const observed = (await nginxSiteDriver.observe([site()], ctx)).get('site/web.example.com') as ObservedSite;
    expect(observed.unreadable).toContain('EACCES');
    const desired: DesiredSite = (await nginxSiteDriver.desire([site()], ctx)).get('site/web.example.com')!.desired;
    const change = nginxSiteDriver.plan({ resource: site(), desired, observed, orphan: false });
    expect(change.diagnostics[0]).toMatchObject({ severity: 'warning', summary: 'site not observed' });
    // A certificate the manifest names that cannot be read: a warning in a dry run, an error for an apply.
    const named = site({ tls: { certificate: '/etc/hostkit/own/web.pem', key: '/etc/hostkit/own/web.key' } });
    const wanted = (await nginxSiteDriver.desire([named], ctx)).get(named.id)!;
    expect(wanted.diagnostics).toContainEqual(
      expect.objectContaining({ severity: 'warning', summary: 'tls file unreadable', detail: expect.stringContaining('/etc/hostkit/own/web.pem') }),
    );
    await expect(nginxSiteDriver.desire([named], driverContext(host, { mode: 'apply', env }))).rejects.toThrow(/EACCES/);
  });

  // A static project's web root outside its own paths (expand.ts sets rootMustExist): checked, never created.
  const staticSite = () => {
    const r = site({ upstream: undefined, root: '/var/www/html', rootMustExist: true });
    r.fieldOrigins = { root: { file: 'hosts/docs.yaml', line: 10, column: 11, pointer: '/spec/static/root' } };
    return r;
  };

  it.each(['plan', 'apply'] as const)(
    '%s: a web root HostKit does not create and that is missing is an error at static.root, naming the path',
    async (mode) => {
      const host = nginxHost();
      const { diagnostics } = (await nginxSiteDriver.desire([staticSite()], driverContext(host, { mode }))).get('site/web.example.com')!;
      expect(diagnostics).toEqual([
        expect.objectContaining({
          severity: 'error',
          summary: 'web root missing',
          detail: expect.stringContaining('serves /var/www/html, which does not exist on the host'),
          location: expect.objectContaining({ file: 'hosts/docs.yaml', line: 10 }),
        }),
      ]);
      host.seedFile('/var/www/html', 'not a directory');
      const onFile = (await nginxSiteDriver.desire([staticSite()], driverContext(host, { mode }))).get('site/web.example.com')!;
      expect(onFile.diagnostics[0]).toMatchObject({ summary: 'web root missing', detail: expect.stringContaining('is a file on the host, not a directory') });
    },
  );

  it('a web root that exists is checked, not created, and the new site says so; an unchanged site says nothing', async () => {
    const host = nginxHost();
    host.seedDir('/var/www/html');
    const { ctx, change } = await planned(staticSite(), host);
    expect(change.diagnostics).toEqual([]);
    expect(change.action).toBe('create');
    expect(change.fields).toContainEqual({ field: '/root', after: '/var/www/html (exists; HostKit does not create it)' });
    await nginxSiteDriver.apply(change, ctx);
    expect(host.writes).not.toContain('/var/www/html');
    await host.remove(reloadOwedPath('/var/lib/hostkit')); // what a successful settle does
    const again = await planned(staticSite(), host, false, inventoryAfter(ctx, [staticSite()]));
    expect(again.change.action).toBe('noop');
    expect(again.change.fields).toEqual([]);
  });
});

describe('reconciler/drivers/nginx operations', () => {
  const HTPASSWD = 'alice:$6$salt$hash\n';
  const htpasswd = { file: '/etc/nginx/hostkit-htpasswd/web.example.com', content: HTPASSWD, fingerprint: 'hmac:0123456789ab', users: ['alice'] };
  const desired: DesiredSite = { file: siteFile('web.example.com'), content: 'server {}\n', generation: 'g1', domains: ['web.example.com'] };
  const auth = { content: Buffer.from(HTPASSWD), fingerprint: 'hmac:0123456789ab', mode: 0o640, group: 'www-data' };
  const current: ObservedSite = { content: Buffer.from(desired.content) };

  it.each<[string, DesiredSite | undefined, ObservedSite | undefined, SiteOp[]]>([
    ['new site: written, then nginx reloads', desired, undefined, [{ op: 'write' }, { op: 'reload' }]],
    ['new site with basic auth: its htpasswd too', { ...desired, htpasswd }, undefined, [{ op: 'write' }, { op: 'write-htpasswd' }, { op: 'reload' }]],
    ['new content', desired, { content: Buffer.from('server { listen 80; }\n') }, [{ op: 'write' }, { op: 'reload' }]],
    [
      'htpasswd readable by others: written again',
      { ...desired, htpasswd },
      { ...current, htpasswd: { ...auth, mode: 0o644 } },
      [{ op: 'write-htpasswd' }, { op: 'reload' }],
    ],
    ['basic auth dropped: its htpasswd removed', desired, { ...current, htpasswd: auth }, [{ op: 'remove-htpasswd' }, { op: 'reload' }]],
    [
      'a dry run without the secret: an apply writes the htpasswd',
      { ...desired, htpasswdUnavailable: 'env:WEB_USERS' },
      { ...current, htpasswd: auth },
      [{ op: 'write-htpasswd' }, { op: 'reload' }],
    ],
    ['a reload owed by an interrupted run: the reload', desired, { ...current, reloadOwed: true }, [{ op: 'reload' }]],
    ['unchanged: nothing', desired, current, []],
    ['refused: nothing', { ...desired, refused: 'bad domain' }, undefined, []],
    ['orphan: removed, then nginx reloads', undefined, current, [{ op: 'remove' }, { op: 'reload' }]],
  ])('%s', (_title, d, o, ops) => {
    expect(nginxSiteDriver.plan({ resource: site(), desired: d, observed: o, orphan: d === undefined }).ops).toEqual(ops);
  });

  it('the JSON plan names the htpasswd write, not its content; apply of it leaves the site file alone', async () => {
    const observed = { ...current, htpasswd: { ...auth, group: 'root' } };
    const change = nginxSiteDriver.plan({ resource: site(), desired: { ...desired, htpasswd }, observed, orphan: false });
    const json = JSON.stringify(toJsonPlan({ host: 'h', repository: 'r', changes: [change], diagnostics: [], summary: summarize([change]) }));
    expect(json).toContain('"ops":[{"op":"write-htpasswd"},{"op":"reload"}]');
    expect(json).not.toContain('$6$salt$hash');
    const host = nginxHost();
    host.seedFile(desired.file, desired.content);
    const write = vi.spyOn(host, 'writeFile');
    await nginxSiteDriver.apply(change, driverContext(host));
    // nginx's files: the htpasswd only (the reload owed is HostKit's own state file).
    expect(write.mock.calls.map(([p]) => p).filter((p) => p.startsWith('/etc/nginx/'))).toEqual([htpasswd.file]);
  });
});
