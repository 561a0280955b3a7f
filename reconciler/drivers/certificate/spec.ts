// What manifests expand into for this kind, defaults applied (a plan compares it with the host): a TLS certificate.

export interface CertificateSpec {
  name: string;
  domains: string[];
  issuer: 'acme' | 'self-signed';
}
