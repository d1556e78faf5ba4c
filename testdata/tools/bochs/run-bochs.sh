#!/bin/sh
# Run one test kernel (or the realmode ROM) under Bochs, as a second
# reference beside QEMU.  Bochs has no isa-debug-exit device, so the result
# is read from the COM1 log; the run stops after the PASS/FAIL line or a
# timeout.  Needs the Debian packages bochs, bochs-term, bochsbios, vgabios
# and script(1) (Debian's bochs is built with the debugger and has no
# "nogui" display: the "term" display wants a tty, and the debugger is told
# to continue at once).
#   tools/bochs/run-bochs.sh guests/seglimits.bin [seconds]
#   tools/bochs/run-bochs.sh bios/realmode.rom [seconds]
set -e
here=$(cd "$(dirname "$0")" && pwd)
img=$(realpath "$1")
secs=${2:-60}
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
case "$img" in
*.rom)
    rom="romimage: file=$img"
    opt="" ;;
*)
    nasm -f bin -o "$t/loader.bin" "$here/loader.asm"
    python3 "$here/mkoptrom.py" "$t/loader.bin" "$img" "$t/opt.rom"
    rom="romimage: file=/usr/share/bochs/BIOS-bochs-latest"
    opt="optromimage1: file=$t/opt.rom, address=0xd0000" ;;
esac
cat > "$t/bochsrc" <<CFG
megs: 128
$rom
vgaromimage: file=/usr/share/bochs/VGABIOS-lgpl-latest
$opt
display_library: term
com1: enabled=1, mode=file, dev=$t/com1.txt
log: $t/bochs.log
panic: action=fatal
error: action=report
info: action=ignore
debug: action=ignore
clock: sync=none, time0=local
cpu: count=1, ips=50000000
speaker: enabled=0
plugin_ctrl: speaker=0, sb16=0, es1370=0
CFG
echo c > "$t/cmds"
(cd "$t" && TERM=xterm timeout "$secs" script -qfc "bochs -q -f $t/bochsrc -rc $t/cmds" /dev/null >/dev/null 2>&1 </dev/null &
 pid=$!
 while kill -0 $pid 2>/dev/null; do
     if grep -qE '^(PASS|FAIL)' "$t/com1.txt" 2>/dev/null; then sleep 0.2; kill $pid 2>/dev/null; break; fi
     sleep 0.2
 done; wait $pid 2>/dev/null || true)
tr -d '\r' < "$t/com1.txt" 2>/dev/null | grep -E '^(PASS|FAIL)' || { echo "NO RESULT ($1)"; tail -5 "$t/bochs.log"; }
