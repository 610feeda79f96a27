// What a CNI hook needs to know, from CLI flags or the container's
// annotations (flags first): netns, network config, where to put the result.
import path from 'node:path';
import { invalidArg } from '../errors.js';

export interface CniHookSettings {
  /** The container's netns; default /proc/<pid>/ns/net. */
  netns?: string;
  /** A .conflist (or .conf) file. */
  conflist?: string;
  /** A config dir, with `network` picking a list by name. */
  confDir?: string;
  network?: string;
  /** File that receives the ADD result (JSON), replaced atomically. */
  result?: string;
  ifName?: string;
  /** Plugin search path, colon-separated. */
  pluginPath?: string;
  cacheDir?: string;
  /** Run plugins inside this netns (a path). */
  nodeNetns?: string;
}

/** The annotation that carries each setting. */
export const HOOK_ANNOTATIONS: Record<keyof CniHookSettings, string> = {
  netns: 'nstool.netns',
  conflist: 'nstool.cni.conflist',
  confDir: 'nstool.cni.confdir',
  network: 'nstool.cni.network',
  result: 'nstool.cni.result',
  ifName: 'nstool.cni.ifname',
  pluginPath: 'nstool.cni.path',
  cacheDir: 'nstool.cni.cachedir',
  nodeNetns: 'nstool.cni.nodenetns',
};

/** The CLI flag for each setting. */
export const HOOK_FLAGS: Record<keyof CniHookSettings, string> = {
  netns: '--netns',
  conflist: '--conflist',
  confDir: '--conf-dir',
  network: '--network',
  result: '--result',
  ifName: '--ifname',
  pluginPath: '--plugin-path',
  cacheDir: '--cache-dir',
  nodeNetns: '--node-netns',
};

const KEYS = Object.keys(HOOK_ANNOTATIONS) as (keyof CniHookSettings)[];
const PATHS: (keyof CniHookSettings)[] = ['netns', 'conflist', 'confDir', 'result', 'cacheDir', 'nodeNetns'];

/** Settings as annotations, for a spec builder to put in config.json. */
export function cniAnnotations(s: CniHookSettings): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of KEYS) if (s[k] !== undefined) out[HOOK_ANNOTATIONS[k]] = s[k]!;
  return out;
}

/** FLAGS win over ANNOTATIONS; paths must be absolute (hooks run with an unknown cwd). */
export function resolveSettings(flags: CniHookSettings, annotations: Record<string, string>): CniHookSettings {
  const out: CniHookSettings = {};
  for (const k of KEYS) {
    const v = flags[k] ?? annotations[HOOK_ANNOTATIONS[k]];
    if (v === undefined) continue;
    if (typeof v !== 'string' || v === '' || v.includes('\0')) throw invalidArg(`${HOOK_ANNOTATIONS[k]} must be a non-empty string`);
    if (PATHS.includes(k) && !path.isAbsolute(v)) throw invalidArg(`${HOOK_ANNOTATIONS[k]} must be an absolute path, not ${JSON.stringify(v)}`);
    out[k] = v;
  }
  if (out.conflist && (out.confDir || out.network)) {
    throw invalidArg(`give either ${HOOK_ANNOTATIONS.conflist} or ${HOOK_ANNOTATIONS.confDir}/${HOOK_ANNOTATIONS.network}, not both`);
  }
  return out;
}

/** Settings as CLI flags (for hook entries in config.json). */
export function settingsToFlags(s: CniHookSettings): string[] {
  const out: string[] = [];
  for (const k of KEYS) if (s[k] !== undefined) out.push(HOOK_FLAGS[k], s[k]!);
  return out;
}
