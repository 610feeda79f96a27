// Each probe asks the system itself: syscalls called with arguments they
// must reject, a real userns+netns through nstool's own create path, real
// idmapped mounts through the pod staging code, the runtime's own answers,
// and every CNI plugin's VERSION. Probes never throw: a failure is data.
import { accessSync, constants, existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { appendFile, lstat, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { getSystemErrorName } from 'node:util';
import { IdMapping, toHostId, toKernelMap } from '../idmap.js';
import { createUsernsNetns, inspectNsRawSync } from '../kernel/ns.js';
import { unpinSync } from '../kernel/pin.js';
import { mountTmpfsSync, probeRecursiveReadonlySync, probeSyscallsSync, probeUnprivilegedUsernsSync } from '../kernel/probes.js';
import { validatePluginType } from '../names.js';
import { which } from '../process.js';
import { queryPluginVersions } from '../cni/plugin.js';
import { RuncClient } from '../runc/client.js';
import type { CallOptions, RuntimeVersion } from '../runc/client.js';
import { idmapSupport } from '../runc/idmap-gate.js';
import { stageIdmapped, unstage } from '../pod/idmap-fallback.js';
import { makeOverlayDirs, mountOverlay, rootfsLayout, stageLower } from '../pod/rootfs.js';
import type {
  CniFacts,
  CniPluginFacts,
  FsProbe,
  FsRole,
  IdmapFacts,
  KernelFacts,
  OverlayProbe,
  ProbeOutcome,
  RroFacts,
  RuntimeFacts,
  SyscallFact,
  SyscallName,
  UsernsFacts,
} from './report.js';
import { failure, SYSCALL_NAMES } from './report.js';

/** The probe userns maps container ids 0..65535 here: far from any account's ids. */
export const PROBE_UID_BASE = 1_500_000_000;
const PROBE_MAP: IdMapping[] = [{ containerID: 0, hostID: PROBE_UID_BASE, size: 65536 }];
const NOBODY = 65534;
const RUNTIME_TIMEOUT_MS = 10_000;
const PLUGIN_TIMEOUT_MS = 10_000;
const PLUGIN_CONCURRENCY = 4;
const MESSAGE_MAX = 500;

function failed(err: unknown): ProbeOutcome {
  const e = err as { code?: unknown; message?: unknown; syscall?: unknown; path?: unknown; hint?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : 'ERR_NSTOOL';
  // A failed syscall says which and on what (not our temp paths' context), and the hint.
  const message =
    typeof e?.syscall === 'string'
      ? `${code}: ${e.syscall}${typeof e.path === 'string' ? ` '${e.path}'` : ''}${typeof e.hint === 'string' ? ` (${e.hint})` : ''}`
      : typeof e?.message === 'string'
        ? e.message
        : String(err);
  return { ok: false, code, message: message.slice(0, MESSAGE_MAX) };
}

function errnoName(n: number): string {
  if (n === 0) return 'ok';
  try {
    return getSystemErrorName(-n);
  } catch {
    return `E${n}`;
  }
}

function readInt(file: string): number | null {
  try {
    const v = Number(readFileSync(file, 'utf8').trim());
    return Number.isSafeInteger(v) ? v : null;
  } catch {
    return null;
  }
}

export function readBootId(): string {
  try {
    const id = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    return /^[0-9a-f-]{36}$/.test(id) ? id : 'unknown';
  } catch {
    return 'unknown';
  }
}

export function readSysctls(): KernelFacts['sysctl'] {
  return {
    maxUserNamespaces: readInt('/proc/sys/user/max_user_namespaces'),
    unprivilegedUsernsClone: readInt('/proc/sys/kernel/unprivileged_userns_clone'),
    apparmorRestrictUnprivilegedUserns: readInt('/proc/sys/kernel/apparmor_restrict_unprivileged_userns'),
  };
}

// ---- the mount table ------------------------------------------------------

interface MountLine {
  dev: string;
  point: string;
  fstype: string;
}

const unescapeOctal = (s: string): string => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));

function mountTable(): MountLine[] {
  let text: string;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const out: MountLine[] = [];
  for (const l of text.split('\n')) {
    const f = l.split(' ');
    const sep = f.indexOf('-', 6);
    if (f.length < 7 || sep < 0) continue;
    out.push({ dev: f[2]!, point: unescapeOctal(f[4]!), fstype: f[sep + 1] ?? '' });
  }
  return out;
}

/** The type of the filesystem holding P, from the mount with the same device. */
async function fsTypeOf(p: string): Promise<string | null> {
  try {
    const dev = (await stat(p, { bigint: true })).dev;
    const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
    const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
    return mountTable().find((m) => m.dev === `${major}:${minor}`)?.fstype ?? null;
  } catch {
    return null;
  }
}

function mountsUnder(dir: string): string[] {
  return mountTable()
    .map((m) => m.point)
    .filter((m) => m.startsWith(`${dir}/`) || m === dir)
    .sort((a, b) => b.length - a.length);
}

// ---- kernel ---------------------------------------------------------------

// What a present syscall answers to the probe's bad arguments (native/features.cc).
const EXPECTED: Record<SyscallName, string> = {
  pidfd_open: 'ok',
  pidfd_send_signal: 'ok',
  clone3: 'E2BIG',
  clone_into_cgroup: 'EINVAL',
  mount_setattr: 'E2BIG',
  open_tree: 'EINVAL',
  move_mount: 'EINVAL',
  fsopen: 'EINVAL',
};
// Without privilege these check the caller before their arguments.
const PRIVILEGED: ReadonlySet<SyscallName> = new Set(['open_tree', 'move_mount', 'fsopen']);

export function kernelFacts(): KernelFacts {
  const raw = probeSyscallsSync({ context: 'probing syscalls' });
  const root = process.geteuid?.() === 0;
  const syscalls = {} as Record<SyscallName, SyscallFact>;
  for (const n of SYSCALL_NAMES) {
    const result = errnoName(raw[n] ?? 38);
    syscalls[n] = { available: result === EXPECTED[n] || (!root && PRIVILEGED.has(n) && result === 'EPERM'), result };
  }
  return {
    release: os.release(),
    syscalls,
    cgroup2: mountTable().find((m) => m.fstype === 'cgroup2')?.point ?? null,
    sysctl: readSysctls(),
    setgroups: existsSync('/proc/self/setgroups'),
  };
}

/** Whether an unprivileged user could make a user namespace: a child drops to nobody (or stays us) and tries. */
export function unprivilegedUserns(): UsernsFacts['unprivileged'] {
  const euid = process.geteuid?.() ?? 0;
  const drop = euid === 0;
  const uid = drop ? NOBODY : euid;
  const gid = drop ? NOBODY : (process.getegid?.() ?? 0);
  try {
    const r = probeUnprivilegedUsernsSync(uid, gid, drop);
    return r.step === '' ? { allowed: true, uid, step: null, code: null } : { allowed: false, uid, step: r.step, code: errnoName(r.errno) };
  } catch (err) {
    return { allowed: false, uid, step: 'clone', code: failed(err).code ?? null };
  }
}

// ---- the work dir: namespaces and mounts of one probe run -----------------

const WORK_PREFIX = '.nstool-features-';
const WORK_RE = /^\.nstool-features-(\d+)-(\d+)-[0-9a-f]{12}$/;
const STALE_AFTER_MS = 60_000;

function startTime(pid: number | 'self'): string | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return f[0] === 'Z' ? null : (f[19] ?? null);
  } catch {
    return null;
  }
}

