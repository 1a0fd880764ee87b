#!/usr/bin/env python3
"""Fails when a dependency declares a `rust-version` newer than this crate's.

Only the stable and nightly toolchains exist on the machines this project builds on, so the
MSRV cannot be checked by compiling with that toolchain. What can be checked is that nothing
the crate depends on (normal and build dependencies, every feature, every platform) asks for
a newer Rust than the crate's own `rust-version`; clippy's `incompatible_msrv` lint covers the
crate's own use of newer standard-library items. Dev-dependencies are left out: they build
only this crate's own tests, never a user's build.
"""

import json
import subprocess
import sys


def version(text):
    """`1.88` and `1.88.0` are the same version."""
    parts = [int(part) for part in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def main():
    metadata = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--all-features", "--locked"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    packages = {package["id"]: package for package in metadata["packages"]}
    root = metadata["resolve"]["root"]
    ours = packages[root]["rust_version"]
    if not ours:
        print("check-msrv: the crate declares no rust-version")
        return 1
    nodes = {node["id"]: node for node in metadata["resolve"]["nodes"]}
    seen, stack = set(), [root]
    while stack:
        node = nodes[stack.pop()]
        for dep in node["deps"]:
            kinds = {kind["kind"] for kind in dep["dep_kinds"]}
            if kinds & {None, "build"} and dep["pkg"] not in seen:
                seen.add(dep["pkg"])
                stack.append(dep["pkg"])
    newer = sorted(
        (packages[pkg]["name"], packages[pkg]["version"], packages[pkg]["rust_version"])
        for pkg in seen
        if packages[pkg]["rust_version"]
        and version(packages[pkg]["rust_version"]) > version(ours)
    )
    for name, pkg_version, needs in newer:
        print(f"check-msrv: {name} {pkg_version} needs Rust {needs}, newer than ours ({ours})")
    print(f"check-msrv: {len(seen)} dependencies checked against rust-version {ours}: "
          f"{'FAIL' if newer else 'ok'}")
    return 1 if newer else 0


if __name__ == "__main__":
    sys.exit(main())
