// `npm run package [-- --arch arm64] [--node PATH] [--out DIR]`: HostKit as one
// release (README: Install on a host), built from this checkout's dist/ and node_modules/.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildRelease } from './package/build.js';
import { ARCHES, type Arch } from './package/layout.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      arch: { type: 'string', default: process.arch },
      node: { type: 'string' },
      out: { type: 'string', default: path.join(ROOT, 'dist-package') },
      maintainer: { type: 'string' },
    },
  });
  if (!(ARCHES as readonly string[]).includes(values.arch)) {
    process.stderr.write(`package: expected --arch ${ARCHES.join(' or ')}, got ${JSON.stringify(values.arch)}\n`);
    return 1;
  }
  const result = await buildRelease({
    root: ROOT,
    out: path.resolve(values.out),
    arch: values.arch as Arch,
    ...(values.node ? { node: path.resolve(values.node) } : {}),
    ...(values.maintainer ? { maintainer: values.maintainer } : {}),
  });
  const rel = (file: string) => path.relative(process.cwd(), file);
  for (const a of [result.tarball!, result.deb]) process.stdout.write(`built ${rel(a.file)}  ${mb(a.bytes)}\n`);
  process.stdout.write(
    `  hostkit ${result.version} for linux-${result.arch}: Node.js ${result.node.version} from ${result.node.origin}, ` +
      `${result.packages} production packages, ${mb(result.installedSizeKiB * 1024)} installed, in ${(result.ms / 1000).toFixed(1)} s\n`,
  );
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`package: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
