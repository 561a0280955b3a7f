import { describe, expect, it } from 'vitest';
import type { Resource } from '../core/resource.js';
import type { DirectorySpec, SiteSpec } from '../core/specs.js';
import { expandForHost, hostSettings } from './expand.js';
import { validateFiles } from './index.js';
import type { HostManifest, Manifest } from './types.js';

const enc = (s: string) => new TextEncoder().encode(s);

const HOST = `apiVersion: hostkit.dev/v1
kind: Host
metadata:
  name: web-1
spec:
  policy:
    hostLevelPaths: [hosts/]
`;

// A static project whose spec continues with `extra` (indented by two spaces, under spec:).
function staticProject(extra: string, name = 'docs'): string {
  return `apiVersion: hostkit.dev/v1
kind: Project
metadata: { name: ${name} }
spec:
  placement: { hosts: [web-1] }
  runtime: static
${extra}`;
}

const DOMAIN = `  domains:
    - name: docs.example.com
      tls: self-signed
`;

async function expand(files: Record<string, string>): Promise<Map<string, Resource>> {
  const repo = await validateFiles(Object.entries({ 'hosts/web-1.yaml': HOST, ...files }).map(([file, text]) => ({ file, bytes: enc(text) })));
  expect(repo.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  const host = repo.manifests.find((m) => m.kind === 'Host') as Manifest<HostManifest>;
  const expansion = expandForHost(repo.manifests, hostSettings(host));
  expect(expansion.diagnostics).toEqual([]);
  return new Map(expansion.resources.map((r) => [r.id, r]));
}

const dir = (r: Resource | undefined) => r?.spec as DirectorySpec | undefined;
const site = (r: Resource | undefined) => r?.spec as SiteSpec;

describe('reconciler/manifests/expand: a static site', () => {
  it('plans no account and no working directory when nothing of it runs; its web root is created, readable by nginx', async () => {
    const resources = await expand({ 'projects/docs.yaml': staticProject(DOMAIN) });
    // nginx is the package its site implies (drivers/package/host.ts).
    expect([...resources.keys()].sort()).toEqual(['certificate/docs.example.com', 'directory/srv/docs/public', 'package/nginx', 'site/docs.example.com']);
    expect(dir(resources.get('directory/srv/docs/public'))).toEqual({ path: '/srv/docs/public', owner: 'root', group: 'www-data', mode: 0o750 });
    const s = resources.get('site/docs.example.com')!;
    expect(site(s).root).toBe('/srv/docs/public');
    expect(site(s).rootMustExist).toBeUndefined();
    expect(s.dependsOn).toContain('directory/srv/docs/public');
  });

  it('creates a static.root under the project’s own paths (here /var/www/docs), located at static.root', async () => {
    const resources = await expand({ 'projects/docs.yaml': staticProject(`  static:\n    root: /var/www/docs\n${DOMAIN}`) });
    expect([...resources.keys()].filter((id) => id.startsWith('directory/') || id.startsWith('account/'))).toEqual(['directory/var/www/docs']);
    expect(resources.get('directory/var/www/docs')!.origin).toMatchObject({ file: 'projects/docs.yaml', line: 8 });
  });

  it('a static project without a domain plans nothing at all', async () => {
    expect([...(await expand({ 'projects/docs.yaml': staticProject('') })).keys()]).toEqual([]);
  });

  it('when something of it runs (a timer that builds the site): its account, a working directory nginx may pass through, a web root it may write', async () => {
    const timer = `  timers:\n    - name: build\n      schedule: '@hourly'\n      command: [/usr/bin/make, site]\n`;
    const resources = await expand({ 'projects/docs.yaml': staticProject(timer + DOMAIN) });
    expect(resources.has('account/docs')).toBe(true);
    expect(dir(resources.get('directory/srv/docs'))).toEqual({ path: '/srv/docs', owner: 'docs', group: 'docs', mode: 0o751 });
    expect(dir(resources.get('directory/srv/docs/public'))).toEqual({ path: '/srv/docs/public', owner: 'docs', group: 'www-data', mode: 0o750 });
    expect(resources.get('directory/srv/docs/public')!.dependsOn).toEqual(expect.arrayContaining(['account/docs', 'directory/srv/docs']));
  });

  it('a web root that is the working directory itself is that one directory, in nginx’s group', async () => {
    const timer = `  timers:\n    - name: build\n      schedule: '@hourly'\n      command: [/usr/bin/make, site]\n`;
    const resources = await expand({ 'projects/docs.yaml': staticProject(`  static:\n    root: /srv/docs\n${timer}${DOMAIN}`) });
    expect(dir(resources.get('directory/srv/docs'))).toEqual({ path: '/srv/docs', owner: 'docs', group: 'www-data', mode: 0o750 });
    expect(resources.get('site/docs.example.com')!.dependsOn).toContain('directory/srv/docs');
  });

  it('a root outside the project’s paths (host-level) is not created: the site checks it exists, located at static.root', async () => {
    const resources = await expand({ 'hosts/docs.yaml': staticProject(`  static:\n    root: /var/www/html\n${DOMAIN}`) });
    expect([...resources.keys()].filter((id) => id.startsWith('directory/') || id.startsWith('account/'))).toEqual([]);
    const s = resources.get('site/docs.example.com')!;
    expect(site(s)).toMatchObject({ root: '/var/www/html', rootMustExist: true });
    expect(s.fieldOrigins?.root).toMatchObject({ file: 'hosts/docs.yaml', line: 8, pointer: '/spec/static/root' });
  });

  it('a root outside the project that another manifest declares as a Directory is created by it, not checked', async () => {
    const directory = `apiVersion: hostkit.dev/v1\nkind: Directory\nmetadata:\n  name: html\nspec:\n  placement:\n    hosts: [web-1]\n  path: /var/www/html\n  group: www-data\n  mode: "0750"\n`;
    const resources = await expand({ 'hosts/docs.yaml': staticProject(`  static:\n    root: /var/www/html\n${DOMAIN}`), 'hosts/html.yaml': directory });
    const s = resources.get('site/docs.example.com')!;
    expect(site(s).rootMustExist).toBeUndefined();
    expect(s.dependsOn).toContain('directory/var/www/html');
  });

  it('a root granted to the project (spec.policy.grants) is its own: created', async () => {
    const host = HOST.replace('    hostLevelPaths: [hosts/]\n', '    hostLevelPaths: [hosts/]\n    grants:\n      docs:\n        paths: [/opt/docs]\n');
    const repo = await validateFiles(
      Object.entries({ 'hosts/web-1.yaml': host, 'projects/docs.yaml': staticProject(`  static:\n    root: /opt/docs/site\n${DOMAIN}`) }).map(
        ([file, text]) => ({
          file,
          bytes: enc(text),
        }),
      ),
    );
    expect(repo.diagnostics).toEqual([]);
    const expansion = expandForHost(repo.manifests, hostSettings(repo.manifests.find((m) => m.kind === 'Host') as Manifest<HostManifest>));
    expect(expansion.resources.map((r) => r.id)).toContain('directory/opt/docs/site');
  });

  it('a service project is unchanged: its account and working directory (0750, its own group)', async () => {
    const project = `apiVersion: hostkit.dev/v1\nkind: Project\nmetadata:\n  name: api\nspec:\n  placement:\n    hosts: [web-1]\n  runtime: node\n  service:\n    command: [/usr/bin/node, server.js]\n`;
    const resources = await expand({ 'projects/api.yaml': project });
    expect(resources.has('account/api')).toBe(true);
    expect(dir(resources.get('directory/srv/api'))).toEqual({ path: '/srv/api', owner: 'api', group: 'api', mode: 0o750 });
  });
});
