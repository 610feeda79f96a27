// ADD, DEL and CHECK of a network config list, as libcni does them: ADD in
// order threading prevResult and caching the result; DEL in reverse with the
// cached result, tolerant of what is already gone; CHECK with the cached result.
import path from 'node:path';
import { isAbort, throwIfAborted, validateSignal } from '../abort.js';
import { invalidArg, NstoolError } from '../errors.js';
import { inspectNs, probeNs } from '../kernel/ns.js';
import { CacheEntry, CacheKey, ResultCache } from './cache.js';
import type { NetworkConfigList, PluginConf } from './config.js';
import { CNI_ERROR, CniError } from './errors.js';
import { formatCniArgs, validateContainerId, validateIfName } from './names.js';
import { ExecOptions, findPlugin, invokePlugin, pluginPath, queryPluginVersions } from './plugin.js';
import { CniVerb, compareVersions, pluginTakes, versionHasVerb } from './version.js';

export const DEFAULT_IFNAME = 'eth0';

export interface CniInterface {
  name: string;
  mac?: string;
  sandbox?: string;
  [key: string]: unknown;
}
export interface CniIpConfig {
  address: string;
  gateway?: string;
  interface?: number;
  [key: string]: unknown;
}
/** A CNI result (spec 0.3.0 and later; older versions keep their own keys). */
export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIpConfig[];
  routes?: { dst: string; gw?: string }[];
  dns?: { nameservers?: string[]; domain?: string; search?: string[]; options?: string[] };
  [key: string]: unknown;
}

export interface RuntimeConf {
  containerId: string;
  /** Path of the container's netns (a pin or /proc/<pid>/ns/net). */
  netns: string;
  ifName?: string;
  /** CNI_ARGS, as pairs or an object. */
  args?: ReadonlyArray<readonly [string, string]> | Record<string, string>;
  /** Capability args (portMappings, bandwidth...), given to plugins that declare them. */
  capabilityArgs?: Record<string, unknown>;
}

export interface CniOptions extends ExecOptions {
  /** Plugin search path (default /usr/lib/cni:/opt/cni/bin). */
  pluginPath?: string | readonly string[];
  /** Result cache directory (default /var/lib/cni, shared with libcni). */
  cacheDir?: string;
}

export interface AddOptions extends CniOptions {
  /** Run DEL when ADD fails, since ADD can allocate before failing (default true). */
  delOnFailure?: boolean;
  /**
   * Who made the cached result (an nstool instance's state dir), written
   * into it with the result: one write, so no crash leaves it unmarked.
   */
  cacheOwner?: string;
}

export interface DelOutcome {
  /** The netns given to plugins ("" when the pin was gone or stale). */
  netns: string;
  /** Whether a cached result was found and passed as prevResult. */
  cached: boolean;
  /** Set when the cache file was there but unreadable (treated as no result). */
  cacheCorrupt?: string;
}

interface Prepared {
  list: NetworkConfigList;
  containerId: string;
  ifName: string;
  args: string;
  argPairs: [string, string][];
  capabilityArgs: Record<string, unknown>;
  dirs: string[];
  cache: ResultCache;
  key: CacheKey;
}

