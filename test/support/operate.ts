// Fixtures for the specs of reconciler/commands (status, logs, health): a host h
// managing its firewall, with a project that runs a service behind a domain, a
// worker, a timer, a Unit primitive and a lifecycle command, has a database, a
// firewall opening and a health check; a project whose health command fails; a
// static site; and a project placed on another host.
import { expect } from 'vitest';
import { expandForHost, hostSettings } from '../../reconciler/manifests/expand.js';
import { validateFiles } from '../../reconciler/manifests/index.js';
import type { HostManifest, Manifest } from '../../reconciler/manifests/types.js';
import { manifestYaml } from './manifests.js';

const enc = (text: string) => new TextEncoder().encode(text);

/** A plain environment value of shop's: no output of status may show it. */
export const PLAIN_SETTING = 'plain-value-8d1f';

export const OPERATE_HOST = manifestYaml(
  { kind: 'Host', name: 'h', spec: { policy: { hostLevelPaths: ['/'] }, firewall: { input: 'drop' }, secrets: { env: ['SHOP_DB_PASSWORD'] } } },
  { kind: 'Host', name: 'other' },
);

const ON = ['h'];

export const SHOP = manifestYaml(
  {
    kind: 'Project',
    name: 'shop',
    on: ON,
    spec: {
      runtime: 'binary',
      service: { command: ['/srv/shop/bin/shop'], port: 9401, environment: { SETTING: PLAIN_SETTING } },
      workers: [{ name: 'mailer', command: ['/srv/shop/bin/mailer'] }],
      timers: [{ name: 'cleanup', schedule: '@daily', command: ['/srv/shop/bin/cleanup'] }],
      lifecycle: [{ name: 'migrate', phase: 'before-start', command: ['/srv/shop/bin/migrate'] }],
      domains: [{ name: 'shop.example.test', aliases: ['www.shop.example.test'], tls: 'self-signed' }],
      database: { password: { env: 'SHOP_DB_PASSWORD' } },
      firewall: [{ port: 8443, from: ['10.0.0.0/8'] }],
      health: { command: ['/usr/bin/true'] },
    },
  },
  { kind: 'Unit', name: 'shop-export', project: 'shop', on: ON, spec: { user: 'shop', command: ['/srv/shop/bin/export'], schedule: '@hourly' } },
  {
    kind: 'Project',
    name: 'bad',
    on: ON,
    spec: { runtime: 'binary', service: { command: ['/srv/bad/bin/bad'] }, health: { command: ['/usr/bin/false'], retries: 3 } },
  },
  { kind: 'Project', name: 'blog', on: ON, spec: { runtime: 'static', domains: [{ name: 'blog.example.test', tls: 'none' }] } },
  { kind: 'Project', name: 'elsewhere', on: ['other'], spec: { runtime: 'binary', service: { command: ['/srv/elsewhere/run'] } } },
);

/** The fixture's manifests and the resources they expand into on host h. */
export async function declaredOn(files: Record<string, string> = { 'hosts/h.yaml': OPERATE_HOST, 'projects/shop.yaml': SHOP }) {
  const repo = await validateFiles(Object.entries(files).map(([file, text]) => ({ file, bytes: enc(text) })));
  expect(repo.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  const host = repo.manifests.find((m): m is Manifest<HostManifest> => m.kind === 'Host' && m.name === 'h')!;
  return { manifests: repo.manifests, resources: expandForHost(repo.manifests, hostSettings(host)).resources };
}
