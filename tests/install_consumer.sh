#!/bin/sh
# SPDX-License-Identifier: MIT
#
# install_consumer.sh - ctest test_install_consumer: install this build tree
# into a scratch prefix, then build and run examples/consumer against the
# install, once through find_package(pollux) (shared and static targets) and
# once through pkg-config. Catches broken exports, missing headers, a wrong
# pollux.pc, and symbols left hidden by -fvisibility=hidden.
#
# Usage: install_consumer.sh CMAKE BINARY_DIR SOURCE_DIR LIBDIR GENERATOR \
#                            CC SANITIZE
#   LIBDIR    CMAKE_INSTALL_LIBDIR of the build (where pollux.pc lands)
#   SANITIZE  PLX_SANITIZE of the build, may be empty. A sanitized libpollux
#             references the sanitizer runtime, so the consumer is compiled
#             and linked with the same -fsanitize flags.
set -eu

cmake=$1 bindir=$2 srcdir=$3 libdir=$4 generator=$5 cc=$6 san=${7:-}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/plx-consumer.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
prefix=$tmp/prefix

run()
{
	echo "+ $*"
	"$@"
}

sanflags=
if [ -n "$san" ]; then
	sanflags="-fsanitize=$san -fno-omit-frame-pointer"
fi

run "$cmake" --install "$bindir" --prefix "$prefix"

# find_package(pollux) with the installed package config.
run "$cmake" -S "$srcdir/examples/consumer" -B "$tmp/build" -G "$generator" \
	-DCMAKE_C_COMPILER="$cc" -DCMAKE_PREFIX_PATH="$prefix" \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DCMAKE_C_FLAGS="$sanflags" -DCMAKE_EXE_LINKER_FLAGS="$sanflags"
run "$cmake" --build "$tmp/build"
run "$tmp/build/consumer"
run "$tmp/build/consumer_static"

# The shared library must not need an RPATH into the build tree.
if command -v readelf >/dev/null 2>&1; then
	if readelf -d "$prefix/$libdir/libpollux.so" | grep -E 'R(UN)?PATH'; then
		echo "install_consumer: installed libpollux.so carries an RPATH"
		exit 1
	fi
fi

# pkg-config, shared.
export PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig"
echo "+ PKG_CONFIG_PATH=$PKG_CONFIG_PATH"
flags=$(pkg-config --cflags --libs pollux)
# shellcheck disable=SC2086 # word splitting of compiler flags intended
run $cc -std=c11 -Wall -Wextra -Werror $sanflags \
	-o "$tmp/consumer_pc" "$srcdir/examples/consumer/main.c" $flags
run env LD_LIBRARY_PATH="$prefix/$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
	"$tmp/consumer_pc"

# pkg-config --static: libpollux.a (named with -l: so the linker does not
# pick the .so beside it) plus Libs.private.
flags=$(pkg-config --static --cflags --libs pollux | sed 's/-lpollux/-l:libpollux.a/')
# shellcheck disable=SC2086
run $cc -std=c11 -Wall -Wextra -Werror $sanflags \
	-o "$tmp/consumer_pc_static" "$srcdir/examples/consumer/main.c" $flags
run "$tmp/consumer_pc_static"

echo "install_consumer: find_package and pkg-config consumers built and ran"
