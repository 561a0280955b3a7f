import path from 'node:path';
import { error, warning, type Diagnostic } from '../../core/diagnostics.js';
import { errorMessage, HostKitError } from '../../core/errors.js';
import type { CertificateSpec } from '../../core/specs.js';
import { changeBase, findOp, hasOp, refusedChange, type Change, type FieldChange } from '../../diff/model.js';
import { hostHttpRequest } from '../../hosts/http.js';
import type { Host } from '../../hosts/types.js';
import { certificatePaths, DOMAIN, TLS_DIR } from '../shared/web.js';
import type { Applied, Driver, DriverContext, WithManifests } from '../types.js';
import { issueCertificate, LETSENCRYPT_DIRECTORY, newAccountKey } from './acme.js';
import { selfSigned } from './selfsigned.js';
import { accountKeyPath, activeBackoff, backoffMs, ensureStateDir, readFailures, writeFailures, type Failure } from './state.js';
import { inspectCertificate, normalizeSerial, renewalTime, type CertificateInfo } from './x509.js';
import type { certificatePrimitive } from './manifest.js';
import { certificateDefinition } from './definition.js';
import { certificateRestore } from './restore.js';

const KEY_MODE = 0o600;
// The directory's name: a site's first domain, or a Certificate primitive's metadata.name ("api-cert", no dots).
const NAME = new RegExp(`${DOMAIN.source}|^[a-z](?:[a-z0-9-]{0,38}[a-z0-9])?$`);
const DIR_MODE = 0o700;
const DEFAULT_RENEW_BEFORE = 1 / 3;

export interface DesiredCertificate {
  name: string;
  domains: string[];
  issuer: 'acme' | 'self-signed';
  dir: string;
  certificate: string;
  key: string;
  /** When desire ran: plan compares lifetimes against it (plan itself reads no clock). */
  now: number;
  renewBefore: number;
  acme?: { directory: string; email: string; ca?: string };
  /** An earlier order for these names failed and the next one must wait. */
  backoff?: Failure;
  refused?: string;
}

export type ObservedCertificate = { exists: boolean; info?: CertificateInfo; problem?: string; keyMode?: number; dirMode?: number } | { unreadable: string };

export interface CertificateUndo {
  /** Certificate and key as they were before this run (both, or neither). */
  previous?: { certificate: Buffer; key: Buffer };
  createdDirs: string[];
  /** Files were replaced (by apply or, for ACME, by settle). */
  wrote: boolean;
  /** An ACME order is owed; settle places it once nginx serves the site's challenge location. */
  issue: boolean;
  /** Serial of the certificate now on disk, when this run wrote one: nginx must serve it. */
  serial?: string;
  /** The CA issued it in this run: rollback keeps it (issuing again would cost rate limit). */
  issued?: boolean;
}

/**
 * What apply and settle do to a certificate: write a self-signed pair (`issue` by
 * self-signed) or a placeholder while nothing usable is on disk, order one from ACME in
 * settle (`issue` by acme), set the key's and directory's modes, or remove it all.
 */
export type CertificateOp = { op: 'issue'; issuer: 'self-signed' | 'acme' } | { op: 'placeholder' } | { op: 'chmod' } | { op: 'remove' };

type CertChange = Change<DesiredCertificate, ObservedCertificate, CertificateSpec, CertificateOp>;

function describe(info: CertificateInfo): string {
  const kind = info.placeholder ? 'placeholder' : info.selfSigned ? 'self-signed' : `issued by ${info.issuer}`;
  return `${kind}, ${info.names.join(' ')}, valid until ${new Date(info.notAfter).toISOString()}`;
}

/** Why a new certificate is needed, or undefined when the one on disk is still right. */
export function issuanceReason(desired: DesiredCertificate, observed: ObservedCertificate | undefined): string | undefined {
  return issuance(desired, observed)?.reason;
}

