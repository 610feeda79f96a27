// The `hooks` object of an OCI config.json that makes plain `runc run` wire
// the container's network through `nstool hook`. Every setting goes into the
// hook's args as a flag: paths (conflist, result, plugin path, ...) are only
// ever taken from there, never from the container's annotations.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { invalidArg, requireAbsolute } from '../errors.js';
import { CniHookSettings, resolveSettings, settingsToFlags } from './settings.js';

/** bin/nstool.js of this package (from src/hook or dist/hook alike). */
export const NSTOOL_BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/nstool.js');

export interface OciHook {
  path: string;
  args?: string[];
  env?: string[];
  timeout?: number;
}

export interface CniHooksOptions extends CniHookSettings {
  /** The nstool entry script (default this package's bin/nstool.js). */
  nstoolBin?: string;
  /** The node binary (default the running one). */
  node?: string;
  /** Seconds the runtime waits for each hook. */
  timeout?: number;
  /** PATH for the hook (runtimes start hooks with only the env given here). */
  path?: string;
}

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function cniHooks(opts: CniHooksOptions = {}): { createRuntime: OciHook[]; poststop: OciHook[] } {
  const { nstoolBin = NSTOOL_BIN, node = process.execPath, timeout, path: envPath = DEFAULT_PATH, ...settings } = opts;
  for (const [what, p] of [['nstoolBin', nstoolBin], ['node', node]] as const) {
    requireAbsolute(p, what);
  }
  if (timeout !== undefined && (!Number.isInteger(timeout) || timeout <= 0)) throw invalidArg('timeout must be a positive whole number of seconds');
  // Same checks as at hook time, so a bad setting fails while building the spec.
  const flags = settingsToFlags(resolveSettings(settings, {}));
  const entry = (stage: string): OciHook => ({
    path: node,
    args: [node, nstoolBin, 'hook', stage, ...flags],
    env: [`PATH=${envPath}`],
    ...(timeout ? { timeout } : {}),
  });
  return { createRuntime: [entry('create-runtime')], poststop: [entry('post-stop')] };
}
