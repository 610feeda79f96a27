// Container user resolution against the rootfs's /etc/passwd and /etc/group,
// the way CRI runtimes do it: names must exist, bare numbers need not.
import { invalidArg, NstoolError } from '../errors.js';
import { readRootfsFile } from './rootfs-path.js';
import type { User } from './types.js';

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}
interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

const ID_MAX = 2 ** 32 - 1;

function parseId(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return n <= ID_MAX ? n : undefined;
}

/** Lines that do not parse are skipped, as libc does. */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 4 || f[0] === '' || line.startsWith('#')) continue;
    const uid = parseId(f[2]!), gid = parseId(f[3]!);
    if (uid === undefined || gid === undefined) continue;
    out.push({ name: f[0]!, uid, gid });
  }
  return out;
}

export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 3 || f[0] === '' || line.startsWith('#')) continue;
    const gid = parseId(f[2]!);
    if (gid === undefined) continue;
    out.push({ name: f[0]!, gid, members: (f[3] ?? '').split(',').map((m) => m.trim()).filter(Boolean) });
  }
  return out;
}

function badSpec(spec: string, why: string): NstoolError {
  return new NstoolError(`user "${spec}": ${why}`, {
    code: 'ERR_INVALID_ARG_VALUE',
    hint: 'give a name, a uid, "uid:gid" or "name:group"',
  });
}

/**
 * Resolves SPEC (name, uid, "uid:gid", "name:group", or a number) inside
 * ROOTFS. The primary gid comes first in additionalGids, then the groups
 * that list the user as a member, in /etc/group order.
 */
export function resolveUser(rootfs: string, spec: string | number | undefined): User {
  let text: string;
  if (spec === undefined || spec === '') text = '0';
  else if (typeof spec === 'number') {
    if (!Number.isInteger(spec) || spec < 0 || spec > ID_MAX) throw badSpec(String(spec), 'a uid is an integer from 0 to 4294967295');
    text = String(spec);
  } else if (typeof spec === 'string') text = spec;
  else throw invalidArg('user must be a string or a number', 'ERR_INVALID_ARG_TYPE');

  if (text.includes('\0') || text.includes('\n')) throw badSpec(text.replace(/[\0\n]/g, '?'), 'must not contain NUL or newline');
  const parts = text.split(':');
  if (parts.length > 2 || parts.some((p) => p === '')) throw badSpec(text, 'expected one or two non-empty parts');
  const [userPart, groupPart] = parts as [string, string | undefined];

  const passwdText = readRootfsFile(rootfs, '/etc/passwd');
  const passwd = passwdText === undefined ? [] : parsePasswd(passwdText);
  const numericUid = parseId(userPart);
  if (numericUid === undefined && /^\d+$/.test(userPart)) throw badSpec(text, 'uid out of range');

  let uid: number;
  let gid = 0;
  let username: string | undefined;
  if (numericUid !== undefined) {
    uid = numericUid;
    const e = passwd.find((p) => p.uid === uid);
    if (e) {
      gid = e.gid;
      username = e.name;
    }
  } else {
    const e = passwd.find((p) => p.name === userPart);
    if (!e) {
      throw new NstoolError(`user "${userPart}" is not in the rootfs's /etc/passwd`, {
        code: 'ERR_NSTOOL_UNKNOWN_USER',
        path: `${rootfs}/etc/passwd`,
        hint: passwdText === undefined ? 'the rootfs has no /etc/passwd; give a numeric uid' : 'give a numeric uid or a user the image defines',
      });
    }
    uid = e.uid;
    gid = e.gid;
    username = e.name;
  }

  // /etc/group is read only when a name must be looked up there.
  let groups: GroupEntry[] | undefined;
  const loadGroups = () => {
    if (groups === undefined) {
      const t = readRootfsFile(rootfs, '/etc/group');
      groups = t === undefined ? [] : parseGroup(t);
    }
    return groups;
  };
  if (groupPart !== undefined) {
    const numericGid = parseId(groupPart);
    if (numericGid !== undefined) gid = numericGid;
    else if (/^\d+$/.test(groupPart)) throw badSpec(text, 'gid out of range');
    else {
      const g = loadGroups().find((x) => x.name === groupPart);
      if (!g) {
        throw new NstoolError(`group "${groupPart}" is not in the rootfs's /etc/group`, {
          code: 'ERR_NSTOOL_UNKNOWN_GROUP',
          path: `${rootfs}/etc/group`,
          hint: 'give a numeric gid or a group the image defines',
        });
      }
      gid = g.gid;
    }
  }

  const additional = [gid];
  if (username !== undefined) {
    for (const g of loadGroups()) if (g.members.includes(username) && !additional.includes(g.gid)) additional.push(g.gid);
  }
  const user: User = { uid, gid, additionalGids: additional };
  if (username !== undefined) user.username = username;
  return user;
}
