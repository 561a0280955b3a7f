import { describe, expect, it } from 'vitest';
import { writeRepo } from '../../test/support/fixtures.js';
import { validateRepository } from './index.js';

const host = (spec = '') => `apiVersion: hostkit.dev/v1\nkind: Host\nmetadata:\n  name: h\nspec:\n  acme:\n    email: ops@example.com\n${spec}`;
const project = (service: string, domains = '') =>
  `apiVersion: hostkit.dev/v1\nkind: Project\nmetadata:\n  name: app\nspec:\n  placement:\n    hosts: [h]\n  runtime: python\n  service:\n    command: [/usr/bin/python3, app.py]\n${service}${domains}`;

async function check(files: Record<string, string>) {
  const repo = await validateRepository(await writeRepo(files));
  return {
    valid: repo.valid,
    errors: repo.diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.summary} ${d.location?.file}:${d.location?.line}`),
  };
}

describe('reconciler/manifests/values', () => {
  it.each(['127.0.0.1', '127.0.0.53', '::1', '0.0.0.0', '::'])('a service may bind %s without declaring it', async (bind) => {
    expect(await check({ 'hosts/h.yaml': host(), 'projects/app.yaml': project(`    port: 9001\n    bind: "${bind}"\n`) })).toEqual({ valid: true, errors: [] });
  });

  it("a service may bind one of the Host's spec.addresses, in any spelling", async () => {
    const files = { 'hosts/h.yaml': host('  addresses: [10.0.0.5, "2001:db8::5"]\n') };
    expect(await check({ ...files, 'projects/app.yaml': project('    port: 9001\n    bind: 10.0.0.5\n') })).toEqual({ valid: true, errors: [] });
    expect(await check({ ...files, 'projects/app.yaml': project('    port: 9001\n    bind: "2001:DB8:0::5"\n') })).toEqual({ valid: true, errors: [] });
    expect((await check({ ...files, 'projects/app.yaml': project('    port: 9001\n    bind: 10.0.0.6\n') })).errors).toEqual([
      'address not allowed projects/app.yaml:12',
    ]);
  });

  it('allows informational response headers', async () => {
    const domains =
      '  domains:\n    - name: app.example.test\n      tls: none\n      responseHeaders:\n        X-Revision: "abc123"\n        Cache-Control: "no-store"\n';
    expect(await check({ 'hosts/h.yaml': host(), 'projects/app.yaml': project('    port: 9001\n', domains) })).toEqual({ valid: true, errors: [] });
  });

  it('takes numbers written in plain decimal, and quoted text that looks like a number', async () => {
    const service = '    port: 9001\n    environment:\n      HEX: "0x16"\n      RATIO: 0.5\n      NEGATIVE: -3\n';
    expect(await check({ 'hosts/h.yaml': host(), 'projects/app.yaml': project(service) })).toEqual({ valid: true, errors: [] });
  });

  it('names every number not in plain decimal, not only ports', async () => {
    const service = '    port: 9001\n    environment:\n      LEVEL: 010\n    limits:\n      tasksMax: 1e2\n';
    expect((await check({ 'hosts/h.yaml': host(), 'projects/app.yaml': project(service) })).errors).toEqual([
      'number not in plain decimal projects/app.yaml:13',
      'number not in plain decimal projects/app.yaml:15',
    ]);
  });
});
