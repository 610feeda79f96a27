// buildSpec: the config.json a CRI runtime would hand runc for one container.
// Every input is checked before anything is built; the only reads are the
// rootfs's /etc/passwd and /etc/group and, in a user namespace, the mount
// table and the joined namespaces (type, owner, setgroups).
import path from 'node:path';
import { invalidArg, NstoolError } from '../errors.js';
import { validateIdMap, type IdMapping } from '../idmap.js';
import {
  DEFAULT_CAPABILITIES,
  DEFAULT_DEVICES,
  DEFAULT_MASKED_PATHS,
  DEFAULT_READONLY_PATHS,
  DEFAULT_RLIMITS,
  KNOWN_CAPABILITIES,
  deviceRules,
} from './defaults.js';
import { callerMount, checkAbsPath, mergeMounts, readMountInfo, standardMounts } from './mounts.js';
import { checkJoinedNamespaces, checkJoinedPodNamespaces, checkSupplementaryGroups } from './namespaces.js';
import { mergeArgs, mergeEnv, pickCwd } from './process-args.js';
import {
  OCI_VERSION,
  type BuildSpecOptions,
  type Device,
  type Hook,
  type Hooks,
  type Namespace,
  type Rlimit,
  type Spec,
} from './types.js';
import { resolveUser } from './user.js';

const HOOK_KINDS = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'] as const;
// Wider than RFC 1123 (sandbox ids may hold "_"), narrow enough to be a name.
const HOSTNAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

function stringRecord(v: unknown, what: string): Record<string, string> | undefined {
  if (v === undefined) return undefined;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw invalidArg(`${what} must be an object of strings`, 'ERR_INVALID_ARG_TYPE');
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string') throw invalidArg(`${what}.${k} must be a string`, 'ERR_INVALID_ARG_TYPE');
    if (k === '' || k.includes('\0') || val.includes('\0')) throw invalidArg(`${what}: keys must be non-empty and nothing may contain NUL`);
    out[k] = val;
  }
  return out;
}

/** A host name buildSpec (and a sandbox) takes; returns it. */
export function validateHostname(h: unknown): string {
  if (typeof h !== 'string' || !HOSTNAME_RE.test(h)) {
    throw invalidArg(`hostname ${JSON.stringify(h)} is not a valid host name (letters, digits, "_", "-", ".", at most 64)`);
  }
  return h;
}

/** "net_admin" and "CAP_NET_ADMIN" alike; unknown names are refused, not dropped. */
export function normalizeCapabilities(caps: unknown, what = 'capabilities'): string[] {
  if (!Array.isArray(caps)) throw invalidArg(`${what} must be an array of capability names`, 'ERR_INVALID_ARG_TYPE');
  const out: string[] = [];
  for (const c of caps) {
    if (typeof c !== 'string') throw invalidArg(`${what} must be an array of capability names`, 'ERR_INVALID_ARG_TYPE');
    const name = c.toUpperCase().startsWith('CAP_') ? c.toUpperCase() : `CAP_${c.toUpperCase()}`;
    if (!KNOWN_CAPABILITIES.has(name)) {
      throw new NstoolError(`${what}: unknown capability "${c}"`, { code: 'ERR_NSTOOL_UNKNOWN_CAPABILITY', hint: 'see capabilities(7)' });
    }
    if (!out.includes(name)) out.push(name);
  }
  return out;
}

function checkRlimits(v: unknown): Rlimit[] {
  if (!Array.isArray(v)) throw invalidArg('rlimits must be an array', 'ERR_INVALID_ARG_TYPE');
  const seen = new Set<string>();
  return v.map((r: Rlimit, i) => {
    const ok = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0;
    if (typeof r?.type !== 'string' || !/^RLIMIT_[A-Z]+$/.test(r.type)) throw invalidArg(`rlimits[${i}].type must look like RLIMIT_NOFILE`);
    if (!ok(r.soft) || !ok(r.hard)) throw invalidArg(`rlimits[${i}]: soft and hard must be non-negative integers`);
    if (r.soft > r.hard) throw invalidArg(`rlimits[${i}]: soft ${r.soft} exceeds hard ${r.hard}`);
    if (seen.has(r.type)) throw invalidArg(`rlimits: ${r.type} is given twice`);
    seen.add(r.type);
    return { type: r.type, soft: r.soft, hard: r.hard };
  });
}