/** As issuanceReason, and `owedBy: 'time'` when only the certificate's age calls for a new one (renewal due, expired). */
export function issuance(desired: DesiredCertificate, observed: ObservedCertificate | undefined): { reason: string; owedBy?: 'time' } | undefined {
  if (!observed || ('exists' in observed && !observed.exists)) return { reason: 'missing' };
  if ('unreadable' in observed) return undefined;
  if (observed.problem || !observed.info) return { reason: `unusable: ${observed.problem ?? 'unreadable'}` };
  const info = observed.info;
  if (!info.keyMatches) return { reason: 'the key does not belong to the certificate' };
  if ([...info.names].sort().join(' ') !== [...desired.domains].sort().join(' ')) return { reason: `names changed (${info.names.join(' ')})` };
  if (info.placeholder) return { reason: 'placeholder still in place' };
  if (desired.issuer === 'acme' && info.selfSigned) return { reason: 'self-signed, but ACME is wanted' };
  if (desired.issuer === 'self-signed' && !info.selfSigned) return { reason: 'CA-issued, but self-signed is wanted' };
  if (desired.now >= info.notAfter) return { reason: `expired on ${new Date(info.notAfter).toISOString()}`, owedBy: 'time' };
  const renewAt = renewalTime(info, desired.renewBefore);
  if (desired.now >= renewAt) return { reason: `renewal due since ${new Date(renewAt).toISOString()}`, owedBy: 'time' };
  return undefined;
}

async function readPair(host: Host, d: { certificate: string; key: string }): Promise<{ certificate: Buffer; key: Buffer } | undefined> {
  const [certificate, key] = await Promise.all([host.readFile(d.certificate), host.readFile(d.key)]);
  return certificate && key ? { certificate, key } : undefined;
}

// Key first, then certificate; both atomic. Nothing reloads nginx in between.
async function writePair(host: Host, d: { certificate: string; key: string }, pair: { certificate: Buffer | string; key: Buffer | string }): Promise<void> {
  await host.writeFile(d.key, pair.key, { uid: 0, gid: 0, mode: KEY_MODE });
  await host.writeFile(d.certificate, pair.certificate, { uid: 0, gid: 0, mode: 0o644 });
}

function serialOf(certificate: Buffer | string): string | undefined {
  const info = inspectCertificate(Buffer.from(certificate), undefined);
  return typeof info === 'string' ? undefined : info.serial;
}

/**
 * TLS certificates in /etc/hostkit/tls/NAME/ (0700; key 0600). A missing
 * certificate starts as a self-signed placeholder so nginx never fails on a
 * missing file. ACME orders are placed in settle, after nginx serves the
 * site's challenge location (HTTP-01 needs it live), then nginx is reloaded
 * once if a certificate changed and must serve the new serial.
 */
