// Network configuration lists: a .conflist, or a single .conf made into a
// list of one, from a directory, a file or an object.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { invalidArg, NstoolError } from '../errors.js';
import { validateNetworkName, validatePluginType } from './names.js';
import { parseVersion } from './version.js';

export const DEFAULT_CONF_DIR = '/etc/cni/net.d';
const CONF_EXTENSIONS = ['.conf', '.conflist', '.json'];

/** One plugin's config, as the plugin receives it (less the injected keys). */
export interface PluginConf {
  type: string;
  capabilities?: Record<string, boolean>;
  [key: string]: unknown;
}

export interface NetworkConfigList {
  cniVersion: string;
  name: string;
  disableCheck?: boolean;
  plugins: PluginConf[];
  /** Where it was read from, when it came from a file. */
  source?: string;
}

function badConfig(msg: string, source?: string): NstoolError {
  return new NstoolError(source ? `${source}: ${msg}` : msg, {
    code: 'ERR_NSTOOL_CNI_CONFIG',
    ...(source ? { path: source } : {}),
    hint: 'see the CNI spec, section "Configuration format"',
  });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function checkPlugin(p: unknown, i: number, source?: string): PluginConf {
  if (!isObject(p)) throw badConfig(`plugins[${i}] must be an object`, source);
  try {
    validatePluginType(p['type']);
  } catch (err) {
    throw badConfig(`plugins[${i}]: ${(err as Error).message}`, source);
  }
  if (p['capabilities'] !== undefined && !isObject(p['capabilities'])) {
    throw badConfig(`plugins[${i}].capabilities must be an object`, source);
  }
  return p as PluginConf;
}

/**
 * Checks a parsed config: a list ({name, cniVersion, plugins}) or a single
 * plugin config ({name, cniVersion, type}), which becomes a list of one.
 */
export function toNetworkList(obj: unknown, source?: string): NetworkConfigList {
  if (!isObject(obj)) throw badConfig('a network config must be a JSON object', source);
  const { cniVersion, name } = obj;
  if (typeof cniVersion !== 'string' || !parseVersion(cniVersion)) throw badConfig('cniVersion must be a version string like "1.0.0"', source);
  try {
    validateNetworkName(name);
  } catch (err) {
    throw badConfig((err as Error).message, source);
  }
  let plugins: PluginConf[];
  let disableCheck = false;
  if (obj['plugins'] !== undefined) {
    if (!Array.isArray(obj['plugins']) || obj['plugins'].length === 0) throw badConfig('plugins must be a non-empty array', source);
    plugins = obj['plugins'].map((p, i) => checkPlugin(p, i, source));
    if (obj['disableCheck'] !== undefined && typeof obj['disableCheck'] !== 'boolean') throw badConfig('disableCheck must be a boolean', source);
    disableCheck = obj['disableCheck'] === true;
  } else if (obj['type'] !== undefined) {
    // A single .conf: the plugin config itself, name and version included.
    plugins = [checkPlugin(obj, 0, source)];
  } else {
    throw badConfig('neither "plugins" (a list) nor "type" (a single plugin) is set', source);
  }
  const list: NetworkConfigList = { cniVersion, name: name as string, plugins };
  if (disableCheck) list.disableCheck = true;
  if (source) list.source = source;
  return list;
}

/** Parses JSON text (or takes an object) into a list. */
export function parseNetworkList(input: string | Buffer | object, source?: string): NetworkConfigList {
  if (typeof input === 'string' || Buffer.isBuffer(input)) {
    let obj: unknown;
    try {
      obj = JSON.parse(input.toString());
    } catch (err) {
      throw badConfig(`invalid JSON: ${(err as Error).message}`, source);
    }
    return toNetworkList(obj, source);
  }
  return toNetworkList(input, source);
}

/** Reads one .conflist or .conf file. */
export async function loadNetworkListFile(file: string): Promise<NetworkConfigList> {
  if (typeof file !== 'string' || file === '') throw invalidArg('config file must be a path');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new NstoolError(`reading ${file}: ${e.message}`, { code: e.code ?? 'EIO', path: file, syscall: 'open', cause: err });
  }
  return parseNetworkList(text, file);
}

export interface LoadOptions {
  /** Directory of .conflist/.conf/.json files (default /etc/cni/net.d). */
  dir?: string;
  /** Pick the list with this name; else the first valid file in lexical order. */
  name?: string;
}

/** The first valid list in DIR (lexical order), or the one named NAME. */
export async function loadNetworkList(opts: LoadOptions = {}): Promise<NetworkConfigList> {
  const dir = opts.dir ?? DEFAULT_CONF_DIR;
  if (typeof dir !== 'string' || dir === '') throw invalidArg('dir must be a path');
  if (opts.name !== undefined) validateNetworkName(opts.name);
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new NstoolError(`reading ${dir}: ${e.message}`, {
      code: e.code ?? 'EIO',
      path: dir,
      syscall: 'scandir',
      hint: 'the CNI config directory must exist and hold .conflist or .conf files',
      cause: err,
    });
  }
  const files = entries.filter((f) => CONF_EXTENSIONS.includes(path.extname(f))).sort();
  const skipped: string[] = [];
  for (const f of files) {
    const file = path.join(dir, f);
    let list: NetworkConfigList;
    try {
      list = await loadNetworkListFile(file);
    } catch (err) {
      // One broken file must not hide the valid ones after it.
      skipped.push(`${f}: ${(err as Error).message}`);
      continue;
    }
    if (opts.name === undefined || list.name === opts.name) return list;
  }
  const what = opts.name === undefined ? 'no valid network config' : `no valid network config named ${JSON.stringify(opts.name)}`;
  throw new NstoolError(`${what} in ${dir}${skipped.length ? ` (skipped: ${skipped.join('; ')})` : ''}`, {
    code: 'ERR_NSTOOL_CNI_CONFIG',
    path: dir,
    hint: 'put a .conflist (or .conf) file there, or name an existing network',
  });
}
