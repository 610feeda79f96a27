// The features document: what was probed (data only), the verdict lines
// derived from it, the text table people read, and the check a cached copy
// must pass before it is believed.
import { showName, showText } from '../show.js';

/** Bumped whenever the document's shape changes: older cache files are then ignored. */
export const FEATURES_SCHEMA = 1;

/** A probe that worked, or the error code and message it ended with. */
export interface ProbeOutcome {
  ok: boolean;
  code?: string;
  message?: string;
}

export interface SyscallFact {
  available: boolean;
  /** "ok", or the errno name the probe got (ENOSYS: not in this kernel; EPERM: filtered). */
  result: string;
}

export type SyscallName =
  | 'pidfd_open'
  | 'pidfd_send_signal'
  | 'clone3'
  | 'clone_into_cgroup'
  | 'mount_setattr'
  | 'open_tree'
  | 'move_mount'
  | 'fsopen';

export const SYSCALL_NAMES: readonly SyscallName[] = [
  'pidfd_open',
  'pidfd_send_signal',
  'clone3',
  'clone_into_cgroup',
  'mount_setattr',
  'open_tree',
  'move_mount',
  'fsopen',
];

export interface KernelFacts {
  release: string;
  syscalls: Record<SyscallName, SyscallFact>;
  /** Where cgroup v2 is mounted (CLONE_INTO_CGROUP takes its directories), or null. */
  cgroup2: string | null;
  /** Sysctls, null when the kernel has no such file. */
  sysctl: {
    maxUserNamespaces: number | null;
    unprivilegedUsernsClone: number | null;
    apparmorRestrictUnprivilegedUserns: number | null;
  };
  /** /proc/PID/setgroups exists (needed to write a gid_map without CAP_SETGID in the parent userns). */
  setgroups: boolean;
}

export interface UsernsFacts {
  /** A userns and a netns owned by it, made, mapped and pinned through nstool's own create path. */
  create: ProbeOutcome & { netnsOwnedByUserns?: boolean };
  /** A child that dropped to `uid` (no groups) and called unshare(CLONE_NEWUSER). */
  unprivileged: { allowed: boolean; uid: number; step: string | null; code: string | null };
}

export type FsRole = 'bundle' | 'tmpfs' | 'rootfs';

export interface FsProbe extends ProbeOutcome {
  role: FsRole;
  /** Where: the dir bundles' filesystem was probed in, the rootfs; null for the fresh tmpfs. */
  path: string | null;
  fsType: string | null;
  /** The owner on disk, the owner the probe map should show, and what the idmapped mount showed. */
  diskUid?: number;
  expectedUid?: number;
  shownUid?: number;
}

export interface OverlayProbe extends ProbeOutcome {
  /** The owner a copied-up file got in the upper dir, and the owner it should get. */
  copyUpUid?: number;
  expectedUid?: number;
}

export type IdmapStrategy = 'runtime' | 'native' | 'none';

export interface IdmapFacts {
  /** open_tree, mount_setattr and move_mount are there. */
  kernel: boolean;
  filesystems: FsProbe[];
  /** overlayfs over an idmapped read-only lower layer, as pod rootfs use it. */
  overlay: OverlayProbe;
  /**
   * Who makes a pod's idmapped volumes: the runtime (its features say so),
   * nstool itself (staging mounts handed over as plain binds), or nobody.
   */
  strategy: IdmapStrategy;
  reason: string;
}

export interface RuntimeFacts {
  binary: string;
  /** The resolved binary (realpath), null when not found. */
  path: string | null;
  found: boolean;
  name: string | null;
  version: string | null;
  versionError?: ProbeOutcome;
  /** The runtime's `features` document, or null when it has none. */
  features: Record<string, unknown> | null;
  featuresError?: ProbeOutcome;
  /** The idmap gate's answer for this runtime (src/runc/idmap-gate.ts). */
  idmap: { supported: boolean; reason?: string };
}

export interface RroFacts {
  supported: boolean;
  /** The runtime lists "rro" among its mount options. */
  runtime: boolean;
  /** A detached recursive mount tree could be made read-only recursively (mount_setattr AT_RECURSIVE). */
  kernel: ProbeOutcome;
  reason: string;
}

export interface CniPluginFacts {
  name: string;
  path: string;
  supportedVersions: string[] | null;
  code?: string;
  message?: string;
}

