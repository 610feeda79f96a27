// A pod sandbox: a userns-owned netns, its CNI network and a pause
// container, made in that order with each undo registered before its step,
// persisted after every side effect so a restarted caller (or gc) can find
// and finish or remove what is there.
import path from 'node:path';
import { addNetwork, CniError, delNetwork, DEFAULT_IFNAME, toNetworkList } from '../cni/index.js';
import type { CniResult, NetworkConfigList } from '../cni/index.js';
import { loadNetworkList } from '../cni/index.js';
import { findPlugin, pluginPath } from '../cni/index.js';
import { invalidArg, NstoolError, requireAbsolute } from '../errors.js';
import { IdMapInput, parseIdMap } from '../idmap.js';
import { native } from '../native.js';
import { createPodNetns, DEFAULT_PIN_DIR, DEFAULT_USERNS_PIN_DIR, deletePodNetns } from '../netns.js';
import { removePodContainer, runPodContainer } from '../pod/container.js';
import { validateContainerId } from '../runc/args.js';
import { RuncClient } from '../runc/client.js';
import { Rollback, RollbackError } from './rollback.js';
import {
  DEFAULT_STATE_DIR,
  ensureStateDir,
  listStateIds,
  readState,
  removeState,
  SandboxLock,
  SandboxState,
  writeState,
} from './state.js';

export const DEFAULT_BUNDLE_DIR = '/run/nstool/bundles';
export const DEFAULT_CNI_CACHE_DIR = '/var/lib/cni';
/** Pins and containers of sandboxes are named with this prefix, so gc can recognise them. */
export const SANDBOX_PREFIX = 'nstool-sb-';

export interface SandboxNetwork {
  /** A config list object (or a single plugin config), or load one from confDir. */
  list?: Record<string, unknown>;
  confDir?: string;
  /** Network name to pick from confDir. */
  name?: string;
  ifName?: string;
  pluginPath?: string | string[];
  /** Run the plugins inside this netns (a test or node netns). */
  nodeNetns?: string;
  capabilityArgs?: Record<string, unknown>;
}

export interface SandboxRuntime {
  binary?: string;
  /** runc --root. */
  root?: string;
}

export interface SandboxDirs {
  /** State files (default /run/nstool/sandboxes). */
  stateDir?: string;
  /** Pause container bundles (default /run/nstool/bundles); must be traversable by the pod's root. */
  bundleDir?: string;
  pinDir?: string;
  usernsPinDir?: string;
  /** CNI result cache (default /var/lib/cni). */
  cniCacheDir?: string;
}

export interface CreateSandboxOptions extends SandboxDirs {
  id: string;
  uidMap: IdMapInput;
  gidMap?: IdMapInput;
  setgroups?: 'allow' | 'deny';
  /** No network when omitted: the pod has only lo. */
  network?: SandboxNetwork;
  pause: { rootfs: string; command?: string[]; hostname?: string };
  runtime?: SandboxRuntime;
}

export interface SandboxInfo {
  id: string;
  phase: SandboxState['phase'];
  netnsPath?: string;
  usernsPath?: string;
  ips: string[];
  pid?: number;
  containerId?: string;
  createdAt: string;
  pendingUndo?: string[];
}

export class SandboxError extends NstoolError {
  /** Undos that failed during rollback: what is left is in the state file for gc. */
  readonly rollbackErrors: RollbackError[];
  constructor(message: string, cause: unknown, rollbackErrors: RollbackError[]) {
    const c = cause as Partial<NstoolError>;
    super(message, {
      code: typeof c?.code === 'string' ? c.code : 'ERR_NSTOOL_SANDBOX',
      ...(c?.errno !== undefined ? { errno: c.errno } : {}),
      ...(c?.syscall !== undefined ? { syscall: c.syscall } : {}),
      ...(c?.path !== undefined ? { path: c.path } : {}),
      ...(c?.hint !== undefined ? { hint: c.hint } : {}),
      cause,
    });
    this.rollbackErrors = rollbackErrors;
  }
}

export function validateSandboxId(id: unknown): string {
  // The same rule as container ids (the pause container is named after it).
  validateContainerId(id);
  // The pin name carries the prefix and must stay within NAME_MAX.
  if (Buffer.byteLength(SANDBOX_PREFIX + (id as string)) > 255) throw invalidArg('sandbox id is too long');
  return id as string;
}

function abs(p: string | undefined, fallback: string, what: string): string {
  return path.normalize(requireAbsolute(p ?? fallback, what));
}

