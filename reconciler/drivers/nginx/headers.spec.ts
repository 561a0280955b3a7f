import { describe, expect, it } from 'vitest';
import { writeRepo } from '../../../test/support/fixtures.js';
import type { SiteSpec } from '../../core/specs.js';
import { validateRepository } from '../../manifests/index.js';
import { renderSite } from './render.js';
import { siteProblems } from './validate.js';

const site = (headers?: Record<string, string>): SiteSpec => ({
  site: 'app.example.test',
  domains: ['app.example.test'],
  tls: 'none',
  redirectHttp: false,
  locations: [],
  upstream: { host: '127.0.0.1', port: 9001 },
  ...(headers ? { headers } : {}),
});

describe('reconciler/drivers/nginx response headers', () => {
  it('renders each declared header once per server, sorted, always sent', () => {
    const text = renderSite(site({ 'X-Rev': '2', 'X-App': 'shop v1.2' }), 'projects/app.yaml').content;
    expect(text).toContain('    add_header X-App "shop v1.2" always;\n    add_header X-Rev "2" always;\n');
    expect(renderSite(site(), 'x').content).not.toContain('X-Rev');
  });

  it.each([
    ['X-Rev', '1; return 200 pwned'],
    ['X-Rev', 'a"b'],
    ['X-Rev', '$host'],
    ['X-Rev', 'line\nbreak'],
    ['X Rev', '1'],
    ['X-HostKit-Generation', '1'],
    ['Content-Length', '0'],
    ['set-cookie', 'a=b'],
    ['LOCATION', 'https://evil.example.net/'],
    ['Strict-Transport-Security', 'max-age=0'],
    ['Content-Security-Policy-Report-Only', 'default-src https:'],
    ['Access-Control-Allow-Credentials', 'true'],
    ['x-hostkit-generation', '1'],
  ])('refuses %j: %j before anything is rendered', (name, value) => {
    expect(siteProblems(site({ [name]: value }))).not.toEqual([]);
  });

  it('the manifest schema rejects an unsafe header value with its location', async () => {
    const dir = await writeRepo({
      'hosts/h.yaml': 'apiVersion: hostkit.dev/v1\nkind: Host\nmetadata:\n  name: h\nspec: {}\n',
      'projects/app.yaml':
        'apiVersion: hostkit.dev/v1\nkind: Project\nmetadata:\n  name: app\nspec:\n  placement:\n    hosts: [h]\n  runtime: python\n  service:\n    command: [/usr/bin/python3, app.py]\n    port: 9001\n  domains:\n    - name: app.example.test\n      tls: none\n      responseHeaders:\n        X-Rev: "1; return 200"\n',
    });
    const repo = await validateRepository(dir);
    expect(repo.valid).toBe(false);
    expect(repo.diagnostics.map((d) => `${d.location?.file}:${d.location?.line}`)).toContain('projects/app.yaml:16');
  });

  it.each([
    '169.254.169.254',
    '::ffff:169.254.169.254',
    'fd00:ec2::254',
    '100.100.100.200',
    'fe80::1',
    '169.254.1.1',
    '0.0.0.0',
    '::',
    '224.0.0.1',
    'not-an-ip',
  ])('refuses to proxy to %s before anything is rendered', (host) => {
    const spec = { ...site(), upstream: { host, port: 9001 } };
    expect(siteProblems(spec).join('; ')).toMatch(/upstream host/);
  });

  it.each(['127.0.0.1', '127.0.0.53', '::1', '10.0.0.5', '2001:db8::5'])('proxies to %s', (host) => {
    expect(siteProblems({ ...site(), upstream: { host, port: 9001 } })).toEqual([]);
  });
});
