import type { listKeys } from '../keys/listing.js';
import type { NewKey } from '../keys/new-key.js';

/** What `behalf keys create` prints: the new key once, with what to do with it. */
export function createdOutput(m: NewKey): Record<string, unknown> {
  const r = m.record;
  const common = {
    id: r.id,
    kind: r.kind,
    notBefore: r.notBefore,
    notAfter: r.notAfter,
    ...(r.replaces ? { replaces: r.replaces } : {}),
  };
  if (r.kind === 'api-key') {
    return {
      ...common,
      client: r.client,
      key: m.secret,
      note: 'shown once: give the key to the client through its secret store; the key store keeps only its hash',
    };
  }
  return {
    ...common,
    kid: r.kid,
    alg: r.alg,
    privateKey: r.privateKey,
    note: 'the public key is served at /.well-known/jwks.json; the private JWK file is mode 0600',
  };
}

/** `behalf keys list` as an aligned table, one key a row. */
export function keyTable(rows: ReturnType<typeof listKeys>): string {
  const table = [['ID', 'KIND', 'CLIENT', 'SOURCE', 'CREATED', 'NOT-BEFORE', 'NOT-AFTER', 'STATUS', 'AGE', 'NOTE']];
  for (const r of rows) {
    const note = [
      ...(r.warnings.length ? [`WARN ${r.warnings.join('; ')}`] : []),
      ...(r.replacedBy ? [`replaced by ${r.replacedBy}`] : []),
    ].join('; ');
    table.push([
      r.id,
      r.kind,
      r.client ?? '-',
      r.source,
      short(r.createdAt),
      short(r.notBefore),
      short(r.notAfter),
      r.status,
      r.age ?? '-',
      note,
    ]);
  }
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  return `${table
    .map((row) =>
      row
        .map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}

function short(s: string | undefined): string {
  return s === undefined ? '-' : s.replace(/:\d{2}Z$/, 'Z');
}