interface Dirs {
  state: string;
  bundle: string;
  pin: string;
  userns: string;
  cniCache: string;
}

export function sandboxDirs(o: SandboxDirs = {}): Dirs {
  return {
    state: abs(o.stateDir, DEFAULT_STATE_DIR, 'stateDir'),
    bundle: abs(o.bundleDir, DEFAULT_BUNDLE_DIR, 'bundleDir'),
    pin: abs(o.pinDir, DEFAULT_PIN_DIR, 'pinDir'),
    userns: abs(o.usernsPinDir, DEFAULT_USERNS_PIN_DIR, 'usernsPinDir'),
    cniCache: abs(o.cniCacheDir, DEFAULT_CNI_CACHE_DIR, 'cniCacheDir'),
  };
}

async function resolveNetwork(n: SandboxNetwork): Promise<NetworkConfigList> {
  if (n.list) return toNetworkList(n.list);
  return loadNetworkList({ ...(n.confDir ? { dir: n.confDir } : {}), ...(n.name ? { name: n.name } : {}) });
}

function ipsOf(result: CniResult | Record<string, unknown> | undefined): string[] {
  const ips = (result as CniResult | undefined)?.ips ?? [];
  return ips.map((i) => i.address);
}

/** The runtime client for R (default runc with its own root). */
export function runtimeClient(r: SandboxRuntime = {}): RuncClient {
  return new RuncClient({ binary: r.binary ?? 'runc', ...(r.root ? { root: r.root } : {}) });
}

function runtimeOf(st: SandboxState): RuncClient {
  return runtimeClient(st.pause!.runtime);
}

// ---- the steps, shared by create, delete and gc -----------------------------

async function removePause(st: SandboxState): Promise<void> {
  if (!st.pause) return;
  // Unmounts the idmapped rootfs before removing the bundle; gone is success.
  await removePodContainer(st.pause.containerId, { bundleDir: st.pause.bundle, runtime: runtimeOf(st) });
}

/**
 * What the sandbox's pin holds now: its own netns, another one (a pin of
 * the same name made since: never DEL in it or unpin it), or nothing.
 */
async function pinHolds(st: SandboxState): Promise<'ours' | 'other' | 'none'> {
  if (!st.netns) return 'none';
  const info = await native.inspectNs(st.netns.path, true).catch(() => null);
  if (!info?.nsfs) return 'none';
  return st.netns.inode === undefined || info.ino === st.netns.inode ? 'ours' : 'other';
}

async function ownsPin(st: SandboxState): Promise<boolean> {
  return (await pinHolds(st)) === 'ours';
}

async function removeNetwork(st: SandboxState, dirs: Dirs): Promise<void> {
  if (!st.network) return;
  const list = toNetworkList(st.network.list);
  // Gone or replaced: DEL still runs (it releases the IP) with an empty CNI_NETNS.
  const netns = st.netns && (await ownsPin(st)) ? st.netns.path : '';
  await delNetwork(
    list,
    { containerId: containerIdOf(st.id), netns, ifName: st.network.ifName, ...(st.network.capabilityArgs ? { capabilityArgs: st.network.capabilityArgs } : {}) },
    { cacheDir: st.network.cacheDir ?? dirs.cniCache, pluginPath: st.network.pluginPath, ...(st.network.nodeNetns ? { nodeNetns: st.network.nodeNetns } : {}) },
  );
}

async function removeNetns(st: SandboxState): Promise<void> {
  if (!st.netns || (await pinHolds(st)) === 'other') return;
  await deletePodNetns(st.netns.name, { pinDir: st.netns.pinDir, usernsPinDir: st.netns.usernsPinDir });
}

export function containerIdOf(id: string): string {
  return SANDBOX_PREFIX + id;
}

/** Tears down whatever ST says exists, newest first; stops at the first failure. */
async function teardown(st: SandboxState, dirs: Dirs): Promise<void> {
  const steps: Array<[string, () => Promise<void>]> = [
    ['pause container', () => removePause(st)],
    ['network', () => removeNetwork(st, dirs)],
    ['netns', () => removeNetns(st)],
  ];
  for (let i = 0; i < steps.length; i++) {
    const [what, run] = steps[i]!;
    try {
      await run();
    } catch (err) {
      st.phase = 'failed';
      st.pendingUndo = steps.slice(i).map(([w]) => w);
      await writeState(dirs.state, st);
      throw new SandboxError(`tearing down sandbox ${st.id}: ${what}: ${(err as Error).message}`, err, [new RollbackError(what, err)]);
    }
  }
  await removeState(dirs.state, st.id);
}