export const certificateDriver: Driver<CertificateSpec, DesiredCertificate, ObservedCertificate, CertificateUndo, 'certificate', void, CertificateOp> &
  WithManifests<typeof certificatePrimitive> = {
  ...certificateDefinition,

  async desire(resources, ctx) {
    const out = new Map<string, { desired: DesiredCertificate; diagnostics: Diagnostic[] }>();
    if (resources.length === 0) return out;
    const now = Date.now();
    const settings = ctx.hostManifest.spec?.acme;
    const failures = await readFailures(ctx.host, ctx.stateDirectory).catch(() => ({}));
    for (const r of resources) {
      const diagnostics: Diagnostic[] = [];
      const paths = certificatePaths(r.spec.name);
      const desired: DesiredCertificate = {
        name: r.spec.name,
        domains: r.spec.domains,
        issuer: r.spec.issuer,
        ...paths,
        now,
        renewBefore: settings?.renewBefore ?? DEFAULT_RENEW_BEFORE,
      };
      const bad = [...(NAME.test(r.spec.name) ? [] : [r.spec.name]), ...r.spec.domains.filter((d) => !DOMAIN.test(d))];
      if (bad.length > 0) {
        desired.refused = `not lower-case DNS names: ${bad.map((b) => JSON.stringify(b)).join(', ')}`;
        diagnostics.push(error('certificate not issued', `certificate ${JSON.stringify(r.spec.name)}: ${desired.refused}`, r.origin));
      }
      if (r.spec.issuer === 'acme') {
        if (!settings) {
          diagnostics.push(
            error(
              'acme not configured',
              `certificate ${r.spec.name} needs ACME, but host ${ctx.hostManifest.metadata.name} has no spec.acme (email, directory)`,
              r.origin,
            ),
          );
        } else {
          desired.acme = {
            directory: settings.directory ?? LETSENCRYPT_DIRECTORY,
            email: settings.email,
            ...(settings.caCertificate ? { ca: settings.caCertificate } : {}),
          };
          const backoff = activeBackoff(failures, r.spec.name, r.spec.domains, now);
          if (backoff) desired.backoff = backoff;
        }
      }
      out.set(r.id, { desired, diagnostics });
    }
    return out;
  },

  // Per certificate: a stat of its directory and key, a read of both files.
  // A dry run that may not read them (not root) says so instead of failing.
  async observe(resources, ctx) {
    const out = new Map<string, ObservedCertificate>();
    await Promise.all(
      resources.map(async (r) => {
        const paths = certificatePaths(r.spec.name);
        try {
          const [dir, keyStat, pair] = await Promise.all([ctx.host.stat(paths.dir), ctx.host.stat(paths.key), readPair(ctx.host, paths)]);
          if (!dir && !keyStat) return;
          const observed: ObservedCertificate = { exists: pair !== undefined, dirMode: dir?.mode, ...(keyStat ? { keyMode: keyStat.mode } : {}) };
          if (pair) {
            const info = inspectCertificate(pair.certificate, pair.key);
            if (typeof info === 'string') observed.problem = info;
            else observed.info = info;
          }
          out.set(r.id, observed);
        } catch (cause) {
          if (ctx.mode !== 'plan') throw cause;
          out.set(r.id, { unreadable: errorMessage(cause) });
        }
      }),
    );
    return out;
  },

  // Renewal is due or not by `now`: the planned change says which.
  stableDesired: ({ now: _now, ...desired }) => desired,

  plan({ resource, desired, observed, orphan }) {
    const base = changeBase(resource);
    if (observed && 'unreadable' in observed) {
      return {
        ...base,
        action: 'noop',
        fields: [],
        ops: [],
        disruptive: false,
        reason: 'the certificate could not be read',
        diagnostics: [warning('certificate not observed', `${certificatePaths(resource.spec.name).dir}: ${observed.unreadable}`, resource.origin)],
        observed,
      } as CertChange;
    }
    if (orphan || !desired) {
      if (!observed) return { ...base, action: 'noop', fields: [], ops: [], disruptive: false, reason: 'already removed' } as CertChange;
      return {
        ...base,
        action: 'delete',
        ops: [{ op: 'remove' }],
        fields: [{ field: '/certificate', before: observed.info ? describe(observed.info) : 'files' }],
        disruptive: false,
        reason: 'no manifest declares it any more',
        observed,
      } as CertChange;
    }
    if (desired.refused !== undefined) return refusedChange(base, { reason: 'not issued (see the error)' });
    const fields: FieldChange[] = [];
    const ops: CertificateOp[] = [];
    const diagnostics: Diagnostic[] = [];
    const info = observed?.info;
    const due = issuance(desired, observed);
    const reason = due?.reason;
    const usable = info !== undefined && info.keyMatches;
    let why = reason;
    if (reason) {
      const after = desired.issuer === 'acme' ? `issued by ACME (${new URL(desired.acme?.directory ?? LETSENCRYPT_DIRECTORY).host})` : 'self-signed';
      if (desired.backoff) {
        const until = new Date(desired.backoff.retryAfter).toISOString();
        diagnostics.push(
          warning(
            'acme backing off',
            `certificate ${desired.name}: ${desired.backoff.failures} failed order(s), last: ${desired.backoff.lastError}; next attempt after ${until}`,
            resource.origin,
          ),
        );
        // Only what nginx needs to start: a placeholder where nothing usable is on disk.
        if (!usable) {
          fields.push({ field: '/certificate', ...(info ? { before: describe(info) } : {}), after: `placeholder (ACME backing off until ${until})` });
          ops.push({ op: 'placeholder' });
        }
        why = `${reason}; ACME backing off until ${until}`;
      } else {
        fields.push({ field: '/certificate', ...(info ? { before: describe(info) } : {}), after });
        if (info && reason.startsWith('names changed')) fields.push({ field: '/domains', before: info.names, after: desired.domains });
        // ACME orders in settle; nginx must start whatever ACME does, so a placeholder first
        // where nothing usable is on disk (a usable certificate keeps serving meanwhile).
        if (desired.issuer === 'acme' && !usable) ops.push({ op: 'placeholder' });
        ops.push({ op: 'issue', issuer: desired.issuer });
      }
    }
    const keyMode = observed?.keyMode !== undefined && observed.keyMode !== KEY_MODE ? observed.keyMode : undefined;
    if (keyMode !== undefined) fields.push({ field: '/keyMode', before: `0${keyMode.toString(8)}`, after: '0600' });
    const dirMode = observed?.dirMode !== undefined && observed.dirMode !== DIR_MODE ? observed.dirMode : undefined;
    if (dirMode !== undefined) fields.push({ field: '/dirMode', before: `0${dirMode.toString(8)}`, after: '0700' });
    if (keyMode !== undefined || dirMode !== undefined) ops.push({ op: 'chmod' });
    const action = !observed?.exists ? 'create' : fields.length > 0 ? 'update' : 'noop';
    const renews = ops.some((o) => o.op === 'issue' || o.op === 'placeholder');
    return {
      ...base,
      action,
      fields,
      ops,
      disruptive: renews,
      ...(why ? { reason: why } : {}),
      // A renewal is owed whatever the manifests say: the agent places it even under `drift.policy: report`.
      ...(renews && due?.owedBy ? { owedBy: due.owedBy } : {}),
      diagnostics,
      desired,
      ...(observed ? { observed } : {}),
    } as CertChange;
  },

  // Writes the self-signed certificate, or for ACME a placeholder when nothing
  // usable is on disk; the order itself waits for settle. If this throws, the
  // previous pair is put back before the error propagates.
  async apply(change, ctx) {
    const paths = certificatePaths(change.resource!.spec.name);
    const undo: CertificateUndo = { createdDirs: [], wrote: false, issue: false };
    const previous = await readPair(ctx.host, paths);
    if (previous) undo.previous = previous;
    try {
      if (hasOp(change, 'remove') || hasOp(change, 'issue') || hasOp(change, 'placeholder')) await ctx.run.nginx.changing();
      if (hasOp(change, 'remove')) {
        await ctx.host.remove(paths.certificate);
        await ctx.host.remove(paths.key);
        await ctx.host.remove(paths.dir);
        undo.wrote = true;
        return undo;
      }
      const desired = change.desired!;
      // /etc/hostkit exists only on hosts with services; a static-only host may lack it.
      for (const [dir, mode] of [
        [path.posix.dirname(TLS_DIR), 0o755],
        [TLS_DIR, DIR_MODE],
        [paths.dir, DIR_MODE],
      ] as const) {
        if (!(await ctx.host.stat(dir))) {
          await ctx.host.mkdir(dir, { uid: 0, gid: 0, mode });
          undo.createdDirs.push(dir);
        }
      }
      const issue = findOp(change, 'issue');
      // A placeholder until the ACME order succeeds (plan found nothing usable on disk).
      const placeholder = hasOp(change, 'placeholder') || (issue?.issuer === 'acme' && previous === undefined);
      if (issue?.issuer === 'self-signed' || placeholder) {
        const pair = await selfSigned(ctx.host, paths.dir, desired.domains, issue?.issuer === 'self-signed' ? 'self-signed' : 'placeholder');
        await writePair(ctx.host, paths, pair);
        undo.wrote = true;
        undo.serial = serialOf(pair.certificate);
      }
      undo.issue = issue?.issuer === 'acme';
      if (hasOp(change, 'chmod') || undo.wrote) {
        await ctx.host.setOwnership(paths.dir, { uid: 0, gid: 0, mode: DIR_MODE });
        if (await ctx.host.stat(paths.key)) await ctx.host.setOwnership(paths.key, { uid: 0, gid: 0, mode: KEY_MODE });
      }
      return undo;
    } catch (cause) {
      await putBack(change, undo, ctx).catch(() => undefined);
      throw cause;
    }
  },

  async settle(items, ctx) {
    if (items.length === 0) return;
    // Sites and placeholders go live first: the CA validates through them.
    await ctx.run.nginx.flush(items[0]!.change.id);
    for (const item of items) if (item.undo.issue) await order(item, ctx);
    // One more reload, only if a certificate changed since the last one.
    await ctx.run.nginx.flush(items[0]!.change.id);
    await checkServed(items, ctx);
  },

  async verify(change, ctx) {
    const paths = certificatePaths(change.resource!.spec.name);
    const pair = await readPair(ctx.host, paths);
    if (hasOp(change, 'remove')) return pair ? [error('certificate not removed', `${paths.dir} still holds a certificate`, change.origin)] : [];
    if (!pair) return [error('certificate missing', `${paths.certificate} or ${paths.key} is missing after apply`, change.origin)];
    const info = inspectCertificate(pair.certificate, pair.key);
    const problems: string[] = [];
    if (typeof info === 'string') problems.push(info);
    else {
      if (!info.keyMatches) problems.push('the key does not belong to the certificate');
      const want = [...change.desired!.domains].sort().join(' ');
      if ([...info.names].sort().join(' ') !== want) problems.push(`it names ${info.names.join(' ')}, not ${want}`);
    }
    const keyStat = await ctx.host.stat(paths.key);
    if (keyStat?.mode !== KEY_MODE) problems.push(`${paths.key} has mode 0${keyStat?.mode.toString(8) ?? '?'}`);
    return problems.length > 0 ? [error('certificate not as desired', `${paths.certificate}: ${problems.join('; ')}`, change.origin)] : [];
  },

  // The previous pair comes back from the run journal (restore.ts).
  restore: certificateRestore,
};