export interface CniFacts {
  pluginPath: string[];
  dirs: Array<{ path: string; exists: boolean }>;
  plugins: CniPluginFacts[];
}

/** What a CRI runtime handler would report (RuntimeHandlerFeatures). */
export interface CriFeatures {
  userNamespaces: boolean;
  recursiveReadOnlyMounts: boolean;
}

export type Verdict = 'ok' | 'degraded' | 'missing';

export interface FeatureCheck {
  id: string;
  title: string;
  verdict: Verdict;
  detail: string;
}

/** What was probed; the part that is cached. */
export interface FeaturesData {
  schema: number;
  nstoolVersion: string;
  probedAt: string;
  bootId: string;
  euid: number;
  kernel: KernelFacts;
  userns: UsernsFacts;
  idmap: IdmapFacts;
  runtime: RuntimeFacts;
  rro: RroFacts;
  cni: CniFacts;
  cri: CriFeatures;
}

export interface FeaturesReport extends FeaturesData {
  /** hit: this answer was read from the cache file (probed at probedAt). */
  cache: { hit: boolean; file: string | null };
  checks: FeatureCheck[];
}

// ---- verdicts ------------------------------------------------------------

/** A failed probe in words: its message, led by its code. */
export function failure(p: ProbeOutcome): string {
  // Node's and the core's messages start with their code already.
  if (p.message && p.code && p.message.startsWith(`${p.code}:`)) return p.message;
  return [p.code, p.message].filter(Boolean).join(': ') || 'failed';
}

const FS_TITLE: Record<FsRole, string> = { bundle: 'idmapped mount: bundles', tmpfs: 'idmapped mount: tmpfs', rootfs: 'idmapped mount: rootfs' };

function versionRange(plugins: readonly CniPluginFacts[]): string {
  const all = new Set(plugins.flatMap((p) => p.supportedVersions ?? []));
  const sorted = [...all].filter((v) => /^\d+\.\d+\.\d+$/.test(v)).sort((a, b) => {
    const x = a.split('.').map(Number);
    const y = b.split('.').map(Number);
    return x[0]! - y[0]! || x[1]! - y[1]! || x[2]! - y[2]!;
  });
  return sorted.length === 0 ? '' : sorted.length === 1 ? sorted[0]! : `${sorted[0]}..${sorted[sorted.length - 1]}`;
}