// ---- public API --------------------------------------------------------------

/**
 * Creates the sandbox: pod netns (userns pinned too), CNI ADD, pause
 * container. Any failure undoes every earlier step in reverse and rethrows
 * the original error, with failed undos attached as rollbackErrors.
 */
export async function createSandbox(o: CreateSandboxOptions): Promise<SandboxInfo> {
  if (o === null || typeof o !== 'object') throw invalidArg('options must be an object', 'ERR_INVALID_ARG_TYPE');
  const id = validateSandboxId(o.id);
  const dirs = sandboxDirs(o);
  const uidMap = parseIdMap(o.uidMap, 'uidMap');
  const gidMap = parseIdMap(o.gidMap ?? o.uidMap, 'gidMap');
  requireAbsolute(o.pause?.rootfs, 'pause.rootfs');
  const list = o.network ? await resolveNetwork(o.network) : undefined;
  // A missing plugin is bad input: say so before anything is created.
  if (list) for (const p of list.plugins) findPlugin(p.type, pluginPath(o.network?.pluginPath));
  const ifName = o.network?.ifName ?? DEFAULT_IFNAME;
  const runtime = { binary: o.runtime?.binary ?? 'runc', ...(o.runtime?.root ? { root: o.runtime.root } : {}) };

  await ensureStateDir(dirs.state);
  const lock = await SandboxLock.acquire(dirs.state, id);
  let keepLockFile = true;
  try {
    if (await readState(dirs.state, id)) {
      throw new NstoolError(`sandbox ${id} already exists`, { code: 'EEXIST', hint: '`nstool sandbox delete` it first, or choose another id' });
    }
    const st: SandboxState = { version: 1, id, phase: 'creating', createdAt: new Date().toISOString(), uidMap, gidMap };
    const rb = new Rollback();
    // The state file goes first so gc can find a create that dies part way.
    await writeState(dirs.state, st);
    rb.push('state file', () => removeState(dirs.state, id));
    crashPoint('state');
    try {
      const name = containerIdOf(id);
      st.netns = { name, path: path.join(dirs.pin, name), pinDir: dirs.pin, usernsPinDir: dirs.userns };
      await writeState(dirs.state, st);
      // The native create leaves nothing behind when it fails (an existing
      // pin is never touched), so its undo is registered after it.
      const pod = await createPodNetns({
        name,
        uidMap,
        gidMap,
        setgroups: o.setgroups ?? 'allow',
        pinDir: dirs.pin,
        usernsPinDir: dirs.userns,
        pinUserns: true,
      });
      rb.push('netns', () => removeNetns(st));
      st.netns.usernsPath = pod.usernsPath!;
      st.netns.inode = pod.netnsInode;
      crashPoint('netns');
      await writeState(dirs.state, st);

      if (list) {
        const { source: _s, ...plain } = list;
        st.network = {
          list: plain as Record<string, unknown>,
          ifName,
          cacheDir: dirs.cniCache,
          pluginPath: pluginPath(o.network?.pluginPath),
          ...(o.network?.nodeNetns ? { nodeNetns: o.network.nodeNetns } : {}),
          ...(o.network?.capabilityArgs ? { capabilityArgs: o.network.capabilityArgs } : {}),
        };
        // ADD can allocate before it fails: its undo (DEL) is registered first.
        await writeState(dirs.state, st);
        let addError: CniError | undefined;
        rb.push('network', async () => {
          try {
            await removeNetwork(st, dirs);
          } catch (err) {
            // A plugin that rejects its config on ADD and DEL alike (say, an
            // invalid subnet) never got as far as allocating anything.
            if (!(addError && err instanceof CniError && err.plugin === addError.plugin && err.cniMsg === addError.cniMsg)) throw err;
          }
        });
        const result = await addNetwork(
          list,
          { containerId: name, netns: pod.path, ifName, ...(o.network?.capabilityArgs ? { capabilityArgs: o.network.capabilityArgs } : {}) },
          { cacheDir: dirs.cniCache, pluginPath: st.network.pluginPath, delOnFailure: false, ...(o.network?.nodeNetns ? { nodeNetns: o.network.nodeNetns } : {}) },
        ).catch((err: unknown) => {
          if (err instanceof CniError) addError = err;
          throw err;
        });
        crashPoint('cni');
        st.network.result = result as Record<string, unknown>;
        st.network.ips = ipsOf(result);
        await writeState(dirs.state, st);
      }

      const bundle = path.join(dirs.bundle, name);
      const rt = runtimeClient(runtime);
      // Someone else's container with this id must not be deleted by our undo.
      if (await rt.state(name).then(() => true, () => false)) {
        throw new NstoolError(`a container named ${name} already exists`, { code: 'EEXIST', hint: 'delete it, or choose another sandbox id' });
      }
      st.pause = { containerId: name, bundle, runtime };
      await writeState(dirs.state, st);
      rb.push('pause container', () => removePause(st));
      const rec = await runPodContainer({
        id: name,
        netns: name,
        pinDir: dirs.pin,
        usernsPinDir: dirs.userns,
        rootfs: o.pause.rootfs,
        command: o.pause.command ?? ['sleep', '2147483647'],
        hostname: o.pause.hostname ?? id.slice(0, 63),
        runtime: rt,
        bundleDir: bundle,
        spec: { annotations: { 'nstool.sandbox': id, 'nstool.netns': pod.path } },
      });
      crashPoint('created');
      if (rec.pid !== undefined) st.pause.pid = rec.pid;
      st.phase = 'ready';
      await writeState(dirs.state, st);
      return toInfo(st);
    } catch (err) {
      const failures = await rb.unwind();
      if (failures.length) {
        st.phase = 'failed';
        st.pendingUndo = rb.pending();
        await writeState(dirs.state, st).catch(() => {});
        throw new SandboxError(`creating sandbox ${id} failed and its rollback stopped: ${(err as Error).message}`, err, failures);
      }
      keepLockFile = false;
      throw err;
    }
  } finally {
    await lock.release(dirs.state, id, !keepLockFile);
  }
}

