/**
 * What an expression reads, from its parsed tree rather than its text, so
 * `tool["annotations"]` and `tool.annotations` are the same fact and a word
 * inside a string literal is none.
 */
export interface ExpressionFacts {
  /** Top-level variables referenced. */
  variables: Set<string>;
  /** Reads something of `tool` other than its name (annotations): the gateway must know the catalogue. */
  readsToolInfo: boolean;
  /** Claim names read as `user.claims.NAME` or `user.claims["NAME"]`. */
  claims: Set<string>;
}

interface Node {
  op: string;
  args: unknown;
}

const ACCESS = new Set(['.', '.?', '[]', '[?]']);

function isNode(v: unknown): v is Node {
  return typeof v === 'object' && v !== null && typeof (v as Node).op === 'string';
}

/** The field an access node reads, when it is a constant. */
function fieldOf(n: Node): string | undefined {
  const [, key] = n.args as [unknown, unknown];
  if (typeof key === 'string') return key;
  if (isNode(key) && key.op === 'value' && typeof key.args === 'string') return key.args;
  return undefined;
}

/** `a.b["c"]` → ['a', 'b', 'c'] (an undefined entry for a computed key); undefined if the chain is not rooted in a variable. */
export function accessPath(n: unknown): (string | undefined)[] | undefined {
  const path: (string | undefined)[] = [];
  let cur = n;
  while (isNode(cur) && ACCESS.has(cur.op)) {
    path.unshift(fieldOf(cur));
    cur = (cur.args as unknown[])[0];
  }
  if (isNode(cur) && cur.op === 'id' && typeof cur.args === 'string') return [cur.args, ...path];
  return undefined;
}

export function expressionFacts(ast: unknown): ExpressionFacts {
  const facts: ExpressionFacts = { variables: new Set(), readsToolInfo: false, claims: new Set() };
  const visit = (n: unknown, parent: Node | undefined): void => {
    if (Array.isArray(n)) {
      for (const c of n) visit(c, parent);
      return;
    }
    if (!isNode(n)) return;
    if (n.op === 'id' && typeof n.args === 'string') {
      facts.variables.add(n.args);
      // `tool` alone (passed whole to a function) or `tool.<anything but name>` reads what the upstream declared.
      if (n.args === 'tool' && !(parent && ACCESS.has(parent.op) && fieldOf(parent) === 'name'))
        facts.readsToolInfo = true;
    }
    if (ACCESS.has(n.op)) {
      const path = accessPath(n);
      if (path?.[0] === 'user' && path[1] === 'claims' && path.length >= 3 && typeof path[2] === 'string')
        facts.claims.add(path[2]);
    }
    const args = n.args;
    if (Array.isArray(args)) for (const a of args) visit(a, n);
    else if (isNode(args)) visit(args, n);
  };
  visit(ast, undefined);
  return facts;
}