// What apply wrote so far, put back when it fails part-way (a certificate the CA issued is kept: ordering it again would burn rate limit).
async function putBack(change: Change<DesiredCertificate, ObservedCertificate, CertificateSpec>, undo: CertificateUndo, ctx: DriverContext): Promise<void> {
  if (!undo.wrote) return;
  const paths = certificatePaths(change.resource!.spec.name);
  if (undo.issued) {
    ctx.log.warn({ resource: change.id, serial: undo.serial }, 'kept the newly issued certificate through the rollback');
    return;
  }
  for (const dir of [TLS_DIR, paths.dir]) if (!(await ctx.host.stat(dir))) await ctx.host.mkdir(dir, { uid: 0, gid: 0, mode: DIR_MODE });
  if (undo.previous) await writePair(ctx.host, paths, undo.previous);
  else {
    await ctx.host.remove(paths.certificate);
    await ctx.host.remove(paths.key);
  }
  for (const dir of [...undo.createdDirs].reverse()) await ctx.host.remove(dir);
  ctx.run.nginx.restored();
}

// One ACME order. The attempt is recorded before the CA is contacted, so even
// a run killed mid-order counts against the back-off. A failure does not fail
// the run: the site keeps serving what it has, and the failure is reported.
async function order(
  item: Applied<DesiredCertificate, ObservedCertificate, CertificateSpec, CertificateUndo, CertificateOp>,
  ctx: DriverContext,
): Promise<void> {
  const desired = item.change.desired!;
  const acme = desired.acme!;
  const now = Date.now();
  const failures = await readFailures(ctx.host, ctx.stateDirectory);
  const earlier = failures[desired.name];
  const count = earlier && earlier.domains.join(',') === desired.domains.join(',') ? earlier.failures + 1 : 1;
  failures[desired.name] = { domains: desired.domains, failures: count, lastError: 'interrupted', lastAttempt: now, retryAfter: now + backoffMs(count) };
  await writeFailures(ctx.host, ctx.stateDirectory, failures);
  const paths = certificatePaths(desired.name);
  try {
    await ensureStateDir(ctx.host, ctx.stateDirectory);
    const keyPath = accountKeyPath(ctx.stateDirectory, acme.directory);
    let accountKey = await ctx.host.readFile(keyPath);
    if (!accountKey) {
      accountKey = await newAccountKey();
      await ctx.host.writeFile(keyPath, accountKey, { uid: 0, gid: 0, mode: KEY_MODE });
    }
    const ca = acme.ca ? (await ctx.host.readFile(acme.ca))?.toString('utf8') : undefined;
    if (acme.ca && !ca) throw new HostKitError('ACME_CA_MISSING', `the CA file ${acme.ca} (spec.acme.caCertificate) does not exist`);
    const started = performance.now();
    const issued = await issueCertificate({
      host: ctx.host,
      directory: acme.directory,
      email: acme.email,
      accountKey,
      ...(ca ? { ca } : {}),
      domains: desired.domains,
      log: (message) => ctx.log.debug({ resource: item.change.id }, message),
    });
    await ctx.run.nginx.changing();
    await writePair(ctx.host, paths, issued);
    item.undo.wrote = true;
    item.undo.serial = serialOf(issued.certificate);
    item.undo.issued = true;
    delete failures[desired.name];
    await writeFailures(ctx.host, ctx.stateDirectory, failures);
    ctx.log.info({ resource: item.change.id, serial: item.undo.serial, ms: Math.round(performance.now() - started) }, 'certificate issued');
  } catch (cause) {
    const message = errorMessage(cause).replace(/\s+/g, ' ').slice(0, 500);
    failures[desired.name] = { ...failures[desired.name]!, lastError: message };
    await writeFailures(ctx.host, ctx.stateDirectory, failures);
    const until = new Date(failures[desired.name]!.retryAfter).toISOString();
    ctx.warnings.push(
      warning(
        'certificate not issued',
        `certificate ${desired.name} (${desired.domains.join(' ')}): ${message}; failure ${count}, next attempt after ${until}; the site keeps its current certificate`,
        item.change.origin,
      ),
    );
    ctx.log.warn({ resource: item.change.id, error: message, retryAfter: until }, 'certificate not issued');
  }
}

