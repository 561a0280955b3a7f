import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAgentConfig } from '../agent/config.js';
import type { HostReport } from '../report/status.js';
import { parseRollout, type RolloutPolicy } from './policy.js';
import { fleetRows, rolloutProgress } from './status.js';

const NOW = Date.parse('2026-12-07T12:00:00Z');
const C = 'c'.repeat(40);
const OLD = 'a'.repeat(40);

function report(host: string, o: Partial<HostReport> = {}): HostReport {
  return {
    host,
    commit: C,
    result: 'applied',
    summary: 'ok',
    trigger: [],
    startedAt: '2026-12-07T11:00:00Z',
    finishedAt: '2026-12-07T11:00:01Z',
    timings: { totalMs: 1 },
    resources: [],
    diagnostics: [],
    ...o,
  };
}

const policy: RolloutPolicy = {
  name: 'p',
  waves: [
    { number: 1, name: 'canary', hosts: ['a'], maxFailures: { count: 0 }, bakeMs: 0 },
    { number: 2, name: 'rest', hosts: ['b', 'c'], maxFailures: { count: 0 }, bakeMs: 0 },
  ],
};
const hosts = ['a', 'b', 'c', 'd'].map((name) => ({ name, labels: {} }));

describe('reconciler/fleet/status', () => {
  it('gives one row per host: wave, drift by hand, first certificate expiry, last report, stale flags', () => {
    const reports = new Map([
      [
        'a',
        report('a', {
          certificates: [
            { id: 'certificate/late', notAfter: '2027-03-01T00:00:00.000Z' },
            { id: 'certificate/soon', notAfter: '2027-01-01T00:00:00.000Z' },
          ],
          drift: {
            checkedAt: '2026-12-07T11:30:00Z',
            commit: C,
            policy: 'report',
            resources: [
              { id: 'file/x', action: 'update', fields: [] },
              { id: 'certificate/soon', action: 'update', fields: [], owedBy: 'time' },
            ],
            healed: [],
            renewed: [],
            held: [],
            backingOff: [],
          },
        }),
      ],
      [
        'b',
        report('b', {
          commit: OLD,
          rollout: { wave: 2, held: { commit: C, state: 'waiting', wave: 1, reason: 'waiting for wave 1', since: '2026-12-07T11:59:00Z' } },
        }),
      ],
      ['c', report('c', { finishedAt: '2026-12-07T08:00:00Z' })],
    ]);
    const rows = fleetRows({ reports, hosts, policy, now: NOW });
    expect(rows.map((r) => [r.host, r.wave, r.drift, r.certificateExpiry?.id ?? null, r.lastReport, r.stale])).toEqual([
      ['a', 1, 1, 'certificate/soon', '2026-12-07T11:30:00Z', false],
      ['b', 2, 0, null, '2026-12-07T11:59:00Z', false],
      ['c', 2, 0, null, '2026-12-07T08:00:00Z', true],
      ['d', null, 0, null, null, true],
    ]);
    expect(rows[1]!.held).toMatchObject({ commit: C, state: 'waiting' });
    expect(rows[3]!.result).toBe('never reported');
  });

  it('shows where a commit stands in the waves, and why the next host waits', () => {
    const reports = new Map([
      ['a', report('a')],
      ['b', report('b', { result: 'rolled-back' })],
    ]);
    const waves = rolloutProgress({ policy, hosts, reports, commit: C, now: NOW });
    expect(waves.map((w) => [w.name, w.applied, w.failed, w.pending])).toEqual([
      ['canary', ['a'], [], []],
      ['rest', [], ['b'], ['c']],
    ]);
    expect(waves[1]!.gate).toBe('may apply now'); // b and c are one batch: c waits for nothing
  });
});

describe('the README examples of a fleet', () => {
  const README = readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../README.md'), 'utf8');
  const yamlAfter = (heading: string) => {
    const at = README.indexOf(`\n### ${heading}\n`);
    return /```yaml\n([\s\S]*?)\n```/.exec(README.slice(at))![1]! + '\n';
  };

  it('the Rollout policy validates', async () => {
    const r = await parseRollout('.hostkit/rollout.yaml', Buffer.from(yamlAfter('Rollout waves')));
    expect(r.ok && r.policy.waves.map((w) => [w.name, w.batchPercent, w.bakeMs])).toEqual([
      ['canary', undefined, 600_000],
      ['prod', 25, 300_000],
    ]);
  });

  it('the notifications block is a valid agent.yaml section', async () => {
    const yaml = `repository: { url: /srv/config.git }\nhost: web-1\n${yamlAfter('Notifications')}`;
    const r = await parseAgentConfig('agent.yaml', Buffer.from(yaml));
    expect(r.ok ? r.config.notifications?.channels.map((c) => c.type) : r.diagnostics).toEqual(['webhook', 'slack', 'email']);
  });
});
