/**
 * The TLS files of the conf, read and checked once by whoever loads it
 * (`sluice -t`, the master at start and reload): the certificates of
 * `server.tls`, and each upstream's `tls` CA bundle and client certificate.
 * Every fault is reported at its key's file:line:col, and the PEM text
 * travels in the resolved conf, so workers (and the master's health checks)
 * use exactly the bytes that were checked (a certbot renewal half written
 * when the master reads it fails the reload; the old generation keeps serving).
 *
 * Errors: an unreadable file, a file without a certificate or key, a key
 * that does not match its certificate, a certificate already expired or not
 * yet valid, a server certificate that names no host, a tls listener without
 * any certificate, a client certificate without its key (or the reverse).
 * Warnings: a certificate that expires within 14 days; an upstream whose
 * certificate is not verified.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { arr, isObj, obj } from './loose.ts';
import type { Obj } from './loose.ts';
import type { Reporter, Seg } from './reporter.ts';

const EXPIRY_WARNING_MS = 14 * 86_400_000;

export interface LoadedCertificate {
  /** The files, as resolved against the prefix. */
  readonly cert: string;
  readonly key: string;
  readonly certPem: string;
  readonly keyPem: string;
  /** DNS names from the SAN (the subject's CN when it has none), lower case; `*.example.org` kept as written. */
  readonly names: readonly string[];
  /** ISO date. */
  readonly notAfter: string;
}

/** SAN DNS names, or the CN of a certificate that has none (as browsers no longer accept, but clients of APIs still may). */
function namesOf(x: X509Certificate): string[] {
  const san = x.subjectAltName;
  if (san !== undefined) {
    const dns = san.split(/,\s*/).filter((e) => e.startsWith('DNS:')).map((e) => e.slice(4).toLowerCase());
    if (dns.length > 0) return dns;
  }
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(x.subject)?.[1];
  return cn === undefined ? [] : [cn.toLowerCase()];
}

