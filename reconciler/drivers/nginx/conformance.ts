import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { many, type ConformanceFixture } from '../../../test/support/conformance.js';
import type { FakeHost } from '../../hosts/fake.js';
import { LocalHost } from '../../hosts/local.js';
import type { Host } from '../../hosts/types.js';
import { CHALLENGE_DIR, GENERATION_HEADER, NGINX_SITE_DIR, SITE_PREFIX, siteFile } from './paths.js';

// Plain HTTP sites proxying to a port (no certificate), on a host where HostKit served a site before
// (its challenge webroot exists: a restore puts back files, not the directories an apply made).
const domain = (set: string, i: number) => `ck-${set}-s${i}.test`;

async function challengeWebroot(host: Host): Promise<void> {
  const parts = CHALLENGE_DIR.split('/').filter(Boolean);
  for (let i = 1; i <= parts.length; i++) await host.mkdir(`/${parts.slice(0, i).join('/')}`, { uid: 0, gid: 0, mode: 0o755 });
}

/**
 * nginx on the fake host: `nginx -t` passes, a reload takes HostKit's site files as
 * they are then, and port 80 answers (a local HTTP server) with the generation
 * header of the site the Host header names, as loaded at the last reload.
 */
function fakeNginx(host: FakeHost): { close: () => Promise<void> } {
  host.seedDir(NGINX_SITE_DIR);
  const live = new Map<string, string>();
  host.onExec((call, h) => {
    if (call.file !== 'systemctl' || call.args[0] !== 'reload-or-restart') return undefined;
    live.clear();
    for (const file of h.paths().filter((p) => path.posix.dirname(p) === NGINX_SITE_DIR && path.posix.basename(p).startsWith(SITE_PREFIX))) {
      const text = h.text(file) ?? '';
      const generation = new RegExp(`add_header ${GENERATION_HEADER} "([^"]+)"`).exec(text)?.[1];
      for (const names of text.matchAll(/^\s*server_name ([^;]+);$/gm)) for (const name of names[1]!.split(' ')) if (generation) live.set(name, generation);
    }
    return { exitCode: 0, stdout: '', stderr: '' };
  });
  let server: Promise<{ server: Server; port: number }> | undefined;
  const listening = () =>
    (server ??= new Promise((resolve) => {
      const s = createServer((request, response) => {
        const generation = live.get((request.headers.host ?? '').split(':')[0]!);
        response.writeHead(404, generation ? { [GENERATION_HEADER]: generation } : {}).end();
      });
      s.listen(0, '127.0.0.1', () => resolve({ server: s, port: (s.address() as AddressInfo).port }));
    }));
  host.onConnect((port) => (port === 80 ? listening().then(({ port: local }) => new LocalHost().connect(local)) : undefined));
  return {
    close: async () => {
      if (server) (await server).server.close();
    },
  };
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