/** Unmounts everything under DIR, then removes it; leaves it when something stays mounted. */
async function removeWorkDir(dir: string): Promise<boolean> {
  for (const m of mountsUnder(dir)) await unstage(m).catch(() => {});
  if (mountsUnder(dir).length > 0) return false;
  await rm(dir, { recursive: true, force: true });
  return true;
}

/** Work dirs of probe runs whose process died (killed mid-probe): their mounts and pins would stay forever. */
async function sweepWorkDirs(parent: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(parent);
  } catch {
    return;
  }
  for (const n of names) {
    const m = WORK_RE.exec(n);
    if (!m || startTime(Number(m[1])) === m[2]) continue;
    const dir = path.join(parent, n);
    const st = await lstat(dir).catch(() => null);
    // A probe takes a second: a young dir may belong to a process in another pid namespace.
    if (!st?.isDirectory() || st.uid !== process.geteuid?.() || Date.now() - st.mtimeMs < STALE_AFTER_MS) continue;
    await removeWorkDir(dir).catch(() => {});
  }
}

export interface FsProbeInput {
  /** Where the probe makes its dir: on the filesystem bundles live on. */
  workParent: string;
  rootfs?: string;
  setgroups: boolean;
}

export interface FsProbeResult {
  create: UsernsFacts['create'];
  filesystems: FsProbe[];
  overlay: OverlayProbe;
  rroKernel: ProbeOutcome;
}

