import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { expandForHost, hostSettings } from './expand.js';
import { validateFiles } from './index.js';
import type { Manifest, HostManifest } from './types.js';
import type { ManifestFile } from './load.js';

const enc = (s: string) => new TextEncoder().encode(s);
const corpus = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test/corpus');

function filesUnder(dir: string, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) Object.assign(out, filesUnder(full, `${prefix}${name}/`));
    else if (name.endsWith('.yaml')) out[`${prefix}${name}`] = readFileSync(full, 'utf8');
  }
  return out;
}

const asFiles = (files: Record<string, string>): ManifestFile[] => Object.entries(files).map(([file, text]) => ({ file, bytes: enc(text) }));

// The policy cases of the corpus whose refusal is "not allowed in a project manifest".
const projectCases = readdirSync(path.join(corpus, 'bad'))
  .filter((name) => /^2[0-6]\d-/.test(name))
  .map((name) => ({
    name,
    expect: JSON.parse(readFileSync(path.join(corpus, 'bad', name, 'expect.json'), 'utf8')) as { summary: string; detailIncludes: string },
  }))
  .filter((c) => c.expect.summary === 'not allowed in a project manifest');

describe('reconciler/manifests/policy', () => {
  it('has a corpus case for each project-level refusal', () => {
    const rules = new Set(projectCases.map((c) => c.expect.detailIncludes));
    for (const rule of [
      'run-as',
      'primitive-owner',
      'project-path',
      'account-owner',
      'account-group',
      'account-login',
      'account-sudo',
      'firewall-ssh',
      'host-level-path',
      'pg-extension',
      'pg-drop',
      'pg-name',
      'site-port',
      'secret-owner',
      'secret-env',
      'unit-name',
    ]) {
      expect(rules).toContain(`rule ${rule}:`);
    }
  });

  // The same manifests moved under a host-level path: what a project may not do, the operator may.
  it.each(projectCases.map((c) => [c.name, c.expect.detailIncludes] as const))('%s is allowed from a host-level path', async (name, rule) => {
    const files = { ...filesUnder(path.join(corpus, 'shared')), ...filesUnder(path.join(corpus, 'bad', name)) };
    const hostLevel = /hostLevelPaths: \[(\w+\/)\]/.exec(files['hosts/web-1.yaml'] ?? '')?.[1] ?? 'hosts/';
    const moved = Object.fromEntries(Object.entries(files).map(([file, text]) => [file.replace(/^(projects|hosts)\//, hostLevel), text]));
    const before = await validateFiles(asFiles(files));
    expect(before.diagnostics.filter((d) => d.detail.includes(rule))).not.toEqual([]);
    const after = await validateFiles(asFiles(moved));
    expect(after.diagnostics.filter((d) => d.summary === 'not allowed in a project manifest')).toEqual([]);
  });

  const HOST = `apiVersion: hostkit.dev/v1
kind: Host
metadata: { name: web-1 }
spec:
  policy:
    grants:
      shop:
        paths: [/opt/shop]
        secrets: [/etc/hostkit/secrets/shared/smtp-password]
        env: [SMTP_TOKEN]
        ports: [9100]
  secrets:
    env: [METRICS_TOKEN]
`;
  const SHOP = `apiVersion: hostkit.dev/v1
kind: Project
metadata: { name: shop }
spec:
  placement: { hosts: [web-1] }
  runtime: binary
  service:
    command: [/opt/shop/bin/shop]
    workingDirectory: /opt/shop
    port: 8080
    secrets:
      SMTP: { file: /etc/hostkit/secrets/shared/smtp-password }
      SMTP_TOKEN: { env: SMTP_TOKEN }
      METRICS: { env: METRICS_TOKEN }
      OWN: { file: /etc/hostkit/secrets/shop/key }
      OWN_FILE: { file: /etc/hostkit/secrets/shop-session }
  domains:
    - name: shop.example.com
      tls: none
      locations:
        - { path: /metrics, port: 9100 }
`;

  it("lets the Host's grants widen what a project owns: paths, secrets, agent variables and ports", async () => {
    const repo = await validateFiles(asFiles({ 'hosts/web-1.yaml': HOST, 'projects/shop.yaml': SHOP }));
    expect(repo.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    const ungranted = await validateFiles(asFiles({ 'hosts/web-1.yaml': HOST.replace('shop:', 'other:'), 'projects/shop.yaml': SHOP }));
    expect(ungranted.diagnostics.map((d) => /rule ([a-z-]+):/.exec(d.detail)?.[1]).sort()).toEqual(['project-path', 'secret-env', 'secret-owner', 'site-port']);
  });

  it('names the rule, the offending field and the paths that may declare it', async () => {
    const repo = await validateFiles(asFiles({ 'hosts/web-1.yaml': HOST, 'projects/shop.yaml': SHOP.replace('port: 9100', 'port: 22') }));
    expect(repo.diagnostics).toEqual([
      expect.objectContaining({
        severity: 'error',
        summary: 'not allowed in a project manifest',
        detail:
          "rule site-port: port 22 is not a port project shop declares (its spec.service.port). Declare it in a host-level path (hosts/) or grant it in the Host's spec.policy.grants.shop.ports.",
        location: expect.objectContaining({ file: 'projects/shop.yaml', line: 21, pointer: '/spec/domains/0/locations/0/port' }),
      }),
    ]);
  });

  it('marks resources from host-level manifests hostLevel, and only those', async () => {
    const unit = (name: string, project: string) =>
      `apiVersion: hostkit.dev/v1\nkind: Unit\nmetadata: { name: ${name}, project: ${project} }\nspec:\n  placement: { hosts: [web-1] }\n  command: [/bin/true]\n  user: ${project}\n`;
    const files = {
      'hosts/web-1.yaml': HOST,
      'hosts/ops.yaml': unit('ops', 'ops'),
      'projects/shop.yaml': SHOP,
      'projects/shop-unit.yaml': unit('shop-job', 'shop'),
    };
    const repo = await validateFiles(asFiles(files));
    const host = repo.manifests.find((m): m is Manifest<HostManifest> => m.kind === 'Host')!;
    const { resources } = expandForHost(repo.manifests, hostSettings(host));
    const flagged = Object.fromEntries(resources.map((r) => [r.id, r.hostLevel === true]));
    expect(flagged).toMatchObject({
      'unit/hk-ops.service': true,
      'unit/hk-shop-job.service': false,
      'unit/hk-shop.service': false,
      'directory/etc/hostkit': true,
    });
  });

  it('describes a plain value where a secret reference belongs by type and length, never the value', async () => {
    const project = SHOP.replace('SMTP: { file: /etc/hostkit/secrets/shared/smtp-password }', 'SMTP: hunter2-is-my-password').replace(
      'OWN: { file: /etc/hostkit/secrets/shop/key }',
      'OWN: { age: hunter2 }',
    );
    const repo = await validateFiles(asFiles({ 'hosts/web-1.yaml': HOST, 'projects/shop.yaml': project }));
    expect(repo.valid).toBe(false);
    expect(JSON.stringify(repo.diagnostics)).not.toContain('hunter2');
    expect(repo.diagnostics.map((d) => d.detail)).toEqual(
      expect.arrayContaining([
        expect.stringContaining('got a string of 22 characters (not shown; write a reference instead: {file: /etc/hostkit/secrets/PROJECT/NAME}'),
      ]),
    );
  });
});
