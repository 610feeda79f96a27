// CNI spec versions: comparing them and which verbs each one has.
export type CniVerb = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'GC' | 'STATUS';

export function parseVersion(v: string): [number, number, number] | null {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(v);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

export function compareVersions(a: string, b: string): number {
  const x = parseVersion(a);
  const y = parseVersion(b);
  if (!x || !y) throw new TypeError(`not a CNI version: ${x ? b : a}`);
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return 0;
}

/** The spec version that introduced each verb. */
const VERB_SINCE: Record<CniVerb, string> = {
  ADD: '0.1.0',
  DEL: '0.1.0',
  VERSION: '0.1.0',
  CHECK: '0.4.0',
  GC: '1.1.0',
  STATUS: '1.1.0',
};

/** Whether VERB may be sent in a config of spec version VERSION. */
export function versionHasVerb(version: string, verb: CniVerb): boolean {
  return compareVersions(version, VERB_SINCE[verb]) >= 0;
}

/** Whether a plugin that reported SUPPORTED can take VERB at config version VERSION. */
export function pluginTakes(supported: readonly string[], version: string, verb: CniVerb): boolean {
  if (verb === 'VERSION') return true;
  return supported.includes(version) && versionHasVerb(version, verb);
}
