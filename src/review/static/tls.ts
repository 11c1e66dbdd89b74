import type { ReviewContext } from '../context.js';
import type { EvidenceItem } from '../types.js';
import { leadingAssignments, splitCommand } from './command.js';
import { configReview, record, unreadableItem } from './config-review.js';

/**
 * BND-02's static part: is TLS verification turned off anywhere the review
 * can see without running anything — in the gateway config (switches, plain
 * http URLs to other hosts, a stdio child's environment), on the --command
 * line, or in the environment that command would inherit from this process.
 */

/** Environment variables that turn certificate checks off in common runtimes, and the values that do. */
const TLS_ENV: Record<string, (v: string) => boolean> = {
  NODE_TLS_REJECT_UNAUTHORIZED: (v) => v.trim() === '0',
  PYTHONHTTPSVERIFY: (v) => v.trim() === '0',
  GIT_SSL_NO_VERIFY: (v) => v !== '' && !/^(?:0|false|no)$/i.test(v.trim()),
};

/** Names (lower-cased, without - _ . and leading dashes) whose true value, or bare presence as a flag, skips verification… */
const OFF_WHEN_TRUE = /^(?:insecure|insecureskip(?:tls)?verify|(?:tls|ssl)?skip(?:tls|ssl|cert|certificate)?verif(?:y|ication)|allowinsecure|nocheckcertificates?|(?:ssl|tls)noverify|ignore(?:cert|certificate|ssl|tls)errors?|acceptinvalidcerts?|disable(?:tls|ssl|cert|certificate)verif(?:y|ication))$/;
/** …and whose false value does. */
const OFF_WHEN_FALSE = /^(?:rejectunauthorized|verify(?:ssl|tls|certs?|certificates?|peer|host)?|(?:ssl|tls|cert|peer)verify|strictssl|checkcertificates?)$/;

const isTrue = (v: unknown) => v === true || v === 1 || (typeof v === 'string' && /^(?:true|1|yes|on)$/i.test(v.trim()));
const isFalse = (v: unknown) => v === false || v === 0 || (typeof v === 'string' && /^(?:false|0|no|off)$/i.test(v.trim()));

function normal(name: string): string {
  return name.toLowerCase().replace(/^-+/, '').replace(/[-_.\s]/g, '');
}

/** Does setting `name` to `value` (undefined: a bare flag) turn verification off? Says how, never a value other than the switch's. */
export function tlsSwitch(name: string, value: unknown): string | undefined {
  const env = TLS_ENV[name];
  if (env) return typeof value === 'string' && env(value) ? `${name}=${value.trim()}` : undefined;
  const n = normal(name);
  if (OFF_WHEN_TRUE.test(n) && (value === undefined || isTrue(value))) return value === undefined ? name : `${name}: ${String(value)}`;
  if (OFF_WHEN_FALSE.test(n) && isFalse(value)) return `${name}: ${String(value)}`;
  return undefined;
}

/** A word of a command line or an args list: `--insecure`, `--tls-verify=false`, `NODE_TLS_REJECT_UNAUTHORIZED=0`. */
export function wordSwitch(word: string): string | undefined {
  const flag = /^(-{1,2}[A-Za-z][A-Za-z0-9_.-]*)(?:=(.*))?$/s.exec(word);
  if (flag) return tlsSwitch(flag[1]!, flag[2]);
  const assign = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(word);
  return assign && TLS_ENV[assign[1]!] ? tlsSwitch(assign[1]!, assign[2]) : undefined;
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || /^127(?:\.\d{1,3}){3}$/.test(h) || h === '::1' || h === '0:0:0:0:0:0:0:1';
}

export function staticTlsEvidence(ctx: ReviewContext): EvidenceItem[] {
  return [...configTls(ctx), ...commandTls(ctx)];
}

