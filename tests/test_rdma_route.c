/* SPDX-License-Identifier: MIT */
/*
 * test_rdma_route: what transport/rdma/route.c tells the RDMA channel
 * about a peer's GID before its QP goes to RTR (docs/rdma.md,
 * "Connection set-up", rule 9), against the real kernel's routes and
 * neighbours. Needs no RDMA device: the questions are rtnetlink's.
 *
 * The test moves itself into a network namespace of its own, holding one
 * end of a veth pair (10.78.0.1/24, fd00:78::1/64); a forked child holds
 * the other end in a second namespace (10.78.0.2, fd00:78::2) and answers
 * ARP and neighbour solicitations there. Both namespaces are anonymous:
 * they go with the processes. Checked, over IPv4 and IPv6:
 *   - our own address (a local route): ready;
 *   - the child's address: not resolved yet, so the kick (one datagram)
 *     starts the kernel's resolution, then ready once the child answered;
 *   - an address nobody answers for: waiting, the neighbour being
 *     solicited; without the kick no neighbour entry is made;
 *   - an address behind a gateway (the child): ready once the gateway's
 *     neighbour is;
 *   - link-local and multicast GIDs, and no netdev known: ready at once;
 *   - a GID of the other family than ours: refused at once.
 *
 * Needs root (CAP_SYS_ADMIN for the namespaces) and iproute2; exits 77
 * otherwise.
 */
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "pollux/reactor.h"
#include "reactor/internal.h"
#include "transport/rdma/rdma_internal.h"
#include "transport/rdma/route.h"

#define MS 1000000ull

static pid_t child;

static int run(const char *fmt, ...)
{
	char cmd[256];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	strncat(cmd, " >/dev/null 2>&1", sizeof(cmd) - strlen(cmd) - 1);
	rc = system(cmd);
	return rc != -1 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* Does `ip neigh show ARGS` list an entry? With @probing: one the kernel
 * is resolving (INCOMPLETE) or gave up on (FAILED). */
static bool neigh_listed(const char *args, bool probing)
{
	char cmd[256], line[256];
	bool hit = false;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "ip neigh show %s 2>&1", args);
	f = popen(cmd, "r");
	EXPECT_TRUE(f != NULL);
	while (fgets(line, sizeof(line), f))
		if (!probing || strstr(line, "INCOMPLETE") ||
		    strstr(line, "FAILED"))
			hit = hit || line[0] != '\n';
	pclose(f);
	return hit;
}

static void stop_child(void)
{
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		child = 0;
	}
}

/* The child: its own namespace, the veth's far end, then wait to die. */
static void child_main(int up, int ready)
{
	char c = 1;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (unshare(CLONE_NEWNET) || write(up, &c, 1) != 1)
		_exit(2);
	for (int i = 0; i < 500 && !if_nametoindex("plxrb"); i++)
		usleep(10000);
	if (run("ip link set lo up") ||
	    run("ip addr add 10.78.0.2/24 dev plxrb") ||
	    run("ip -6 addr add fd00:78::2/64 dev plxrb nodad") ||
	    run("ip link set plxrb up") || write(ready, &c, 1) != 1)
		_exit(3);
	for (;;)
		pause();
}

static void setup(void)
{
	int up[2], ready[2];
	char c;

	if (geteuid() != 0)
		PLX_SKIP("needs root for network namespaces");
	if (run("ip -V"))
		PLX_SKIP("iproute2 (ip) not available");
	if (unshare(CLONE_NEWNET))
		PLX_SKIP("unshare(CLONE_NEWNET): %s", strerror(errno));
	EXPECT_OK(pipe(up));
	EXPECT_OK(pipe(ready));
	child = fork();
	EXPECT_TRUE(child >= 0);
	if (child == 0)
		child_main(up[1], ready[1]);
	atexit(stop_child);
	EXPECT_EQ(read(up[0], &c, 1), 1);
	if (run("ip link add plxra type veth peer name plxrb netns %d",
		(int)child))
		PLX_SKIP("cannot create a veth pair");
	EXPECT_EQ(run("ip link set lo up"), 0);
	EXPECT_EQ(run("ip addr add 10.78.0.1/24 dev plxra"), 0);
	EXPECT_EQ(run("ip -6 addr add fd00:78::1/64 dev plxra nodad"), 0);
	EXPECT_EQ(run("ip link set plxra up"), 0);
	EXPECT_EQ(read(ready[0], &c, 1), 1);
	/* behind the child, as a gateway */
	EXPECT_EQ(run("ip route add 10.90.0.0/16 via 10.78.0.2 dev plxra"), 0);
	EXPECT_EQ(run("ip -6 route add fd00:90::/64 via fd00:78::2 dev plxra"),
		  0);
	close(up[0]);
	close(up[1]);
	close(ready[0]);
	close(ready[1]);
}

static void v4(uint8_t gid[16], uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	memset(gid, 0, 16);
	gid[10] = gid[11] = 0xff;
	gid[12] = a;
	gid[13] = b;
	gid[14] = c;
	gid[15] = d;
}

