// OCI hook mode: CNI ADD at createRuntime, DEL at poststop.
export { runCniHook } from './cni-hook.js';
export type { HookOutcome, HookStage } from './cni-hook.js';
export { readRecord, recordPath } from './record.js';
export type { HookRecord, RecordRead } from './record.js';
export type { NetnsRef, NetnsSource } from './netns.js';
export { cniHooks, NSTOOL_BIN } from './hooks.js';
export type { CniHooksOptions, OciHook } from './hooks.js';
export { cniAnnotations, FLAG_ONLY_ANNOTATIONS, HOOK_ANNOTATIONS, resolveSettings } from './settings.js';
export type { AnnotatedSetting, CniHookSettings } from './settings.js';
export { parseOciState } from './state.js';
export type { OciState } from './state.js';
