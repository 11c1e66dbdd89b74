/**
 * oidc-provider warns at import, on stderr and in red, that any Node.js
 * before 22 LTS is unsupported. Node 20.19+ is still supported by behalf (the
 * README says so once, with the reason); the dev IdP works on it, so the line
 * reads as an error that is not one. Only that one line, only on a runtime the
 * library would warn about, and only until it has been dropped once: any other
 * warning passes. On 22 and 24 the library prints nothing and this installs nothing.
 * Imported before oidc-provider by every module that loads it (ES modules run in import order).
 */
const MINIMAL_LTS = 'Jod'; // oidc-provider's own test: release.lts before "Jod" (22)
const release = process.release as { lts?: string };
if (!release.lts || release.lts.charCodeAt(0) < MINIMAL_LTS.charCodeAt(0)) {
  const original = console.warn;
  console.warn = (...args: unknown[]) => {
    if (typeof args[0] === 'string' && args[0].includes('oidc-provider WARNING: Unsupported runtime')) {
      console.warn = original;
      return;
    }
    original.apply(console, args);
  };
}
export {};
