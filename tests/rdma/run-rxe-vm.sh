#!/bin/bash
# SPDX-License-Identifier: MIT
#
# run-rxe-vm.sh BINARY[::ARGS]... - run verbs test programs against REAL rdma-core and
# the kernel verbs stack (soft-RoCE, rdma_rxe) inside a throw-away QEMU guest.
# Adapted from ../shared/rdma-vm/run-rxe-vm.sh; docs/rdma.md describes it.
#
# The host kernel may have no RDMA support and no /dev/kvm, so: Debian's own
# kernel package, booted under TCG, with an initramfs holding busybox, the
# needed modules, rdma-core's libibverbs and rxe provider, and the binaries
# plus every library ldd finds for them. The guest has no NIC (-nic none);
# rxe0 runs on a veth pair inside it (veth0 10.77.0.1/24, veth1
# 10.77.0.2/24, so rxe0 has RoCE v2 IPv4-mapped GIDs). Each binary runs in
# turn with PLX_RXE_VM=1 in its environment (tests use it to fail rather
# than skip when no device shows up); exit status 0 only if all exited 0.
# BINARY::ARGS runs BINARY with the space-separated ARGS (no quoting).
#
# Needs root: it installs missing Debian packages with apt-get and
# downloads the kernel package (once, cached). Environment:
#   RXE_VM_WORKDIR     cache + logs (default /tmp/pollux-rxe-vm); the full
#                      guest console of the last run is console.log there
#   RXE_VM_EXTRA_LIBS  more libraries to copy in (space-separated paths),
#                      for what the binaries dlopen() besides libibverbs
#   RXE_VM_VERBOSE=1   print the whole console (default: only lines with
#                      ===, passed, failed, FAIL, SKIP, rxe)
#   RXE_VM_TIMEOUT     seconds the guest may run (default 600)
set -euo pipefail