async function idmapProbe(role: FsRole, shown: string | null, src: string, file: string, target: string, usernsPath: string): Promise<FsProbe> {
  const base: FsProbe = { role, path: shown, fsType: await fsTypeOf(src), ok: false };
  try {
    const diskUid = (await stat(path.join(src, file))).uid;
    const overflow = readInt('/proc/sys/fs/overflowuid') ?? NOBODY;
    const expectedUid = toHostId(PROBE_MAP, diskUid) ?? overflow;
    // As pods get their rootfs: read-only, nosuid, nodev, not recursive.
    await stageIdmapped(src, target, { usernsPath, recursive: false, readonly: true });
    let shownUid: number;
    try {
      shownUid = (await stat(path.join(target, file))).uid;
    } finally {
      await unstage(target);
    }
    return { ...base, ok: shownUid === expectedUid, diskUid, expectedUid, shownUid };
  } catch (err) {
    return { ...base, ...failed(err) };
  }
}

async function overlayProbe(work: string, src: string, usernsPath: string): Promise<OverlayProbe> {
  // The pod rootfs layout (src/pod/rootfs.ts): idmapped read-only lower, upper and work of our own.
  const l = rootfsLayout(path.join(work, 'overlay-probe'));
  try {
    await mkdir(path.dirname(l.dir), { mode: 0o700 });
    await makeOverlayDirs(l);
    const expectedUid = toHostId(PROBE_MAP, (await stat(path.join(src, 'file'))).uid);
    await stageLower(src, l, usernsPath);
    try {
      await mountOverlay(l);
      try {
        await writeFile(path.join(l.target, 'new'), 'x', { mode: 0o600 });
        const created = await lstat(path.join(l.upper, 'new'));
        // Writing to the lower's file copies it up with the owner the idmapped lower shows.
        await appendFile(path.join(l.target, 'file'), 'x');
        const copyUpUid = (await lstat(path.join(l.upper, 'file'))).uid;
        const ok = created.isFile() && copyUpUid === expectedUid;
        return { ok, copyUpUid, ...(expectedUid !== undefined ? { expectedUid } : {}) };
      } finally {
        await unstage(l.target);
      }
    } finally {
      await unstage(l.lower);
    }
  } catch (err) {
    return failed(err);
  }
}

function notProbed(why: string): ProbeOutcome {
  return { ok: false, code: 'ERR_NSTOOL_NOT_PROBED', message: why };
}

/**
 * In a fresh 0700 dir on the bundles' filesystem: a userns+netns pinned
 * there, idmapped mounts of a dir on that filesystem, of a new tmpfs and of
 * the rootfs, an overlay over an idmapped lower, and a recursive read-only
 * clone of the mount tree. Everything is unmounted and removed before it returns.
 */
export async function fsProbes(o: FsProbeInput): Promise<FsProbeResult> {
  await sweepWorkDirs(o.workParent);
  const work = path.join(o.workParent, `${WORK_PREFIX}${process.pid}-${startTime('self') ?? '0'}-${randomBytes(6).toString('hex')}`);
  try {
    await mkdir(work, { mode: 0o700 });
  } catch (err) {
    const f = failed(err);
    return unprobed(o, f, notProbed(`no probe dir in ${o.workParent}: ${f.code}`));
  }
  try {
    return await probeIn(work, o);
  } catch (err) {
    // Only the scaffolding (mkdir, writeFile in our own dir) gets here.
    return unprobed(o, failed(err), failed(err));
  } finally {
    await removeWorkDir(work).catch(() => {});
  }
}

/** Every outcome FIRST (the bundles' dir and the userns) or WHY (the rest). */
async function unprobed(o: FsProbeInput, first: ProbeOutcome, why: ProbeOutcome): Promise<FsProbeResult> {
  return {
    create: first,
    filesystems: [
      { role: 'bundle', path: o.workParent, fsType: await fsTypeOf(o.workParent), ...first },
      tmpfsOutcome(why),
      ...(o.rootfs ? [{ role: 'rootfs' as const, path: o.rootfs, fsType: await fsTypeOf(o.rootfs), ...why }] : []),
    ],
    overlay: why,
    rroKernel: why,
  };
}

function tmpfsOutcome(p: ProbeOutcome): FsProbe {
  return { role: 'tmpfs', path: null, fsType: 'tmpfs', ...p };
}