function checkHooks(v: unknown): Hooks {
  if (v === null || typeof v !== 'object') throw invalidArg('hooks must be an object', 'ERR_INVALID_ARG_TYPE');
  const out: Hooks = {};
  for (const [kind, list] of Object.entries(v)) {
    if (!(HOOK_KINDS as readonly string[]).includes(kind)) throw invalidArg(`hooks: unknown kind "${kind}" (known: ${HOOK_KINDS.join(', ')})`);
    if (!Array.isArray(list)) throw invalidArg(`hooks.${kind} must be an array`, 'ERR_INVALID_ARG_TYPE');
    out[kind as keyof Hooks] = list.map((h: Hook, i) => {
      const what = `hooks.${kind}[${i}]`;
      const hook: Hook = { path: checkAbsPath(h?.path, `${what}.path`) };
      for (const k of ['args', 'env'] as const) {
        const a = h[k];
        if (a === undefined) continue;
        if (!Array.isArray(a) || a.some((s) => typeof s !== 'string' || s.includes('\0'))) throw invalidArg(`${what}.${k} must be an array of strings`);
        hook[k] = [...a];
      }
      if (h.timeout !== undefined) {
        if (!Number.isInteger(h.timeout) || h.timeout < 1) throw invalidArg(`${what}.timeout must be a whole number of seconds >= 1`);
        hook.timeout = h.timeout;
      }
      return hook;
    });
  }
  return out;
}

function checkDevices(v: unknown): Device[] {
  if (!Array.isArray(v)) throw invalidArg('devices must be an array', 'ERR_INVALID_ARG_TYPE');
  return v.map((d: Device, i) => {
    const what = `devices[${i}]`;
    if (!['c', 'b', 'u', 'p'].includes(d?.type)) throw invalidArg(`${what}.type must be c, b, u or p`);
    const p = checkAbsPath(d.path, `${what}.path`);
    if (!p.startsWith('/dev/')) throw invalidArg(`${what}.path must be under /dev`);
    const dev: Device = { type: d.type, path: p };
    const int = (n: unknown, max: number) => Number.isInteger(n) && (n as number) >= 0 && (n as number) <= max;
    if (d.type !== 'p') {
      if (!int(d.major, 2 ** 32 - 1) || !int(d.minor, 2 ** 32 - 1)) throw invalidArg(`${what}: major and minor are needed for type ${d.type}`);
      dev.major = d.major!;
      dev.minor = d.minor!;
    }
    dev.fileMode = d.fileMode ?? 0o666;
    if (!int(dev.fileMode, 0o777)) throw invalidArg(`${what}.fileMode must be a permission mode (0 to 0777)`);
    for (const k of ['uid', 'gid'] as const) {
      const n = d[k] ?? 0;
      if (!int(n, 2 ** 32 - 1)) throw invalidArg(`${what}.${k} must be an id`);
      dev[k] = n;
    }
    return dev;
  });
}

function checkPathList(v: unknown, what: string): string[] {
  if (!Array.isArray(v)) throw invalidArg(`${what} must be an array of paths`, 'ERR_INVALID_ARG_TYPE');
  return v.map((p, i) => checkAbsPath(p, `${what}[${i}]`));
}