/** One verdict line per feature, derived from the data alone. */
export function featureChecks(d: FeaturesData): FeatureCheck[] {
  const out: FeatureCheck[] = [];
  const add = (id: string, title: string, verdict: Verdict, detail: string): void => {
    out.push({ id, title, verdict, detail });
  };
  const k = d.kernel;
  const c = d.userns.create;
  add(
    'userns',
    'user namespaces',
    c.ok ? 'ok' : 'missing',
    c.ok ? 'a userns and a netns owned by it were made, mapped and pinned' : failure(c),
  );
  const max = k.sysctl.maxUserNamespaces;
  add(
    'max_user_namespaces',
    'max_user_namespaces',
    max === null || max === 0 ? 'missing' : 'ok',
    max === null ? 'no /proc/sys/user/max_user_namespaces' : max === 0 ? '0: nobody may make a user namespace' : String(max),
  );
  const u = d.userns.unprivileged;
  const knobs = [
    k.sysctl.unprivilegedUsernsClone !== null ? `kernel.unprivileged_userns_clone=${k.sysctl.unprivilegedUsernsClone}` : '',
    k.sysctl.apparmorRestrictUnprivilegedUserns !== null ? `kernel.apparmor_restrict_unprivileged_userns=${k.sysctl.apparmorRestrictUnprivilegedUserns}` : '',
  ].filter(Boolean);
  add(
    'unprivileged_userns',
    'unprivileged userns',
    u.allowed ? 'ok' : 'missing',
    (u.allowed ? `uid ${u.uid} could make a user namespace` : `uid ${u.uid} could not (${u.step}: ${u.code}); rootless runtimes need it, nstool as root does not`) +
      (knobs.length ? `; ${knobs.join(', ')}` : ''),
  );
  add('setgroups', 'setgroups', k.setgroups ? 'ok' : 'missing', k.setgroups ? '/proc/PID/setgroups is there' : 'no /proc/self/setgroups');
  const sc = k.syscalls;
  const pidfd = sc.pidfd_open.available && sc.pidfd_send_signal.available;
  add('pidfd', 'pidfd', pidfd ? 'ok' : 'missing', `pidfd_open ${sc.pidfd_open.result}, pidfd_send_signal ${sc.pidfd_send_signal.result}`);
  add('clone3', 'clone3', sc.clone3.available ? 'ok' : 'missing', sc.clone3.available ? 'present' : sc.clone3.result);
  const cic = sc.clone_into_cgroup;
  add(
    'clone_into_cgroup',
    'CLONE_INTO_CGROUP',
    !cic.available ? 'missing' : k.cgroup2 ? 'ok' : 'degraded',
    !cic.available ? cic.result : k.cgroup2 ? `cgroup2 at ${showName(k.cgroup2)}` : 'the kernel has it, but no cgroup2 is mounted',
  );
  const api = (['open_tree', 'mount_setattr', 'move_mount', 'fsopen'] as const).filter((n) => !sc[n].available);
  add(
    'mount_api',
    'mount_setattr & co',
    api.length === 0 ? 'ok' : 'missing',
    api.length === 0 ? 'open_tree, mount_setattr, move_mount, fsopen' : api.map((n) => `${n} ${sc[n].result}`).join(', '),
  );
  for (const f of d.idmap.filesystems) {
    add(
      `idmap_${f.role}`,
      FS_TITLE[f.role],
      f.ok ? 'ok' : 'missing',
      `${f.path === null ? `a fresh ${f.fsType ?? 'tmpfs'}` : `${f.fsType ?? 'unknown fs'} at ${showName(f.path)}`}: ` +
        (f.ok ? `on-disk uid ${f.diskUid} shows as ${f.shownUid}` : f.shownUid !== undefined ? `uid ${f.diskUid} showed as ${f.shownUid}, not ${f.expectedUid}` : failure(f)),
    );
  }
  const ov = d.idmap.overlay;
  add(
    'overlay_idmap',
    'overlay on idmapped lower',
    ov.ok ? 'ok' : 'missing',
    ov.ok ? `a copied-up file is owned by uid ${ov.copyUpUid} in the upper dir` : ov.copyUpUid !== undefined ? `copy-up owned by ${ov.copyUpUid}, not ${ov.expectedUid}` : failure(ov),
  );
  const r = d.runtime;
  add(
    'runtime',
    'runtime',
    r.found && r.version ? 'ok' : r.found ? 'degraded' : 'missing',
    !r.found ? `${showText(r.binary, 200)}: not found` : `${r.name ?? 'unknown'} ${r.version ?? `(--version failed: ${failure(r.versionError ?? { ok: false })})`} at ${showName(r.path ?? '')}`,
  );
  const oci = r.features ? (r.features['ociVersionMax'] as unknown) : undefined;
  add(
    'runtime_features',
    'runtime features',
    r.features ? 'ok' : 'missing',
    r.features ? `ociVersionMax ${typeof oci === 'string' ? showText(oci, 40) : 'unknown'}` : r.found ? `no features document (${failure(r.featuresError ?? { ok: false })})` : 'no runtime',
  );
  const s = d.idmap.strategy;
  add('idmap_strategy', 'idmap strategy', s === 'runtime' ? 'ok' : s === 'native' ? 'degraded' : 'missing', `${s}: ${d.idmap.reason}`);
  add('rro', 'recursive read-only', d.rro.supported ? 'ok' : 'missing', d.rro.reason);
  const plugins = d.cni.plugins;
  const good = plugins.filter((p) => p.supportedVersions !== null);
  const bad = plugins.filter((p) => p.supportedVersions === null);
  const present = d.cni.dirs.filter((x) => x.exists).map((x) => showName(x.path));
  const absent = d.cni.dirs.filter((x) => !x.exists).map((x) => showName(x.path));
  add(
    'cni',
    'CNI plugins',
    good.length === 0 ? 'missing' : bad.length > 0 ? 'degraded' : 'ok',
    `${good.length} plugin${good.length === 1 ? '' : 's'}` +
      (good.length ? ` (CNI ${versionRange(good)})` : '') +
      (present.length ? ` in ${present.join(', ')}` : '') +
      (bad.length ? `; VERSION failed: ${bad.map((p) => showName(p.name)).join(', ')}` : '') +
      (absent.length ? `; not there: ${absent.join(', ')}` : ''),
  );
  return out;
}