// Every certificate this run wrote must be the one nginx now serves for its
// site (old workers may answer for a moment after the reload, so poll).
async function checkServed(
  items: readonly Applied<DesiredCertificate, ObservedCertificate, CertificateSpec, CertificateUndo, CertificateOp>[],
  ctx: DriverContext,
): Promise<void> {
  const written = items.filter((i) => i.undo.serial && !hasOp(i.change, 'remove'));
  if (written.length === 0) return;
  for (const item of written) {
    const desired = item.change.desired!;
    if (!(await ctx.run.nginx.serves(desired.name))) continue; // nginx is down, or no HostKit site serves it
    const want = item.undo.serial!;
    let seen = '';
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const response = await hostHttpRequest(ctx.host, {
        port: 443,
        path: '/',
        method: 'HEAD',
        hostHeader: desired.domains[0]!,
        tlsServerName: desired.domains[0]!,
      }).catch((e: Error) => ({ certificate: undefined, error: e.message }));
      seen = response.certificate?.serialNumber ? normalizeSerial(response.certificate.serialNumber) : 'error' in response ? response.error : 'no certificate';
      if (seen === want) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    if (seen !== want) {
      throw new HostKitError('CERT_NOT_SERVED', `nginx serves ${seen} for ${desired.domains[0]} on port 443, not the new certificate ${want}`, {
        data: { resourceId: item.change.id },
        retryable: true,
      });
    }
  }
}