/** Builds the runtime config; throws NstoolError on bad input before reading anything. */
export function buildSpec(opts: BuildSpecOptions): Spec {
  if (opts === null || typeof opts !== 'object') throw invalidArg('options must be an object', 'ERR_INVALID_ARG_TYPE');
  const rootfs = checkAbsPath(opts.rootfs, 'rootfs');

  // Namespaces first: they decide what the mounts may look like.
  const userns = opts.usernsPath !== undefined;
  let uidMappings: IdMapping[] | undefined;
  let gidMappings: IdMapping[] | undefined;
  if (userns) {
    checkAbsPath(opts.usernsPath, 'usernsPath');
    if (!opts.uidMappings || !opts.gidMappings) {
      throw new NstoolError('usernsPath needs uidMappings and gidMappings', {
        code: 'ERR_NSTOOL_MISSING_MAPPINGS',
        hint: "runc 1.1.5 refuses to join a user namespace without them; pass the namespace's own maps (inspectNetns gives them)",
      });
    }
    validateIdMap(opts.uidMappings, 'uidMappings');
    validateIdMap(opts.gidMappings, 'gidMappings');
    uidMappings = opts.uidMappings.map((m) => ({ containerID: m.containerID, hostID: m.hostID, size: m.size }));
    gidMappings = opts.gidMappings.map((m) => ({ containerID: m.containerID, hostID: m.hostID, size: m.size }));
  } else if (opts.uidMappings || opts.gidMappings) {
    throw invalidArg('uidMappings/gidMappings are only used with usernsPath (nstool never has runc make a user namespace)');
  }
  if (opts.netnsPath !== undefined) {
    checkAbsPath(opts.netnsPath, 'netnsPath');
    if (opts.hostNetwork) throw invalidArg('netnsPath and hostNetwork exclude each other');
  }
  if (opts.ipcPath !== undefined) checkAbsPath(opts.ipcPath, 'ipcPath');
  if (opts.utsPath !== undefined) {
    checkAbsPath(opts.utsPath, 'utsPath');
    // runc 1.1.5 would set it in the joined namespace: every container of the pod would see it.
    if (opts.hostname !== undefined) throw invalidArg('hostname cannot be given with utsPath: the joined uts namespace keeps the pod\'s host name');
  }

  const image = opts.image;
  if (image !== undefined && (image === null || typeof image !== 'object')) throw invalidArg('image must be an object', 'ERR_INVALID_ARG_TYPE');
  const args = mergeArgs(image, opts.command, opts.args);
  const env = mergeEnv(image?.env, opts.env);
  const cwd = pickCwd(image, opts.cwd);

  if (opts.hostname !== undefined) validateHostname(opts.hostname);
  const annotations = stringRecord(opts.annotations, 'annotations');
  const sysctl = stringRecord(opts.sysctl, 'sysctl');
  const caps = opts.capabilities === undefined ? [...DEFAULT_CAPABILITIES] : normalizeCapabilities(opts.capabilities);
  const ambient = opts.ambientCapabilities === undefined ? [] : normalizeCapabilities(opts.ambientCapabilities, 'ambientCapabilities');
  for (const c of ambient) if (!caps.includes(c)) throw invalidArg(`ambientCapabilities: ${c} is not in the capability set`);
  const rlimits = opts.rlimits === undefined ? DEFAULT_RLIMITS.map((r) => ({ ...r })) : checkRlimits(opts.rlimits);
  const hooks = opts.hooks === undefined ? undefined : checkHooks(opts.hooks);
  const devices = [...DEFAULT_DEVICES.map((d) => ({ ...d })), ...(opts.devices === undefined ? [] : checkDevices(opts.devices))];
  const masked = opts.maskedPaths === undefined ? [...DEFAULT_MASKED_PATHS] : checkPathList(opts.maskedPaths, 'maskedPaths');
  const readonly = opts.readonlyPaths === undefined ? [...DEFAULT_READONLY_PATHS] : checkPathList(opts.readonlyPaths, 'readonlyPaths');
  if (opts.seccomp !== undefined && (opts.seccomp === null || typeof opts.seccomp !== 'object' || typeof opts.seccomp['defaultAction'] !== 'string')) {
    throw invalidArg('seccomp must be an OCI seccomp object with a defaultAction', 'ERR_INVALID_ARG_TYPE');
  }
  if (opts.cgroupsPath !== undefined && (typeof opts.cgroupsPath !== 'string' || opts.cgroupsPath === '' || opts.cgroupsPath.includes('\0'))) {
    throw invalidArg('cgroupsPath must be a non-empty string');
  }
  if (opts.umask !== undefined && (!Number.isInteger(opts.umask) || opts.umask < 0 || opts.umask > 0o777)) {
    throw invalidArg('umask must be from 0 to 0777');
  }
  const cgroupMount = opts.cgroupMount ?? 'cgroupfs';
  if (!['cgroupfs', 'bind', 'none'].includes(cgroupMount)) throw invalidArg('cgroupMount must be cgroupfs, bind or none');

  let table: ReturnType<typeof readMountInfo> | undefined;
  const ctx = {
    userns,
    podUidMappings: uidMappings,
    podGidMappings: gidMappings,
    mountTable: () => (table ??= readMountInfo()),
  };
  if (opts.mounts !== undefined && !Array.isArray(opts.mounts)) throw invalidArg('mounts must be an array', 'ERR_INVALID_ARG_TYPE');
  const requested = (opts.mounts ?? []).map((r, i) => callerMount(r, i, ctx));
  // A userns can mount sysfs only for a netns it owns: on the host network it gets the host's /sys bound.
  const mounts = mergeMounts(standardMounts({ userns, cgroupMount, sysBind: userns && !!opts.hostNetwork }), requested);

  // The kernel's view of the joined namespaces: what the runtime would trip over.
  if (userns && !opts.namespacesChecked) checkJoinedNamespaces(opts.usernsPath!, opts.netnsPath);
  if (opts.ipcPath !== undefined || opts.utsPath !== undefined) {
    checkJoinedPodNamespaces(
      { ...(opts.ipcPath !== undefined ? { ipc: opts.ipcPath } : {}), ...(opts.utsPath !== undefined ? { uts: opts.utsPath } : {}) },
      // A planned userns may not be pinned yet; the netns's owner is what it will be.
      opts.netnsPath !== undefined ? { netnsPath: opts.netnsPath } : userns && !opts.namespacesChecked ? { usernsPath: opts.usernsPath! } : {},
    );
  }

  // The user last: it is the only part that reads the rootfs.
  const resolved = resolveUser(rootfs, opts.user ?? image?.user);
  if (userns) checkSupplementaryGroups(opts.usernsPath!, resolved.gid, resolved.additionalGids, opts.namespacesChecked?.setgroups);
  const user: Spec['process']['user'] = { uid: resolved.uid, gid: resolved.gid };
  if (opts.umask !== undefined) user.umask = opts.umask;
  if (resolved.additionalGids && resolved.additionalGids.length > 0) user.additionalGids = resolved.additionalGids;

  const namespaces: Namespace[] = [
    { type: 'pid' },
    opts.ipcPath !== undefined ? { type: 'ipc', path: path.normalize(opts.ipcPath) } : { type: 'ipc' },
    opts.utsPath !== undefined ? { type: 'uts', path: path.normalize(opts.utsPath) } : { type: 'uts' },
    { type: 'mount' },
    { type: 'cgroup' },
  ];
  if (opts.netnsPath !== undefined) namespaces.push({ type: 'network', path: path.normalize(opts.netnsPath) });
  else if (!opts.hostNetwork) namespaces.push({ type: 'network' });
  if (userns) namespaces.push({ type: 'user', path: path.normalize(opts.usernsPath!) });

  const spec: Spec = {
    ociVersion: OCI_VERSION,
    process: {
      terminal: opts.terminal ?? false,
      user,
      args,
      env,
      cwd,
      capabilities: {
        bounding: [...caps],
        effective: [...caps],
        permitted: [...caps],
        ...(ambient.length > 0 ? { inheritable: [...ambient], ambient: [...ambient] } : {}),
      },
      rlimits,
      noNewPrivileges: opts.noNewPrivileges ?? true,
    },
    root: { path: rootfs, readonly: opts.readonlyRootfs ?? false },
    mounts,
    linux: {
      namespaces,
      devices,
      resources: { devices: deviceRules(devices) },
      maskedPaths: masked,
      readonlyPaths: readonly,
    },
  };
  if (opts.hostname !== undefined) spec.hostname = opts.hostname;
  if (annotations) spec.annotations = annotations;
  if (hooks) spec.hooks = hooks;
  if (uidMappings && gidMappings) {
    spec.linux.uidMappings = uidMappings;
    spec.linux.gidMappings = gidMappings;
  }
  if (opts.cgroupsPath !== undefined) spec.linux.cgroupsPath = opts.cgroupsPath;
  if (sysctl) spec.linux.sysctl = sysctl;
  if (opts.seccomp) spec.linux.seccomp = structuredClone(opts.seccomp);
  return spec;
}

/** True when some mount asks for an idmapped mount (a runtime must support them). */
export function specNeedsIdmap(spec: unknown): boolean {
  // Takes any value: the runtime gate reads it back from a bundle's config.json.
  const mounts = (spec as { mounts?: unknown } | null)?.mounts;
  if (!Array.isArray(mounts)) return false;
  const has = (v: unknown) => Array.isArray(v) && v.length > 0;
  return mounts.some((m: { uidMappings?: unknown; gidMappings?: unknown; options?: unknown } | null) => {
    if (!m || typeof m !== 'object') return false;
    const opts = Array.isArray(m.options) ? (m.options as unknown[]) : [];
    return has(m.uidMappings) || has(m.gidMappings) || opts.includes('idmap') || opts.includes('ridmap');
  });
}