static void v6(uint8_t gid[16], uint16_t w0, uint16_t w1, uint16_t last)
{
	memset(gid, 0, 16);
	gid[0] = (uint8_t)(w0 >> 8);
	gid[1] = (uint8_t)w0;
	gid[2] = (uint8_t)(w1 >> 8);
	gid[3] = (uint8_t)w1;
	gid[14] = (uint8_t)(last >> 8);
	gid[15] = (uint8_t)last;
}

/* Ask about @gid until it is no longer PLX__GID_WAIT or @ms passed; the
 * first question kicks. Return the answer, *@took_ms the time. */
static int until_ready(struct plx__rdma *d, const uint8_t gid[16], int ms,
		       double *took_ms)
{
	uint64_t t0 = plx_now_ns(), end = t0 + (uint64_t)ms * MS;
	int rc = plx__gid_check(d, gid, true);

	while (rc == PLX__GID_WAIT && plx_now_ns() < end) {
		usleep(1000);
		rc = plx__gid_check(d, gid, false);
	}
	*took_ms = (double)(plx_now_ns() - t0) / 1e6;
	return rc;
}

/* The questions of one family, our GID @own, the child @peer, nobody at
 * @none (and @quiet, never kicked), @far behind the child as gateway. */
static void family(struct plx__rdma *d, const char *name, const uint8_t own[16],
		   const uint8_t peer[16], const uint8_t none[16],
		   const uint8_t quiet[16], const uint8_t far[16],
		   const char *none_s, const char *quiet_s)
{
	char args[96];
	double ms;

	memcpy(d->info.gid, own, 16);
	EXPECT_EQ(plx__gid_check(d, own, true), PLX__GID_READY);

	EXPECT_EQ(plx__gid_check(d, peer, true), PLX__GID_WAIT);
	EXPECT_EQ(until_ready(d, peer, 3000, &ms), PLX__GID_READY);
	fprintf(stderr, "%s: the child's neighbour resolved in %.1f ms\n", name,
		ms);
	EXPECT_EQ(plx__gid_check(d, peer, false), PLX__GID_READY);
	/* its gateway is resolved now */
	EXPECT_EQ(plx__gid_check(d, far, true), PLX__GID_READY);

	EXPECT_EQ(plx__gid_check(d, quiet, false), PLX__GID_WAIT);
	EXPECT_EQ(plx__gid_check(d, none, true), PLX__GID_WAIT);
	usleep(200000);
	EXPECT_EQ(plx__gid_check(d, none, false), PLX__GID_WAIT);
	snprintf(args, sizeof(args), "%s dev plxra", none_s);
	EXPECT_TRUE(neigh_listed(args, true));
	snprintf(args, sizeof(args), "%s dev plxra", quiet_s);
	EXPECT_TRUE(!neigh_listed(args, false));
}

int main(void)
{
	uint8_t own[16], peer[16], none[16], quiet[16], far[16], g[16];
	struct plx_reactor r;
	struct plx__rdma *d;

	setup();
	EXPECT_OK(plx_reactor_init(&r, NULL));
	d = calloc(1, sizeof(*d));
	EXPECT_TRUE(d != NULL);
	d->x = plx__r(&r);
	d->nl_fd = -1;

	/* no netdev known (InfiniBand, or none found): nothing is asked */
	v4(own, 10, 78, 0, 1);
	memcpy(d->info.gid, own, 16);
	v4(g, 10, 78, 0, 77);
	EXPECT_EQ(plx__gid_check(d, g, true), PLX__GID_READY);
	EXPECT_EQ(d->nl_fd, -1);

	d->ifindex = if_nametoindex("plxra");
	EXPECT_TRUE(d->ifindex != 0);
	v4(peer, 10, 78, 0, 2);
	v4(none, 10, 78, 0, 99);
	v4(quiet, 10, 78, 0, 98);
	v4(far, 10, 90, 0, 5);
	family(d, "IPv4", own, peer, none, quiet, far, "10.78.0.99",
	       "10.78.0.98");
	/* the other family than ours: the kernel would fail it */
	v6(g, 0xfd00, 0x78, 2);
	EXPECT_STATUS(plx__gid_check(d, g, true), PLX_EHOSTUNREACH);

	v6(own, 0xfd00, 0x78, 1);
	v6(peer, 0xfd00, 0x78, 2);
	v6(none, 0xfd00, 0x78, 0x99);
	v6(quiet, 0xfd00, 0x78, 0x98);
	v6(far, 0xfd00, 0x90, 5);
	family(d, "IPv6", own, peer, none, quiet, far, "fd00:78::99",
	       "fd00:78::98");
	v4(g, 10, 78, 0, 2);
	EXPECT_STATUS(plx__gid_check(d, g, true), PLX_EHOSTUNREACH);

	/* link-local and multicast GIDs carry their MAC address */
	memset(g, 0, 16);
	g[0] = 0xfe;
	g[1] = 0x80;
	g[15] = 7;
	EXPECT_EQ(plx__gid_check(d, g, true), PLX__GID_READY);
	g[0] = 0xff;
	g[1] = 0x02;
	EXPECT_EQ(plx__gid_check(d, g, true), PLX__GID_READY);

	plx__gid_fini(d);
	EXPECT_EQ(d->nl_fd, -1);
	free(d);
	EXPECT_OK(plx_reactor_fini(&r));
	stop_child();
	fprintf(stderr, "test_rdma_route: passed\n");
	return 0;
}
