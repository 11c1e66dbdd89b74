import { sha256Hex } from '../shared/hash.js';
import { looksLikeSecret, nameLooksSecret } from '../shared/secret-shapes.js';

/** A short, stable stand-in for a secret: the same secret gets the same mark across the pack, and the mark cannot be reversed. */
export function secretMark(secret: string): string {
  return `[redacted:${sha256Hex(secret).slice(0, 12)}]`;
}

const ALWAYS_SECRET_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key', 'mcp-session-id', 'x-behalf-user']);
const JWT = /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;
const BEARERISH = /\b(Bearer|Basic|DPoP)\s+([A-Za-z0-9._~+/=-]{8,})/gi;

/**
 * Everything the review writes goes through one Redactor. It knows every
 * credential the review used (profile headers, command output, forged
 * tokens) and also blanks anything token-shaped it did not know, so a
 * server that echoes a token back cannot put it into the pack either.
 * The pack writer checks the finished files against `known()` once more.
 */
export class Redactor {
  private readonly secrets = new Set<string>();

  add(secret: string | undefined): void {
    if (!secret || secret.length < 8) return;
    this.secrets.add(secret);
    // A bearer header value also travels without its scheme.
    const bare = /^(?:Bearer|Basic|DPoP)\s+(.+)$/i.exec(secret)?.[1];
    if (bare && bare.length >= 8) this.secrets.add(bare);
  }

  known(): string[] {
    return [...this.secrets];
  }

  text(s: string): string {
    let out = s;
    // Longest first, so a token is not half-replaced by a shorter secret it contains.
    for (const secret of [...this.secrets].sort((a, b) => b.length - a.length)) {
      if (out.includes(secret)) out = out.split(secret).join(secretMark(secret));
    }
    out = out.replace(JWT, (m) => secretMark(m));
    out = out.replace(BEARERISH, (_m, scheme: string, v: string) => (v.startsWith('[redacted:') ? `${scheme} ${v}` : `${scheme} ${secretMark(v)}`));
    return out;
  }

  headers(h: Record<string, string>): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, value] of Object.entries(h)) {
      const lower = name.toLowerCase();
      out[lower] = ALWAYS_SECRET_HEADERS.has(lower) || nameLooksSecret(lower) ? redactHeaderValue(value) : this.text(value);
    }
    return out;
  }

  /** Deep copy of a JSON value with every string redacted, and values under secret-looking names blanked whole. */
  json(v: unknown, name = ''): unknown {
    if (typeof v === 'string') return (name && nameLooksSecret(name)) || looksLikeSecret(v) ? secretMark(v) : this.text(v);
    if (Array.isArray(v)) return v.map((x) => this.json(x));
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[this.text(k)] = this.json(x, k);
      return out;
    }
    return v;
  }
}

/** Keeps a header's scheme (so a reader sees "Bearer") and marks the credential. */
function redactHeaderValue(value: string): string {
  const m = /^(Bearer|Basic|DPoP)\s+(.+)$/i.exec(value);
  return m ? `${m[1]} ${secretMark(m[2]!)}` : secretMark(value);
}
