// A test-made "node": a root-owned netns (ip netns add) with lo up, where CNI
// plugins run and bridges live, so the machine's own network is untouched;
// plus a userns-owned pod netns and a temp dir, all named with the prefix.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createPodNetns, deletePodNetns, PodNetns } from '../../src/netns.js';

export const POD_MAP = '0:100000:65536';

export interface NodeNetns {
  name: string;
  path: string;
  remove(): void;
}

export function makeNodeNetns(prefix: string): NodeNetns {
  const name = `${prefix}-node`;
  execFileSync('ip', ['netns', 'add', name]);
  const remove = () => {
    spawnSync('ip', ['netns', 'del', name]);
  };
  try {
    execFileSync('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  } catch (err) {
    remove();
    throw err;
  }
  return { name, path: `/run/netns/${name}`, remove };
}

export async function makePodNetns(prefix: string, tag = 'pod'): Promise<PodNetns> {
  return createPodNetns({ name: `${prefix}-${tag}`, uidMap: POD_MAP });
}

export async function removePodNetns(pod: PodNetns | undefined): Promise<void> {
  if (pod) await deletePodNetns(pod.path);
}

export function makeTempDir(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), `${prefix}-`));
}

export function removeTempDir(dir: string | undefined): void {
  if (dir) rmSync(dir, { recursive: true, force: true });
}

/** A bridge name that fits IFNAMSIZ and is unique enough for one node. */
export function bridgeName(): string {
  return `nst${randomBytes(4).toString('hex')}`;
}

/** A /24 under 10.123.0.0/16; it only ever exists inside a test node netns. */
export function testSubnet(): { subnet: string; gateway: string; base: string } {
  const x = 1 + (randomBytes(1)[0]! % 250);
  return { subnet: `10.123.${x}.0/24`, gateway: `10.123.${x}.1`, base: `10.123.${x}.` };
}

/** Links inside a netns (by path), as names. */
export function linksIn(netnsPath: string): string[] {
  const out = execFileSync('nsenter', [`--net=${netnsPath}`, 'ip', '-o', 'link', 'show'], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(':')[1]!.trim().split('@')[0]!);
}

/**
 * A bridge + host-local + loopback network list for a test-made node netns,
 * named NAME, keeping host-local's reservations under DATADIR.
 */
export function bridgeNetwork(name: string, dataDir: string): { net: ReturnType<typeof testSubnet>; list: Record<string, unknown> } {
  const net = testSubnet();
  const list = {
    cniVersion: '1.0.0',
    name,
    plugins: [
      { type: 'bridge', bridge: bridgeName(), isGateway: true, ipMasq: false, ipam: { type: 'host-local', subnet: net.subnet, dataDir, routes: [{ dst: '0.0.0.0/0' }] } },
      { type: 'loopback' },
    ],
  };
  return { net, list };
}

/** The dirs of a sandbox instance of a test's own under TMP (its gc sees only its own pins). */
export function sandboxDirs(tmp: string) {
  return {
    stateDir: path.join(tmp, 'state'),
    bundleDir: path.join(tmp, 'bundles'),
    cniCacheDir: path.join(tmp, 'cni-cache'),
    pinDir: path.join(tmp, 'netns'),
    usernsPinDir: path.join(tmp, 'userns'),
    ipcPinDir: path.join(tmp, 'ipc'),
    utsPinDir: path.join(tmp, 'uts'),
  };
}
