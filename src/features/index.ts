// features(): what this host, its runtime and its CNI plugins can do for
// pods with user namespaces, probed for real and cached per boot and per
// runtime binary (see cache.ts for everything the cache depends on).
import { mkdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { invalidArg, requireAbsolute } from '../errors.js';
import { clearVersionCache, pluginPath as checkPluginPath } from '../cni/plugin.js';
import { DEFAULT_STATE_DIR } from '../pod/container.js';
import { clearIdmapCache } from '../runc/idmap-gate.js';
import { cacheFile, cacheKey, DEFAULT_FEATURES_CACHE_DIR, readCache, writeCache } from './cache.js';
import {
  cniFacts,
  findRuntime,
  fsProbes,
  idmapStrategy,
  kernelFacts,
  listPlugins,
  readBootId,
  readSysctls,
  rroFacts,
  runtimeFacts,
  unprivilegedUserns,
} from './probes.js';
import { FEATURES_SCHEMA, featureChecks, FeaturesData, FeaturesReport } from './report.js';

export { DEFAULT_FEATURES_CACHE_DIR } from './cache.js';
export { PROBE_UID_BASE } from './probes.js';
export { featureChecks, formatFeatures, FEATURES_SCHEMA } from './report.js';
export type * from './report.js';

export interface FeaturesOptions {
  /** OCI runtime binary, a name looked up in PATH or a path (default "runc"). */
  runtime?: string;
  /** A root filesystem to probe an idmapped mount of (as pods get theirs). */
  rootfs?: string;
  /** CNI plugin dirs (default /usr/lib/cni:/opt/cni/bin). */
  pluginPath?: string | readonly string[];
  /** Where bundles live (default /run/nstool/containers): the idmap probes run on its parent's filesystem. */
  stateDir?: string;
  /** Cache dir (default /run/nstool/features, 0700). */
  cacheDir?: string;
  /** Probe again instead of reading the cache (the new answer is cached). */
  noCache?: boolean;
}

interface Prepared {
  runtime: string;
  rootfs?: string;
  pluginPath: string[];
  stateDir: string;
  workParent: string;
  /** workParent is nstool's own /run/nstool, made (0711) when missing. */
  createParent: boolean;
  cacheDir: string;
  defaultCacheDir: boolean;
  noCache: boolean;
}

let nstoolVersion: string | undefined;
function packageVersion(): string {
  try {
    nstoolVersion ??= (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    nstoolVersion = 'unknown';
  }
  return nstoolVersion;
}

/** DIR or the nearest dir above it that exists. */
function existingAncestor(dir: string): string {
  for (let d = dir; ; d = path.dirname(d)) {
    try {
      if (statSync(d).isDirectory()) return d;
    } catch {
      // keep climbing
    }
    if (d === path.dirname(d)) return d;
  }
}

function prepare(o: FeaturesOptions): Prepared {
  if (o === null || typeof o !== 'object') throw invalidArg('options must be an object', 'ERR_INVALID_ARG_TYPE');
  const runtime = o.runtime ?? 'runc';
  if (typeof runtime !== 'string' || runtime === '' || runtime.includes('\0')) throw invalidArg('runtime must be a non-empty string');
  let rootfs: string | undefined;
  if (o.rootfs !== undefined) {
    requireAbsolute(o.rootfs, 'rootfs');
    let st;
    try {
      rootfs = realpathSync(o.rootfs);
      st = statSync(rootfs);
    } catch {
      st = undefined;
    }
    if (!st?.isDirectory()) throw invalidArg(`rootfs ${JSON.stringify(o.rootfs)} is not a directory`);
  }
  const pluginPath = checkPluginPath(o.pluginPath as string | string[] | undefined);
  const stateDir = path.normalize(requireAbsolute(o.stateDir ?? DEFAULT_STATE_DIR, 'stateDir'));
  const cacheDir = path.normalize(requireAbsolute(o.cacheDir ?? DEFAULT_FEATURES_CACHE_DIR, 'cacheDir'));
  const parent = path.dirname(stateDir);
  // nstool's own /run/nstool is made when missing; another place is probed where it exists.
  const createParent = stateDir === DEFAULT_STATE_DIR;
  return {
    runtime,
    ...(rootfs !== undefined ? { rootfs } : {}),
    pluginPath,
    stateDir,
    workParent: createParent ? parent : existingAncestor(parent),
    createParent,
    cacheDir,
    defaultCacheDir: cacheDir === DEFAULT_FEATURES_CACHE_DIR,
    noCache: o.noCache === true,
  };
}

/** The CRI summary: can a userns pod run here end to end, and can the runtime make rro mounts. */
function criOf(d: { create: FeaturesData['userns']['create']; runtime: FeaturesData['runtime']; idmap: FeaturesData['idmap']; rro: FeaturesData['rro'] }): FeaturesData['cri'] {
  // Pods idmap their rootfs (and volumes) on the bundles' and rootfs's filesystems, under an overlay.
  const fsOk = d.idmap.filesystems.every((f) => f.role === 'tmpfs' || f.ok);
  return {
    userNamespaces: d.create.ok && d.runtime.found && d.idmap.strategy !== 'none' && fsOk && d.idmap.overlay.ok,
    recursiveReadOnlyMounts: d.rro.supported,
  };
}

/**
 * Probes what this host supports for pods with user namespaces: user
 * namespaces (made for real), idmapped mounts per filesystem, overlay over
 * an idmapped lower, pidfd/clone3/CLONE_INTO_CGROUP, the runtime (version,
 * features, the idmap strategy nstool will use, rro) and the CNI plugins.
 * Cached per boot and per runtime binary; bad options throw before any
 * side effect, a failed probe is reported, never thrown.
 */
export async function features(options: FeaturesOptions = {}): Promise<FeaturesReport> {
  const p = prepare(options);
  // Made before the cache key is taken, which names its filesystem.
  if (p.createParent) mkdirSync(p.workParent, { recursive: true, mode: 0o711 });
  const euid = process.geteuid?.() ?? 0;
  const bootId = readBootId();
  const sysctl = readSysctls();
  const rt = findRuntime(p.runtime);
  const listing = listPlugins(p.pluginPath);
  const key = cacheKey({
    schema: FEATURES_SCHEMA,
    nstoolVersion: packageVersion(),
    bootId,
    euid,
    sysctl,
    runtime: rt,
    ...(p.rootfs !== undefined ? { rootfs: p.rootfs } : {}),
    workParent: p.workParent,
    pluginPath: p.pluginPath,
    plugins: listing,
  });
  const file = cacheFile(p.cacheDir, key);
  if (!p.noCache) {
    const hit = readCache(p.cacheDir, file, key);
    if (hit) return { ...hit, cache: { hit: true, file }, checks: featureChecks(hit) };
  } else {
    // In-process answers too: "probe again" means ask the binaries again.
    clearIdmapCache();
    clearVersionCache();
  }

  const probedAt = new Date().toISOString();
  const kernel = kernelFacts();
  const unprivileged = unprivilegedUserns();
  const [fs, runtime, cni] = await Promise.all([
    fsProbes({ workParent: p.workParent, ...(p.rootfs !== undefined ? { rootfs: p.rootfs } : {}), setgroups: kernel.setgroups }),
    runtimeFacts(rt),
    cniFacts(p.pluginPath, listing),
  ]);
  const bundle = fs.filesystems.find((f) => f.role === 'bundle');
  const mountApi = kernel.syscalls.open_tree.available && kernel.syscalls.mount_setattr.available && kernel.syscalls.move_mount.available;
  const idmap = { kernel: mountApi, filesystems: fs.filesystems, overlay: fs.overlay, ...idmapStrategy(runtime, bundle) };
  const rro = rroFacts(runtime, fs.rroKernel);
  const cri = criOf({ create: fs.create, runtime, idmap, rro });
  // cri first: what most readers look for.
  const data: FeaturesData = {
    schema: FEATURES_SCHEMA,
    nstoolVersion: packageVersion(),
    probedAt,
    bootId,
    euid,
    cri,
    kernel,
    userns: { create: fs.create, unprivileged },
    idmap,
    runtime,
    rro,
    cni,
  };
  const written = await writeCache(p.cacheDir, file, key, data, p.defaultCacheDir);
  return { ...data, cache: { hit: false, file: written ? file : null }, checks: featureChecks(data) };
}