async function probeIn(work: string, o: FsProbeInput): Promise<FsProbeResult> {
  const netnsPin = path.join(work, 'netns');
  const usernsPin = path.join(work, 'userns');
  try {
    let create: UsernsFacts['create'];
    try {
      const r = await createUsernsNetns(
        {
          uidMap: toKernelMap(PROBE_MAP),
          gidMap: toKernelMap(PROBE_MAP),
          ...(o.setgroups ? { setgroups: 'allow' as const } : {}),
          netnsPin,
          usernsPin,
        },
        { context: 'creating a user namespace and a netns owned by it' },
      );
      const info = inspectNsRawSync(netnsPin, true);
      const owned = info.owner?.ino === r.usernsIno;
      create = owned
        ? { ok: true, netnsOwnedByUserns: true }
        : { ok: false, code: 'ERR_NSTOOL_NETNS_NOT_POD', message: 'the netns is not owned by the new userns', netnsOwnedByUserns: false };
    } catch (err) {
      create = failed(err);
    }

    const src = path.join(work, 'src');
    await mkdir(src, { mode: 0o700 });
    await writeFile(path.join(src, 'file'), '', { mode: 0o600 });
    const noUserns = notProbed('no user namespace to idmap with');
    const filesystems: FsProbe[] = [];
    let rroKernel: ProbeOutcome | undefined;

    filesystems.push(
      create.ok
        ? await idmapProbe('bundle', o.workParent, src, 'file', path.join(work, 'bundle-idmap'), usernsPin)
        : { role: 'bundle', path: o.workParent, fsType: await fsTypeOf(work), ...noUserns },
    );
    const mnt = path.join(work, 'tmpfs');
    await mkdir(mnt, { mode: 0o700 });
    try {
      mountTmpfsSync(mnt, { context: `mounting a tmpfs at ${mnt}` });
      try {
        const tsrc = path.join(mnt, 'src');
        await mkdir(tsrc, { mode: 0o700 });
        await writeFile(path.join(tsrc, 'file'), '', { mode: 0o600 });
        filesystems.push(create.ok ? await idmapProbe('tmpfs', null, tsrc, 'file', path.join(work, 'tmpfs-idmap'), usernsPin) : tmpfsOutcome(noUserns));
        // The work dir now has mounts under it: a recursive clone is a real tree.
        try {
          probeRecursiveReadonlySync(work, { context: 'making a recursive read-only mount tree' });
          rroKernel = { ok: true };
        } catch (err) {
          rroKernel = failed(err);
        }
      } finally {
        await unstage(mnt);
      }
    } catch (err) {
      if (filesystems.length < 2) filesystems.push(tmpfsOutcome(failed(err)));
      rroKernel ??= failed(err);
    }
    if (o.rootfs) {
      filesystems.push(
        create.ok
          ? await idmapProbe('rootfs', o.rootfs, o.rootfs, '', path.join(work, 'rootfs-idmap'), usernsPin)
          : { role: 'rootfs', path: o.rootfs, fsType: await fsTypeOf(o.rootfs), ...noUserns },
      );
    }
    const overlay = create.ok ? await overlayProbe(work, src, usernsPin) : noUserns;
    return { create, filesystems, overlay, rroKernel: rroKernel ?? notProbed('no tmpfs mount to clone') };
  } finally {
    for (const pin of [netnsPin, usernsPin]) {
      try {
        unpinSync(pin);
      } catch {
        // the caller's removeWorkDir unmounts whatever is left
      }
    }
  }
}

// ---- the runtime ----------------------------------------------------------

/** A client that asks `--version` and `features` once, so the idmap gate reuses our answers. */
class AskOnce extends RuncClient {
  private v?: Promise<RuntimeVersion>;
  private f?: Promise<Record<string, unknown>>;
  override version(o?: CallOptions): Promise<RuntimeVersion> {
    return (this.v ??= super.version(o));
  }
  override features(o?: CallOptions): Promise<Record<string, unknown>> {
    return (this.f ??= super.features(o));
  }
}

export interface RuntimeFile {
  binary: string;
  path: string | null;
  stat: Stats | null;
}

/** The runtime binary as found now (realpath and its stat), or path null when it is not there. */
export function findRuntime(binary: string): RuntimeFile {
  try {
    const p = realpathSync(which(binary));
    const st = statSync(p);
    if (!st.isFile()) return { binary, path: null, stat: null };
    accessSync(p, constants.X_OK);
    return { binary, path: p, stat: st };
  } catch {
    return { binary, path: null, stat: null };
  }
}

