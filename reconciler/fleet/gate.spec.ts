import { describe, expect, it } from 'vitest';
import { gate, type ReportedStatus, type RolloutDecision } from './gate.js';
import type { RolloutPolicy, Wave } from './policy.js';
import type { FleetHost } from './waves.js';

const C = 'c'.repeat(40);
const OLD = 'a'.repeat(40);
const NOW = Date.parse('2026-12-07T12:00:00Z');
const ago = (minutes: number) => new Date(NOW - minutes * 60_000).toISOString();

const wave = (w: Partial<Wave> & { number: number }): Wave => ({ name: `w${w.number}`, hosts: [], maxFailures: { count: 0 }, bakeMs: 0, ...w });
const policy: RolloutPolicy = {
  name: 'default',
  waves: [
    wave({ number: 1, name: 'canary', hosts: ['canary'], bakeMs: 10 * 60_000 }),
    wave({ number: 2, name: 'prod', matchLabels: { env: 'prod' }, batchPercent: 50, maxFailures: { count: 1 } }),
  ],
};
const hosts: FleetHost[] = [
  { name: 'canary', labels: {} },
  { name: 'p-1', labels: { env: 'prod' } },
  { name: 'p-2', labels: { env: 'prod' } },
  { name: 'p-3', labels: { env: 'prod' } },
  { name: 'p-4', labels: { env: 'prod' } },
  { name: 'lab', labels: { env: 'lab' } },
];

const ok = (minutes: number, commit = C): ReportedStatus => ({ commit, result: 'applied', finishedAt: ago(minutes) });
const bad = (commit = C): ReportedStatus => ({ commit, result: 'rolled-back', finishedAt: ago(1) });

function ask(host: string, reports: Record<string, ReportedStatus>, decision?: RolloutDecision) {
  return gate({ policy, hosts, host, commit: C, reports: new Map(Object.entries(reports)), now: NOW, ...(decision ? { decision } : {}) });
}

describe('reconciler/fleet/gate', () => {
  it.each([
    ['the canary goes first', 'canary', {}, { go: true, wave: 1 }],
    ['a host outside every wave goes at once', 'lab', {}, { go: true }],
    ['batch 1 waits for the canary to report the commit', 'p-1', { canary: ok(60, OLD) }, { go: false, state: 'waiting', wave: 1 }],
    ['batch 1 waits for the canary to bake', 'p-1', { canary: ok(5) }, { go: false, state: 'waiting', wave: 1, retryAt: NOW + 5 * 60_000 }],
    ['batch 1 goes once the canary baked', 'p-1', { canary: ok(11) }, { go: true, wave: 2, batch: 1 }],
    ['a failed canary halts every later wave', 'p-3', { canary: bad() }, { go: false, state: 'halted', wave: 1 }],
    ['a failing health check counts as failed', 'p-1', { canary: { ...ok(20), health: [{ ok: false }] } }, { go: false, state: 'halted', wave: 1 }],
    ['an older failure does not count', 'p-1', { canary: ok(11) }, { go: true }],
    ['batch 2 waits for batch 1', 'p-3', { canary: ok(11), 'p-1': ok(1) }, { go: false, state: 'waiting', wave: 2 }],
    ['one failure in the batch is tolerated (maxFailures 1)', 'p-3', { canary: ok(11), 'p-1': bad(), 'p-2': ok(1) }, { go: true, wave: 2, batch: 2 }],
    ['two failures halt the wave', 'p-3', { canary: ok(11), 'p-1': bad(), 'p-2': bad() }, { go: false, state: 'halted', wave: 2 }],
  ] as const)('%s', (_title, host, reports, expected) => {
    expect(ask(host, reports as Record<string, ReportedStatus>)).toMatchObject(expected);
  });

  it('names the hosts whose reports cannot change a wait: all but those of the earlier steps', () => {
    const r = ask('p-3', { canary: ok(11), 'p-1': ok(1) });
    expect(!r.go && r.unaffectedBy?.slice().sort()).toEqual(['lab', 'p-3', 'p-4']);
    const paused = ask('p-3', {}, { action: 'pause', at: ago(1) });
    expect(!paused.go && paused.unaffectedBy).toBeUndefined(); // the operator decides: every report branch push counts
  });

  it('names the wave a halted host is held at', () => {
    const r = ask('p-4', { canary: bad() });
    expect(!r.go && r.reason).toMatch(/^held by rollout at wave 1 \(canary\): 1 host\(s\) failed \(canary\), 0 allowed$/);
  });

  it('holds every host of the waves while paused, and the aborted commit only', () => {
    expect(ask('canary', {}, { action: 'pause', at: ago(1) })).toMatchObject({ go: false, state: 'paused' });
    expect(ask('canary', {}, { action: 'resume', at: ago(1) })).toMatchObject({ go: true });
    expect(ask('canary', {}, { action: 'abort', commit: C, at: ago(1) })).toMatchObject({ go: false, state: 'aborted' });
    expect(ask('canary', {}, { action: 'abort', commit: OLD, at: ago(1) })).toMatchObject({ go: true });
  });
});
