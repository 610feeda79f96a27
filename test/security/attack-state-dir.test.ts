// The attack: a local user makes the sandbox state dir before nstool does
// (a caller put it under a world-writable sticky dir such as /tmp) and plants
// a state file in it. The state names the runtime binary, the plugin path and
// the CNI cache: whatever root reads from it, root then runs. nstool must
// refuse a state dir it cannot trust (not root's, or writable by others)
// before reading anything from it.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { inMemorySync } from '../../src/atomic-file.js';
import { createSandbox, deleteSandbox, gc, listSandboxes } from '../../src/sandbox/index.js';
import { describeRoot } from '../helpers/env.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';
import { removeTree, traversableTempDir } from '../helpers/rootfs.js';

const prefix = testPrefix('atkstate');
trackLeaks(prefix);

function asNobody(argv: string[]): number | null {
  return spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '/bin/sh', '-c', 'exec "$@"', 'sh', ...argv]).status;
}

describeRoot('attack: a state dir made by another user', () => {
  // On disk and on a tmpfs (the usual /run), where the dir is checked without trips to the pool.
  const cases: Array<{ dir: string; stateDir: string; marker: string }> = [];

  /** Under BASE, a dir like /tmp (everyone may create entries, nobody may remove others'), and the attacker's state dir in it. */
  function plant(base: string): void {
    const dir = base;
    chmodSync(dir, 0o755);
    const tmp = path.join(dir, 'tmp');
    mkdirSync(tmp);
    chmodSync(tmp, 0o1777);
    const stateDir = path.join(tmp, 'sandboxes');
    const marker = path.join(tmp, 'ran-as-root');
    const evil = path.join(tmp, 'evil');
    const id = `${prefix}-victim`;
    const forged = {
      version: 1,
      id,
      phase: 'ready',
      createdAt: new Date().toISOString(),
      uidMap: [{ containerID: 0, hostID: 100000, size: 65536 }],
      gidMap: [{ containerID: 0, hostID: 100000, size: 65536 }],
      pause: { containerId: `nstool-sb-x-${id}`, bundle: `/nonexistent/nstool-sb-x-${id}`, runtime: { binary: evil } },
    };
    // Everything below is done by the attacker, uid 65534.
    const script = [
      `mkdir -m 0777 ${stateDir}`,
      `printf '#!/bin/sh\\nid -u > ${marker}\\nexit 1\\n' > ${evil}`,
      `chmod 0755 ${evil}`,
      `cat > ${stateDir}/${id}.json <<'EOF'\n${JSON.stringify(forged)}\nEOF`,
    ].join(' && ');
    expect(asNobody(['/bin/sh', '-c', script])).toBe(0);
    cases.push({ dir, stateDir, marker });
  }

  beforeAll(() => {
    plant(traversableTempDir(prefix));
    plant(mkdtempSync(path.join('/dev/shm', `${prefix}-`)));
  });

  afterAll(() => {
    for (const c of cases) removeTree(c.dir);
  });

  it('nstool never runs what a state file in a foreign state dir names', async () => {
    const id = `${prefix}-victim`;
    expect(cases.map((c) => inMemorySync(c.stateDir))).toEqual([false, true]);
    for (const { dir, stateDir, marker } of cases) {
      const o = { stateDir, bundleDir: path.join(dir, 'bundles'), cniCacheDir: path.join(dir, 'cni') };
      await expect(deleteSandbox(id, o), stateDir).rejects.toMatchObject({ code: 'ERR_NSTOOL_STATE_DIR', path: stateDir });
      await expect(createSandbox({ id: `${prefix}-new`, uidMap: '0:100000:65536', ...o }), stateDir).rejects.toMatchObject({ code: 'ERR_NSTOOL_STATE_DIR', path: stateDir });
      await expect(gc(o), stateDir).rejects.toMatchObject({ code: 'ERR_NSTOOL_STATE_DIR', path: stateDir });
      await expect(listSandboxes(o), stateDir).rejects.toMatchObject({ code: 'ERR_NSTOOL_STATE_DIR', path: stateDir });
      expect(existsSync(marker), stateDir).toBe(false);
    }
  });
});
