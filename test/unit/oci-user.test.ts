// Container user resolution against a fixture rootfs, including a rootfs
// whose /etc/passwd is a symlink aimed outside it.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSpec, parseGroup, parsePasswd, readRootfsFile, resolveUser } from '../../src/oci/index.js';
import { schemaErrors } from '../fixtures/oci/schema.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';
import { errorCode } from '../helpers/errors.js';

const prefix = testPrefix('ociuser');
trackLeaks(prefix);

const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
  '# a comment line',
  'broken line',
  'app:x:1000:1000:App:/home/app:/bin/sh',
  'web:x:33:33::/var/www:/usr/sbin/nologin',
  '',
].join('\n');
const GROUP = ['root:x:0:', 'daemon:x:1:', 'wheel:x:10:app,web', 'audio:x:29:app', 'app:x:1000:', 'www-data:x:33:', 'staff:x:50:web', ''].join('\n');

let dir: string;
let rootfs: string;
let outside: string;

function writeRootfs(name: string, files: Record<string, string>): string {
  const r = path.join(dir, name);
  mkdirSync(path.join(r, 'etc'), { recursive: true });
  for (const [f, text] of Object.entries(files)) writeFileSync(path.join(r, f), text);
  return r;
}

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), `${prefix}-`));
  rootfs = writeRootfs('rootfs', { 'etc/passwd': PASSWD, 'etc/group': GROUP });
  // A host passwd the container must never see: it names a user "evil" and maps "app" to uid 0.
  outside = path.join(dir, 'host-etc');
  mkdirSync(outside);
  writeFileSync(path.join(outside, 'passwd'), 'evil:x:4242:4242::/:/bin/sh\napp:x:0:0::/:/bin/sh\n');
  writeFileSync(path.join(outside, 'group'), 'evilgrp:x:4343:app\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const code = errorCode;

describe('resolveUser', () => {
  it('by name: uid, primary gid and the groups that list the user', () => {
    expect(resolveUser(rootfs, 'app')).toEqual({ uid: 1000, gid: 1000, additionalGids: [1000, 10, 29], username: 'app' });
    expect(resolveUser(rootfs, 'web')).toEqual({ uid: 33, gid: 33, additionalGids: [33, 10, 50], username: 'web' });
  });

  it('by uid, as a string or a number; a uid in passwd gets its entry', () => {
    expect(resolveUser(rootfs, '1000')).toEqual({ uid: 1000, gid: 1000, additionalGids: [1000, 10, 29], username: 'app' });
    expect(resolveUser(rootfs, 33)).toMatchObject({ uid: 33, gid: 33, username: 'web' });
  });

  it('a uid not in passwd is allowed, with gid 0 unless given', () => {
    expect(resolveUser(rootfs, '5000')).toEqual({ uid: 5000, gid: 0, additionalGids: [0] });
    expect(resolveUser(rootfs, '5000:5001')).toEqual({ uid: 5000, gid: 5001, additionalGids: [5001] });
  });

  it('uid:gid and name:group (and the mixes) set the primary gid, keeping membership groups', () => {
    expect(resolveUser(rootfs, '1000:33')).toEqual({ uid: 1000, gid: 33, additionalGids: [33, 10, 29], username: 'app' });
    expect(resolveUser(rootfs, 'app:www-data')).toEqual({ uid: 1000, gid: 33, additionalGids: [33, 10, 29], username: 'app' });
    expect(resolveUser(rootfs, '5000:staff')).toEqual({ uid: 5000, gid: 50, additionalGids: [50] });
    expect(resolveUser(rootfs, 'app:10')).toEqual({ uid: 1000, gid: 10, additionalGids: [10, 29], username: 'app' });
  });

  it('no user means root', () => {
    expect(resolveUser(rootfs, undefined)).toEqual({ uid: 0, gid: 0, additionalGids: [0], username: 'root' });
    expect(resolveUser(rootfs, '')).toMatchObject({ uid: 0, gid: 0 });
  });

  it('an unknown user or group is an error with its own code', () => {
    expect(code(() => resolveUser(rootfs, 'nobody-here'))).toBe('ERR_NSTOOL_UNKNOWN_USER');
    expect(code(() => resolveUser(rootfs, 'app:nogroup'))).toBe('ERR_NSTOOL_UNKNOWN_GROUP');
    expect(code(() => resolveUser(rootfs, '1000:nogroup'))).toBe('ERR_NSTOOL_UNKNOWN_GROUP');
    // "broken line" and the comment are not users.
    expect(code(() => resolveUser(rootfs, 'broken line'))).toBe('ERR_NSTOOL_UNKNOWN_USER');
    expect(code(() => resolveUser(rootfs, '# a comment line'))).toBe('ERR_NSTOOL_UNKNOWN_USER');
  });

  it('malformed specs are ERR_INVALID_ARG_VALUE', () => {
    for (const bad of ['a:b:c', ':1', '1:', 'app\0', '4294967296', '1:4294967296', -1, 1.5, 2 ** 32]) {
      expect(code(() => resolveUser(rootfs, bad)), String(bad)).toBe('ERR_INVALID_ARG_VALUE');
    }
    expect(code(() => resolveUser(rootfs, {} as never))).toBe('ERR_INVALID_ARG_TYPE');
  });

  it('a rootfs without /etc/passwd takes numbers and refuses names', () => {
    const bare = writeRootfs('bare', {});
    expect(resolveUser(bare, '7:8')).toEqual({ uid: 7, gid: 8, additionalGids: [8] });
    expect(code(() => resolveUser(bare, 'root'))).toBe('ERR_NSTOOL_UNKNOWN_USER');
    expect(code(() => resolveUser(bare, '7:wheel'))).toBe('ERR_NSTOOL_UNKNOWN_GROUP');
  });

  it('refuses an /etc/passwd that is not a regular file', () => {
    const odd = writeRootfs('odd', {});
    mkdirSync(path.join(odd, 'etc/passwd'));
    expect(code(() => resolveUser(odd, 'root'))).toBe('ERR_NSTOOL_ROOTFS_FILE');
  });

  it('refuses a fifo at /etc/passwd without hanging, and a file too large to be one', () => {
    const fifo = writeRootfs('fifo', {});
    execFileSync('mkfifo', [path.join(fifo, 'etc/passwd')]);
    expect(code(() => resolveUser(fifo, 'root'))).toBe('ERR_NSTOOL_ROOTFS_FILE');
    const big = writeRootfs('big', { 'etc/passwd': '' });
    truncateSync(path.join(big, 'etc/passwd'), 9 * 1024 * 1024);
    expect(code(() => resolveUser(big, '0'))).toBe('ERR_NSTOOL_ROOTFS_FILE');
  });

  it('a rootfs that is not an absolute path is ERR_INVALID_ARG_VALUE', () => {
    expect(code(() => resolveUser('rootfs', '0'))).toBe('ERR_INVALID_ARG_VALUE');
    expect(code(() => readRootfsFile(rootfs, 'etc/passwd\0'))).toBe('ERR_INVALID_ARG_VALUE');
  });
});

describe('reading the rootfs never leaves it', () => {
  it('an absolute symlink to a host file resolves inside the rootfs', () => {
    const r = writeRootfs('abs-link', { 'etc/group': GROUP });
    symlinkSync(path.join(outside, 'passwd'), path.join(r, 'etc/passwd'));
    expect(readRootfsFile(r, '/etc/passwd')).toBeUndefined();
    expect(code(() => resolveUser(r, 'evil'))).toBe('ERR_NSTOOL_UNKNOWN_USER');
    expect(code(() => resolveUser(r, 'app'))).toBe('ERR_NSTOOL_UNKNOWN_USER');
    // The same absolute path inside the rootfs is what the link names.
    mkdirSync(path.join(r, outside), { recursive: true });
    writeFileSync(path.join(r, outside, 'passwd'), 'inside:x:66:67::/:/bin/sh\n');
    expect(resolveUser(r, 'inside')).toMatchObject({ uid: 66, gid: 67 });
  });

  it('a relative symlink climbing with .. stops at the rootfs', () => {
    const r = writeRootfs('dotdot-link', {});
    symlinkSync('../../../../../../../../host-etc/passwd', path.join(r, 'etc/passwd'));
    expect(code(() => resolveUser(r, 'evil'))).toBe('ERR_NSTOOL_UNKNOWN_USER');
    // The same target inside the rootfs is read.
    mkdirSync(path.join(r, 'host-etc'));
    writeFileSync(path.join(r, 'host-etc/passwd'), 'inside:x:77:78::/:/bin/sh\n');
    expect(resolveUser(r, 'inside')).toMatchObject({ uid: 77, gid: 78 });
  });

  it('a symlinked /etc directory is followed within the rootfs only', () => {
    const r = path.join(dir, 'etc-link');
    mkdirSync(path.join(r, 'real-etc'), { recursive: true });
    writeFileSync(path.join(r, 'real-etc/passwd'), 'inner:x:9:9::/:/bin/sh\n');
    symlinkSync('/real-etc', path.join(r, 'etc'));
    expect(resolveUser(r, 'inner')).toMatchObject({ uid: 9, gid: 9 });
    const r2 = path.join(dir, 'etc-link-out');
    mkdirSync(r2);
    symlinkSync(outside, path.join(r2, 'etc'));
    expect(code(() => resolveUser(r2, 'evil'))).toBe('ERR_NSTOOL_UNKNOWN_USER');
    expect(code(() => resolveUser(r2, '1:evilgrp'))).toBe('ERR_NSTOOL_UNKNOWN_GROUP');
  });

  it('a symlink loop is ELOOP, not a hang', () => {
    const r = writeRootfs('loop', {});
    symlinkSync('/etc/b', path.join(r, 'etc/a'));
    symlinkSync('/etc/a', path.join(r, 'etc/b'));
    symlinkSync('/etc/a', path.join(r, 'etc/passwd'));
    expect(code(() => resolveUser(r, 'root'))).toBe('ELOOP');
  });
});

describe('parsers', () => {
  it('skip lines libc would skip', () => {
    expect(parsePasswd('a:x:1:2::/:/bin/sh\nb:x:notanumber:2::/:\n\n:x:3:3::/:\nc:x:3')).toEqual([{ name: 'a', uid: 1, gid: 2 }]);
    expect(parseGroup('g:x:5:a, b ,\nh:x:q:\ni:x:6')).toEqual([
      { name: 'g', gid: 5, members: ['a', 'b'] },
      { name: 'i', gid: 6, members: [] },
    ]);
  });
});

describe('buildSpec with users', () => {
  const build = (user: string | number | undefined, image?: { user?: string }) => {
    const s = buildSpec({ rootfs, command: ['/bin/sh'], user, image });
    expect(schemaErrors(s)).toEqual([]);
    expect(schemaErrors(s, 'closed')).toEqual([]);
    return s.process.user;
  };

  it('writes uid, gid and additionalGids, never the name', () => {
    expect(build('app')).toEqual({ uid: 1000, gid: 1000, additionalGids: [1000, 10, 29] });
  });

  it('the caller user wins over the image user, which wins over root', () => {
    expect(build(undefined, { user: 'web' })).toMatchObject({ uid: 33 });
    expect(build('app', { user: 'web' })).toMatchObject({ uid: 1000 });
    expect(build(undefined, {})).toMatchObject({ uid: 0, gid: 0 });
    expect(build(0, { user: 'web' })).toMatchObject({ uid: 0 });
  });
});
