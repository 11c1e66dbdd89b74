// ESM load hook: in the conformance suite's bundle, `globSync` from "fs" is replaced by the shim next to this file.
import { URL } from 'node:url';
const shim = JSON.stringify(new URL('./globsync.mjs', import.meta.url).href);

export async function load(url, context, nextLoad) {
  const loaded = await nextLoad(url, context);
  if (!/\/conformance-v\d\/dist\//.test(url) || !loaded.source) return loaded;
  let source = loaded.source.toString();
  let alias;
  source = source.replace(/globSync as (\w+),/, (_, id) => {
    alias = id;
    return '';
  });
  if (alias) source = source.replace(/^(#!.*\n)?/, (head) => `${head}import { globSync as ${alias} } from ${shim};\n`);
  return { ...loaded, source };
}
