import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { describeRoot } from '../helpers/env.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';

const P = testPrefix('cli');
trackLeaks(P);

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/nstool.js');

function nstool(args: string[], opts: { prefix?: string[] } = {}) {
  const argv = [...(opts.prefix ?? []), process.execPath, BIN, ...args];
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describeRoot('nstool CLI, spawned as a user runs it', () => {
  it('creates, lists, inspects, execs in and deletes a pod netns with --json', () => {
    const name = `${P}-a`;
    const c = nstool(['create-pod-netns', name, '--uidmap', '0:100000:65536', '--json']);
    expect(c.code, c.err).toBe(0);
    const made = JSON.parse(c.out) as Record<string, unknown>;
    expect(made).toMatchObject({
      name,
      path: `/run/netns/${name}`,
      uidMap: [{ containerID: 0, hostID: 100000, size: 65536 }],
      gidMap: [{ containerID: 0, hostID: 100000, size: 65536 }],
      setgroups: 'allow',
    });
    expect(typeof made['netnsInode']).toBe('number');
    // One vocabulary: each namespace as {path, inode}, the same in every command; the old names are aliases.
    expect(made).toMatchObject({
      netns: { path: `/run/netns/${name}`, inode: made['netnsInode'] },
      userns: { inode: made['usernsInode'] },
    });
    const { netns, userns } = made as { netns: { inode: number }; userns: { inode: number } };
    try {
      const l = nstool(['list', '--json']);
      expect(l.code).toBe(0);
      const entry = (JSON.parse(l.out) as Array<{ name: string; kind: string; owner: { inode: number; host: boolean } }>).find((e) => e.name === name);
      expect(entry).toMatchObject({ kind: 'netns', owner: { inode: made['usernsInode'], host: false } });
      expect(entry).toMatchObject({ netns: { inode: netns.inode }, userns: { inode: userns.inode, host: false } });

      const i = nstool(['inspect', name, '--json']);
      expect(i.code).toBe(0);
      expect(JSON.parse(i.out)).toMatchObject({ type: 'net', inode: made['netnsInode'], owner: { inode: made['usernsInode'], host: false } });
      expect(JSON.parse(i.out)).toMatchObject({ netns: { inode: netns.inode }, userns: { inode: userns.inode, host: false } });
      const text = nstool(['inspect', name]);
      expect(text.out).toContain('uid map:   0:100000:65536');

      const e = nstool(['exec', name, '--', 'sh', '-c', 'cat /proc/self/uid_map; exit 3']);
      expect(e.code).toBe(3);
      expect(e.out.trim().split(/\s+/)).toEqual(['0', '100000', '65536']);
    } finally {
      const d = nstool(['delete', name, '--json']);
      expect(d.code).toBe(0);
      expect(JSON.parse(d.out)).toMatchObject([{ path: `/run/netns/${name}`, existed: true }]);
    }
    const again = nstool(['delete', name]);
    expect(again.code).toBe(0);
    expect(again.out).toContain('already gone');
  });

  it('generates a name when none is given', () => {
    const c = nstool(['create-pod-netns', '--uidmap', '0:100000:65536', '--json']);
    expect(c.code, c.err).toBe(0);
    const { name } = JSON.parse(c.out) as { name: string };
    expect(name).toMatch(/^pod-[0-9a-f]{16}$/);
    expect(nstool(['delete', name]).code).toBe(0);
  });

  it('exits 2 on wrong usage and 0 on --help', () => {
    expect(nstool(['create-pod-netns', `${P}-u`]).code).toBe(2); // no map
    expect(nstool(['create-pod-netns', 'a/b', '--uidmap', '0:1:1']).code).toBe(2);
    // Names other tools could take for an option or that would garble a listing.
    for (const name of [`-${P}`, `${P}\tx`, `${P}\nx`, `${P}\x1b[31m`]) {
      const r = nstool(['create-pod-netns', '--uidmap', '0:100000:65536', '--json', '--', name]);
      if (r.code === 0) nstool(['delete', `/run/netns/${name}`]);
      expect(r.code, JSON.stringify(name)).toBe(2);
      expect(JSON.parse(r.out)).toMatchObject({ error: { code: 'ERR_INVALID_ARG_VALUE' } });
      expect(r.err).not.toContain('\x1b');
    }
    expect(nstool(['no-such-command']).code).toBe(2);
    expect(nstool(['list', '--bogus']).code).toBe(2);
    expect(nstool(['exec', 'x', '--timeout', 'soon', '--', 'true']).code).toBe(2);
    expect(nstool(['create-pod-netns', `${P}-s`, '--subid-user', 'root', '--size', '-1']).code).toBe(2);
    for (const cmd of ['create-pod-netns', 'delete', 'list', 'inspect', 'exec']) {
      const h = nstool([cmd, '--help']);
      expect(h.code, cmd).toBe(0);
      expect(h.out).toContain(`Usage: nstool ${cmd}`);
    }
    expect(nstool(['create-pod-netns', '--help']).out).toContain('--allow-host-root');
    expect(readdirSync('/run/netns').filter((n) => n.startsWith(P))).toEqual([]);
  });

  it('without root goes rootless, and fails with exit 1 and a typed error naming the fix when the user has no subordinate ids', () => {
    const r = nstool(['create-pod-netns', `${P}-np`, '--uidmap', '0:100000:65536', '--json'], {
      prefix: ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all'],
    });
    expect(r.code, r.err).toBe(1);
    const { error } = JSON.parse(r.out) as { error: { code: string; hint: string; syscall: string } };
    expect(error.code).toBe('ERR_NSTOOL_SUBID');
    expect(error.hint).toContain('/etc/subuid');
    expect(r.err).toContain('/etc/subuid');
    expect(readdirSync('/run/netns').filter((n) => n.startsWith(P))).toEqual([]);
  });

  it('refuses a map that makes a pod id host root, unless --allow-host-root', () => {
    const name = `${P}-root`;
    const r = nstool(['create-pod-netns', name, '--uidmap', '0:100000:65536', '--gidmap', '0:0:65536', '--json']);
    if (r.code === 0) nstool(['delete', name]);
    expect(r.code, r.err).toBe(1);
    expect(JSON.parse(r.out)).toMatchObject({ error: { code: 'ERR_NSTOOL_HOST_ROOT_MAP' } });
    expect(readdirSync('/run/netns').filter((n) => n.startsWith(P))).toEqual([]);
    const ok = nstool(['create-pod-netns', name, '--uidmap', '0:100000:65536', '--gidmap', '0:0:65536', '--allow-host-root', '--json']);
    try {
      expect(ok.code, ok.err).toBe(0);
      expect(JSON.parse(ok.out)).toMatchObject({ name, gidMap: [{ containerID: 0, hostID: 0, size: 65536 }] });
      expect(nstool(['inspect', name]).out).toContain('gid map:   0:0:65536');
    } finally {
      expect(nstool(['delete', name]).code).toBe(0);
    }
  });

  it('reports EEXIST with exit 1 and leaves the pin alone', () => {
    const name = `${P}-dup`;
    expect(nstool(['create-pod-netns', name, '--uidmap', '0:100000:65536']).code).toBe(0);
    try {
      const r = nstool(['create-pod-netns', name, '--uidmap', '0:100000:65536', '--json']);
      expect(r.code).toBe(1);
      expect(JSON.parse(r.out)).toMatchObject({ error: { code: 'EEXIST', path: `/run/netns/${name}` } });
      expect(nstool(['inspect', name]).code).toBe(0);
    } finally {
      nstool(['delete', name]);
    }
  });

  it('inspect names what is there instead of a pin, and suggests delete only where delete removes it', () => {
    const dir = mkdtempSync(path.join(tmpdir(), `${P}-f-`));
    try {
      const full = path.join(dir, 'full');
      const empty = path.join(dir, 'empty');
      writeFileSync(full, 'someone else\'s data\n');
      writeFileSync(empty, '');
      const i = nstool(['inspect', full, '--json']);
      expect(i.code).toBe(1);
      const e = (JSON.parse(i.out) as { error: { code: string; message: string; hint: string } }).error;
      expect(e.code).toBe('EINVAL');
      expect(e.message).toContain('a regular file of 20 bytes');
      expect(e.hint).not.toMatch(/delete` removes/);
      // ...and delete does refuse it.
      expect(nstool(['delete', full, '--json'])).toMatchObject({ code: 1 });
      expect(readdirSync(dir)).toContain('full');
      // An empty file is a pin's leftover: the hint points at delete, and delete removes it.
      const s = JSON.parse(nstool(['inspect', empty, '--json']).out) as { error: { hint: string } };
      expect(s.error.hint).toMatch(/`nstool delete` removes it/);
      expect(JSON.parse(nstool(['delete', empty, '--json']).out)).toMatchObject([{ existed: true, stale: true }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('list has a header row on a terminal and none when piped', async () => {
    const name = `${P}-tty`;
    expect(nstool(['create-pod-netns', name, '--uidmap', '0:100000:65536']).code).toBe(0);
    try {
      const run = async (isTTY: boolean) => {
        let out = '';
        expect(await main(['list'], { stdout: (s) => void (out += s), stderr: () => {}, isTTY })).toBe(0);
        return out.trimEnd().split('\n');
      };
      const tty = await run(true);
      expect(tty[0]!.split(/\s+/)).toEqual(['NAME', 'OWNER']);
      expect(tty.find((l) => l.startsWith(`${name} `))).toMatch(/^\S+\s+userns:\d+$/);
      const piped = await run(false);
      expect(piped[0]).not.toMatch(/^NAME/);
      expect(piped).toContainEqual(expect.stringMatching(new RegExp(`^${name}\tuserns:\\d+$`)));
    } finally {
      nstool(['delete', name]);
    }
  });
});