/**
 * Test-only: NSTOOL_TEST_CRASH_AT=<point> SIGKILLs this process there, so
 * tests can show gc cleans up after a caller that died mid-create.
 */
function crashPoint(point: string): void {
  if (process.env['NSTOOL_TEST_CRASH_AT'] === point) process.kill(process.pid, 'SIGKILL');
}

function toInfo(st: SandboxState): SandboxInfo {
  const out: SandboxInfo = { id: st.id, phase: st.phase, ips: st.network?.ips ?? [], createdAt: st.createdAt };
  if (st.netns) out.netnsPath = st.netns.path;
  if (st.netns?.usernsPath) out.usernsPath = st.netns.usernsPath;
  if (st.pause?.pid) out.pid = st.pause.pid;
  if (st.pause) out.containerId = st.pause.containerId;
  if (st.pendingUndo) out.pendingUndo = st.pendingUndo;
  return out;
}

/** Tears the sandbox down in reverse; a missing sandbox is not an error. */
export async function deleteSandbox(id: string, o: SandboxDirs = {}): Promise<{ id: string; existed: boolean }> {
  validateSandboxId(id);
  const dirs = sandboxDirs(o);
  await ensureStateDir(dirs.state);
  const lock = await SandboxLock.acquire(dirs.state, id);
  let removeLock = false;
  try {
    const st = await readState(dirs.state, id);
    if (!st) {
      removeLock = true;
      return { id, existed: false };
    }
    st.phase = 'deleting';
    await teardown(st, dirs);
    removeLock = true;
    return { id, existed: true };
  } finally {
    await lock.release(dirs.state, id, removeLock);
  }
}

export interface SandboxDetails extends SandboxInfo {
  /** The pause container as the runtime sees it now. */
  status?: string;
  /** The netns pin still holds the namespace created for this sandbox. */
  netnsPresent: boolean;
}

/** Reads a sandbox from its state file and checks what is really there. */
export async function loadSandbox(id: string, o: SandboxDirs = {}): Promise<SandboxDetails | null> {
  validateSandboxId(id);
  const dirs = sandboxDirs(o);
  const st = await readState(dirs.state, id);
  if (!st) return null;
  const out: SandboxDetails = { ...toInfo(st), netnsPresent: false };
  out.netnsPresent = await ownsPin(st);
  if (st.pause) {
    try {
      out.status = (await runtimeOf(st).state(st.pause.containerId)).status;
    } catch {
      out.status = 'missing';
    }
  }
  return out;
}

export async function listSandboxes(o: SandboxDirs = {}): Promise<SandboxInfo[]> {
  const dirs = sandboxDirs(o);
  const out: SandboxInfo[] = [];
  for (const id of await listStateIds(dirs.state)) {
    const st = await readState(dirs.state, id).catch(() => null);
    if (st) out.push(toInfo(st));
  }
  return out;
}

export const _forGc = { teardown, ownsPin, runtimeOf };
