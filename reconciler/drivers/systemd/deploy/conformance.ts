import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { idsOf, many, type ConformanceFixture } from '../../../../test/support/conformance.js';
import { fakeNginx } from '../../../../test/support/fake-nginx.js';
import { fakeSystemd } from '../../../../test/support/fake-systemd.js';
import { LocalHost } from '../../../hosts/local.js';
import { UNIT_DIR } from '../render.js';
import { instanceUnit, upstreamFile } from './layout.js';

// Blue-green projects whose service is Python's http.server on $PORT (on the fake host a local
// HTTP server answers the instances' ports), the changed one with a new environment value. Each
// set of names has ports of its own: the real host keeps what earlier targets applied, running.
const project = (set: string, i: number) => `ck-${set}-d${i}`;
const PORT = 9300;
const setPorts = (set: string) => PORT + 50 * [...set].reduce((n, c) => n * 26 + (c.charCodeAt(0) - 96), 0);

export const deployFixture: ConformanceFixture = {
  kind: 'deploy',
  declare: (set, count, changed) =>
    many(count, changed, (i, change) => ({
      kind: 'Project',
      name: project(set, i),
      spec: {
        runtime: 'binary',
        service: {
          command: ['/bin/sh', '-c', 'exec /usr/bin/python3 -m http.server "$PORT" --bind 127.0.0.1'],
          port: setPorts(set) + 2 * i,
          environment: { CK_VERSION: change ? '2' : '1' },
        },
        deploy: { strategy: 'blue-green', drain: '1ms' },
        domains: [{ name: `${project(set, i)}.test`, tls: 'none' }],
        health: { http: { path: '/' }, retries: 0, timeout: '1s' },
      },
    })),
  rollback: {
    create: {
      reason: "README (account): a rollback keeps the accounts a run created; the project's instances, unit files and upstream go",
      resources: ({ set, count }) => idsOf('account', count, (i) => project(set, i)),
      paths: () => [],
      asApplied: true,
    },
  },
  paths: ({ set, count }) =>
    Array.from({ length: count }, (_, i) => project(set, i + 1)).flatMap((p) => [
      upstreamFile(p),
      ...(['blue', 'green'] as const).flatMap((c) => [`${UNIT_DIR}/${instanceUnit(p, c)}`, `${UNIT_DIR}/multi-user.target.wants/${instanceUnit(p, c)}`]),
    ]),
  fake: (host) => {
    fakeSystemd(host);
    const nginx = fakeNginx(host);
    let server: Promise<{ server: Server; port: number }> | undefined;
    const listening = () =>
      (server ??= new Promise((resolve) => {
        const s = createServer((_request, response) => response.writeHead(200).end('ok'));
        s.listen(0, '127.0.0.1', () => resolve({ server: s, port: (s.address() as AddressInfo).port }));
      }));
    host.onConnect((port) => (port >= PORT && port < 60_000 ? listening().then(({ port: local }) => new LocalHost().connect(local)) : undefined));
    return {
      close: async () => {
        await nginx.close();
        if (server) (await server).server.close();
      },
    };
  },
};