function prepare(list: NetworkConfigList, rt: RuntimeConf, o: CniOptions): Prepared {
  if (!list || typeof list !== 'object' || !Array.isArray(list.plugins)) throw invalidArg('a network config list is required (see loadNetworkList)', 'ERR_INVALID_ARG_TYPE');
  if (!rt || typeof rt !== 'object') throw invalidArg('runtime config must be an object', 'ERR_INVALID_ARG_TYPE');
  const containerId = validateContainerId(rt.containerId);
  const ifName = validateIfName(rt.ifName ?? DEFAULT_IFNAME);
  if (typeof rt.netns !== 'string' || rt.netns.includes('\0') || (rt.netns !== '' && !path.isAbsolute(rt.netns))) {
    throw invalidArg('netns must be an absolute path');
  }
  const argPairs: [string, string][] = Array.isArray(rt.args)
    ? rt.args.map(([k, v]) => [k, v] as [string, string])
    : Object.entries((rt.args as Record<string, string> | undefined) ?? {});
  const args = formatCniArgs(argPairs);
  if (rt.capabilityArgs !== undefined && (rt.capabilityArgs === null || typeof rt.capabilityArgs !== 'object')) {
    throw invalidArg('capabilityArgs must be an object', 'ERR_INVALID_ARG_TYPE');
  }
  if (o.nodeNetns !== undefined && (typeof o.nodeNetns !== 'string' || !path.isAbsolute(o.nodeNetns))) throw invalidArg('nodeNetns must be an absolute path');
  throwIfAborted(validateSignal(o.signal), `network ${list.name}: ${containerId}`);
  const cache = new ResultCache(o.cacheDir);
  const key = { network: list.name, containerId, ifName };
  cache.pathOf(key);
  return { list, containerId, ifName, args, argPairs, capabilityArgs: rt.capabilityArgs ?? {}, dirs: pluginPath(o.pluginPath), cache, key };
}

/** What the plugin reads on stdin: its conf plus name, version, runtimeConfig, prevResult. */
export function pluginStdin(list: NetworkConfigList, plugin: PluginConf, capabilityArgs: Record<string, unknown>, prevResult?: unknown): Record<string, unknown> {
  const conf: Record<string, unknown> = { ...plugin, cniVersion: list.cniVersion, name: list.name };
  const rc: Record<string, unknown> = {};
  for (const [cap, on] of Object.entries(plugin.capabilities ?? {})) {
    if (on && capabilityArgs[cap] !== undefined) rc[cap] = capabilityArgs[cap];
  }
  if (Object.keys(rc).length) conf['runtimeConfig'] = { ...((plugin['runtimeConfig'] as object | undefined) ?? {}), ...rc };
  if (prevResult !== undefined) conf['prevResult'] = prevResult;
  else delete conf['prevResult'];
  return conf;
}

/** Fails unless PATH is a network namespace (not missing, not a stale pin). */
async function requireNetns(p: string, what: string): Promise<void> {
  const info = await inspectNs(p, { follow: true, context: `inspecting ${what} ${p}` });
  if (info.state !== 'ns' || info.type !== 'net') {
    throw new NstoolError(`${what} ${p} is not a network namespace`, {
      code: 'EINVAL',
      path: p,
      hint: info.state === 'ns' ? 'give the path of a netns' : 'a stale pin (nothing mounted): delete it and create the netns again',
    });
  }
}

/** For DEL: the netns if it is one, "" if it is gone or a stale pin (plugins then skip it). */
async function netnsForDel(p: string): Promise<string> {
  if (p === '') return '';
  const info = await probeNs(p, { follow: true });
  if (info.state !== 'ns') return '';
  if (info.type !== 'net') throw invalidArg(`${p} is a namespace but not a network namespace`);
  return p;
}

/**
 * The values of independent reads run at once (each a trip to the pool);
 * when some fail, the first failure in list order is thrown, as if they had
 * run one after the other.
 */
async function inOrder<T extends readonly unknown[]>(ps: T): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const settled = await Promise.allSettled(ps);
  for (const r of settled) if (r.status === 'rejected') throw r.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<unknown>).value) as { -readonly [K in keyof T]: Awaited<T[K]> };
}

async function checkVersion(file: string, p: Prepared, verb: CniVerb, o: CniOptions): Promise<void> {
  const supported = await queryPluginVersions(file, p.dirs, o);
  if (!pluginTakes(supported, p.list.cniVersion, verb)) {
    const type = path.basename(file);
    throw new CniError(`CNI plugin ${type} does not support ${verb} at cniVersion ${p.list.cniVersion} (it supports ${supported.join(', ')})`, {
      plugin: type,
      cniCode: 1,
      cniMsg: 'incompatible CNI versions',
      hint: `set the network's cniVersion to one of: ${supported.join(', ')}`,
    });
  }
}

