// The identifiers CNI plugins check themselves, checked here first so a bad
// one fails before any plugin runs (and before anything is allocated).
import { invalidArg } from '../errors.js';

const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$/;
const IFNAME_MAX = 15;

export function validateContainerId(id: unknown): string {
  if (typeof id !== 'string') throw invalidArg('containerId must be a string', 'ERR_INVALID_ARG_TYPE');
  if (!CONTAINER_ID.test(id)) {
    throw invalidArg(`containerId ${JSON.stringify(id)} must match ${CONTAINER_ID.source}`);
  }
  return id;
}

export function validateIfName(name: unknown): string {
  if (typeof name !== 'string') throw invalidArg('ifName must be a string', 'ERR_INVALID_ARG_TYPE');
  if (name.length === 0 || Buffer.byteLength(name) > IFNAME_MAX) {
    throw invalidArg(`ifName ${JSON.stringify(name)} must be 1 to ${IFNAME_MAX} bytes`);
  }
  if (/[/:\s\0]/.test(name)) throw invalidArg(`ifName ${JSON.stringify(name)} must not contain "/", ":" or whitespace`);
  if (name === '.' || name === '..') throw invalidArg('ifName must not be "." or ".."');
  return name;
}

/** Network names key the result cache: one plain file-name component. */
export function validateNetworkName(name: unknown): string {
  if (typeof name !== 'string' || name === '') throw invalidArg('network name must be a non-empty string');
  if (/[/\0]/.test(name) || name === '.' || name === '..') {
    throw invalidArg(`network name ${JSON.stringify(name)} must not contain "/" or be "." or ".."`);
  }
  return name;
}

/** A plugin type is a program name looked up on the plugin path. */
export function validatePluginType(type: unknown): string {
  if (typeof type !== 'string' || type === '') throw invalidArg('plugin "type" must be a non-empty string');
  if (/[/\0]/.test(type) || type === '.' || type === '..') {
    throw invalidArg(`plugin type ${JSON.stringify(type)} must be a program name, not a path`);
  }
  return type;
}

/** CNI_ARGS is "K=V;K=V": neither part may hold ";" and keys no "=". */
export function formatCniArgs(args: ReadonlyArray<readonly [string, string]>): string {
  return args
    .map(([k, v]) => {
      if (typeof k !== 'string' || typeof v !== 'string') throw invalidArg('CNI args must be string pairs', 'ERR_INVALID_ARG_TYPE');
      if (k === '' || /[;=\0]/.test(k)) throw invalidArg(`CNI arg key ${JSON.stringify(k)} must be non-empty, without ";" or "="`);
      if (/[;\0]/.test(v)) throw invalidArg(`CNI arg value for ${k} must not contain ";"`);
      return `${k}=${v}`;
    })
    .join(';');
}
