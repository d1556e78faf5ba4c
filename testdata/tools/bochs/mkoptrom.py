#!/usr/bin/env python3
"""mkoptrom.py LOADER.bin KERNEL.bin OUT.rom: option ROM = loader + kernel,
padded to 512 bytes, size byte and checksum fixed."""
import sys
loader, kernel = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
img = bytearray(loader + kernel + b"\0")
img += b"\0" * (-len(img) % 512)
img[2] = len(img) // 512
img[-1] = (-sum(img[:-1])) & 0xFF
assert sum(img) & 0xFF == 0 and len(img) <= 0x18000, len(img)
open(sys.argv[3], "wb").write(img)
