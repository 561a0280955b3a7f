import type { Amount, RolloutPolicy, Wave } from './policy.js';

/** A host as the Host manifests at the commit describe it. */
export interface FleetHost {
  name: string;
  labels: Record<string, string>;
}

/** Where one host stands in the rollout order. */
export interface Slot {
  wave: Wave;
  /** 1-based batch within the wave. */
  batch: number;
  /** 1-based position of the batch among every wave's batches: a step waits for all lower steps. */
  step: number;
}

export interface Assignment {
  /** Hosts some wave chose; a host absent here deploys at once. */
  slots: Map<string, Slot>;
  /** Each wave's hosts, sorted by name (the batch order). */
  members: Map<number, string[]>;
}

function chooses(wave: Wave, host: FleetHost): boolean {
  if (wave.hosts.includes(host.name)) return true;
  const match = wave.matchLabels;
  return match !== undefined && Object.entries(match).every(([k, v]) => host.labels[k] === v);
}

/**
 * Each host's wave and batch: a host belongs to the first wave that chooses it
 * (by name or label selector); within a wave hosts are taken in name order, so
 * every agent computes the same batches from the same commit.
 */
export function assignWaves(policy: RolloutPolicy, hosts: readonly FleetHost[]): Assignment {
  const slots = new Map<string, Slot>();
  const members = new Map<number, string[]>();
  const sorted = [...hosts].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  let step = 0;
  for (const wave of policy.waves) {
    const mine = sorted.filter((h) => !slots.has(h.name) && chooses(wave, h)).map((h) => h.name);
    members.set(wave.number, mine);
    const size = wave.batchPercent === undefined ? Math.max(mine.length, 1) : Math.max(1, Math.ceil((mine.length * wave.batchPercent) / 100));
    mine.forEach((name, i) => slots.set(name, { wave, batch: Math.floor(i / size) + 1, step: step + Math.floor(i / size) + 1 }));
    step += Math.ceil(mine.length / size);
  }
  return { slots, members };
}

/** How many failed hosts a wave of `size` hosts tolerates (a share is rounded down). */
export function allowedFailures(amount: Amount, size: number): number {
  return 'count' in amount ? amount.count : Math.floor((size * amount.percent) / 100);
}
