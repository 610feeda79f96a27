// Sandboxes without root. Their four pins (netns, userns, ipc, uts) live in
// the user's keeper (src/rootless/keeper.ts), in its own mount namespace:
// the state records them as the keeper sees them (under
// $XDG_RUNTIME_DIR/nstool/pins), and the host reaches them through the live
// keeper as /proc/KEEPER/root<pin>. With no live keeper there is no pin:
// the path as recorded then names an empty host dir, so every probe of it
// says "missing", as it should.
import { lstatSync } from 'node:fs';
import path from 'node:path';
import { NstoolError } from '../errors.js';
import { createPodNs } from '../kernel/ns.js';
import { ROOTLESS_UNSUPPORTED, rootlessError } from '../rootless/errors.js';
import { findKeeper, hostPath, keeperCall, keeperGone } from '../rootless/keeper.js';
import { currentMode } from '../rootless/mode.js';
import { checkReply } from '../rootless/protocol.js';
import { RuntimeDirs, runtimeDirs } from '../rootless/runtime-dir.js';

export type PinKind = 'net' | 'user' | 'ipc' | 'uts';

/** The rootless defaults: state under the runtime dir, pins as the keeper sees them. */
export interface RootlessDirs {
  rt: RuntimeDirs;
  state: string;
  pin: string;
  userns: string;
  ipc: string;
  uts: string;
}

export function isRootless(): boolean {
  return currentMode() === 'rootless';
}

export function rootlessDirs(): RootlessDirs {
  const rt = runtimeDirs();
  return {
    rt,
    state: path.join(rt.dir, 'sandboxes'),
    pin: rt.netns,
    userns: rt.userns,
    ipc: path.join(rt.pins, 'ipc'),
    uts: path.join(rt.pins, 'uts'),
  };
}

/** ERR_NSTOOL_ROOTLESS_UNSUPPORTED for WHAT, with a hint. */
export function unsupported(what: string, hint: string): NstoolError {
  return rootlessError(ROOTLESS_UNSUPPORTED, `${what} needs root`, hint);
}

/** Whether P is a pin path of this user's keeper (checked before it forms a host path). */
export function isKeeperPin(p: string, d: RootlessDirs = rootlessDirs()): boolean {
  return [d.pin, d.userns, d.ipc, d.uts].includes(path.dirname(p)) && path.normalize(p) === p;
}

/** The host path of the keeper pin P: through the live keeper, else P itself (an empty host dir: missing). */
export function hostOf(p: string): string {
  const d = rootlessDirs();
  if (!isKeeperPin(p, d)) throw new NstoolError(`${p} is not a pin of this user's keeper`, { code: 'ERR_NSTOOL_STATE', path: p });
  const k = findKeeper(d.rt);
  return k ? hostPath(k, p) : p;
}

/** The state dir of a rootless instance must be this user's, 0700, and not reachable through a link. */
export function untrustedRootlessDir(dir: string): { dir: string; why: string } | undefined {
  const why = whyUntrusted(dir);
  return why === undefined ? undefined : { dir, why };
}

function whyUntrusted(dir: string): string | undefined {
  const uid = process.getuid?.() ?? 0;
  let st;
  try {
    st = lstatSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return `cannot be looked at (${(err as NodeJS.ErrnoException).code})`;
  }
  if (!st.isDirectory()) return 'is not a directory';
  if (st.uid !== uid) return `is owned by uid ${st.uid}, not by this user`;
  if ((st.mode & 0o077) !== 0) return `is open to other users (mode ${(st.mode & 0o777).toString(8)})`;
  return undefined;
}

/**
 * Removes one pin of sandbox NAME from the keeper: true when it was there.
 * No keeper, no pin. 'net+user' is the netns with its userns pin (made together).
 */
export async function keeperUnpin(kind: Exclude<PinKind, 'net'> | 'net+user', name: string): Promise<boolean> {
  const d = runtimeDirs();
  try {
    const reply = kind === 'net+user' ? await keeperCall(d, `unpin ${name}`) : await keeperCall(d, `unpinns ${kind} ${name}`);
    return reply.split(' ').slice(0, kind === 'net+user' ? 2 : 1).includes('1');
  } catch (err) {
    if (keeperGone(err)) return false;
    throw err;
  }
}

/**
 * New ipc and/or uts namespaces inside the pod's userns (at its host path),
 * the host name set in the uts one, pinned by the keeper as KIND/NAME: one
 * child makes both. A reply that is an error throws; a pin the keeper made
 * for the other kind is then the caller's to undo (its record is written).
 */
export async function makeKeeperPodNs(kinds: { ipc: boolean; uts: boolean }, usernsHost: string, name: string, hostname: string): Promise<{ ipcInode?: number; utsInode?: number; usernsInode: number }> {
  const d = runtimeDirs();
  const request = (kind: string) => `pinns ${kind} ${name}\n`;
  const r = await createPodNs(
    { userns: usernsHost, keeperSock: d.sock, ...(kinds.ipc ? { ipcRequest: request('ipc') } : {}), ...(kinds.uts ? { utsRequest: request('uts'), hostname } : {}) },
    { context: `making the ${[kinds.ipc ? 'ipc' : '', kinds.uts ? 'uts' : ''].filter(Boolean).join(' and ')} namespace of ${name}` },
  );
  if (kinds.ipc) checkReply(r.ipcReply ?? '', 'pinns');
  if (kinds.uts) checkReply(r.utsReply ?? '', 'pinns');
  return { ...(kinds.ipc ? { ipcInode: r.ipcIno } : {}), ...(kinds.uts ? { utsInode: r.utsIno } : {}), usernsInode: r.usernsIno };
}
