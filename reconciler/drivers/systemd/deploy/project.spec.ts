import { describe, expect, it } from 'vitest';
import { manifestYaml, type ManifestInput } from '../../../../test/support/manifests.js';
import type { Resource } from '../../../core/resource.js';
import type { EnvFileSpec, SiteSpec } from '../../../core/specs.js';
import { expandForHost, hostSettings } from '../../../manifests/expand.js';
import { validateFiles } from '../../../manifests/index.js';
import type { HostManifest, Manifest } from '../../../manifests/types.js';
import type { ReleaseSpec } from '../../release/spec.js';
import type { DeploySpec } from './spec.js';
import { unitChoices } from '../../../commands/operate.js';

const HOST: ManifestInput = { kind: 'Host', name: 'web-1' };
const COMMIT = '1a2b3c4d5e6f'.padEnd(40, '0');

async function expand(spec: Record<string, unknown>) {
  const files = [HOST, { kind: 'Project', name: 'app', on: ['web-1'], spec } as ManifestInput].map((m) => ({
    file: m.kind === 'Host' ? 'hosts/web-1.yaml' : 'projects/app.yaml',
    bytes: new TextEncoder().encode(manifestYaml(m)),
  }));
  const repo = await validateFiles(files);
  const host = repo.manifests.find((m) => m.kind === 'Host') as Manifest<HostManifest>;
  const expansion = expandForHost(repo.manifests, hostSettings(host));
  const diagnostics = [...repo.diagnostics, ...expansion.diagnostics].filter((d) => d.severity === 'error');
  return { resources: new Map<string, Resource>(expansion.resources.map((r) => [r.id, r])), diagnostics, manifests: repo.manifests };
}

const base = {
  runtime: 'python',
  source: { git: { url: 'https://git.example.com/app.git', ref: COMMIT } },
  service: { command: ['/usr/bin/python3', 'app.py'], port: 9401 },
  workers: [{ name: 'jobs', command: ['/usr/bin/python3', 'jobs.py'] }],
  lifecycle: [{ name: 'migrate', phase: 'before-start', command: ['/usr/bin/python3', 'migrate.py'] }],
  domains: [{ name: 'app.example.test', tls: 'none' }],
  health: { http: { path: '/healthz' } },
};

describe('reconciler/drivers/systemd/deploy/project', () => {
  it('blue-green: deploy/app instead of hk-app.service, after the release and the before-start command; sites proxy to its upstream; the env file has no PORT', async () => {
    const { resources, diagnostics } = await expand({ ...base, deploy: { strategy: 'blue-green', drain: '2s' } });
    expect(diagnostics).toEqual([]);
    expect(resources.has('unit/hk-app.service')).toBe(false);
    const deploy = resources.get('deploy/app') as Resource<DeploySpec>;
    expect(deploy.spec).toMatchObject({
      ports: { blue: 9401, green: 9402 },
      drainMs: 2000,
      releases: true,
      health: { http: { path: '/healthz', expectStatus: 200 } },
    });
    expect(deploy.spec.service.workingDirectory).toBe('/srv/app/current');
    expect(deploy.dependsOn).toEqual(expect.arrayContaining(['release/app', 'command/app-migrate']));
    // Workers stay units, restarted in place after the switch (rank 6 after the deploy's 5.5); sites wait for the deploy.
    expect(resources.has('unit/hk-app-jobs.service')).toBe(true);
    const site = resources.get('site/app.example.test') as Resource<SiteSpec>;
    expect(site.spec.upstream).toEqual({ host: '127.0.0.1', port: 9401, group: 'hostkit_deploy_app' });
    expect(site.dependsOn).toContain('deploy/app');
    expect((resources.get('envfile/etc/hostkit/env/app.env') as Resource<EnvFileSpec>).spec.environment.PORT).toBeUndefined();
    expect((resources.get('release/app') as Resource<ReleaseSpec>).spec.switchWithNginx).toBe(true);
  });

  it('hostkit status and logs name both instances as the service', async () => {
    const { resources, manifests } = await expand({ ...base, deploy: { strategy: 'blue-green' } });
    expect(unitChoices(manifests, [...resources.values()], 'app')[0]).toEqual({
      choice: 'service',
      role: 'service',
      units: ['hk-app@blue.service', 'hk-app@green.service'],
    });
  });

  it('restart (the default): hk-app.service as before, PORT in the env file, sites proxy to the port', async () => {
    const { resources } = await expand(base);
    expect(resources.has('deploy/app')).toBe(false);
    expect(resources.has('unit/hk-app.service')).toBe(true);
    expect((resources.get('site/app.example.test') as Resource<SiteSpec>).spec.upstream).toEqual({ host: '127.0.0.1', port: 9401 });
    expect((resources.get('envfile/etc/hostkit/env/app.env') as Resource<EnvFileSpec>).spec.environment.PORT).toBe('9401');
    expect((resources.get('release/app') as Resource<ReleaseSpec>).spec.switchWithNginx).toBeUndefined();
  });

  it('blue-green without a domain, or with deploy.port the service port: an error at the field', async () => {
    const noSite = await expand({ ...base, domains: undefined, deploy: { strategy: 'blue-green' } });
    expect(noSite.diagnostics.map((d) => d.summary)).toContain('blue-green needs a site');
    const samePort = await expand({ ...base, deploy: { strategy: 'blue-green', port: 9401 } });
    expect(samePort.diagnostics.map((d) => d.summary)).toContain('blue-green needs two ports');
  });
});