function readText(path: string, segs: Seg[], r: Reporter): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    r.report(segs, `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    return null;
  }
}

/** Every certificate of `server.tls`, checked; null when any has a fault (each reported). */
export function loadCertificates(written: Obj, prefix: string, r: Reporter, now = Date.now()): LoadedCertificate[] | null {
  const server = obj(written['server']);
  const list = arr(obj(server['tls'])['certificates']);
  const tlsListeners = arr(server['listen']).filter((l) => isObj(l) && l['tls'] === true);
  if (tlsListeners.length > 0 && list.length === 0) {
    const i = arr(server['listen']).findIndex((l) => isObj(l) && l['tls'] === true);
    r.report(['server', 'listen', i, 'tls'], 'a tls listener needs server.tls.certificates');
  }
  const at = (p: string): string => (isAbsolute(p) ? p : resolve(prefix, p));
  let ok = true;
  const out: LoadedCertificate[] = [];
  list.forEach((raw, i) => {
    if (!isObj(raw) || typeof raw['cert'] !== 'string' || typeof raw['key'] !== 'string') return; // the schema said so
    const base: Seg[] = ['server', 'tls', 'certificates', i];
    const one = loadOne(at(raw['cert']), at(raw['key']), base, r, now);
    if (one === null) ok = false;
    else out.push(one);
  });
  return ok ? out : null;
}

/** A certificate and its key, read and checked: parsed, matching, within their validity window (a warning when it ends within 14 days). */
function loadPair(certPath: string, keyPath: string, base: Seg[], r: Reporter, now: number): { certPem: string; keyPem: string; x: X509Certificate } | null {
  const certPem = readText(certPath, [...base, 'cert'], r);
  const keyPem = readText(keyPath, [...base, 'key'], r);
  if (certPem === null || keyPem === null) return null;
  let x: X509Certificate;
  try {
    x = new X509Certificate(certPem);
  } catch (err) {
    r.report([...base, 'cert'], `${certPath} holds no PEM certificate: ${(err as Error).message}`);
    return null;
  }
  let ok = true;
  try {
    if (!x.checkPrivateKey(createPrivateKey(keyPem))) {
      r.report([...base, 'key'], `${keyPath} is not the key of ${certPath}`);
      ok = false;
    }
  } catch (err) {
    r.report([...base, 'key'], `${keyPath} holds no usable private key: ${(err as Error).message}`);
    ok = false;
  }
  const notBefore = Date.parse(x.validFrom);
  const notAfter = Date.parse(x.validTo);
  if (notAfter <= now) {
    r.report([...base, 'cert'], `${certPath} expired on ${new Date(notAfter).toISOString()}`);
    ok = false;
  } else if (notBefore > now) {
    r.report([...base, 'cert'], `${certPath} is not valid before ${new Date(notBefore).toISOString()}`);
    ok = false;
  } else if (notAfter - now < EXPIRY_WARNING_MS) {
    r.warn([...base, 'cert'], `${certPath} expires on ${new Date(notAfter).toISOString()}, in ${Math.ceil((notAfter - now) / 86_400_000)} days`);
  }
  return ok ? { certPem, keyPem, x } : null;
}

function loadOne(certPath: string, keyPath: string, base: Seg[], r: Reporter, now: number): LoadedCertificate | null {
  const pair = loadPair(certPath, keyPath, base, r, now);
  if (pair === null) return null;
  const names = namesOf(pair.x);
  if (names.length === 0) {
    r.report([...base, 'cert'], `${certPath} names no host (no DNS name in its subjectAltName, no CN)`);
    return null;
  }
  return { cert: certPath, key: keyPath, certPem: pair.certPem, keyPem: pair.keyPem, names, notAfter: new Date(pair.x.validTo).toISOString() };
}

/** The files of one upstream's `tls`, as the resolved conf carries them. */
export interface UpstreamTlsFiles {
  /** The CA bundle; null = Node's default roots. */
  readonly caPem: string | null;
  /** The client certificate (mTLS) and its key, or both null. */
  readonly certPem: string | null;
  readonly keyPem: string | null;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** A CA bundle: every certificate in it must parse (OpenSSL would skip a broken one silently), and there must be one. */
function loadCa(path: string, segs: Seg[], r: Reporter): string | null {
  const pem = readText(path, segs, r);
  if (pem === null) return null;
  const blocks = pem.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) {
    r.report(segs, `${path} holds no PEM certificate`);
    return null;
  }
  for (const [i, block] of blocks.entries()) {
    try {
      new X509Certificate(block);
    } catch (err) {
      r.report(segs, `${path}: certificate ${i + 1} of ${blocks.length} does not parse: ${(err as Error).message}`);
      return null;
    }
  }
  return pem;
}

/** Each upstream's `tls` files by upstream name (those without tls are absent); null when any has a fault (each reported). */
export function loadUpstreamTls(written: Obj, prefix: string, r: Reporter, now = Date.now()): Record<string, UpstreamTlsFiles> | null {
  const at = (p: string): string => (isAbsolute(p) ? p : resolve(prefix, p));
  let ok = true;
  const out: Record<string, UpstreamTlsFiles> = {};
  for (const [name, u] of Object.entries(obj(written['upstreams']))) {
    const tls = obj(u)['tls'];
    if (!isObj(tls)) continue;
    const base: Seg[] = ['upstreams', name, 'tls'];
    if (tls['verify'] === false) {
      r.warn([...base, 'verify'], `certificates of upstream "${name}" are not verified: whoever can reach its traffic can pose as it (nginx proxy_ssl_verify off)`);
    }
    const { ca, cert, key } = tls;
    const caPem = typeof ca === 'string' ? loadCa(at(ca), [...base, 'ca'], r) : null;
    if (typeof ca === 'string' && caPem === null) ok = false;
    let pair: { certPem: string; keyPem: string } | null = null;
    if (typeof cert === 'string' && typeof key === 'string') {
      pair = loadPair(at(cert), at(key), base, r, now);
      if (pair === null) ok = false;
    } else if (typeof cert === 'string' || typeof key === 'string') {
      const [has, lacks] = typeof cert === 'string' ? ['cert', 'key'] : ['key', 'cert'];
      r.report([...base, has], `a client ${has === 'cert' ? 'certificate' : 'key'} needs its ${lacks}: set both cert and key, or neither`);
      ok = false;
    }
    out[name] = { caPem, certPem: pair?.certPem ?? null, keyPem: pair?.keyPem ?? null };
  }
  return ok ? out : null;
}
