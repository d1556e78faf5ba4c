#!/usr/bin/env python3
"""Writes a newc cpio initramfs without root: busybox, /init, and a /dev/console node.

usage: mkinitramfs.py BUSYBOX INIT OUT

Device nodes and ownership are written into the archive directly, so no mknod or chown is
needed on the host. Timestamps are 0, so the archive depends only on its inputs.
"""
import sys


def entry(name, mode, data=b"", rdev=(0, 0), ino=[1]):
    ino[0] += 1
    fields = [
        ino[0], mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0,
    ]
    hdr = b"070701" + b"".join(b"%08X" % f for f in fields)
    out = hdr + name.encode() + b"\0"
    out += b"\0" * (-len(out) % 4)
    out += data + b"\0" * (-len(data) % 4)
    return out


def main():
    busybox, init, out = sys.argv[1:4]
    with open(busybox, "rb") as f:
        bb = f.read()
    with open(init, "rb") as f:
        init_data = f.read()
    parts = [
        entry("bin", 0o040755),
        entry("dev", 0o040755),
        entry("dev/console", 0o020600, rdev=(5, 1)),
        entry("proc", 0o040755),
        entry("sys", 0o040755),
        entry("tmp", 0o041777),
        entry("bin/busybox", 0o100755, bb),
        entry("bin/sh", 0o120777, b"busybox"),
        entry("init", 0o100755, init_data),
        entry("TRAILER!!!", 0),
    ]
    blob = b"".join(parts)
    blob += b"\0" * (-len(blob) % 512)
    with open(out, "wb") as f:
        f.write(blob)


main()
