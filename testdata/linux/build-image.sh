#!/bin/sh
# Builds the Linux guest image tern boots: Debian's i386 linux-image-686 kernel and a busybox
# initramfs whose /init mounts /proc and /sys and starts a shell on the serial console.
#
# Only apt-get touches the network; its package lists go to a private directory, so the
# host's apt configuration is left alone. The results are cached outside the repository:
#
#   $TERN_IMAGE_DIR (default ${XDG_CACHE_HOME:-~/.cache}/tern/linux-i386)/
#       bzImage        the kernel (boot/vmlinuz-* from the package)
#       initrd.cpio    newc cpio: /init, /bin/busybox, /dev/console, /proc, /sys
#       VERSION        the package versions the two came from
#
# Usage: testdata/linux/build-image.sh   (prints the directory on its last line)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${TERN_IMAGE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tern/linux-i386}
mkdir -p "$out"
# The initramfs depends on these two files: a change to either rebuilds the image.
recipe=$(cat "$here/init" "$here/mkinitramfs.py" | sha256sum | cut -c1-16)
if [ -s "$out/bzImage" ] && [ -s "$out/initrd.cpio" ] && grep -qx "recipe $recipe" "$out/VERSION" 2>/dev/null; then
    echo "$out"
    exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
apt="-o APT::Architectures=amd64,i386 -o Dir::State::Lists=$work/lists
     -o Dir::Cache=$work/cache -o Debug::NoLocking=1 -q"
# A mirror in the middle of a sync can fail one index (the security suite, say); the
# download below fails clearly if what it needs is missing.
# shellcheck disable=SC2086
apt-get $apt update >"$work/update.log" 2>&1 || true
# shellcheck disable=SC2086
kpkg=$(apt-cache $apt depends linux-image-686:i386 | sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -n1)
if [ -z "$kpkg" ]; then
    cat "$work/update.log" >&2
    echo "build-image: cannot resolve linux-image-686:i386" >&2
    exit 1
fi
cd "$work/debs"
# shellcheck disable=SC2086
apt-get $apt download "$kpkg" busybox-static:i386 >/dev/null 2>"$work/download.log" || {
    cat "$work/download.log" >&2
    exit 1
}
dpkg-deb -x ./linux-image-*.deb "$work/kernel"
dpkg-deb -x ./busybox-static_*.deb "$work/busybox"
python3 "$here/mkinitramfs.py" "$work/busybox/bin/busybox" "$here/init" "$work/initrd.cpio"
cp "$work"/kernel/boot/vmlinuz-* "$out/bzImage.tmp"
cp "$work/initrd.cpio" "$out/initrd.cpio.tmp"
{
    dpkg-deb -f ./linux-image-*.deb Package Version
    dpkg-deb -f ./busybox-static_*.deb Package Version
    echo "recipe $recipe"
} >"$out/VERSION.tmp"
mv "$out/bzImage.tmp" "$out/bzImage"
mv "$out/initrd.cpio.tmp" "$out/initrd.cpio"
mv "$out/VERSION.tmp" "$out/VERSION"
echo "$out"
