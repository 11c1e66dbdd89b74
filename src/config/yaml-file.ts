import { readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { BehalfError } from '../errors.js';

/** Why a YAML file could not be read, in words an operator can act on (never its content). */
export class YamlFileError extends BehalfError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('yaml_invalid', message, {}, options);
    this.name = 'YamlFileError';
  }
}

/** Parses YAML (or JSON) text; a syntax error names the line and column. */
export function parseYamlText(text: string, what: string): unknown {
  try {
    return parseYaml(text);
  } catch (err) {
    // Not kept as the cause: the parser's message quotes the text, which may hold a secret.
    const where =
      err instanceof YAMLParseError && err.linePos
        ? ` at line ${err.linePos[0].line}, column ${err.linePos[0].col}`
        : '';
    throw new YamlFileError(`${what} is not valid YAML${where}`);
  }
}

/** Reads and parses a YAML file: config, policy and policy-test files alike. */
export function readYamlFile(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new YamlFileError(`cannot read ${what} ${path}`, { cause: err });
  }
  return parseYamlText(text, `${what} ${path}`);
}
