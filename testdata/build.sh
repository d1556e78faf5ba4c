#!/bin/sh
# Rebuild every guest binary from source. nasm -f bin output is a pure
# function of the source (no timestamps), so rebuilding is reproducible.
set -e
cd "$(dirname "$0")"
for src in guests/*.asm bench/*.asm; do
    [ -e "$src" ] || continue
    nasm -f bin -I include/ -I "$(dirname "$src")/" -o "${src%.asm}.bin" "$src"
done
for src in bios/*.asm; do
    [ -e "$src" ] || continue
    nasm -f bin -I include/ -o "${src%.asm}.rom" "$src"
done