(($#)) || { echo "usage: $0 BINARY[::ARGS]..." >&2; exit 2; }
[[ "$(id -u)" == 0 ]] || { echo "run-rxe-vm.sh: needs root (apt-get, kernel package)" >&2; exit 2; }
PROGS=() ARGS=()
for a in "$@"; do
	b=${a%%::*}
	[[ -x "$b" ]] || { echo "run-rxe-vm.sh: not an executable: $b" >&2; exit 2; }
	PROGS+=("$b")
	if [[ "$a" == *::* ]]; then ARGS+=("${a#*::}"); else ARGS+=(""); fi
done

W=${RXE_VM_WORKDIR:-/tmp/pollux-rxe-vm}
mkdir -p "$W"
exec 9>"$W/.lock"
flock 9 # one run at a time per work dir (ctest -j, two build trees)

need="qemu-system-x86 busybox-static cpio kmod iproute2 rdma-core ibverbs-providers ibverbs-utils"
# shellcheck disable=SC2086
if ! dpkg -s $need >/dev/null 2>&1; then
	echo "+ apt-get install $need"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
fi
KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[[ -n "$KPKG" ]] || { echo "run-rxe-vm.sh: cannot find Debian's kernel package" >&2; exit 1; }
KVER=${KPKG#linux-image-}
KD=$W/kimg/lib/modules/$KVER
if [[ ! -d "$KD" ]]; then
	echo "+ apt-get download $KPKG (cached in $W)"
	(cd "$W" && apt-get download "$KPKG" >/dev/null 2>&1 &&
		dpkg -x "$KPKG"_*.deb kimg && rm -f "$KPKG"_*.deb)
	/usr/sbin/depmod -b "$W/kimg" "$KVER"
fi

RUN=$(mktemp -d "$W/run.XXXXXX")
trap 'rm -rf "$RUN"' EXIT
R=$RUN/root
mkdir -p "$R"/{bin,proc,sys,dev,tmp,mods,t,etc/libibverbs.d,usr/lib/x86_64-linux-gnu/libibverbs}
cp /bin/busybox "$R/bin/"
for a in sh mount insmod cat ls echo sleep poweroff dmesg tail wait env; do ln -s busybox "$R/bin/$a"; done
# soft-RoCE and its dependencies, in load order (crc32_generic: rxe's ICRC)
MODS="crypto/crc32_generic drivers/infiniband/core/ib_core drivers/infiniband/core/ib_uverbs net/ipv4/udp_tunnel net/ipv6/ip6_udp_tunnel drivers/infiniband/sw/rxe/rdma_rxe drivers/net/veth"
for m in $MODS; do cp "$KD/kernel/$m.ko"* "$R/mods/"; done
BINS="/usr/bin/ip /usr/bin/rdma /usr/bin/ibv_devinfo"
for b in "${PROGS[@]}"; do BINS="$BINS $(readlink -f "$b")"; done
for b in $BINS; do cp "$b" "$R/t/"; done
PROV=/usr/lib/x86_64-linux-gnu/libibverbs/librxe-rdmav34.so
# libibverbs is listed explicitly: a program that dlopen()s it shows no
# link to it in ldd.
IBV=$(readlink -f /usr/lib/x86_64-linux-gnu/libibverbs.so.1)
cp -L "$IBV" "$R/usr/lib/x86_64-linux-gnu/libibverbs.so.1"
# shellcheck disable=SC2086
for lib in $(ldd $BINS $PROV $IBV ${RXE_VM_EXTRA_LIBS:-} | awk '/=>/ {print $3} /^\s*\/lib64/ {print $1}' | sort -u); do
	mkdir -p "$R$(dirname "$lib")"
	cp -L "$lib" "$R$lib"
done
for lib in ${RXE_VM_EXTRA_LIBS:-}; do
	mkdir -p "$R$(dirname "$lib")"
	cp -L "$lib" "$R$lib"
done
cp "$PROV" "$R/usr/lib/x86_64-linux-gnu/libibverbs/"
cp /etc/libibverbs.d/rxe.driver "$R/etc/libibverbs.d/"
mkdir -p "$R/lib64"
cp -L /lib64/ld-linux-x86-64.so.2 "$R/lib64/"
RUNS=""
for i in "${!PROGS[@]}"; do
	t="/t/$(basename "$(readlink -f "${PROGS[$i]}")") ${ARGS[$i]}"
	t=${t% }
	RUNS+="echo \"=== $t\"; $t; rc=\$?; echo \"=== $t exit \$rc\"; [ \$rc = 0 ] || st=1"$'\n'
done
TESTS=" ${PROGS[*]}"
cat >"$R/init" <<INIT
#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in crc32_generic ib_core ib_uverbs udp_tunnel ip6_udp_tunnel rdma_rxe veth; do insmod /mods/\$m.ko* || echo "insmod \$m failed"; done
/t/ip link set lo up
/t/ip link add veth0 type veth peer name veth1
/t/ip addr add 10.77.0.1/24 dev veth0; /t/ip addr add 10.77.0.2/24 dev veth1
/t/ip link set veth0 up; /t/ip link set veth1 up; sleep 1
/t/rdma link add rxe0 type rxe netdev veth0 || echo "rxe setup failed"
export PLX_RXE_VM=1
st=0
$RUNS
echo "=== RXE-VM STATUS \$st"
poweroff -f
INIT
chmod +x "$R/init"
(cd "$R" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$RUN/initrd.gz"
echo "+ qemu-system-x86_64 (kernel $KVER, TCG) running:$TESTS"
timeout "${RXE_VM_TIMEOUT:-600}" qemu-system-x86_64 -m 2048 -smp 2 -nic none -nographic -no-reboot \
	-kernel "$W/kimg/boot/vmlinuz-$KVER" -initrd "$RUN/initrd.gz" \
	-append "console=ttyS0 quiet panic=-1" </dev/null 2>&1 | tr -d '\r' | tee "$W/console.log" |
	{ if [[ -n "${RXE_VM_VERBOSE:-}" ]]; then cat; else sed -n '/^===\|passed\|failed\|FAIL\|SKIP\|rxe/p'; fi; }
if grep -q "=== RXE-VM STATUS 0" "$W/console.log"; then
	exit 0
fi
echo "run-rxe-vm.sh: FAILED (full console: $W/console.log)" >&2
exit 1
