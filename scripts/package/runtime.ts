// The Node binary a release ships: the one the `node` devDependency installed
// (this machine's architecture), or for another architecture the official
// build npm publishes as node-linux-ARCH at the same version.
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Arch } from './layout.js';

const run = promisify(execFile);

// ELF e_machine of each architecture: a binary of the wrong one is refused before it is packed.
const ELF_MACHINE: Record<Arch, number> = { x64: 62, arm64: 183 };

export interface NodeRuntime {
  /** Path of the node binary. */
  path: string;
  version: string;
  /** Where it came from, for the build's summary. */
  origin: string;
}

export interface FindNodeOptions {
  /** The checkout whose node_modules/node pins the version. */
  root: string;
  arch: Arch;
  /** A node binary given by hand (--node); its version is read from the pinned package. */
  binary?: string;
  /** A scratch directory for another architecture's package. */
  scratch: string;
  /** npm's environment (its cache and registry); defaults to this process's. */
  env?: NodeJS.ProcessEnv;
}

/** The runtime for `arch`, checked to be an ELF binary of that architecture. Throws saying how to get one when it cannot. */
export async function findNode(o: FindNodeOptions): Promise<NodeRuntime> {
  const pinned = path.join(o.root, 'node_modules/node');
  const version = await readVersion(pinned);
  let runtime: NodeRuntime;
  if (o.binary) {
    runtime = { path: o.binary, version, origin: o.binary };
  } else if (o.arch === process.arch) {
    runtime = { path: path.join(pinned, 'bin/node'), version, origin: 'node_modules/node (the node devDependency)' };
  } else {
    runtime = await fromNpm(o.arch, version, o.scratch, o.env ?? process.env);
  }
  await checkElf(runtime.path, o.arch);
  return runtime;
}

async function readVersion(dir: string): Promise<string> {
  try {
    return (JSON.parse(await fs.readFile(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version;
  } catch (error) {
    throw new Error(`The node devDependency is not installed (${dir}/package.json: ${(error as Error).message}): run npm ci first`, { cause: error });
  }
}

// npm pack takes the package from npm's cache when it is there (--prefer-offline), else from the registry.
async function fromNpm(arch: Arch, version: string, scratch: string, env: NodeJS.ProcessEnv): Promise<NodeRuntime> {
  const spec = `node-linux-${arch}@${version}`;
  await fs.mkdir(scratch, { recursive: true });
  let file: string;
  try {
    const packed = await run('npm', ['pack', spec, '--prefer-offline', '--loglevel=error', '--pack-destination', scratch], { maxBuffer: 1 << 20, env });
    file = path.join(scratch, packed.stdout.trim().split('\n').pop()!);
  } catch (error) {
    const stderr = String((error as { stderr?: string }).stderr ?? (error as Error).message);
    const why = stderr
      .split('\n')
      .map((line) => line.replace(/^npm error /, '').trim())
      .filter((line) => line && !line.startsWith('A complete log'))
      .join('; ');
    throw new Error(
      `No Node.js ${version} binary for linux-${arch}: \`npm pack ${spec}\` failed (neither npm's cache nor the registry gave it): ${why}\n` +
        `Build on a machine that can reach the npm registry once, or pass --node PATH: a linux-${arch} node ${version} binary (from nodejs.org's node-v${version}-linux-${arch}.tar.xz).`,
      { cause: error },
    );
  }
  await run('tar', ['-xzf', file, '-C', scratch, 'package/bin/node']);
  return { path: path.join(scratch, 'package/bin/node'), version, origin: `npm ${spec}` };
}

async function checkElf(file: string, arch: Arch): Promise<void> {
  const handle = await fs.open(file, 'r').catch((error: Error) => {
    throw new Error(`The node binary ${file} cannot be read: ${error.message}`);
  });
  try {
    const head = Buffer.alloc(20);
    await handle.read(head, 0, 20, 0);
    const isElf = head.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
    if (!isElf || head.readUInt16LE(18) !== ELF_MACHINE[arch]) {
      throw new Error(`Expected a linux-${arch} node binary at ${file}, got ${isElf ? `an ELF binary for machine ${head.readUInt16LE(18)}` : 'no ELF binary'}`);
    }
  } finally {
    await handle.close();
  }
}
