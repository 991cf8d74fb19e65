/* SPDX-License-Identifier: MIT */
/*
 * TCP transport over a real link: two network namespaces of our own,
 * joined by a veth pair (10.77.<pid % 200>.1/24 and .2/24, addresses that
 * exist only inside those namespaces). A forked child enters namespace B
 * and runs a pollux server; the parent enters namespace A and connects
 * over the veth. After a verified write, read and echoed message, the
 * child's end of the link is taken down (ip link set ... down, inside B)
 * with writes, a read and a receive in flight: the parent must detect the
 * dead peer by keepalive (keepalive_ns 200 ms, 3 probes: documented bound
 * keepalive_ns * (probes + 1) + 2 ticks, about 0.84 s; allowed 3 s), report
 * PLX_EP_DOWN with PLX_ETIMEDOUT, and complete every op in flight exactly
 * once, with PLX_ETIMEDOUT for each that the child had not acknowledged.
 * A connect started during the outage waits for the link to come back
 * (within handshake_timeout_ns) and then carries data.
 *
 * Needs root and iproute2 (`ip netns add`); exits 77 otherwise. The
 * namespaces carry our pid in their names, are deleted on every exit path
 * (atexit, fatal signals), and stale ones of dead test processes are
 * removed first.
 */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tcp_pair.h"
#include "transport/tcp/tcp_internal.h"

#define MS 1000000ull
#define NWRITES 32
#define CHUNK (1u << 20)
#define REGION_LEN ((size_t)NWRITES * CHUNK + 65536)
#define KEEPALIVE_NS (200 * MS)
#define PROBES 3
#define DETECT_LIMIT_MS 3000
#define NS_PREFIX "plxtns"

static char ns_a[32], ns_b[32], veth_a[16], veth_b[16], ip_b[32];
static int ns_made;
static pid_t main_pid, live_child;

static int run(int quiet, const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (quiet)
		strncat(cmd, " >/dev/null 2>&1", sizeof(cmd) - strlen(cmd) - 1);
	else
		fprintf(stderr, "+ %s\n", cmd);
	fflush(stderr);
	rc = system(cmd);
	return rc != -1 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* Kill the child and delete our namespaces (the veth pair goes with
 * them). Runs at exit, on fatal signals, and at the end of the test. */
static void cleanup(void)
{
	if (getpid() != main_pid)
		return;
	if (live_child > 0) {
		kill(live_child, SIGKILL);
		waitpid(live_child, NULL, 0);
		live_child = 0;
	}
	if (ns_made) {
		run(1, "ip netns del %s", ns_b);
		run(1, "ip netns del %s", ns_a);
		ns_made = 0;
	}
}

static void on_fatal_signal(int sig)
{
	cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Namespaces left by a test process that was SIGKILLed (ctest timeout). */
static void remove_stale_namespaces(void)
{
	DIR *d = opendir("/var/run/netns");
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		long pid;
		char *end;

		if (strncmp(e->d_name, NS_PREFIX, strlen(NS_PREFIX)) ||
		    !e->d_name[strlen(NS_PREFIX)])
			continue;
		pid = strtol(e->d_name + strlen(NS_PREFIX) + 1, &end, 10);
		if (*end || pid <= 0)
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue; /* its owner still runs */
		fprintf(stderr, "removing stale namespace %s\n", e->d_name);
		run(1, "ip netns del %s", e->d_name);
	}
	closedir(d);
}

static void setup_namespaces(void)
{
	int pid = (int)getpid(), net = pid % 200;

	if (geteuid() != 0)
		PLX_SKIP("needs root for network namespaces");
	if (run(1, "ip -V"))
		PLX_SKIP("iproute2 (ip) not available");
	remove_stale_namespaces();
	snprintf(ns_a, sizeof(ns_a), NS_PREFIX "A%d", pid);
	snprintf(ns_b, sizeof(ns_b), NS_PREFIX "B%d", pid);
	snprintf(veth_a, sizeof(veth_a), "plxva%d", pid);
	snprintf(veth_b, sizeof(veth_b), "plxvb%d", pid);
	snprintf(ip_b, sizeof(ip_b), "10.77.%d.2", net);
	ns_made = 1; /* from here on, cleanup deletes whatever exists */
	if (run(1, "ip netns add %s", ns_a) || run(1, "ip netns add %s", ns_b))
		PLX_SKIP("ip netns add failed (no CAP_SYS_ADMIN?)");
	if (run(0, "ip link add %s netns %s type veth peer name %s netns %s",
		veth_a, ns_a, veth_b, ns_b))
		PLX_SKIP("cannot create a veth pair");
	if (run(0, "ip -n %s addr add 10.77.%d.1/24 dev %s", ns_a, net,
		veth_a) ||
	    run(0, "ip -n %s addr add %s/24 dev %s", ns_b, ip_b, veth_b) ||
	    run(0, "ip -n %s link set %s up", ns_a, veth_a) ||
	    run(0, "ip -n %s link set %s up", ns_b, veth_b) ||
	    run(0, "ip -n %s link set lo up", ns_a) ||
	    run(0, "ip -n %s link set lo up", ns_b))
		PLX_FAIL("configuring the veth pair failed");
}

static void enter_namespace(const char *name)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "/var/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET))
		PLX_FAIL("entering %s: %s", path, strerror(errno));
	close(fd);
}

