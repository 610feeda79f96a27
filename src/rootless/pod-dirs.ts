// Where a rootless container's files live, in one place: under the user's
// runtime dir, each 0700 (see src/rootless/pod.ts).
import path from 'node:path';
import { RuntimeDirs, runtimeDirs } from './runtime-dir.js';

export interface RootlessPodDirs extends RuntimeDirs {
  /** Bundles: config.json, nstool's record, the container's logs. */
  containers: string;
  /** The runtime's --root. */
  runc: string;
  /** The runtime client's per-command logs. */
  runtimeLogs: string;
}

export function rootlessPodDirs(env?: Record<string, string | undefined>): RootlessPodDirs {
  const d = runtimeDirs(env);
  return { ...d, containers: path.join(d.dir, 'containers'), runc: path.join(d.dir, 'runc'), runtimeLogs: path.join(d.dir, 'runtime-logs') };
}
