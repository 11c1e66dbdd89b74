// fs.globSync for Node 20, enough for the suite's one use: `**/<file name>` under a folder.
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';

export function globSync(pattern, opts = {}) {
  if (fs.globSync) return fs.globSync(pattern, opts);
  const cwd = opts.cwd || process.cwd();
  const base = pattern.replace(/^\*\*\//, '');
  const out = [];
  const walk = (dir, rel) => {
    let entries;
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return; // an unreadable folder holds no matches
    }
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(path.join(dir, e.name), r);
      else if (e.name === base) out.push(r);
    }
  };
  walk(cwd, '');
  return out;
}
