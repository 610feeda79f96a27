#!/usr/bin/env node
// Rootless pod network setup: the time from startRootlessNetwork until the
// pod's interface is configured (the promise resolves), per backend, rounds
// interleaved so both see the same machine. Run as an unprivileged user
// with XDG_RUNTIME_DIR set (a pod netns of the user's own ids is made and
// deleted here; no subordinate ids are needed):
//
//   node bench/rootless-net.js [--cycles N]
//
// The stop after each start is not measured.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, nowNs, pct } from './stats.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const api = await import(path.join(root, 'dist/index.js'));

const at = process.argv.indexOf('--cycles');
const cycles = at > 0 ? Number(process.argv[at + 1]) : 10;
if (process.getuid() === 0) {
  console.error('run this as an unprivileged user (with XDG_RUNTIME_DIR): rootless networking is for users');
  process.exit(2);
}
const uid = process.getuid(), gid = process.getgid();
const name = `bench-net-${process.pid}`;
const pod = await api.createPodNetns({ name, uidMap: `0:${uid}:1`, gidMap: `0:${gid}:1` });
const samples = { slirp4netns: [], pasta: [] };
try {
  for (let i = 0; i < cycles + 1; i++) {
    for (const backend of Object.keys(samples)) {
      const t0 = nowNs();
      const r = await api.startRootlessNetwork({ netnsPath: pod.path, usernsPath: pod.usernsPath, backend });
      const dt = nowNs() - t0;
      await api.stopRootlessNetwork(r);
      if (i > 0) samples[backend].push(dt); // the first round warms up
    }
  }
} finally {
  await api.deletePodNetns(name);
}
const out = Object.entries(samples).map(([backend, xs]) => ({
  backend,
  cycles: xs.length,
  medianMs: +(median(xs) / 1e6).toFixed(2),
  minMs: +(Math.min(...xs) / 1e6).toFixed(2),
  p90Ms: +(pct(xs, 90) / 1e6).toFixed(2),
}));
console.log(JSON.stringify(out, null, 2));
