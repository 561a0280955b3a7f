import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { FakeHost } from '../../reconciler/hosts/fake.js';
import { LocalHost } from '../../reconciler/hosts/local.js';
import { GENERATION_HEADER, NGINX_SITE_DIR, SITE_PREFIX } from '../../reconciler/drivers/nginx/paths.js';

/**
 * nginx on the fake host: `nginx -t` passes, a reload takes HostKit's site files as
 * they are then, and port 80 answers (a local HTTP server) with the generation
 * header of the site the Host header names, as loaded at the last reload.
 */
export function fakeNginx(host: FakeHost): { close: () => Promise<void> } {
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
