// The identifiers CNI plugins check themselves, checked first so a bad one
// fails before any plugin runs (and before anything is allocated). The rules
// live in ../names.ts with every other name rule.
import { invalidArg } from '../errors.js';
import { showValue } from '../names.js';

export { validateContainerId, validateIfName, validateNetworkName, validatePluginType } from '../names.js';

/** CNI_ARGS is "K=V;K=V": neither part may hold ";" and keys no "=". */
export function formatCniArgs(args: ReadonlyArray<readonly [string, string]>): string {
  return args
    .map(([k, v]) => {
      if (typeof k !== 'string' || typeof v !== 'string') throw invalidArg('CNI args must be string pairs', 'ERR_INVALID_ARG_TYPE');
      if (k === '' || /[;=\0]/.test(k)) throw invalidArg(`CNI arg key ${showValue(k)} must be non-empty, without ";" or "="`);
      if (/[;\0]/.test(v)) throw invalidArg(`CNI arg value for ${showValue(k)} must not contain ";"`);
      return `${k}=${v}`;
    })
    .join(';');
}
