// Pebble (Debian's, 2.4.0) inside the test host as the CA: its HTTPS listener
// gets a certificate from a CA made here with openssl, which the agent trusts
// through spec.acme.caCertificate; HTTP-01 is validated on port 80, through
// nginx, for names /etc/hosts points at 127.0.0.1.
import type { TestHost } from './harness.js';
import { eventually, HOST_NAME } from './reconcile.js';

export const PEBBLE_DIR = '/etc/pebble-test';

/** The names acme.test.ts and agent-drift.test.ts order certificates for. */
export const ACME_TEST_NAMES = ['app.hk.test', 'www.app.hk.test', 'new.app.hk.test'];

function setup(names: readonly string[]): string {
  return `set -e
mkdir -p ${PEBBLE_DIR} && cd ${PEBBLE_DIR}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem -days 30 -subj /CN=pebble-listener-ca 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout key.pem -out leaf.csr -subj /CN=localhost 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > leaf.ext
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cert.pem -days 30 -extfile leaf.ext 2>/dev/null
cat > config.json <<'EOF'
{"pebble": {"listenAddress": "127.0.0.1:14000", "managementListenAddress": "127.0.0.1:15000",
 "certificate": "${PEBBLE_DIR}/cert.pem", "privateKey": "${PEBBLE_DIR}/key.pem",
 "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "", "externalAccountBindingRequired": false}}
EOF
echo '127.0.0.1 ${names.join(' ')}' >> /etc/hosts
systemd-run --unit=pebble -E PEBBLE_VA_NOSLEEP=1 -E PEBBLE_WFE_NONCEREJECT=0 /usr/bin/pebble -config ${PEBBLE_DIR}/config.json
`;
}

/** The Host manifest of the test host, with pebble as its ACME directory. */
export const ACME_HOST = `apiVersion: hostkit.dev/v1
kind: Host
metadata:
  name: ${HOST_NAME}
spec:
  stateDirectory: /var/lib/hostkit
  acme:
    email: ops@hk.test
    directory: https://127.0.0.1:14000/dir
    caCertificate: ${PEBBLE_DIR}/ca.pem
`;

/** Start pebble in the host, `names` resolving to 127.0.0.1 there (for HTTP-01), and wait until its directory answers. */
export async function startPebble(m: TestHost, names: readonly string[] = ACME_TEST_NAMES): Promise<void> {
  await m.exec('sh', ['-c', setup(names)]);
  const up = await eventually(
    async () => (await m.host.exec('curl', ['-s', '--cacert', `${PEBBLE_DIR}/ca.pem`, 'https://127.0.0.1:14000/dir'])).exitCode === 0,
    30_000,
  );
  if (!up) throw new Error(`pebble did not start: ${(await m.host.exec('journalctl', ['-u', 'pebble', '--no-pager'])).stdout}`);
}

/** The lines of pebble's log that contain `pattern` (an endpoint such as /order-plz, or 'Issued certificate serial'). */
export async function pebbleLines(m: TestHost, pattern: string): Promise<string[]> {
  const log = await m.host.exec('journalctl', ['-u', 'pebble', '--no-pager', '-o', 'cat']);
  return log.stdout.split('\n').filter((l) => l.includes(pattern));
}

export async function pebbleCount(m: TestHost, pattern: string): Promise<number> {
  return (await pebbleLines(m, pattern)).length;
}

// What nginx serves for a name, verified against pebble's root with openssl s_client inside the host.
export async function served(m: TestHost, name: string): Promise<{ verify: string; subject: string; san: string; serial: string }> {
  await m.exec('sh', [
    '-c',
    `curl -sk https://127.0.0.1:15000/roots/0 > /tmp/pebble-root.pem && curl -sk https://127.0.0.1:15000/intermediates/0 > /tmp/pebble-int.pem`,
  ]);
  const r = await m.host.exec('sh', [
    '-c',
    `openssl s_client -connect 127.0.0.1:443 -servername ${name} -CAfile /tmp/pebble-root.pem -verify_return_error </dev/null 2>/dev/null > /tmp/sc.txt; ` +
      `grep 'Verify return code' /tmp/sc.txt; openssl x509 -noout -serial -ext subjectAltName -subject < /tmp/sc.txt`,
  ]);
  const out = r.stdout;
  return {
    verify: /Verify return code: (.*)/.exec(out)?.[1] ?? '',
    subject: /subject=(.*)/.exec(out)?.[1] ?? '',
    san: /DNS:[^\n]*/.exec(out)?.[0] ?? '',
    serial: /serial=([0-9A-F]+)/.exec(out)?.[1] ?? '',
  };
}