function configTls(ctx: ReviewContext): EvidenceItem[] {
  const review = configReview(ctx);
  if (!review) return [];
  if (review.error || !review.raw) return [unreadableItem(review, 'TLS settings in the config')];
  const file = review.file;
  const out: EvidenceItem[] = [];
  let switches = 0;
  const visit = (v: unknown, path: (string | number)[], key: string | undefined) => {
    const at = path.join('.');
    if (key !== undefined) {
      // An env entry's literal is `{ value: X }`.
      const value = TLS_ENV[key] ? (record(v)?.value ?? v) : v;
      const how = typeof value === 'object' && value !== null ? undefined : tlsSwitch(key, value);
      if (how) {
        switches++;
        out.push({ outcome: 'bad', probe: 'TLS verification switch in the config', expected: 'certificate verification on', observed: how, detail: 'this setting turns certificate verification off: anyone on the path can pose as the server', location: { file, path: at } });
        return;
      }
    }
    if (typeof v === 'string') {
      const how = wordSwitch(v);
      if (how) {
        switches++;
        out.push({ outcome: 'bad', probe: 'TLS verification switch in the config', expected: 'certificate verification on', observed: how, detail: 'this argument turns certificate verification off', location: { file, path: at } });
        return;
      }
      // Allowed browser origins are where callers come from, not where the gateway connects to.
      if (!/^server\.allowed(?:Origins|Hosts)\./.test(at)) out.push(...urlItem(v, file, at));
      return;
    }
    if (Array.isArray(v)) v.forEach((x, i) => visit(x, [...path, i], undefined));
    else if (record(v)) for (const [k, x] of Object.entries(v as Record<string, unknown>)) visit(x, [...path, k], k);
  };
  visit(review.raw, [], undefined);
  for (const u of review.upstreams) {
    for (const name of u.envAllow.filter((n) => TLS_ENV[n])) {
      out.push({ outcome: 'info', probe: 'TLS variable passed to a stdio child', observed: `envAllow: ${name}`, detail: `the child inherits the gateway's ${name}: make sure the gateway's environment does not turn verification off`, location: { file, path: `upstreams.${u.name}.envAllow` } });
    }
  }
  if (!switches) out.push({ outcome: 'ok', probe: 'TLS verification switches in the config', expected: 'none', observed: 'none found', location: { file } });
  return out;
}

/** A URL in the config: https is verified; plain http is tolerable on loopback only. Shows scheme and host, never credentials or query. */
function urlItem(v: string, file: string, path: string): EvidenceItem[] {
  if (!/^https?:\/\//i.test(v)) return [];
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    // Looks like a URL but does not parse: nothing to say about its TLS; the config's own check refuses it.
    return [];
  }
  const where = `${url.protocol}//${url.host}`;
  if (url.protocol === 'https:') return [{ outcome: 'ok', probe: 'URL in the config uses TLS', observed: where, location: { file, path } }];
  if (isLoopbackHost(url.hostname)) return [{ outcome: 'info', probe: 'plain http URL in the config', observed: where, detail: 'loopback: the traffic does not leave this host', location: { file, path } }];
  return [{ outcome: 'bad', probe: 'plain http URL in the config', expected: 'https (or a loopback address)', observed: where, detail: 'credentials and tokens sent here travel unencrypted and the peer is not authenticated', location: { file, path } }];
}

function commandTls(ctx: ReviewContext): EvidenceItem[] {
  const command = ctx.inputs.command;
  if (command === undefined) return [];
  const out: EvidenceItem[] = [];
  const words = splitCommand(command);
  const set = new Set(leadingAssignments(words).map((a) => a.name));
  words.forEach((w, i) => {
    const how = wordSwitch(w);
    if (how) out.push({ outcome: 'bad', probe: 'TLS verification switch on the --command line', expected: 'certificate verification on', observed: how, location: { file: '--command', path: `word ${i}` } });
  });
  for (const [name, off] of Object.entries(TLS_ENV)) {
    const v = process.env[name];
    if (v !== undefined && off(v) && !set.has(name)) {
      out.push({ outcome: 'bad', probe: 'TLS variable the --command child would inherit', expected: `${name} unset`, observed: `${name}=${v.trim()}`, detail: 'this process\'s environment turns certificate verification off, and the child inherits it', location: { file: 'environment', path: name } });
    }
  }
  if (!out.length) out.push({ outcome: 'ok', probe: 'TLS verification for the --command child', expected: 'no switch that turns verification off', observed: 'none on the command line or in the environment it would inherit' });
  return out;
}
