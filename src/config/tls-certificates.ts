/**
 * The certificates of `server.tls`, read and checked once by whoever loads
 * the conf (`sluice -t`, the master at start and reload): every fault is
 * reported at its key's file:line:col, and the PEM text travels in the
 * resolved conf, so workers serve exactly the bytes that were checked (a
 * certbot renewal half written when the master reads it fails the reload;
 * the old generation keeps serving).
 *
 * Errors: an unreadable file, a file without a certificate or key, a key
 * that does not match its certificate, a certificate already expired or not
 * yet valid, a tls listener without any certificate. Warning: a certificate
 * that expires within 14 days.
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

/** Every certificate of the written conf, checked; null when any has a fault (each reported). */
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

function loadOne(certPath: string, keyPath: string, base: Seg[], r: Reporter, now: number): LoadedCertificate | null {
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
  const names = namesOf(x);
  if (names.length === 0) {
    r.report([...base, 'cert'], `${certPath} names no host (no DNS name in its subjectAltName, no CN)`);
    ok = false;
  }
  return ok ? { cert: certPath, key: keyPath, certPem, keyPem, names, notAfter: new Date(notAfter).toISOString() } : null;
}
