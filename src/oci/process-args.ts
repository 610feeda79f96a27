// CRI rules for a container's argv, environment and working directory, merged
// from the image config and the caller's request.
import path from 'node:path';
import { invalidArg, NstoolError } from '../errors.js';
import type { ImageConfig } from './types.js';

export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function stringList(v: unknown, what: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw invalidArg(`${what} must be an array of strings`, 'ERR_INVALID_ARG_TYPE');
  for (const s of v as string[]) if (s.includes('\0')) throw invalidArg(`${what} must not contain NUL`);
  return [...(v as string[])];
}

/**
 * command replaces the Entrypoint and drops the Cmd; args alone replace the
 * Cmd; an empty list counts as not given, and Entrypoint [""] as no Entrypoint.
 */
export function mergeArgs(image: ImageConfig | undefined, command?: string[], args?: string[]): string[] {
  let cmd = stringList(command, 'command') ?? [];
  let rest = stringList(args, 'args') ?? [];
  if (cmd.length === 0) {
    if (rest.length === 0) rest = stringList(image?.cmd, 'image cmd') ?? [];
    const ep = stringList(image?.entrypoint, 'image entrypoint') ?? [];
    cmd = ep.length === 1 && ep[0] === '' ? [] : ep;
  }
  const out = [...cmd, ...rest];
  if (out.length === 0) {
    throw new NstoolError('no command to run: the image has no Entrypoint or Cmd and none was given', {
      code: 'ERR_NSTOOL_NO_COMMAND',
      hint: 'pass command or args',
    });
  }
  if (out[0] === '') throw invalidArg('the program to run (args[0]) must not be empty', 'ERR_NSTOOL_NO_COMMAND');
  return out;
}

function splitEnv(entry: string, what: string): [string, string] {
  const i = entry.indexOf('=');
  if (i <= 0) throw invalidArg(`${what}: "${entry}" is not KEY=VALUE`);
  return [entry.slice(0, i), entry.slice(i + 1)];
}

function checkEnvPair(k: string, v: string, what: string): void {
  if (k === '' || k.includes('=')) throw invalidArg(`${what}: "${k}" is not a valid variable name`);
  if (k.includes('\0') || v.includes('\0')) throw invalidArg(`${what}: ${k} must not contain NUL`);
}

function pairs(env: Record<string, string> | string[] | undefined, what: string): Array<[string, string]> {
  if (env === undefined || env === null) return [];
  if (Array.isArray(env)) {
    return env.map((e) => {
      if (typeof e !== 'string') throw invalidArg(`${what} entries must be strings`, 'ERR_INVALID_ARG_TYPE');
      const kv = splitEnv(e, what);
      checkEnvPair(kv[0], kv[1], what);
      return kv;
    });
  }
  if (typeof env !== 'object') throw invalidArg(`${what} must be an object or an array of KEY=VALUE`, 'ERR_INVALID_ARG_TYPE');
  return Object.entries(env).map(([k, v]) => {
    if (typeof v !== 'string') throw invalidArg(`${what}: ${k} must be a string`, 'ERR_INVALID_ARG_TYPE');
    checkEnvPair(k, v, what);
    return [k, v];
  });
}

/**
 * Default PATH, then the image's variables, then the caller's: a later value
 * replaces an earlier one where it stood, new names are appended.
 */
export function mergeEnv(imageEnv: string[] | undefined, env: Record<string, string> | string[] | undefined): string[] {
  const order: string[] = [];
  const values = new Map<string, string>();
  const put = ([k, v]: [string, string]) => {
    if (!values.has(k)) order.push(k);
    values.set(k, v);
  };
  put(splitEnv(DEFAULT_PATH, 'default'));
  pairs(imageEnv, 'image env').forEach(put);
  pairs(env, 'env').forEach(put);
  return order.map((k) => `${k}=${values.get(k)!}`);
}

export function pickCwd(image: ImageConfig | undefined, cwd: string | undefined): string {
  const c = cwd !== undefined && cwd !== '' ? cwd : image?.workingDir !== undefined && image.workingDir !== '' ? image.workingDir : '/';
  if (typeof c !== 'string' || !path.isAbsolute(c) || c.includes('\0')) {
    throw invalidArg(`cwd must be an absolute path, got ${JSON.stringify(c)}`);
  }
  return c;
}
