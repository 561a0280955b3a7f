// Self-signed certificates, made by openssl on the host (the key never leaves
// it except through the atomic write that installs it): the final certificate
// for `issuer: self-signed`, and the placeholder an ACME site starts on.
import { randomBytes } from 'node:crypto';
import { HostKitError } from '../../core/errors.js';
import { describeExec, type Host } from '../../hosts/types.js';
import { PLACEHOLDER_ORG } from './x509.js';

// The files openssl writes for one call (tag: 6 random bytes in hex).
const TEMPORARY = /^\.new-[0-9a-f]{12}\.(key|crt)$/;

export interface KeyPair {
  certificate: Buffer;
  key: Buffer;
}

/**
 * Generate in `dir` (root-only), read back, remove the temporary files. Names are validated DNS names.
 * If this is killed between openssl and the removal, the next call removes what it left.
 */
export async function selfSigned(host: Host, dir: string, domains: readonly string[], kind: 'placeholder' | 'self-signed'): Promise<KeyPair> {
  for (const name of (await host.readdir(dir)) ?? []) if (TEMPORARY.test(name)) await host.remove(`${dir}/${name}`);
  const tag = randomBytes(6).toString('hex');
  const keyFile = `${dir}/.new-${tag}.key`;
  const certFile = `${dir}/.new-${tag}.crt`;
  const args = selfSignedArgs(keyFile, certFile, domains, kind);
  try {
    const result = await host.exec('openssl', args);
    if (result.exitCode !== 0) throw new HostKitError('SELF_SIGNED_FAILED', describeExec('openssl', args, result), { data: { domains } });
    const [certificate, key] = await Promise.all([host.readFile(certFile), host.readFile(keyFile)]);
    if (!certificate || !key) throw new HostKitError('SELF_SIGNED_FAILED', `openssl did not write ${certFile} and ${keyFile}`);
    return { certificate, key };
  } finally {
    await host.remove(keyFile).catch(() => undefined);
    await host.remove(certFile).catch(() => undefined);
  }
}

/** The openssl command line: an EC P-256 key and a certificate naming every domain. */
export function selfSignedArgs(keyFile: string, certFile: string, domains: readonly string[], kind: 'placeholder' | 'self-signed'): string[] {
  const subject = kind === 'placeholder' ? `/O=${PLACEHOLDER_ORG}/CN=${domains[0]}` : `/O=HostKit self-signed/CN=${domains[0]}`;
  return [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    kind === 'placeholder' ? '30' : '365',
    '-subj',
    subject,
    '-addext',
    `subjectAltName=${domains.map((d) => `DNS:${d}`).join(',')}`,
  ];
}
