// containerIdOf: the public way to learn a sandbox's resource name.
import { instanceOf, resourceName, validateSandboxId } from './instance.js';
import { SandboxDirs, sandboxDirs } from './types.js';

/** The pause container's id (and the pins' and CNI container id) of sandbox ID in the instance of O. */
export function containerIdOf(id: string, o: SandboxDirs = {}): string {
  return resourceName(instanceOf(sandboxDirs(o).state), validateSandboxId(id));
}