export async function runtimeFacts(rt: RuntimeFile): Promise<RuntimeFacts> {
  const base = { binary: rt.binary, path: rt.path, found: rt.path !== null, name: null, version: null, features: null };
  if (rt.path === null) return { ...base, idmap: { supported: false, reason: `${rt.binary} was not found` } };
  const client = new AskOnce({ binary: rt.binary, timeoutMs: RUNTIME_TIMEOUT_MS });
  const [v, f, gate] = await Promise.allSettled([client.version(), client.features(), idmapSupport(client)]);
  const out: RuntimeFacts = { ...base, idmap: { supported: false } };
  if (v.status === 'fulfilled') {
    out.name = v.value.name;
    out.version = v.value.version;
  } else out.versionError = failed(v.reason);
  if (f.status === 'fulfilled' && f.value !== null && typeof f.value === 'object' && !Array.isArray(f.value)) out.features = f.value;
  else out.featuresError = f.status === 'rejected' ? failed(f.reason) : { ok: false, code: 'ERR_NSTOOL_RUNTIME', message: 'features is not a JSON object' };
  if (gate.status === 'fulfilled') out.idmap = gate.value.supported ? { supported: true } : { supported: false, reason: gate.value.reason ?? 'unknown' };
  else out.idmap = { supported: false, reason: failed(gate.reason).message ?? 'unknown' };
  return out;
}

/** Who makes a pod's idmapped volumes: the same decision runPodContainer takes (idmap gate, then nstool's staging). */
export function idmapStrategy(rt: RuntimeFacts, bundle: FsProbe | undefined): Pick<IdmapFacts, 'strategy' | 'reason'> {
  const named = rt.version ? `${rt.name} ${rt.version}` : '';
  const who = !named ? rt.binary : rt.binary === rt.name ? named : `${rt.binary} (${named})`;
  if (!rt.found) return { strategy: 'none', reason: `the runtime ${rt.binary} was not found` };
  if (rt.idmap.supported) return { strategy: 'runtime', reason: `${who} says linux.mountExtensions.idmap.enabled` };
  const cannot = `${who} cannot: ${rt.idmap.reason ?? 'unknown'}`;
  if (bundle?.ok) return { strategy: 'native', reason: `nstool idmaps volumes itself and hands them over as plain binds; ${cannot}` };
  const why = !bundle ? 'not probed' : bundle.shownUid !== undefined ? `uid ${bundle.diskUid} showed as ${bundle.shownUid}` : failure(bundle);
  return { strategy: 'none', reason: `${cannot}; nstool's own idmapped mount failed too (${why})` };
}

export function rroFacts(rt: RuntimeFacts, kernel: ProbeOutcome): RroFacts {
  const opts = rt.features?.['mountOptions'];
  const runtime = Array.isArray(opts) && opts.includes('rro');
  const k = kernel.ok ? 'the kernel made a mount tree read-only recursively (mount_setattr AT_RECURSIVE)' : `the kernel could not make a mount tree read-only recursively (${failure(kernel)})`;
  const r = !rt.found ? `${rt.binary} was not found` : !rt.features ? `${rt.binary} has no features document to list rro in` : runtime ? `${rt.binary} lists rro among its mount options` : `${rt.binary} does not list rro among its mount options`;
  return { supported: runtime && kernel.ok, runtime, kernel, reason: `${r}; ${k}` };
}

// ---- CNI --------------------------------------------------------------------

export interface PluginFile {
  name: string;
  path: string;
  stat: Stats;
}

export interface PluginListing {
  dirs: Array<{ path: string; exists: boolean }>;
  /** The first executable of each name, in search order (as findPlugin picks). */
  plugins: PluginFile[];
}

export function listPlugins(dirs: readonly string[]): PluginListing {
  const out: PluginListing = { dirs: [], plugins: [] };
  const seen = new Set<string>();
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
      out.dirs.push({ path: dir, exists: true });
    } catch {
      out.dirs.push({ path: dir, exists: false });
      continue;
    }
    for (const name of names) {
      if (seen.has(name)) continue;
      try {
        validatePluginType(name);
        const p = path.join(dir, name);
        const st = statSync(p);
        if (!st.isFile()) continue;
        accessSync(p, constants.X_OK);
        seen.add(name);
        out.plugins.push({ name, path: p, stat: st });
      } catch {
        // not a plugin
      }
    }
  }
  return out;
}

export async function cniFacts(pluginPath: string[], listing: PluginListing): Promise<CniFacts> {
  const plugins: CniPluginFacts[] = new Array(listing.plugins.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < listing.plugins.length) {
      const i = next++;
      const p = listing.plugins[i]!;
      try {
        const supportedVersions = await queryPluginVersions(p.path, pluginPath, { timeoutMs: PLUGIN_TIMEOUT_MS });
        plugins[i] = { name: p.name, path: p.path, supportedVersions };
      } catch (err) {
        const f = failed(err);
        plugins[i] = { name: p.name, path: p.path, supportedVersions: null, ...(f.code ? { code: f.code } : {}), ...(f.message ? { message: f.message } : {}) };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PLUGIN_CONCURRENCY, listing.plugins.length) }, worker));
  return { pluginPath, dirs: listing.dirs, plugins };
}
