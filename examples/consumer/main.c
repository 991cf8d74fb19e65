/* SPDX-License-Identifier: MIT */
/*
 * Smallest program that uses an installed pollux: bring a reactor up, poll it
 * once, take it down. Built by examples/consumer/CMakeLists.txt (find_package)
 * and by tests/install_consumer.sh (both find_package and pkg-config).
 */
#include <stdio.h>

#include <pollux/reactor.h>
#include <pollux/status.h>

int main(void)
{
	struct plx_reactor r;
	int rc;

	rc = plx_reactor_init(&r, NULL);
	if (rc < 0) {
		fprintf(stderr, "plx_reactor_init: %s\n", plx_strerror(rc));
		return 1;
	}
	rc = plx_reactor_poll(&r);
	if (rc < 0) {
		fprintf(stderr, "plx_reactor_poll: %s\n", plx_strerror(rc));
		plx_reactor_fini(&r);
		return 1;
	}
	printf("polled once (%d events); PLX_EAGAIN is \"%s\"\n", rc,
	       plx_strerror(PLX_EAGAIN));
	rc = plx_reactor_fini(&r);
	if (rc < 0) {
		fprintf(stderr, "plx_reactor_fini: %s\n", plx_strerror(rc));
		return 1;
	}
	return 0;
}
