// The sandbox commands spawned as a user runs them, with --json.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeRoot } from '../helpers/env.js';
import { mountPoints, testPrefix, trackLeaks } from '../helpers/leaks.js';
import { bridgeNetwork, makeNodeNetns, NodeNetns } from '../helpers/node-netns.js';
import { buildBusyboxRootfs, removeTree, traversableTempDir } from '../helpers/rootfs.js';

const P = testPrefix('sbcli');
trackLeaks(P);
const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/nstool.js');

describeRoot('nstool sandbox and gc commands', () => {
  let node: NodeNetns;
  let tmp: string;
  let flags: string[];
  beforeAll(() => {
    node = makeNodeNetns(P);
    tmp = traversableTempDir(P);
    mkdirSync(path.join(tmp, 'runc'), { mode: 0o700 });
    flags = [
      '--state-dir', path.join(tmp, 'state'),
      '--bundle-dir', path.join(tmp, 'bundles'),
      '--cni-cache-dir', path.join(tmp, 'cni'),
      '--runtime-root', path.join(tmp, 'runc'),
      '--pin-dir', path.join(tmp, 'netns'),
      '--userns-pin-dir', path.join(tmp, 'userns'),
    ];
  });
  afterAll(() => {
    nstool(['gc', ...flags, '--node-netns', node.path]);
    node.remove();
    for (const d of ['netns', 'userns'].map((n) => path.join(tmp, n))) while (mountPoints().includes(d)) execFileSync('umount', [d]);
    removeTree(tmp);
  });
  function nstool(args: string[]) {
    const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
    return { code: r.status, out: r.stdout, err: r.stderr };
  }

  it('create, list, inspect, delete and gc with --json', () => {
    const { net, list } = bridgeNetwork(`${P}-net`, path.join(tmp, 'ipam'));
    const conflist = path.join(tmp, 'net.conflist');
    writeFileSync(conflist, JSON.stringify(list));
    const rootfs = buildBusyboxRootfs(path.join(tmp, 'rootfs'));
    const id = `${P}-a`;
    const c = nstool(['sandbox', 'create', id, '--rootfs', rootfs, '--conflist', conflist, '--node-netns', node.path, ...flags, '--json']);
    expect(c.code, c.err).toBe(0);
    const made = JSON.parse(c.out) as { id: string; phase: string; ips: string[]; netnsPath: string; containerId: string };
    expect(made).toMatchObject({ id, phase: 'ready', netnsPath: path.join(tmp, 'netns', made.containerId) });
    expect(made.containerId).toMatch(new RegExp(`^nstool-sb-[0-9a-f]{8}-${id}$`));
    expect(made.ips[0]!.startsWith(net.base)).toBe(true);

    const l = nstool(['sandbox', 'list', ...flags, '--json']);
    expect(JSON.parse(l.out)).toMatchObject([{ id, ips: made.ips }]);
    const i = nstool(['sandbox', 'inspect', id, ...flags, '--json']);
    expect(JSON.parse(i.out)).toMatchObject({ id, status: 'running', netnsPresent: true });

    expect(JSON.parse(nstool(['gc', ...flags, '--dry-run', '--json']).out)).toEqual([]);
    const d = nstool(['sandbox', 'delete', id, ...flags, '--json']);
    expect(JSON.parse(d.out)).toEqual([{ id, existed: true }]);
    expect(JSON.parse(nstool(['sandbox', 'list', ...flags, '--json']).out)).toEqual([]);
    expect(nstool(['sandbox', 'inspect', id, ...flags]).code).toBe(1);
  });

  it('refuses wrong usage with exit 2 and a bad id before any side effect', () => {
    expect(nstool(['sandbox', 'create', `${P}-u`, ...flags]).code).toBe(2); // no --rootfs
    expect(nstool(['sandbox', 'create', `${P}-u`, '--rootfs', tmp, ...flags]).code).toBe(2); // no network choice
    const bad = nstool(['sandbox', 'create', 'bad/id', '--rootfs', tmp, '--no-network', ...flags, '--json']);
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.out)).toMatchObject({ error: { code: 'ERR_INVALID_ARG_VALUE' } });
  });
});
