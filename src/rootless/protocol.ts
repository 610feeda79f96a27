// The keeper's wire protocol as nstool reads it (native/keeper/nstool-keeper.cc
// writes it): pure, so every reply and the pid file are validated in one place.
import { getSystemErrorMap } from 'node:util';
import { NstoolError } from '../errors.js';
import { showText } from '../show.js';
import { KEEPER, rootlessError } from './errors.js';

export const KEEPER_PROTOCOL = 2;

export interface KeeperRef {
  pid: number;
  /** Field 22 of /proc/PID/stat when the keeper started: tells a reused pid apart. */
  start: string;
}

export function errnoCode(errno: number): string {
  return getSystemErrorMap().get(-errno)?.[0] ?? `E${errno}`;
}

/** "PID STARTTIME\n", validated before it forms a path. */
export function parsePidLine(text: string): KeeperRef | null {
  const m = /^([1-9]\d{0,9}) (\d{1,20})\n$/.exec(text);
  if (!m || Number(m[1]) > 2 ** 31 - 1) return null;
  return { pid: Number(m[1]), start: m[2]! };
}

/**
 * The keeper's "ok ..." reply without "ok "; "err STEP ERRNO" becomes an
 * error shaped like the syscall's own.
 */
export function checkReply(reply: string, request: string): string {
  const line = reply.endsWith('\n') ? reply.slice(0, -1) : reply;
  if (line === 'ok' || line.startsWith('ok ')) return line.slice(3);
  const m = /^err ([a-z0-9-]{1,32}) (\d{1,5})$/.exec(line);
  if (!m) {
    throw rootlessError(KEEPER, `the keeper answered ${JSON.stringify(showText(line, 100))} to ${request.split(' ')[0]}`, 'nstool and its keeper disagree: stop the keeper (kill the pid in keeper.pid) and retry');
  }
  const errno = Number(m[2]);
  const code = errnoCode(errno);
  throw new NstoolError(`the keeper's ${m[1]} failed: ${code}`, {
    code,
    errno: -errno,
    syscall: m[1]!,
    ...(code === 'EEXIST' ? { hint: 'a pin with this name already exists and was left untouched; choose another name or delete it first' } : {}),
  });
}
