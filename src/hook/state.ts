// The OCI state a runtime writes on a hook's stdin.
import { invalidArg } from '../errors.js';

export interface OciState {
  ociVersion?: string;
  id: string;
  status?: string;
  /** The container's init pid; absent or 0 once it is gone (poststop). */
  pid?: number;
  bundle?: string;
  annotations: Record<string, string>;
}

export function parseOciState(text: string | Buffer): OciState {
  let obj: unknown;
  try {
    obj = JSON.parse(text.toString());
  } catch (err) {
    throw invalidArg(`the OCI state on stdin is not JSON: ${(err as Error).message}`);
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw invalidArg('the OCI state must be a JSON object');
  const s = obj as Record<string, unknown>;
  if (typeof s['id'] !== 'string' || s['id'] === '') throw invalidArg('the OCI state has no "id"');
  const pid = s['pid'];
  if (pid !== undefined && (typeof pid !== 'number' || !Number.isInteger(pid) || pid < 0)) throw invalidArg('the OCI state "pid" must be a non-negative integer');
  const ann = s['annotations'] ?? {};
  if (ann === null || typeof ann !== 'object' || Array.isArray(ann) || Object.values(ann).some((v) => typeof v !== 'string')) {
    throw invalidArg('the OCI state "annotations" must map strings to strings');
  }
  const out: OciState = { id: s['id'], annotations: ann as Record<string, string> };
  if (typeof s['ociVersion'] === 'string') out.ociVersion = s['ociVersion'];
  if (typeof s['status'] === 'string') out.status = s['status'];
  if (typeof s['bundle'] === 'string') out.bundle = s['bundle'];
  if (typeof pid === 'number' && pid > 0) out.pid = pid;
  return out;
}