function invocation(p: Prepared, command: CniVerb, netns: string, stdin: Record<string, unknown>) {
  return { command, containerId: p.containerId, netns, ifName: p.ifName, args: p.args, pluginDirs: p.dirs, stdin: JSON.stringify(stdin) };
}

function configBase64(list: NetworkConfigList): string {
  const { source: _s, ...plain } = list;
  return Buffer.from(JSON.stringify(plain)).toString('base64');
}

/** Runs ADD for every plugin in order; caches and returns the final result. */
export async function addNetwork(list: NetworkConfigList, rt: RuntimeConf, o: AddOptions = {}): Promise<CniResult> {
  const p = prepare(list, rt, o);
  if (o.cacheOwner !== undefined && (typeof o.cacheOwner !== 'string' || o.cacheOwner.includes('\0'))) {
    throw invalidArg('cacheOwner must be a string without NUL', 'ERR_INVALID_ARG_TYPE');
  }
  // Everything that can be checked without allocating comes first.
  const files = p.list.plugins.map((pl) => findPlugin(pl.type, p.dirs));
  await inOrder([o.nodeNetns ? requireNetns(o.nodeNetns, 'node netns') : undefined, requireNetns(rt.netns, 'netns')]);
  for (const f of files) await checkVersion(f, p, 'ADD', o);

  let prev: unknown;
  try {
    for (const [i, plugin] of p.list.plugins.entries()) {
      prev = await invokePlugin(files[i]!, invocation(p, 'ADD', rt.netns, pluginStdin(p.list, plugin, p.capabilityArgs, prev)), o);
    }
    if (!prev || typeof prev !== 'object') {
      throw new CniError(`network ${p.list.name}: the last plugin returned no result`, { plugin: p.list.plugins.at(-1)!.type, cniCode: 999 });
    }
    const entry: CacheEntry = {
      kind: 'cniCacheV1',
      containerId: p.containerId,
      ifName: p.ifName,
      networkName: p.list.name,
      netns: rt.netns,
      config: configBase64(p.list),
      cniArgs: p.argPairs,
      capabilityArgs: p.capabilityArgs,
      result: prev as Record<string, unknown>,
      ...(o.cacheOwner !== undefined ? { owner: o.cacheOwner } : {}),
    };
    await p.cache.write(p.key, entry);
    return prev as CniResult;
  } catch (err) {
    if (o.delOnFailure ?? true) {
      // A failed ADD may have allocated (an IP, a veth): DEL undoes it,
      // also (and above all) after an abort: it runs to the end.
      try {
        const { signal: _s, ...unsignalled } = o;
        await delNetwork(list, rt, unsignalled);
      } catch (delErr) {
        (err as { delError?: unknown }).delError = delErr;
      }
    }
    throw err;
  }
}

/**
 * Runs DEL for every plugin in reverse order, with the cached result as
 * prevResult (none if missing or unreadable). Keeps going past a failing
 * plugin so the others still release what they hold, then throws the first
 * error; the cache entry is removed only when every plugin succeeded.
 */
export async function delNetwork(list: NetworkConfigList, rt: RuntimeConf, o: CniOptions = {}): Promise<DelOutcome> {
  const p = prepare(list, rt, o);
  const [, netns, read] = await inOrder([o.nodeNetns ? requireNetns(o.nodeNetns, 'node netns') : undefined, netnsForDel(rt.netns), p.cache.read(p.key)] as const);
  // Spec 0.4.0 brought prevResult to DEL; older plugins would reject it.
  const prev = read.state === 'ok' && compareVersions(p.list.cniVersion, '0.4.0') >= 0 ? read.entry.result : undefined;
  const errors: unknown[] = [];
  for (const plugin of [...p.list.plugins].reverse()) {
    try {
      const file = findPlugin(plugin.type, p.dirs);
      await checkVersion(file, p, 'DEL', o);
      await invokePlugin(file, invocation(p, 'DEL', netns, pluginStdin(p.list, plugin, p.capabilityArgs, prev)), o);
    } catch (err) {
      // An abort stops here; the cache entry stays, so DEL can run again.
      if (isAbort(err)) throw err;
      errors.push(err);
    }
  }
  if (errors.length) {
    const first = errors[0] as Error & { otherErrors?: unknown[] };
    if (errors.length > 1) first.otherErrors = errors.slice(1);
    throw first;
  }
  await p.cache.remove(p.key);
  const out: DelOutcome = { netns, cached: read.state === 'ok' };
  if (read.state === 'corrupt') out.cacheCorrupt = read.reason;
  return out;
}