/* ---- the child: a pollux server inside namespace B ---------------------- */

#define CHILD_CHECK(c)                                                         \
	do {                                                                   \
		if (!(c)) {                                                    \
			fprintf(stderr, "child %d: line %d: %s failed\n",      \
				(int)getpid(), __LINE__, #c);                  \
			_exit(2);                                              \
		}                                                              \
	} while (0)

#include "forked_peer.h"

static void child_main(int to_parent, int from_parent, pid_t parent)
{
	uint8_t hello[2 + PLX_DESC_BYTES];
	uint64_t end = plx_now_ns() + 60000 * MS;
	struct plx_desc d;
	uint16_t port;
	int rc;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(3);
	for (int fd = 3; fd < 1024; fd++)
		if (fd != to_parent && fd != from_parent)
			close(fd);
	enter_namespace(ns_b);
	memset(&S, 0, sizeof(S));
	S.buf = malloc(CHUNK);
	/* zero pages on demand: no time spent clearing 32 MiB per child */
	S.mem = mmap(NULL, REGION_LEN, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHILD_CHECK(S.buf && S.mem != MAP_FAILED);
	CHILD_CHECK(plx_reactor_init(&S.r, NULL) == 0);
	plx_tcp_config_init(&S.cfg);
	S.cfg.event_cb = srv_event;
	CHILD_CHECK(plx_tcp_init(&S.r, &S.cfg) == 0);
	CHILD_CHECK(plx_tcp_listen(&S.r, ip_b, 0, &port) == 0);
	CHILD_CHECK(plx_mem_register(&S.r, &S.reg, S.mem, REGION_LEN,
				     PLX_ACCESS_ALL) == 0);
	CHILD_CHECK(plx_mem_desc(&S.r, &S.reg, &d) == 0);
	memcpy(hello, &port, 2);
	CHILD_CHECK(plx_desc_serialize(&d, hello + 2, PLX_DESC_BYTES) ==
		    PLX_DESC_BYTES);
	CHILD_CHECK(write(to_parent, hello, sizeof(hello)) ==
		    (ssize_t)sizeof(hello));
	while (plx_now_ns() < end) {
		struct pollfd pfd = {.fd = from_parent, .events = POLLIN};

		plx_reactor_wait(&S.r, 10);
		if (poll(&pfd, 1, 0) > 0)
			break;
	}
	CHILD_CHECK(plx_mem_deregister(&S.r, &S.reg) == 0);
	CHILD_CHECK(plx_tcp_shutdown(&S.r) == 0);
	end = plx_now_ns() + 5000 * MS;
	while ((rc = plx_reactor_fini(&S.r)) == PLX_EBUSY && plx_now_ns() < end)
		plx_reactor_wait(&S.r, 1);
	CHILD_CHECK(rc == 0);
	_exit(0);
}

/* ---- the parent, inside namespace A ------------------------------------- */

static int to_child = -1, from_child = -1;
static uint16_t port;
static struct plx_desc desc;
static uint64_t seed;
static uint8_t *src, *dst;

static void start_child(void)
{
	uint8_t hello[2 + PLX_DESC_BYTES];
	uint64_t end = plx_now_ns() + 5000 * MS;
	int up[2], down[2];
	pid_t parent = getpid();
	size_t got = 0;

	EXPECT_OK(pipe2(up, O_CLOEXEC));
	EXPECT_OK(pipe2(down, O_CLOEXEC));
	fflush(stderr);
	live_child = fork();
	EXPECT_GE(live_child, 0);
	if (live_child == 0) {
		close(up[0]);
		close(down[1]);
		child_main(up[1], down[0], parent);
		_exit(0);
	}
	close(up[1]);
	close(down[0]);
	from_child = up[0];
	to_child = down[1];
	while (got < sizeof(hello)) {
		struct pollfd pfd = {.fd = from_child, .events = POLLIN};
		ssize_t n;

		if (plx_now_ns() > end)
			PLX_FAIL("the child did not report its port");
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		n = read(from_child, hello + got, sizeof(hello) - got);
		if (n <= 0)
			PLX_FAIL("the child exited early");
		got += (size_t)n;
	}
	memcpy(&port, hello, 2);
	EXPECT_EQ(plx_desc_parse(&desc, hello + 2, PLX_DESC_BYTES),
		  PLX_DESC_BYTES);
}

static void stop_child(void)
{
	uint64_t end = plx_now_ns() + 5000 * MS;
	char c = 'q';
	int st = 0;
	pid_t w;

	EXPECT_EQ(write(to_child, &c, 1), 1);
	while ((w = waitpid(live_child, &st, WNOHANG)) == 0 &&
	       plx_now_ns() < end)
		plx_reactor_wait(&P.r, 1);
	if (w != live_child)
		PLX_FAIL("the child did not exit");
	live_child = 0;
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		PLX_FAIL("child exit status 0x%x", st);
}

static void fill(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)plx_test_rand(&seed);
}

static struct plx_ep *connect_child(void)
{
	struct plx_ep *ep;

	P.connected = P.down = P.closed = 0;
	P.down_status = 1;
	EXPECT_OK(plx_tcp_connect(&P.r, ip_b, port, &ep));
	PWAIT(P.connected, 5000);
	EXPECT_TRUE(plx_ep_is_up(ep));
	return ep;
}

static void close_ep(struct plx_ep *ep)
{
	EXPECT_OK(plx_ep_close(ep));
	PWAIT(P.closed, 2000);
	EXPECT_EQ(P.unexpected, 0);
}

static void verified_write(struct plx_ep *ep, uint64_t off, size_t len)
{
	struct tracked w, r;

	fill(src, len);
	memset(dst, 0, len);
	tracked_init(&w);
	tracked_init(&r);
	EXPECT_OK(plx_ep_write(ep, &w.op, src, len, &desc, off));
	PWAIT(w.done, 5000);
	EXPECT_OK(w.status);
	EXPECT_OK(plx_ep_read(ep, &r.op, dst, len, &desc, off));
	PWAIT(r.done, 5000);
	EXPECT_OK(r.status);
	EXPECT_MEM_EQ(dst, src, len);
}

static void test_ops_over_veth(struct plx_ep *ep)
{
	struct tracked s, rv;

	verified_write(ep, 0, CHUNK);
	verified_write(ep, 5 * CHUNK + 17, 3 * CHUNK + 5); /* striped */
	fill(src, 100000);
	tracked_init(&s);
	tracked_init(&rv);
	EXPECT_OK(plx_ep_recv(ep, &rv.op, dst, CHUNK, 2, ~0ull));
	EXPECT_OK(plx_ep_send(ep, &s.op, src, 100000, 1));
	PWAIT(s.done && rv.done, 5000);
	EXPECT_OK(s.status);
	EXPECT_OK(rv.status);
	EXPECT_U64_EQ(rv.bytes, 100000);
	EXPECT_MEM_EQ(dst, src, 100000);
}

static void test_link_down_detected_by_keepalive(struct plx_ep *ep)
{
	static struct tracked w[NWRITES], rd, rv;
	struct tracked *all[NWRITES + 2];
	int pending[NWRITES + 2];
	uint64_t t0, t1, detect, bound;
	int n = 0, ok = 0, failed = 0, rc;

	for (int i = 0; i < NWRITES; i++) {
		tracked_init(&w[i]);
		EXPECT_OK(plx_ep_write(ep, &w[i].op, src + (size_t)i * CHUNK,
				       CHUNK, &desc, (uint64_t)i * CHUNK));
		all[n++] = &w[i];
	}
	tracked_init(&rd);
	EXPECT_OK(plx_ep_read(ep, &rd.op, dst, CHUNK, &desc, 0));
	all[n++] = &rd;
	tracked_init(&rv);
	EXPECT_OK(plx_ep_recv(ep, &rv.op, dst + CHUNK, 64, 9, ~0ull));
	all[n++] = &rv;
	/* let the transfer get going */
	t0 = plx_now_ns() + 2 * MS;
	while (plx_now_ns() < t0)
		plx_reactor_poll(&P.r);

	/* cut the cable at the child's end, from inside its namespace */
	t0 = plx_now_ns();
	rc = run(0, "ip -n %s link set %s down", ns_b, veth_b);
	t1 = plx_now_ns();
	EXPECT_OK(rc);
	/* what arrived before the cut is in our socket buffers: drain it */
	for (int i = 0; i < 5; i++)
		plx_reactor_poll(&P.r);
	for (int i = 0; i < n; i++)
		pending[i] = !all[i]->done;

	PWAIT(P.down, DETECT_LIMIT_MS + 2000);
	detect = P.t_down - t0;
	/* a tick stamps the last bytes' arrival, another sees the last
	 * ping unanswered */
	bound = KEEPALIVE_NS * (PROBES + 1) + 2 * plx__tcp_get(&P.r)->tick_ns;
	fprintf(stderr,
		"link down (ip took %.1f ms): PLX_EP_DOWN after %.1f ms "
		"(bound keepalive * (probes + 1) + 2 ticks = %.1f ms, allowed "
		"%d ms)\n",
		(double)(t1 - t0) / MS, (double)detect / MS, (double)bound / MS,
		DETECT_LIMIT_MS);
	EXPECT_STATUS(P.down_status, PLX_ETIMEDOUT);
	EXPECT_LE(detect, (uint64_t)DETECT_LIMIT_MS * MS);
	EXPECT_GE(detect, KEEPALIVE_NS); /* it was the keepalive, not luck */

	/* every op completed, once */
	{
		uint64_t end = plx_now_ns() + 1000 * MS;
		int done;

		do {
			done = 0;
			for (int i = 0; i < n; i++)
				done += all[i]->done != 0;
			if (done == n)
				break;
			plx_reactor_wait(&P.r, 1);
		} while (plx_now_ns() < end);
		if (done != n)
			PLX_FAIL("%d of %d ops still in flight after "
				 "PLX_EP_DOWN",
				 n - done, n);
	}
	for (int i = 0; i < 50; i++)
		plx_reactor_wait(&P.r, 1);
	for (int i = 0; i < n; i++) {
		struct tracked *t = all[i];

		if (t->done != 1)
			PLX_FAIL("op %d completed %d times", i, t->done);
		if (!pending[i]) {
			/* completed from data that arrived before the cut */
			EXPECT_OK(t->status);
			ok++;
			continue;
		}
		if (t->status != PLX_ETIMEDOUT)
			PLX_FAIL("op %d, in flight at the cut, completed with "
				 "%d (%s), want PLX_ETIMEDOUT",
				 i, t->status, plx_errname(t->status));
		failed++;
	}
	fprintf(stderr,
		"%d ops submitted: %d completed before the cut, %d were in "
		"flight and failed with PLX_ETIMEDOUT\n",
		n, ok, failed);
	EXPECT_GE(failed, 1);
	EXPECT_EQ(P.down, 1);
	EXPECT_TRUE(!plx_ep_is_up(ep));
	close_ep(ep);
}

/* A connect started while the link is still down (its SYN is lost) must
 * wait for TCP to retry, up to handshake_timeout_ns, and succeed once the
 * link is back; then the new connection carries data. */
static void test_connect_during_outage_completes(void)
{
	uint64_t start, end;
	struct plx_ep *ep;

	P.connected = P.down = P.closed = 0;
	P.down_status = 1;
	EXPECT_OK(plx_tcp_connect(&P.r, ip_b, port, &ep));
	start = plx_now_ns();
	end = start + 300 * MS;
	while (plx_now_ns() < end)
		plx_reactor_wait(&P.r, 1);
	if (P.down)
		PLX_FAIL(
			"connect failed after %.1f ms with %s, before "
			"handshake_timeout_ns (%.0f ms) while the link was down",
			(double)(P.t_down - start) / MS,
			plx_errname(P.down_status),
			(double)P.cfg.handshake_timeout_ns / MS);
	EXPECT_OK(run(0, "ip -n %s link set %s up", ns_b, veth_b));
	PWAIT(P.connected || P.down, 5000);
	if (!P.connected)
		PLX_FAIL("connect failed after the link came back: %s",
			 plx_errname(P.down_status));
	fprintf(stderr, "connected %.1f ms after the connect call\n",
		(double)(plx_now_ns() - start) / MS);
	verified_write(ep, 2 * CHUNK, 65536);
	close_ep(ep);
}

int main(void)
{
	struct plx_ep *ep;
	uint64_t end;
	int rc;

	main_pid = getpid();
	atexit(cleanup);
	signal(SIGINT, on_fatal_signal);
	signal(SIGTERM, on_fatal_signal);
	signal(SIGHUP, on_fatal_signal);
	signal(SIGPIPE, SIG_IGN);
	setup_namespaces();
	seed = plx_test_seed("netns");
	src = malloc((size_t)NWRITES * CHUNK);
	dst = malloc(4 * (size_t)CHUNK);
	EXPECT_TRUE(src && dst);
	fill(src, (size_t)NWRITES * CHUNK);

	start_child();
	enter_namespace(ns_a);
	EXPECT_OK(plx_reactor_init(&P.r, NULL));
	plx_tcp_config_init(&P.cfg);
	P.cfg.keepalive_ns = KEEPALIVE_NS;
	P.cfg.keepalive_probes = PROBES;
	P.cfg.event_cb = parent_event;
	EXPECT_OK(plx_tcp_init(&P.r, &P.cfg));

	ep = connect_child();
	test_ops_over_veth(ep);
	test_link_down_detected_by_keepalive(ep);
	test_connect_during_outage_completes();

	stop_child();
	EXPECT_OK(plx_tcp_shutdown(&P.r));
	end = plx_now_ns() + 5000 * MS;
	while ((rc = plx_reactor_fini(&P.r)) == PLX_EBUSY && plx_now_ns() < end)
		plx_reactor_wait(&P.r, 1);
	EXPECT_OK(rc);
	cleanup();
	/* and nothing of ours is left behind */
	EXPECT_TRUE(run(1, "ip netns list | grep -q '%s'", ns_a) != 0);
	free(src);
	free(dst);
	return 0;
}
