// What a CNI hook needs to know, from CLI flags or the container's
// annotations (flags first): netns, network config, where to put the result.
//
// Trust: the flags live in config.json's hooks array, written by whoever built
// the spec. Annotations may come from a pod's author (a CRI can pass them
// through), yet the hook runs as root. So every path that decides what root
// executes, reads as config, writes or deletes is a flag only; annotations
// carry the network name, the interface name and the netns. An annotated
// netns must name a place a container's own netns can be (checked here) and
// then be that very netns, same dev and inode (checked in ./netns.ts).
import path from 'node:path';
import { invalidArg, NstoolError } from '../errors.js';
import { validateIfName, validateNetworkName } from '../cni/names.js';
import { showValue } from '../show.js';

export interface CniHookSettings {
  /** The container's netns; default /proc/<pid>/ns/net. */
  netns?: string;
  /** A .conflist (or .conf) file. Flag only. */
  conflist?: string;
  /** A config dir, with `network` picking a list by name. Flag only. */
  confDir?: string;
  network?: string;
  /** File that receives the ADD result (JSON), replaced atomically; post-stop deletes it. Flag only. */
  result?: string;
  ifName?: string;
  /** Plugin search path, colon-separated. Flag only. */
  pluginPath?: string;
  /** Flag only. */
  cacheDir?: string;
  /** Run plugins inside this netns (a path). Flag only. */
  nodeNetns?: string;
  /** Another dir whose direct entries an annotated netns may name (besides /run/netns). Flag only. */
  netnsPinDir?: string;
  /**
   * Where a runtime that gives no pid (a VM runtime such as Kata) pins its
   * containers' netns: only then, and only a direct entry of this dir, may an
   * annotated netns stand without the pid check. Off by default. Flag only.
   */
  pidlessNetnsDir?: string;
}

/** The settings an annotation may carry. */
export type AnnotatedSetting = 'netns' | 'network' | 'ifName';

/** The annotation that carries each setting that may come from annotations. */
export const HOOK_ANNOTATIONS: Readonly<Record<AnnotatedSetting, string>> = {
  netns: 'nstool.netns',
  network: 'nstool.cni.network',
  ifName: 'nstool.cni.ifname',
};

/**
 * Annotations that once carried path settings, now flags only: one of them on
 * a container is refused (rather than ignored) so nobody is left wondering.
 */
export const FLAG_ONLY_ANNOTATIONS: Readonly<Record<string, keyof CniHookSettings>> = {
  'nstool.cni.conflist': 'conflist',
  'nstool.cni.confdir': 'confDir',
  'nstool.cni.result': 'result',
  'nstool.cni.path': 'pluginPath',
  'nstool.cni.cachedir': 'cacheDir',
  'nstool.cni.nodenetns': 'nodeNetns',
  'nstool.cni.netnspindir': 'netnsPinDir',
  'nstool.cni.pidlessnetnsdir': 'pidlessNetnsDir',
};

/** The CLI flag for each setting. */
export const HOOK_FLAGS: Readonly<Record<keyof CniHookSettings, string>> = {
  netns: '--netns',
  conflist: '--conflist',
  confDir: '--conf-dir',
  network: '--network',
  result: '--result',
  ifName: '--ifname',
  pluginPath: '--plugin-path',
  cacheDir: '--cache-dir',
  nodeNetns: '--node-netns',
  netnsPinDir: '--netns-pin-dir',
  pidlessNetnsDir: '--pidless-netns-dir',
};

/** Where `ip netns` pins (DEFAULT_PIN_DIR of src/netns.ts; not imported, to keep this file free of the native core). */
const RUN_NETNS = '/run/netns';
const KEYS = Object.keys(HOOK_FLAGS) as (keyof CniHookSettings)[];
const ANNOTATED = Object.keys(HOOK_ANNOTATIONS) as AnnotatedSetting[];
const PATHS: (keyof CniHookSettings)[] = ['netns', 'conflist', 'confDir', 'result', 'cacheDir', 'nodeNetns', 'netnsPinDir', 'pidlessNetnsDir'];
/** Longest value each setting may have (bytes): PATH_MAX for paths, NAME_MAX for a network, IFNAMSIZ-1. */
const PATH_MAX = 4095;
const MAX_BYTES: Partial<Record<keyof CniHookSettings, number>> = { network: 255, ifName: 15 };
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function settingError(message: string, hint: string): NstoolError {
  return new NstoolError(message, { code: 'ERR_NSTOOL_HOOK_SETTING', hint });
}

function isAnnotated(k: string): k is AnnotatedSetting {
  return (ANNOTATED as string[]).includes(k);
}

/** Settings as annotations, for a spec builder to put in config.json: network, ifName and netns only. */
export function cniAnnotations(s: Pick<CniHookSettings, AnnotatedSetting>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(s)) {
    if (v === undefined) continue;
    if (!isAnnotated(k)) {
      const flag = HOOK_FLAGS[k as keyof CniHookSettings];
      throw settingError(`${k} cannot be an annotation`, flag ? `pass it to cniHooks(), which makes it the hook flag ${flag}` : 'unknown setting');
    }
    out[HOOK_ANNOTATIONS[k]] = v;
  }
  return out;
}

