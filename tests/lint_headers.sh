#!/bin/sh
# SPDX-License-Identifier: MIT
#
# lint_headers.sh SRCDIR - every public header include/pollux/*.h must compile
# on its own, as C11 and as C++11, warning-free. Run by `./build.sh lint` and
# by ctest as test_lint_headers. Each compile command is echoed.
#
# Environment: CC (default cc), CXX (default c++).
set -eu

src=${1:-.}
cc=${CC:-cc}
cxx=${CXX:-c++}
status=0
n=0

for h in "$src"/include/pollux/*.h; do
	[ -e "$h" ] || { echo "lint_headers: no headers in $src/include/pollux"; exit 1; }
	name=$(basename "$h")
	n=$((n + 1))
	tu="#include <pollux/$name>"
	echo "+ echo '$tu' | $cc -std=c11 -Wall -Wextra -Werror -fsyntax-only -I$src/include -x c -"
	echo "$tu" |
		$cc -std=c11 -Wall -Wextra -Werror -fsyntax-only -I"$src/include" -x c - ||
		{ echo "lint_headers: $name does not compile alone as C11"; status=1; }
	echo "+ echo '$tu' | $cxx -std=c++11 -Wall -Wextra -Werror -fsyntax-only -I$src/include -x c++ -"
	echo "$tu" |
		$cxx -std=c++11 -Wall -Wextra -Werror -fsyntax-only -I"$src/include" -x c++ - ||
		{ echo "lint_headers: $name does not compile alone as C++11"; status=1; }
done

if [ "$status" -eq 0 ]; then
	echo "lint_headers: $n public headers compile alone as C11 and C++11"
fi
exit "$status"
