// Runs once before any test file: makes the pin dirs shared mount points
// before test files race to do it (nstool and `ip netns add` each bind a
// dir that is not yet a mount point onto itself; two at once would stack).
import { ensurePinDir } from '../../src/netns.js';
import { isRoot } from './env.js';

export default function setup(): void {
  if (!isRoot) return;
  ensurePinDir('/run/netns');
  ensurePinDir('/run/nstool/userns');
}
