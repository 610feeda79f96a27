// The OCI runtime config (what runc 1.1.5 reads) and the options that build it.
// Parts nstool only passes through (seccomp, resources beyond devices) stay loose.
import type { IdMapping } from '../idmap.js';

export const OCI_VERSION = '1.0.2';

export interface Hook {
  path: string;
  args?: string[];
  env?: string[];
  timeout?: number;
}

export interface Hooks {
  /** Deprecated by the spec but still run by runc 1.1.5. */
  prestart?: Hook[];
  createRuntime?: Hook[];
  createContainer?: Hook[];
  startContainer?: Hook[];
  poststart?: Hook[];
  poststop?: Hook[];
}

export interface Mount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
  /** OCI 1.1 idmapped mount fields; runc 1.1.5 ignores them (see specNeedsIdmap). */
  uidMappings?: IdMapping[];
  gidMappings?: IdMapping[];
}

export interface User {
  uid: number;
  gid: number;
  umask?: number;
  additionalGids?: number[];
  username?: string;
}

export interface Rlimit {
  type: string;
  soft: number;
  hard: number;
}

export interface Capabilities {
  bounding?: string[];
  effective?: string[];
  permitted?: string[];
  inheritable?: string[];
  ambient?: string[];
}

export interface Process {
  terminal?: boolean;
  user: User;
  args: string[];
  env: string[];
  cwd: string;
  capabilities?: Capabilities;
  rlimits?: Rlimit[];
  noNewPrivileges?: boolean;
  apparmorProfile?: string;
  oomScoreAdj?: number;
  selinuxLabel?: string;
}

export type NamespaceType = 'pid' | 'network' | 'mount' | 'ipc' | 'uts' | 'user' | 'cgroup';

export interface Namespace {
  type: NamespaceType;
  path?: string;
}

export interface Device {
  type: 'c' | 'b' | 'u' | 'p';
  path: string;
  major?: number;
  minor?: number;
  fileMode?: number;
  uid?: number;
  gid?: number;
}

export interface DeviceCgroup {
  allow: boolean;
  type?: 'a' | 'c' | 'b';
  major?: number;
  minor?: number;
  access?: string;
}

export interface Linux {
  namespaces: Namespace[];
  uidMappings?: IdMapping[];
  gidMappings?: IdMapping[];
  devices?: Device[];
  cgroupsPath?: string;
  resources?: { devices?: DeviceCgroup[]; [key: string]: unknown };
  sysctl?: Record<string, string>;
  seccomp?: Record<string, unknown>;
  maskedPaths?: string[];
  readonlyPaths?: string[];
  rootfsPropagation?: 'private' | 'shared' | 'slave' | 'unbindable';
  [key: string]: unknown;
}

export interface Spec {
  ociVersion: string;
  process: Process;
  root: { path: string; readonly?: boolean };
  hostname?: string;
  mounts: Mount[];
  hooks?: Hooks;
  annotations?: Record<string, string>;
  linux: Linux;
}

export type Propagation = 'private' | 'rprivate' | 'shared' | 'rshared' | 'slave' | 'rslave';

export interface MountRequest {
  source: string;
  destination: string;
  readonly?: boolean;
  /** Default "bind". */
  type?: string;
  /** Extra options, appended after the ones nstool derives. */
  options?: string[];
  /** rbind instead of bind (and ridmap with idmap). */
  recursive?: boolean;
  propagation?: Propagation;
  /** true: map with the pod's uid/gid maps; or explicit maps. Bind mounts only. */
  idmap?: boolean | { uidMappings: IdMapping[]; gidMappings: IdMapping[] };
}

/** What an image config contributes (the OCI image config's fields). */
export interface ImageConfig {
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  workingDir?: string;
  user?: string;
}

export interface BuildSpecOptions {
  /** Absolute path of the root filesystem; /etc/passwd and /etc/group are read from it. */
  rootfs: string;
  readonlyRootfs?: boolean;
  image?: ImageConfig;
  /** Replaces the image Entrypoint and drops its Cmd. */
  command?: string[];
  /** Replaces the image Cmd. */
  args?: string[];
  /** Caller values win over the image's. */
  env?: Record<string, string> | string[];
  cwd?: string;
  /** name, uid, "uid:gid", "name:group" (or mixes); default: the image user, else root. */
  user?: string | number;
  umask?: number;
  terminal?: boolean;
  hostname?: string;
  annotations?: Record<string, string>;
  /** Joined network namespace; a new one when absent (unless hostNetwork). */
  netnsPath?: string;
  /** Stay in the caller's network namespace. */
  hostNetwork?: boolean;
  /** Joined user namespace; none at all when absent. */
  usernsPath?: string;
  /**
   * Joined ipc and uts namespaces (a pod's pins); new ones when absent. They
   * must be owned by the userns that owns the netns (or by usernsPath when
   * there is no netnsPath). With utsPath the pod's host name is kept: a
   * hostname is refused, since the runtime would rename the whole pod.
   */
  ipcPath?: string;
  utsPath?: string;
  /**
   * The caller already knows the joined namespaces are right (the userns owns
   * the netns: it is about to pin that very owner) and read the userns's
   * setgroups: buildSpec then does not open usernsPath, which may not exist yet.
   */
  namespacesChecked?: { setgroups: string };
  /** Required with usernsPath: the maps of that namespace (runc 1.1.5 insists). */
  uidMappings?: IdMapping[];
  gidMappings?: IdMapping[];
  mounts?: MountRequest[];
  /** Replaces the default capability set (names with or without CAP_). */
  capabilities?: string[];
  /** Also raise these in the ambient and inheritable sets. */
  ambientCapabilities?: string[];
  noNewPrivileges?: boolean;
  /** Replaces the default (RLIMIT_NOFILE 1024/1024). */
  rlimits?: Rlimit[];
  seccomp?: Record<string, unknown>;
  /** Extra devices, created in the container and allowed in the device cgroup. */
  devices?: Device[];
  cgroupsPath?: string;
  sysctl?: Record<string, string>;
  hooks?: Hooks;
  /** Replace the defaults. */
  maskedPaths?: string[];
  readonlyPaths?: string[];
  /**
   * How /sys/fs/cgroup appears. "cgroupfs" (default): a read-only cgroup mount;
   * runc 1.1.5 mounts each v1 hierarchy inside the container's cgroup namespace,
   * which works in a joined userns too (checked on a v1 hybrid host, kernel 6.18).
   * "bind": an rbind of the host's tree (runc makes only its top read-only, and
   * it shows the host's hierarchy). "none": no mount.
   */
  cgroupMount?: 'cgroupfs' | 'bind' | 'none';
}
