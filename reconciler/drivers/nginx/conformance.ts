import { many, type ConformanceFixture } from '../../../test/support/conformance.js';
import { fakeNginx } from '../../../test/support/fake-nginx.js';
import type { Host } from '../../hosts/types.js';
import { CHALLENGE_DIR, siteFile } from './paths.js';

// Plain HTTP sites proxying to a port (no certificate), on a host where HostKit served a site before
// (its challenge webroot exists: a restore puts back files, not the directories an apply made).
const domain = (set: string, i: number) => `ck-${set}-s${i}.test`;

async function challengeWebroot(host: Host): Promise<void> {
  const parts = CHALLENGE_DIR.split('/').filter(Boolean);
  for (let i = 1; i <= parts.length; i++) await host.mkdir(`/${parts.slice(0, i).join('/')}`, { uid: 0, gid: 0, mode: 0o755 });
}

export const fixtures: ConformanceFixture[] = [
  {
    kind: 'site',
    prepare: challengeWebroot,
    declare: (set, count, changed) =>
      many(count, changed, (i, change) => ({
        kind: 'Site',
        name: `ck-${set}-s${i}`,
        spec: { domains: [domain(set, i)], upstreamPort: change ? 9100 + i : 9000 + i, tls: 'none' },
      })),
    paths: ({ set, count }) => Array.from({ length: count }, (_, i) => siteFile(domain(set, i + 1))),
    fake: (host) => fakeNginx(host),
  },
];
