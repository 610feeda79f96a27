// Hostile names, ids, maps and sizes, each written as the attack: through the
// library and the CLI it gets a typed error before any side effect (no pin
// in /run/netns or the userns pin dir, no mount, no state), a map that makes
// a pod id host root is refused unless the caller opts in, and no error
// repeats a huge value back.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { describeRoot } from '../helpers/env.js';
import { mountPoints, testPrefix, trackLeaks } from '../helpers/leaks.js';
import { NstoolError } from '../../src/errors.js';
import { createPodNetns, createPodNetnsSync, deletePodNetns, inspectNetns } from '../../src/netns.js';
import { validateContainerId as runcValidateId } from '../../src/runc/args.js';
import { validateContainerId as cniValidateId, validateIfName, validateNetworkName } from '../../src/cni/names.js';
import { removePodContainer } from '../../src/pod/container.js';
import { deleteSandbox } from '../../src/sandbox/index.js';

const P = testPrefix('input');
trackLeaks(P);

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/nstool.js');
const PIN_DIRS = ['/run/netns', '/run/nstool/userns'];
// Sandbox and pod state of this file's own, so "nothing made" is exact.
const BASE = `/run/${P}`;
const MAP = '0:100000:65536';
const SMALL = 4096;

function nstool(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000, maxBuffer: 64 * 1024 * 1024 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Everything this file could have made: pins, mounts, anything under BASE. */
function made(): string[] {
  const pins = PIN_DIRS.flatMap((d) => readdirSync(d).filter((n) => n.includes(P)).map((n) => `${d}/${n}`));
  const mounts = mountPoints().filter((m) => m.includes(P));
  const base = existsSync(BASE) ? readdirSync(BASE, { recursive: true }).map(String) : [];
  return [...pins, ...mounts, ...base].sort();
}

/** Removes what an accepted name made (only the old code accepts them). */
async function undo(name: string): Promise<void> {
  await deletePodNetns(path.join('/run/netns', name));
}

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

// Each holds this file's prefix, so the leak check sees whatever is made.
const HOSTILE_NAMES: Array<[string, string]> = [
  ['a tab', `${P}\tx`],
  ['a newline', `${P}\nfake-pin`],
  ['a carriage return', `${P}\rx`],
  ['an ESC sequence', `${P}\x1b[31mred`],
  ['DEL', `${P}\x7f`],
  ['a C1 control (CSI)', `${P}\x9b31m`],
  ['a Unicode line separator', `${P}\u2028x`],
  ['a bidi override', `${P}\u202ex`],
  ['a leading "-"', `-${P}`],
  ['a leading "--"', `--${P}`],
];
const LIBRARY_ONLY_NAMES: Array<[string, string]> = [['a lone surrogate (no UTF-8 form)', `${P}\ud800`]];
const HOSTILE_IDS = ['a\tb', 'a\nb', 'a\x1b[31m', 'a\x7f', 'a\u2028b', '-rf', '--help', '-a'];

describeRoot('hostile names and ids are refused before any side effect', () => {
  it.each([...HOSTILE_NAMES, ...LIBRARY_ONLY_NAMES])('library: a pin name with %s', async (_what, name) => {
    for (const create of [
      () => createPodNetns({ name, uidMap: MAP, pinUserns: true }),
      async () => createPodNetnsSync({ name, uidMap: MAP, pinUserns: true }),
    ]) {
      const before = made();
      const r = await create().then((ns) => ns, (e: unknown) => e);
      const after = made();
      if (!(r instanceof Error)) await undo(r.name);
      expect(r).toBeInstanceOf(NstoolError);
      expect((r as NstoolError).code).toBe('ERR_INVALID_ARG_VALUE');
      expect(after).toEqual(before);
    }
  });

  it.each(HOSTILE_NAMES)('CLI: a pin name with %s exits 2 with the code in --json', async (_what, name) => {
    const before = made();
    // "--" ends the options, so a leading "-" reaches the name.
    const r = nstool(['create-pod-netns', '--uidmap', MAP, '--pin-userns', '--json', '--', name]);
    const after = made();
    if (r.code === 0) await undo(name);
    expect(r.code, r.err).toBe(2);
    expect(JSON.parse(r.out)).toMatchObject({ error: { code: 'ERR_INVALID_ARG_VALUE' } });
    expect(after).toEqual(before);
  });

  it('the CLI shows names of pins other tools made escaped, never raw', async () => {
    const name = `${P}\x1b[2J`;
    createPodNetnsSync({ name: `${P}-plain`, uidMap: MAP });
    // Only a path reaches a pin with such a name: made here the way `ip netns add` would.
    const pinned = spawnSync('ip', ['netns', 'add', name]);
    try {
      expect(pinned.status, String(pinned.stderr)).toBe(0);
      const l = nstool(['list']);
      expect(l.code, l.err).toBe(0);
      expect(l.out).toContain(`${P}-plain\t`);
      expect(l.out).toContain(`"${P}\\u001b[2J"\t`);
      expect(l.out).not.toContain('\x1b');
      // It can be deleted by its path.
      const d = nstool(['delete', `/run/netns/${name}`]);
      expect(d.code, d.err).toBe(0);
      expect(d.out).not.toContain('\x1b');
      expect(readdirSync('/run/netns')).not.toContain(name);
    } finally {
      spawnSync('ip', ['netns', 'delete', name]);
      await deletePodNetns(`${P}-plain`);
    }
  });

  it.each(HOSTILE_IDS)('library: container id %j', async (id) => {
    const before = made();
    for (const validate of [runcValidateId, cniValidateId]) {
      expect(errorOf(() => validate(id))).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    }
    await expect(deleteSandbox(id, { stateDir: `${BASE}/state`, pinDir: `${BASE}/netns` })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(removePodContainer(id, { stateDir: `${BASE}/pods` })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    expect(made()).toEqual(before);
  });

  it.each(HOSTILE_IDS)('CLI: container id %j exits 2 with the code in --json', (id) => {
    const before = made();
    const dirs = ['--state-dir', `${BASE}/state`, '--bundle-dir', `${BASE}/bundles`, '--pin-dir', `${BASE}/netns`];
    const runs = [
      nstool(['sandbox', 'create', '--no-network', '--rootfs', `${BASE}/rootfs`, ...dirs, '--json', '--', id]),
      nstool(['sandbox', 'delete', ...dirs, '--json', '--', id]),
      nstool(['rm-pod', '--state-dir', `${BASE}/pods`, '--json', '--', id]),
    ];
    for (const r of runs) {
      expect(r.code, r.err).toBe(2);
      expect(JSON.parse(r.out)).toMatchObject({ error: { code: 'ERR_INVALID_ARG_VALUE' } });
    }
    expect(made()).toEqual(before);
  });
});

describeRoot('maps that make a pod id host root', () => {
  const refused: Array<[string, { uidMap: string; gidMap?: string }]> = [
    ['uid 0 -> host 0', { uidMap: '0:0:65536' }],
    ['uid 10 -> host 0 after a harmless range', { uidMap: '0:1:10,10:0:1' }],
    ['the gid map only', { uidMap: MAP, gidMap: '0:0:65536' }],
    ['gid 7 -> host 0 in the gid map', { uidMap: MAP, gidMap: '0:200000:7,7:0:1' }],
  ];

  it.each(refused)('library: %s is refused with ERR_NSTOOL_HOST_ROOT_MAP, nothing made', async (_what, maps) => {
    const name = `${P}-root`;
    for (const create of [
      () => createPodNetns({ name, ...maps, pinUserns: true }),
      async () => createPodNetnsSync({ name, ...maps, pinUserns: true }),
    ]) {
      const before = made();
      const r = await create().then((ns) => ns, (e: unknown) => e);
      const after = made();
      if (!(r instanceof Error)) await deletePodNetns(name);
      expect(r).toBeInstanceOf(NstoolError);
      expect((r as NstoolError).code).toBe('ERR_NSTOOL_HOST_ROOT_MAP');
      expect((r as NstoolError).hint).toMatch(/allowHostRoot/);
      expect(after).toEqual(before);
    }
  });

  it('library: only allowHostRoot: true opts in; then the kernel has the map, and it is cleaned up', async () => {
    const name = `${P}-root-ok`;
    // A truthy value that is not true is a mistake, not an opt-in.
    for (const allowHostRoot of ['yes', 1, 'true']) {
      const before = made();
      const r = await createPodNetns({ name, uidMap: '0:0:65536', allowHostRoot } as never).then((ns) => ns, (e: unknown) => e);
      const after = made();
      if (!(r instanceof Error)) await deletePodNetns(name);
      expect(r).toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
      expect(after).toEqual(before);
    }
    const ns = await createPodNetns({ name, uidMap: '0:1:10,10:0:1', gidMap: '0:0:65536', pinUserns: true, allowHostRoot: true });
    try {
      const info = await inspectNetns(name);
      expect(info.inode).toBe(ns.netnsInode);
      expect(info.uidMap).toEqual([{ containerID: 0, hostID: 1, size: 10 }, { containerID: 10, hostID: 0, size: 1 }]);
      expect(info.gidMap).toEqual([{ containerID: 0, hostID: 0, size: 65536 }]);
    } finally {
      expect((await deletePodNetns(name)).existed).toBe(true);
    }
    const sync = createPodNetnsSync({ name, uidMap: '0:0:65536', allowHostRoot: true });
    expect((await deletePodNetns(sync.name)).existed).toBe(true);
  });

  it.each(refused)('CLI: %s is refused unless --allow-host-root', async (_what, maps) => {
    const name = `${P}-cli-root`;
    const args = ['create-pod-netns', name, '--uidmap', maps.uidMap, ...(maps.gidMap ? ['--gidmap', maps.gidMap] : []), '--pin-userns', '--json'];
    const before = made();
    const r = nstool(args);
    const after = made();
    if (r.code === 0) await deletePodNetns(name);
    expect(r.code, r.err).not.toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ error: { code: 'ERR_NSTOOL_HOST_ROOT_MAP' } });
    expect(r.err).toContain('--allow-host-root');
    expect(after).toEqual(before);

    const ok = nstool([...args, '--allow-host-root']);
    try {
      expect(ok.code, ok.err).toBe(0);
      expect(JSON.parse(ok.out)).toMatchObject({ name, path: `/run/netns/${name}` });
    } finally {
      await deletePodNetns(name);
    }
    expect(made()).toEqual(before);
  });
});

describe('huge values are never repeated whole', () => {
  const MB20 = 20 * 1024 * 1024;
  const huge = (c: string) => c.repeat(MB20);
  const cases: Array<[string, () => unknown]> = [
    ['a container id (runc)', () => runcValidateId(`${huge('a')}/`)],
    ['a container id (CNI)', () => cniValidateId(`${huge('a')} `)],
    ['an ifname', () => validateIfName(huge('e'))],
    ['a network name', () => validateNetworkName(`${huge('n')}/`)],
    ['a uid map string', () => createPodNetnsSync({ name: `${P}-big`, uidMap: huge('9') })],
    ['a uid map of wrong fields', () => createPodNetnsSync({ name: `${P}-big`, uidMap: `0:${huge('1')}:x` })],
    ['a mapping field', () => createPodNetnsSync({ name: `${P}-big`, uidMap: [{ containerID: huge('1'), hostID: 1, size: 1 }] } as never)],
    ['setgroups', () => createPodNetnsSync({ name: `${P}-big`, uidMap: MAP, setgroups: huge('s') } as never)],
    ['a pin name', () => createPodNetnsSync({ name: huge('p'), uidMap: MAP })],
    ['a pin name with a control character', () => createPodNetnsSync({ name: `\x1b${huge('p')}`, uidMap: MAP })],
    ['a pin dir', () => createPodNetnsSync({ name: `${P}-big`, uidMap: MAP, pinDir: `/${huge('d')}` })],
  ];

  it.each(cases)('%s of 20 MB: a typed error under 4 KB', (_what, fn) => {
    const e = errorOf(fn) as NstoolError;
    expect(e).toBeInstanceOf(NstoolError);
    expect(e.code).toMatch(/^ERR_INVALID_ARG_/);
    expect(e.message.length).toBeLessThan(SMALL);
  });
});

describeRoot('huge values on the command line', () => {
  // One argv string may hold at most 128 KiB (MAX_ARG_STRLEN).
  const big = (c: string) => c.repeat(100_000);

  it.each([
    ['a pin name', ['create-pod-netns', big('p'), '--uidmap', MAP], 2],
    ['a uid map', ['create-pod-netns', `${P}-big`, '--uidmap', big('9')], 2],
    ['a gid map', ['create-pod-netns', `${P}-big`, '--uidmap', MAP, '--gidmap', `0:${big('7')}`], 2],
    ['a subid user', ['create-pod-netns', `${P}-big`, '--subid-user', big('u')], 1],
    ['a --size', ['create-pod-netns', `${P}-big`, '--subid-user', 'root', '--size', big('z')], 2],
    ['a path to delete', ['delete', `/${big('d')}`], 2],
    ['a name to inspect', ['inspect', `${big('i')}\n`], 2],
  ] as Array<[string, string[], number]>)('%s of 100 KB: stderr and --json stay under 4 KB', (_what, args, code) => {
    const before = made();
    for (const json of [false, true]) {
      const r = nstool(json ? [...args, '--json'] : args);
      expect(r.code, r.err.slice(0, 500)).toBe(code);
      expect(r.err.length).toBeLessThan(SMALL);
      expect(r.err).not.toContain('\x1b');
      if (json) expect(r.out.length).toBeLessThan(SMALL);
    }
    expect(made()).toEqual(before);
  });

  it('cleans up its own dir', () => {
    rmSync(BASE, { recursive: true, force: true });
    expect(existsSync(BASE)).toBe(false);
  });
});
