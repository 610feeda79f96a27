// Which netns a hook acts on, proven rather than assumed. An annotated netns
// is the pod author's word, so it counts only when it IS the container's own:
// the same nsfs dev and inode as /proc/<state pid>/ns/net. Pins are looked at
// with lstat (and probeNs, which opens nothing but a regular file, without
// following a link): a FIFO, device, link or directory there is refused
// without ever blocking or touching it.
import { lstat, stat } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { invalidArg, NstoolError } from '../errors.js';
import { inspectNs, probeNs } from '../kernel/ns.js';
import { showValue } from '../show.js';
import { CniHookSettings, HOOK_ANNOTATIONS, HOOK_FLAGS } from './settings.js';

/** Where the path came from, which says how post-stop may look at it again. */
export type NetnsSource = 'pid' | 'annotation' | 'flag';

export interface NetnsRef {
  path: string;
  /** st_dev and st_ino of the namespace, as decimal strings (64-bit values). */
  dev: string;
  ino: string;
  source: NetnsSource;
}

const procNet = (pid: number): string => `/proc/${pid}/ns/net`;

function settingError(message: string, hint: string): NstoolError {
  return new NstoolError(message, { code: 'ERR_NSTOOL_HOOK_SETTING', hint });
}

function ref(path: string, st: BigIntStats, source: NetnsSource): NetnsRef {
  return { path, dev: st.dev.toString(), ino: st.ino.toString(), source };
}

async function statOf(p: string, follow: boolean, what: string): Promise<BigIntStats> {
  try {
    return await (follow ? stat : lstat)(p, { bigint: true });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new NstoolError(`${what} ${showValue(p)}: ${e.code ?? 'error'}`, { code: e.code ?? 'EIO', path: p, syscall: follow ? 'stat' : 'lstat', cause: err });
  }
}

/** Fails unless P is a network namespace (the native open does not block). */
async function requireNet(p: string, nofollow: boolean, what: string): Promise<void> {
  const info = await inspectNs(p, { follow: !nofollow, context: `inspecting ${what} ${showValue(p)}` });
  if (info.state !== 'ns' || info.type !== 'net') {
    throw new NstoolError(`${what} ${showValue(p)} is not a network namespace`, { code: 'EINVAL', path: p, hint: 'give the path of a netns (a pin or /proc/<pid>/ns/net)' });
  }
}

/**
 * The netns create-runtime acts on, checked. S is resolveSettings()'s output
 * (an annotated netns is already limited to allowed places); FROMFLAG says the
 * netns came from the hook's flag, which is trusted as given.
 */
export async function hookNetns(s: CniHookSettings, fromFlag: boolean, pid: number | undefined): Promise<NetnsRef> {
  if (s.netns === undefined) {
    if (pid === undefined) throw invalidArg(`the OCI state has no pid and neither ${HOOK_ANNOTATIONS.netns} nor ${HOOK_FLAGS.netns} is set`);
    return ref(procNet(pid), await statOf(procNet(pid), true, 'the container netns'), 'pid');
  }
  const p = s.netns;
  if (fromFlag) {
    await requireNet(p, false, 'netns');
    return ref(p, await statOf(p, true, 'netns'), 'flag');
  }
  const name = `${HOOK_ANNOTATIONS.netns}=${showValue(p)}`;
  if (pid !== undefined) {
    const own = await statOf(procNet(pid), true, 'the container netns');
    if (p === procNet(pid)) return ref(p, own, 'pid');
    const st = await lstat(p, { bigint: true }).catch((err: NodeJS.ErrnoException) => {
      throw settingError(`${name} cannot be used: ${err.code ?? 'error'}`, `an annotated netns must be a pin of the container's own netns`);
    });
    if (!st.isFile() || st.dev !== own.dev || st.ino !== own.ino) {
      throw settingError(
        `${name} is not the container's own netns`,
        `an annotated netns must hold the same namespace as /proc/<the container's pid>/ns/net; give any other netns with the hook flag ${HOOK_FLAGS.netns}`,
      );
    }
    return ref(p, st, 'annotation');
  }
  // No pid (resolveSettings allowed this only inside --pidless-netns-dir): a
  // pin the VM runtime made. It must at least be a netns, and not a link.
  const st = await lstat(p, { bigint: true }).catch((err: NodeJS.ErrnoException) => {
    throw settingError(`${name} cannot be used: ${err.code ?? 'error'}`, `the runtime's netns pin must exist in ${HOOK_FLAGS.pidlessNetnsDir}`);
  });
  if ((await probeNs(p, { context: `inspecting netns ${showValue(p)}` })).state !== 'ns') throw settingError(`${name} is not a netns pin`, 'a netns pin is a mounted namespace file, not a link, FIFO, device or directory');
  await requireNet(p, true, 'netns');
  return ref(p, st, 'annotation');
}

/**
 * The recorded netns if its path still holds the same namespace, else ""
 * (CNI DEL then releases what the plugins hold without entering any netns).
 */
export async function sameNetns(r: NetnsRef): Promise<string> {
  if (r.path === '') return '';
  try {
    // A pin is looked at as it is (lstat); /proc/<pid>/ns/net and a flag's path are followed as at ADD.
    const st = await (r.source === 'annotation' ? lstat : stat)(r.path, { bigint: true });
    if (r.source === 'annotation' && !st.isFile()) return '';
    return st.dev.toString() === r.dev && st.ino.toString() === r.ino ? r.path : '';
  } catch {
    return '';
  }
}
