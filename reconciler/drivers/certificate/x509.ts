// What a certificate on disk says about itself, parsed with node:crypto: the
// names it covers, its lifetime, its serial, who issued it, whether the key
// next to it belongs to it.
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';

/** The subject organisation of the self-signed certificate a site starts on until its real one is issued. */
export const PLACEHOLDER_ORG = 'HostKit placeholder';

export interface CertificateInfo {
  names: string[];
  notBefore: number;
  notAfter: number;
  /** Upper-case hex without leading zeros: the form PeerCertificate.serialNumber compares with. */
  serial: string;
  issuer: string;
  selfSigned: boolean;
  placeholder: boolean;
  keyMatches: boolean;
}

export function normalizeSerial(serial: string): string {
  return serial.toUpperCase().replace(/^0+(?=.)/, '');
}

/** The first certificate of a PEM file: the leaf of a chain. */
export function firstPem(text: string): string | undefined {
  return /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(text)?.[0];
}

/** Parse the leaf of a PEM chain and check the key against it; a string says why it could not. */
export function inspectCertificate(chain: Buffer, key: Buffer | undefined): CertificateInfo | string {
  const pem = firstPem(chain.toString('utf8'));
  if (!pem) return 'no PEM certificate in the file';
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (cause) {
    return `not a certificate: ${(cause as Error).message}`;
  }
  let keyMatches = false;
  if (key) {
    try {
      keyMatches = cert.checkPrivateKey(createPrivateKey(key));
    } catch {
      keyMatches = false;
    }
  }
  const names = (cert.subjectAltName ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4).toLowerCase());
  return {
    names,
    notBefore: Date.parse(cert.validFrom),
    notAfter: Date.parse(cert.validTo),
    serial: normalizeSerial(cert.serialNumber),
    issuer: cert.issuer.replace(/\n/g, ', '),
    selfSigned: cert.issuer === cert.subject,
    placeholder: cert.subject.split('\n').includes(`O=${PLACEHOLDER_ORG}`),
    keyMatches,
  };
}

/**
 * When a certificate is due for renewal: once `1 - renewBefore` of its lifetime
 * has passed (two thirds by default), moved earlier by up to 3 % of the
 * lifetime. The jitter comes from the serial, so it is the same on every run
 * (plans stay stable) but differs between certificates (renewals spread out).
 */
export function renewalTime(info: Pick<CertificateInfo, 'notBefore' | 'notAfter' | 'serial'>, renewBefore: number): number {
  const lifetime = info.notAfter - info.notBefore;
  const jitter = createHash('sha256').update(info.serial).digest().readUInt32BE(0) / 0xffffffff;
  return info.notBefore + lifetime * (1 - renewBefore) - lifetime * 0.03 * jitter;
}
