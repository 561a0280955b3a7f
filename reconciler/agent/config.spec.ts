import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadAgentConfig, parseAgentConfig } from './config.js';
import { renderAgentUnit } from './unit.js';

const text = (s: string) => new TextEncoder().encode(s);

describe('reconciler/agent/config', () => {
  it('fills in the defaults', async () => {
    const result = await parseAgentConfig('agent.yaml', text('repository:\n  url: git@github.com:acme/config.git\nhost: web-1\n'));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config).toEqual({
      file: 'agent.yaml',
      repository: { url: 'git@github.com:acme/config.git', branch: 'main' },
      host: 'web-1',
      pollIntervalMs: 60_000,
      report: { enabled: true, branch: 'hostkit-status', authorName: 'HostKit agent', authorEmail: 'hostkit@localhost' },
      drift: { policy: 'report', intervalMs: 300_000 },
      stateDirectory: '/var/lib/hostkit',
      keepRuns: 50,
      logLevel: 'info',
      lockTimeoutMs: 600_000,
      retry: { attempts: 4, initialDelayMs: 2_000, maxDelayMs: 60_000 },
      hostMismatchOk: false,
    });
  });

  it('reads every field', async () => {
    const yaml = `repository:
  url: https://github.example.com/acme/config.git
  branch: production
  sshKeyFile: /etc/hostkit/deploy_key
host: db-2
pollInterval: 30s
webhook:
  listen: "[::1]:9780"
  secretFile: /etc/hostkit/webhook-secret
report: { branch: main, enabled: true }
forge:
  tokenFile: /etc/hostkit/forge-token
  baseUrl: https://github.example.com/api/v3
drift: { policy: heal, interval: 2m }
stateDirectory: /srv/hostkit
keepRuns: 7
lockTimeout: 90s
retry: { attempts: 6, initialDelay: 500ms, maxDelay: 30s }
hostMismatchOk: true
`;
    const result = await parseAgentConfig('agent.yaml', text(yaml));
    if (!result.ok) throw new Error(JSON.stringify(result.diagnostics));
    expect(result.config.webhook).toEqual({ host: '::1', port: 9780, secretFile: '/etc/hostkit/webhook-secret' });
    expect(result.config.drift).toEqual({ policy: 'heal', intervalMs: 120_000 });
    expect(result.config.forge).toEqual({
      type: 'github',
      tokenFile: '/etc/hostkit/forge-token',
      baseUrl: 'https://github.example.com/api/v3',
      pullRequests: true,
    });
    expect(result.config.pollIntervalMs).toBe(30_000);
    expect(result.config.keepRuns).toBe(7);
    expect(result.config.lockTimeoutMs).toBe(90_000);
    expect(result.config.retry).toEqual({ attempts: 6, initialDelayMs: 500, maxDelayMs: 30_000 });
    expect(result.config.hostMismatchOk).toBe(true);
  });

  it.each([
    ['a missing field', 'repository:\n  url: x\n', 'missing required field', 'agent.yaml', 1, undefined],
    ['an unknown field', 'repository:\n  url: x\nhost: web-1\npollIntervall: 10s\n', 'unknown field', 'agent.yaml', 4, '/pollIntervall'],
    ['a bad duration', 'repository:\n  url: x\nhost: web-1\ndrift:\n  interval: 5 minutes\n', undefined, 'agent.yaml', 5, '/drift/interval'],
    ['a bad policy', 'repository:\n  url: x\nhost: web-1\ndrift:\n  policy: fix\n', undefined, 'agent.yaml', 5, '/drift/policy'],
    ['a relative key path', 'repository:\n  url: x\n  sshKeyFile: key\nhost: web-1\n', undefined, 'agent.yaml', 3, '/repository/sshKeyFile'],
    [
      'a port above 65535',
      'repository:\n  url: x\nhost: web-1\nwebhook:\n  listen: 0.0.0.0:70000\n  secretFile: /s\n',
      'invalid port',
      'agent.yaml',
      5,
      '/webhook/listen',
    ],
    ['no run kept', 'repository:\n  url: x\nhost: web-1\nkeepRuns: 0\n', undefined, 'agent.yaml', 4, '/keepRuns'],
    ['no try at all', 'repository:\n  url: x\nhost: web-1\nretry:\n  attempts: 0\n', undefined, 'agent.yaml', 5, '/retry/attempts'],
    ['a lock timeout that is not a duration', 'repository:\n  url: x\nhost: web-1\nlockTimeout: forever\n', undefined, 'agent.yaml', 4, '/lockTimeout'],
    ['invalid YAML', 'repository: [\n', 'invalid YAML', 'agent.yaml', 2, undefined],
  ])('%s is an error naming file, line and field', async (_name, yaml, summary, file, line, pointer) => {
    const result = await parseAgentConfig('agent.yaml', text(yaml));
    expect(result.ok).toBe(false);
    const d = result.diagnostics[0]!;
    if (summary) expect(d.summary).toBe(summary);
    expect(d.location?.file).toBe(file);
    expect(d.location?.line).toBe(line);
    if (pointer) expect(d.location?.pointer).toBe(pointer);
  });

  it('a missing file is an error naming it', async () => {
    const result = await loadAgentConfig('/nonexistent/agent.yaml');
    expect(result.ok).toBe(false);
    expect(result.diagnostics[0]).toMatchObject({ summary: 'cannot read configuration', location: { file: '/nonexistent/agent.yaml' } });
  });

  it('JSON is YAML too', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'hostkit-agent-config-'));
    await writeFile(path.join(dir, 'agent.json'), JSON.stringify({ repository: { url: '/srv/config.git' }, host: 'web-1' }));
    expect((await loadAgentConfig(path.join(dir, 'agent.json'))).ok).toBe(true);
  });
});

describe('reconciler/agent/unit', () => {
  const options = {
    node: '/usr/bin/node',
    cli: '/opt/hostkit/dist/reconciler/cli.js',
    config: '/etc/hostkit/agent.yaml',
    host: 'web-1',
    stateDirectory: '/var/lib/hostkit',
  };

  it('renders a unit that runs the agent with its configuration and restarts it on failure', () => {
    const unit = renderAgentUnit(options);
    expect(unit).toContain('ExecStart=/usr/bin/node --max-semi-space-size=4 /opt/hostkit/dist/reconciler/cli.js agent --config /etc/hostkit/agent.yaml\n');
    expect(unit).toContain('Restart=on-failure\n');
    expect(unit).toContain('WantedBy=multi-user.target\n');
    expect(unit).toContain('After=network-online.target\n');
  });

  it.each([
    ['config', '/etc/host kit/agent.yaml'],
    ['node', 'node'],
    ['cli', '/opt/x;rm -rf /'],
    ['config', '/etc/%h/agent.yaml'],
  ])('refuses an unsafe %s path %j', (field, value) => {
    expect(() => renderAgentUnit({ ...options, [field]: value })).toThrow(new RegExp(`for ${field}`));
  });
});