/** The table people read, then the CRI summary line. */
export function formatFeatures(r: FeaturesReport): string {
  const rows = r.checks.map((c) => [c.title, c.verdict, showText(c.detail, 400)] as const);
  const w0 = Math.max(7, ...rows.map((x) => x[0].length));
  const w1 = 8;
  const lines = [`${'FEATURE'.padEnd(w0)}  ${'VERDICT'.padEnd(w1)}  DETAIL`, ...rows.map(([a, b, c]) => `${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}`)];
  lines.push('');
  lines.push(`CRI: user_namespaces=${r.cri.userNamespaces} recursive_read_only_mounts=${r.cri.recursiveReadOnlyMounts}`);
  lines.push(r.cache.hit ? `(cached: probed at ${r.probedAt}; --no-cache probes again)` : `(probed at ${r.probedAt})`);
  if (r.euid !== 0) lines.push(`(probed as uid ${r.euid}: making namespaces and mounts needs root)`);
  return lines.join('\n');
}

// ---- a cached copy, checked before it is believed --------------------------

type Check = (v: unknown) => boolean;
const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const str: Check = (v) => typeof v === 'string' && v.length <= 4096;
const bool: Check = (v) => typeof v === 'boolean';
const int: Check = (v) => Number.isSafeInteger(v);
const nullable =
  (c: Check): Check =>
  (v) =>
    v === null || c(v);
const optional =
  (c: Check): Check =>
  (v) =>
    v === undefined || c(v);
const arrayOf =
  (c: Check, max = 4096): Check =>
  (v) =>
    Array.isArray(v) && v.length <= max && v.every(c);
const absPath: Check = (v) => typeof v === 'string' && v.startsWith('/') && !v.includes('\0') && v.length <= 4096;
function shape(fields: Record<string, Check>): Check {
  return (v) => isObj(v) && Object.entries(fields).every(([k, c]) => c(v[k]));
}
const outcomeFields = { ok: bool, code: optional(str), message: optional(str) };
const outcome = shape(outcomeFields);
const syscall = shape({ available: bool, result: str });

const validData = shape({
  schema: (v) => v === FEATURES_SCHEMA,
  nstoolVersion: str,
  probedAt: str,
  bootId: str,
  euid: int,
  kernel: shape({
    release: str,
    syscalls: shape(Object.fromEntries(SYSCALL_NAMES.map((n) => [n, syscall]))),
    cgroup2: nullable(absPath),
    sysctl: shape({ maxUserNamespaces: nullable(int), unprivilegedUsernsClone: nullable(int), apparmorRestrictUnprivilegedUserns: nullable(int) }),
    setgroups: bool,
  }),
  userns: shape({
    create: shape({ ...outcomeFields, netnsOwnedByUserns: optional(bool) }),
    unprivileged: shape({ allowed: bool, uid: int, step: nullable(str), code: nullable(str) }),
  }),
  idmap: shape({
    kernel: bool,
    filesystems: arrayOf(
      shape({
        ...outcomeFields,
        role: (v) => v === 'bundle' || v === 'tmpfs' || v === 'rootfs',
        path: nullable(absPath),
        fsType: nullable(str),
        diskUid: optional(int),
        expectedUid: optional(int),
        shownUid: optional(int),
      }),
      3,
    ),
    overlay: shape({ ...outcomeFields, copyUpUid: optional(int), expectedUid: optional(int) }),
    strategy: (v) => v === 'runtime' || v === 'native' || v === 'none',
    reason: str,
  }),
  runtime: shape({
    binary: str,
    path: nullable(absPath),
    found: bool,
    name: nullable(str),
    version: nullable(str),
    versionError: optional(outcome),
    features: nullable(isObj),
    featuresError: optional(outcome),
    idmap: shape({ supported: bool, reason: optional(str) }),
  }),
  rro: shape({ supported: bool, runtime: bool, kernel: outcome, reason: str }),
  cni: shape({
    pluginPath: arrayOf(absPath, 64),
    dirs: arrayOf(shape({ path: absPath, exists: bool }), 64),
    plugins: arrayOf(
      shape({ name: str, path: absPath, supportedVersions: nullable(arrayOf(str, 64)), code: optional(str), message: optional(str) }),
    ),
  }),
  cri: shape({ userNamespaces: bool, recursiveReadOnlyMounts: bool }),
});

/** RAW as features data when every field has the type it must have; else undefined. */
export function validFeaturesData(raw: unknown): FeaturesData | undefined {
  return validData(raw) ? (raw as FeaturesData) : undefined;
}