/** Runs CHECK for every plugin in order with the cached ADD result. */
export async function checkNetwork(list: NetworkConfigList, rt: RuntimeConf, o: CniOptions = {}): Promise<void> {
  const p = prepare(list, rt, o);
  if (!versionHasVerb(p.list.cniVersion, 'CHECK')) {
    throw new CniError(`network ${p.list.name}: cniVersion ${p.list.cniVersion} has no CHECK (0.4.0 and later do)`, {
      plugin: p.list.name,
      cniCode: 1,
      cniMsg: 'incompatible CNI versions',
    });
  }
  if (p.list.disableCheck) return;
  const files = p.list.plugins.map((pl) => findPlugin(pl.type, p.dirs));
  if (o.nodeNetns) await requireNetns(o.nodeNetns, 'node netns');
  await requireNetns(rt.netns, 'netns');
  const read = await p.cache.read(p.key);
  if (read.state !== 'ok') {
    throw new NstoolError(`network ${p.list.name}: no cached ADD result for ${p.containerId}/${p.ifName}${read.state === 'corrupt' ? ` (${read.reason})` : ''}`, {
      code: 'ERR_NSTOOL_CNI_CACHE',
      path: p.cache.pathOf(p.key),
      hint: 'CHECK needs the result of a previous ADD; run ADD (after DEL) again',
    });
  }
  for (const f of files) await checkVersion(f, p, 'CHECK', o);
  for (const [i, plugin] of p.list.plugins.entries()) {
    await invokePlugin(files[i]!, invocation(p, 'CHECK', rt.netns, pluginStdin(p.list, plugin, p.capabilityArgs, read.entry.result)), o);
  }
}

/** The cached ADD result for a container, or null (missing or unreadable). */
export async function cachedResult(list: NetworkConfigList, rt: Omit<RuntimeConf, 'netns'> & { netns?: string }, o: CniOptions = {}): Promise<CniResult | null> {
  const p = prepare(list, { ...rt, netns: rt.netns ?? '' }, o);
  const r = await p.cache.read(p.key);
  return r.state === 'ok' ? (r.entry.result as CniResult) : null;
}

/** The spec versions the plugin TYPE supports (asked with VERSION, then cached). */
export async function pluginVersions(type: string, o: Pick<CniOptions, 'pluginPath' | 'timeoutMs'> = {}): Promise<string[]> {
  const dirs = pluginPath(o.pluginPath);
  return queryPluginVersions(findPlugin(type, dirs), dirs, o);
}

/** A network config list bound to options: add/del/check by runtime config. */
export class CniNetwork {
  constructor(
    readonly list: NetworkConfigList,
    readonly options: CniOptions = {},
  ) {
    if (!list || !Array.isArray(list.plugins)) throw invalidArg('a network config list is required', 'ERR_INVALID_ARG_TYPE');
  }
  get name(): string {
    return this.list.name;
  }
  add(rt: RuntimeConf, o: Pick<AddOptions, 'delOnFailure'> = {}): Promise<CniResult> {
    return addNetwork(this.list, rt, { ...this.options, ...o });
  }
  del(rt: RuntimeConf): Promise<DelOutcome> {
    return delNetwork(this.list, rt, this.options);
  }
  check(rt: RuntimeConf): Promise<void> {
    return checkNetwork(this.list, rt, this.options);
  }
  cachedResult(rt: Omit<RuntimeConf, 'netns'>): Promise<CniResult | null> {
    return cachedResult(this.list, rt, this.options);
  }
}

export { CNI_ERROR };
