{
  "targets": [
    {
      "target_name": "nstool",
      "sources": [
        "native/addon.cc",
        "native/errors.cc",
        "native/userns_netns.cc",
        "native/pin.cc",
        "native/nsinfo.cc",
        "native/idmap_mount.cc",
        "native/overlay_mount.cc",
        "native/lock.cc",
        "native/rootfs.cc",
        "native/features.cc",
        "native/podns.cc",
        "native/keeper_client.cc",
        "native/run.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      # SWALLOW_UNTHROWABLE: an error meant for a worker being terminated is
      # dropped; without it node-addon-api throws it out of N-API (abort).
      "defines": [
        "NAPI_VERSION=8",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS",
        "_GNU_SOURCE"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fstack-protector-strong"]
    },
    {
      "target_name": "nstool-spawn",
      "type": "executable",
      "sources": ["native/spawn/nstool-spawn.cc"],
      "defines": ["_GNU_SOURCE"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-fstack-protector-strong"],
      "ldflags": ["-static-libstdc++", "-static-libgcc"]
    },
    {
      "target_name": "nstool-keeper",
      "type": "executable",
      "sources": ["native/keeper/nstool-keeper.cc"],
      "defines": ["_GNU_SOURCE"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-fstack-protector-strong"]
    }
  ]
}
