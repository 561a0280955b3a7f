import { describe, expect, it } from 'vitest';
import { manifestYaml, type ManifestInput } from '../../../test/support/manifests.js';
import type { Resource } from '../../core/resource.js';
import type { CommandSpec, DirectorySpec, SiteSpec, UnitSpec } from '../../core/specs.js';
import { expandForHost, hostSettings } from '../../manifests/expand.js';
import { validateFiles } from '../../manifests/index.js';
import type { HostManifest, Manifest } from '../../manifests/types.js';
import type { ReleaseSpec } from './spec.js';

const COMMIT = '1a2b3c4d5e6f'.padEnd(40, '0');
const HOST: ManifestInput = { kind: 'Host', name: 'web-1' };
const project = (name: string, spec: Record<string, unknown>): ManifestInput => ({ kind: 'Project', name, on: ['web-1'], spec });
const source = { git: { url: 'https://git.example.com/app.git', ref: COMMIT } };

async function validate(...projects: ManifestInput[]) {
  const files = [{ file: 'hosts/web-1.yaml', bytes: new TextEncoder().encode(manifestYaml(HOST)) }];
  for (const p of projects) files.push({ file: `projects/${p.name}.yaml`, bytes: new TextEncoder().encode(manifestYaml(p)) });
  return validateFiles(files);
}

async function expand(...projects: ManifestInput[]): Promise<Map<string, Resource>> {
  const repo = await validate(...projects);
  expect(repo.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  const host = repo.manifests.find((m) => m.kind === 'Host') as Manifest<HostManifest>;
  const expansion = expandForHost(repo.manifests, hostSettings(host));
  expect(expansion.diagnostics).toEqual([]);
  return new Map(expansion.resources.map((r) => [r.id, r]));
}

describe('reconciler/drivers/release/project', () => {
  it('a project with a source: one release/NAME after its account and directory; units and commands run in /srv/NAME/current and take it as an input', async () => {
    const resources = await expand(
      project('app', {
        runtime: 'python',
        source,
        build: [{ command: ['/usr/bin/make'], environment: { CI: 1 } }],
        shared: ['uploads'],
        service: { command: ['/usr/bin/python3', 'app.py'], port: 9301 },
        workers: [{ name: 'jobs', command: ['/usr/bin/python3', 'jobs.py'] }],
        lifecycle: [{ name: 'migrate', phase: 'before-start', command: ['/usr/bin/python3', 'migrate.py'] }],
      }),
    );
    const release = resources.get('release/app')!;
    expect(release.dependsOn).toEqual(['account/app', 'directory/srv/app']);
    expect(release.spec).toEqual({
      project: 'app',
      user: 'app',
      group: 'app',
      source,
      build: [{ command: ['/usr/bin/make'], environment: { CI: '1' }, timeoutMs: 15 * 60 * 1000 }],
      keep: 5,
      shared: ['uploads'],
      isolation: { profile: 'web-service', writablePaths: ['/srv/app'], network: 'any' },
      webReadable: false,
      restarts: ['hk-app.service', 'hk-app-jobs.service'],
    } satisfies ReleaseSpec);
    for (const id of ['unit/hk-app.service', 'unit/hk-app-jobs.service']) {
      const unit = resources.get(id)!;
      expect(unit.dependsOn).toContain('release/app');
      expect(unit.spec as UnitSpec).toMatchObject({ workingDirectory: '/srv/app/current', isolation: { writablePaths: ['/srv/app'] } });
      expect((unit.spec as UnitSpec).reads).toContain('/srv/app/current');
    }
    expect(resources.get('command/app-migrate')!.spec as CommandSpec).toMatchObject({ workingDirectory: '/srv/app/current' });
    // The account's home and the directory HostKit makes stay the project's directory.
    expect(resources.get('directory/srv/app')!.spec as DirectorySpec).toMatchObject({ path: '/srv/app', owner: 'app' });
  });

  it('a static site with a source serves static.root inside the current release: no directory is made for it, the site waits for the release', async () => {
    const resources = await expand(
      project('docs', { runtime: 'static', source, static: { root: 'site' }, domains: [{ name: 'docs.example.com', tls: 'none' }] }),
    );
    expect([...resources.keys()].filter((id) => id.startsWith('directory/srv'))).toEqual(['directory/srv/docs']);
    // nginx passes through the project's directory to the release, and reads the release.
    expect((resources.get('directory/srv/docs')!.spec as DirectorySpec).mode).toBe(0o751);
    expect(resources.get('release/docs')!.spec).toMatchObject({ webReadable: true, restarts: [] });
    const s = resources.get('site/docs.example.com')!;
    expect(s.spec as SiteSpec).toMatchObject({ root: '/srv/docs/current/site' });
    expect((s.spec as SiteSpec).rootMustExist).toBeUndefined();
    expect(s.dependsOn).toContain('release/docs');
  });

  it('build, releases, shared and a relative static.root need a source', async () => {
    const repo = await validate(
      project('docs', { runtime: 'static', build: [{ command: ['/bin/true'] }], releases: { keep: 2 }, shared: ['a'], static: { root: 'site' } }),
    );
    const errors = repo.diagnostics.filter((d) => d.severity === 'error');
    expect(errors.map((d) => d.summary)).toEqual(['needs a source', 'needs a source', 'needs a source', 'needs a source']);
    expect(errors.map((d) => d.detail.split(':')[0]).sort()).toEqual([
      'spec.build applies to releases of spec.source, which is not set',
      'spec.releases applies to releases of spec.source, which is not set',
      'spec.shared applies to releases of spec.source, which is not set',
      'static.root site is relative',
    ]);
  });
});
