import { readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';

/** Why a YAML file could not be read, in words an operator can act on (never its content). */
export class YamlFileError extends Error {}

/** Parses YAML (or JSON) text; a syntax error names the line and column. */
export function parseYamlText(text: string, what: string): unknown {
  try {
    return parseYaml(text);
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? ` at line ${err.linePos[0].line}, column ${err.linePos[0].col}` : '';
    throw new YamlFileError(`${what} is not valid YAML${where}`);
  }
}

/** Reads and parses a YAML file: config, policy and policy-test files alike. */
export function readYamlFile(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new YamlFileError(`cannot read ${what} ${path}`);
  }
  return parseYamlText(text, `${what} ${path}`);
}
