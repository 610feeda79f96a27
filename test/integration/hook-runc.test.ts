// Hook mode end to end: plain `runc run` with nstool's hooks in config.json
// wires the container's network, and post-stop takes it down again.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cniHooks } from '../../src/hook/index.js';
import { buildSpec, writeBundle } from '../../src/oci/index.js';
import { describeRoot } from '../helpers/env.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';
import { bridgeNetwork, makeNodeNetns, NodeNetns } from '../helpers/node-netns.js';
import { buildBusyboxRootfs, removeTree, traversableTempDir } from '../helpers/rootfs.js';

const P = testPrefix('hookrunc');
trackLeaks(P);

describeRoot('OCI hook mode with runc run', () => {
  let node: NodeNetns;
  let tmp: string;
  beforeAll(() => {
    node = makeNodeNetns(P);
    tmp = traversableTempDir(P);
  });
  afterAll(() => {
    spawnSync('runc', ['--root', path.join(tmp, 'runc'), 'delete', '--force', `${P}-c`]);
    node.remove();
    removeTree(tmp);
  });

  it('gives the container a working eth0 and releases the IP after delete', async () => {
    const dataDir = path.join(tmp, 'ipam');
    const { net, list } = bridgeNetwork(`${P}-net`, dataDir);
    const conflist = path.join(tmp, 'net.conflist');
    writeFileSync(conflist, JSON.stringify(list));
    const result = path.join(tmp, 'result.json');
    const bundle = path.join(tmp, 'bundle');
    mkdirSync(bundle, { mode: 0o755 });
    const rootfs = buildBusyboxRootfs(path.join(bundle, 'rootfs'));
    const spec = buildSpec({
      rootfs,
      command: ['sh', '-c', `ip -o -4 addr show eth0 && ping -c 1 -W 2 ${net.gateway} >/dev/null && echo PING-OK`],
      hooks: cniHooks({ conflist, result, nodeNetns: node.path, cacheDir: path.join(tmp, 'cni-cache') }),
    });
    await writeBundle(bundle, spec);
    const r = spawnSync('runc', ['--root', path.join(tmp, 'runc'), 'run', '--bundle', bundle, `${P}-c`], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    // While it ran, the hook had written the ADD result; the container saw that IP.
    expect(r.stdout).toContain('PING-OK');
    const ip = /inet (\S+)/.exec(r.stdout)?.[1];
    expect(ip?.startsWith(net.base)).toBe(true);
    // runc run deletes the container on exit: post-stop ran DEL.
    expect(existsSync(result)).toBe(false);
    const reserved = existsSync(path.join(dataDir, `${P}-net`)) ? readdirSync(path.join(dataDir, `${P}-net`)).filter((f) => /^\d+\./.test(f)) : [];
    expect(reserved).toEqual([]);
  });
});
