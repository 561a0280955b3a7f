// The aptsource folder's part of expanding a host: one resource per Host `spec.aptSources` entry.
import type { HostPart } from '../manifest-types.js';
import type { AptSourceEntry, AptSourceSpec } from './spec.js';

export const SOURCES_DIR = '/etc/apt/sources.list.d';
export const KEYRINGS_DIR = '/etc/apt/keyrings';

export function aptSourceSpec(entry: AptSourceEntry): AptSourceSpec {
  return {
    path: `${SOURCES_DIR}/hostkit-${entry.name}.sources`,
    keyPath: `${KEYRINGS_DIR}/hostkit-${entry.name}.asc`,
    uris: entry.uris,
    suites: entry.suites,
    ...(entry.components ? { components: entry.components } : {}),
    ...(entry.architectures ? { architectures: entry.architectures } : {}),
    signedBy: entry.signedBy,
  };
}

export const hostAptSources: HostPart = {
  name: 'apt sources',
  expand(x) {
    (x.host.spec.aptSources ?? []).forEach((s, i) => x.add<AptSourceSpec>('aptsource', s.name, aptSourceSpec(s), x.host.at(`/spec/aptSources/${i}`)));
  },
};