/**
 * Where an annotated netns may be: with a pid, /proc/<pid>/ns/net or a pin
 * directly inside /run/netns or --netns-pin-dir; without one, only a pin
 * directly inside --pidless-netns-dir. (Being there is not enough: ./netns.ts
 * then checks it is the container's own.)
 */
function checkAnnotatedNetns(v: string, pid: number | undefined, s: CniHookSettings): string {
  const p = path.resolve(v);
  const name = `${HOOK_ANNOTATIONS.netns}=${showValue(v)}`;
  if (pid === undefined) {
    const dir = s.pidlessNetnsDir ? path.resolve(s.pidlessNetnsDir) : undefined;
    if (dir && path.dirname(p) === dir) return p;
    throw settingError(
      `${name} cannot be checked: the OCI state has no pid${dir ? `, and it is not a pin directly inside ${dir}` : ''}`,
      dir
        ? `a runtime without pids must pin the netns directly inside ${dir}; give any other netns with the hook flag ${HOOK_FLAGS.netns}`
        : `an annotated netns is compared with /proc/<pid>/ns/net; for a runtime that gives no pid (a VM runtime) name the dir of its pins with the hook flag ${HOOK_FLAGS.pidlessNetnsDir}, or give the netns with ${HOOK_FLAGS.netns}`,
    );
  }
  const dirs = [RUN_NETNS, ...(s.netnsPinDir ? [path.resolve(s.netnsPinDir)] : [])];
  if (p === `/proc/${pid}/ns/net` || dirs.includes(path.dirname(p))) return p;
  throw settingError(
    `${name} is not a netns the hook may use`,
    `an annotated netns must be /proc/<the container's pid>/ns/net or a pin of it directly inside ${dirs.join(' or ')}; ` +
      `give any other netns with the hook flag ${HOOK_FLAGS.netns}${s.netnsPinDir ? '' : ` or its dir with ${HOOK_FLAGS.netnsPinDir}`}`,
  );
}

/**
 * FLAGS win over ANNOTATIONS; paths must be absolute (hooks run with an unknown
 * cwd). PID is the OCI state's: an annotated netns may name that process's netns.
 */
export function resolveSettings(flags: CniHookSettings, annotations: Record<string, string>, pid?: number): CniHookSettings {
  for (const a of Object.keys(annotations)) {
    const k = FLAG_ONLY_ANNOTATIONS[a];
    if (k) throw settingError(`the annotation ${a} is refused: ${k} is a path root acts on`, `set it with the hook flag ${HOOK_FLAGS[k]} in config.json's hooks (cniHooks() does)`);
  }
  const out: CniHookSettings = {};
  for (const k of KEYS) {
    const fromFlag = flags[k] !== undefined;
    const v = fromFlag ? flags[k] : isAnnotated(k) ? annotations[HOOK_ANNOTATIONS[k]] : undefined;
    if (v === undefined) continue;
    const name = fromFlag ? HOOK_FLAGS[k] : HOOK_ANNOTATIONS[k as AnnotatedSetting];
    if (typeof v !== 'string' || v === '' || v.includes('\0')) throw invalidArg(`${name} must be a non-empty string without NUL`);
    const max = MAX_BYTES[k] ?? PATH_MAX;
    if (Buffer.byteLength(v) > max) throw invalidArg(`${name}=${showValue(v)} is longer than ${max} bytes`);
    if (PATHS.includes(k) && !path.isAbsolute(v)) throw invalidArg(`${name} must be an absolute path, not ${showValue(v)}`);
    if (k === 'ifName' || k === 'network') {
      // Their own rules say what is wrong (the length check above bounds what they quote);
      // names also reach logs and file names, so no control characters either.
      if (k === 'ifName') validateIfName(v);
      else validateNetworkName(v);
      if (CONTROL.test(v)) throw invalidArg(`${name}=${showValue(v)} holds control characters`);
    }
    out[k] = v;
  }
  if (out.netns !== undefined && flags.netns === undefined) out.netns = checkAnnotatedNetns(out.netns, pid, out);
  if (out.conflist && (out.confDir || out.network)) {
    throw invalidArg(`give either ${HOOK_FLAGS.conflist} or ${HOOK_FLAGS.confDir}/${HOOK_FLAGS.network} (annotation ${HOOK_ANNOTATIONS.network}), not both`);
  }
  return out;
}

/** Settings as CLI flags (for hook entries in config.json). */
export function settingsToFlags(s: CniHookSettings): string[] {
  const out: string[] = [];
  for (const k of KEYS) if (s[k] !== undefined) out.push(HOOK_FLAGS[k], s[k]!);
  return out;
}
