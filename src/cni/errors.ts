// The error a CNI plugin reports ({code, msg, details} on stdout), carried
// as an NstoolError so callers test `code` like every other failure.
import { ErrorJSON, NstoolError } from '../errors.js';

export const CNI_ERROR = 'ERR_NSTOOL_CNI';

export interface CniErrorFields {
  /** The plugin type (binary name) that failed, or the network name. */
  plugin: string;
  /** CNI error code from the plugin (1 incompatible version, 2 unsupported field, 3 unknown container, 4 invalid env, 7 invalid network config, 11 try again...). */
  cniCode?: number;
  cniMsg?: string;
  cniDetails?: string;
  hint?: string;
  cause?: unknown;
}

export class CniError extends NstoolError {
  readonly plugin: string;
  readonly cniCode?: number;
  readonly cniMsg?: string;
  readonly cniDetails?: string;

  constructor(message: string, f: CniErrorFields, code = CNI_ERROR) {
    super(message, { code, hint: f.hint, cause: f.cause });
    this.name = 'CniError';
    this.plugin = f.plugin;
    if (f.cniCode !== undefined) this.cniCode = f.cniCode;
    if (f.cniMsg !== undefined) this.cniMsg = f.cniMsg;
    if (f.cniDetails !== undefined) this.cniDetails = f.cniDetails;
  }

  override toJSON(): ErrorJSON {
    const { suppressed, ...base } = super.toJSON();
    return { ...base, ...cniErrorJson(this), ...(suppressed !== undefined ? { suppressed } : {}) };
  }
}

/** The fields of a CniError worth printing as JSON (the CLI adds them). */
export function cniErrorJson(err: unknown): Record<string, unknown> {
  if (!(err instanceof CniError)) return {};
  const out: Record<string, unknown> = { plugin: err.plugin };
  if (err.cniCode !== undefined) out['cniCode'] = err.cniCode;
  if (err.cniMsg !== undefined) out['cniMsg'] = err.cniMsg;
  if (err.cniDetails !== undefined) out['cniDetails'] = err.cniDetails;
  return out;
}
