/* SPDX-License-Identifier: MIT */
/*
 * TCP transport across two processes. A forked child runs a pollux server
 * (listening on loopback, one registered region, an echo for messages) and
 * hands its port and serialised region descriptor to the parent through a
 * pipe; it serves with plx_reactor_wait(r, 10) until told to stop.
 *
 * The parent writes, reads back and exchanges messages with data checks.
 * Then the child is SIGKILLed, after a seeded random delay, while 32 writes
 * of 1 MiB (striped over the data connections), four 1 MiB reads, a
 * posted receive and a 1 MiB message with its echo are in flight: every
 * op must complete exactly once
 * (success only for what the child acknowledged, otherwise
 * PLX_ECONNRESET) well before its timeout, PLX_EP_DOWN must be reported,
 * and the next child must be served by the same parent reactor. 10 rounds
 * with CI=true, 100 otherwise. Children are always reaped.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tcp_pair.h"

#define MS 1000000ull
#define NWRITES 32
#define NREADS 4
#define CHUNK (1u << 20)
#define REGION_LEN ((size_t)NWRITES * CHUNK + 65536)
#define SMALL_OFF (REGION_LEN - 8192) /* the small checks write here */
#define KILL_BOUND_MS 2000	      /* every op done this soon */

/* ---- the child: a pollux server in its own process ---------------------- */

#define CHILD_CHECK(c)                                                         \
	do {                                                                   \
		if (!(c)) {                                                    \
			fprintf(stderr, "child %d: line %d: %s failed\n",      \
				(int)getpid(), __LINE__, #c);                  \
			_exit(2);                                              \
		}                                                              \
	} while (0)

#include "forked_peer.h"

/* Keep only the pipes: the parent's reactor, sockets and other pipes are
 * not the child's business. */
static void child_close_fds(int keep1, int keep2)
{
	int lo = keep1 < keep2 ? keep1 : keep2, hi = keep1 ^ keep2 ^ lo;
	struct rlimit rl;
	int max = 4096;

#ifdef SYS_close_range
	if (lo > 3)
		syscall(SYS_close_range, 3u, (unsigned int)lo - 1, 0u);
	if (hi > lo + 1)
		syscall(SYS_close_range, (unsigned int)lo + 1,
			(unsigned int)hi - 1, 0u);
	if (!syscall(SYS_close_range, (unsigned int)hi + 1, ~0u, 0u))
		return;
#endif
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < 65536)
		max = (int)rl.rlim_cur;
	for (int fd = 3; fd < max; fd++)
		if (fd != keep1 && fd != keep2)
			close(fd);
}

static void write_full(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		CHILD_CHECK(n > 0);
		p += n;
		len -= (size_t)n;
	}
}

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
	child_close_fds(to_parent, from_parent);
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
	CHILD_CHECK(plx_tcp_listen(&S.r, "127.0.0.1", 0, &port) == 0);
	CHILD_CHECK(plx_mem_register(&S.r, &S.reg, S.mem, REGION_LEN,
				     PLX_ACCESS_ALL) == 0);
	CHILD_CHECK(plx_mem_desc(&S.r, &S.reg, &d) == 0);
	memcpy(hello, &port, 2);
	CHILD_CHECK(plx_desc_serialize(&d, hello + 2, PLX_DESC_BYTES) ==
		    PLX_DESC_BYTES);
	write_full(to_parent, hello, sizeof(hello));

	/* serve until the parent writes a byte or goes away */
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

/* ---- the parent --------------------------------------------------------- */

struct child {
	pid_t pid;
	int to_child;
	int from_child;
	uint16_t port;
	struct plx_desc d;
};

static pid_t main_pid;
static pid_t live_child; /* killed and reaped at exit, whatever happens */

static void reap_live_child(void)
{
	if (getpid() != main_pid || live_child <= 0)
		return;
	kill(live_child, SIGKILL);
	waitpid(live_child, NULL, 0);
	live_child = 0;
}

static void read_full(int fd, void *buf, size_t len, int ms)
{
	uint64_t end = plx_now_ns() + (uint64_t)ms * MS;
	uint8_t *p = buf;

	while (len) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		uint64_t now = plx_now_ns();
		ssize_t n;

		if (now >= end)
			PLX_FAIL("child did not report its port in %d ms", ms);
		if (poll(&pfd, 1, (int)((end - now) / MS) + 1) <= 0)
			continue;
		n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			PLX_FAIL("child pipe closed early");
		p += n;
		len -= (size_t)n;
	}
}

static void child_start(struct child *ch)
{
	uint8_t hello[2 + PLX_DESC_BYTES];
	int up[2], down[2];
	pid_t parent = getpid();

	EXPECT_OK(pipe2(up, O_CLOEXEC));
	EXPECT_OK(pipe2(down, O_CLOEXEC));
	fflush(stdout);
	fflush(stderr);
	ch->pid = fork();
	EXPECT_GE(ch->pid, 0);
	if (ch->pid == 0) {
		close(up[0]);
		close(down[1]);
		child_main(up[1], down[0], parent);
		_exit(0);
	}
	live_child = ch->pid;
	close(up[1]);
	close(down[0]);
	ch->from_child = up[0];
	ch->to_child = down[1];
	read_full(ch->from_child, hello, sizeof(hello), 5000);
	memcpy(&ch->port, hello, 2);
	EXPECT_EQ(plx_desc_parse(&ch->d, hello + 2, PLX_DESC_BYTES),
		  PLX_DESC_BYTES);
	EXPECT_U64_EQ(ch->d.len, REGION_LEN);
	EXPECT_TRUE(ch->d.access == PLX_ACCESS_ALL);
}

/* Wait for the child to exit on its own (@sig 0) or by signal @sig. */
static void child_reap(struct child *ch, int sig)
{
	uint64_t end = plx_now_ns() + 5000 * MS;
	int st = 0;
	pid_t w;

	while ((w = waitpid(ch->pid, &st, WNOHANG)) == 0 && plx_now_ns() < end)
		plx_reactor_wait(&P.r, 1);
	if (w != ch->pid)
		PLX_FAIL("child %d did not exit", (int)ch->pid);
	live_child = 0;
	close(ch->to_child);
	close(ch->from_child);
	if (sig) {
		EXPECT_TRUE(WIFSIGNALED(st));
		EXPECT_EQ(WTERMSIG(st), sig);
	} else {
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			PLX_FAIL("child exit status 0x%x", st);
	}
}

static void child_stop(struct child *ch)
{
	char c = 'q';

	EXPECT_EQ(write(ch->to_child, &c, 1), 1);
	child_reap(ch, 0);
}

static struct plx_ep *connect_child(const struct child *ch)
{
	struct plx_ep *ep;

	P.connected = P.down = P.closed = 0;
	P.down_status = 1;
	EXPECT_OK(plx_tcp_connect(&P.r, "127.0.0.1", ch->port, &ep));
	PWAIT(P.connected, 2000);
	EXPECT_TRUE(plx_ep_is_up(ep));
	return ep;
}

static void close_ep(struct plx_ep *ep)
{
	EXPECT_OK(plx_ep_close(ep));
	PWAIT(P.closed, 2000);
	EXPECT_EQ(P.closed, 1);
	EXPECT_EQ(P.unexpected, 0);
}

static uint64_t seed;
static uint8_t *src, *dst;

static void fill(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)plx_test_rand(&seed);
}

/* Write @len random bytes at @off, read them back, compare. */
static void verified_write(struct plx_ep *ep, const struct child *ch,
			   uint64_t off, size_t len)
{
	struct tracked w, r;

	fill(src, len);
	memset(dst, 0, len);
	tracked_init(&w);
	tracked_init(&r);
	EXPECT_OK(plx_ep_write(ep, &w.op, src, len, &ch->d, off));
	PWAIT(w.done, 5000);
	EXPECT_OK(w.status);
	EXPECT_U64_EQ(w.bytes, len);
	EXPECT_OK(plx_ep_read(ep, &r.op, dst, len, &ch->d, off));
	PWAIT(r.done, 5000);
	EXPECT_OK(r.status);
	EXPECT_U64_EQ(r.bytes, len);
	EXPECT_MEM_EQ(dst, src, len);
	EXPECT_EQ(w.done, 1);
	EXPECT_EQ(r.done, 1);
}

static void test_ops_across_processes(void)
{
	static const size_t sizes[] = {1, 4096, 100000, CHUNK, 3 * CHUNK + 123};
	static const size_t msgs[] = {1, 100, 8192, 100000, CHUNK};
	struct child ch;
	struct plx_ep *ep;
	uint64_t off = 0;

	child_start(&ch);
	ep = connect_child(&ch);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		verified_write(ep, &ch, off, sizes[i]);
		off += sizes[i] + 4096;
	}
	/* a range nobody wrote reads back as the child's zeros */
	{
		struct tracked r;

		tracked_init(&r);
		memset(dst, 0xff, 4096);
		EXPECT_OK(plx_ep_read(ep, &r.op, dst, 4096, &ch.d,
				      REGION_LEN - 4096));
		PWAIT(r.done, 2000);
		EXPECT_OK(r.status);
		for (int i = 0; i < 4096; i++)
			EXPECT_EQ(dst[i], 0);
	}
	/* messages echoed by the child */
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		struct tracked s, rv;

		fill(src, msgs[i]);
		memset(dst, 0, msgs[i]);
		tracked_init(&s);
		tracked_init(&rv);
		EXPECT_OK(plx_ep_recv(ep, &rv.op, dst, CHUNK, 2, ~0ull));
		EXPECT_OK(plx_ep_send(ep, &s.op, src, msgs[i], 1));
		PWAIT(s.done && rv.done, 5000);
		EXPECT_OK(s.status);
		EXPECT_OK(rv.status);
		EXPECT_U64_EQ(rv.bytes, msgs[i]);
		EXPECT_MEM_EQ(dst, src, msgs[i]);
	}
	child_stop(&ch);
	/* the child closed on its way out: the parent sees it go */
	PWAIT(P.down, 2000);
	close_ep(ep);
}

/* One round: ops in flight when the child is killed. Return the time from
 * the kill to the last completion. */
static uint64_t kill_round(int round)
{
	static struct tracked w[NWRITES], rd[NREADS], rv, es, er;
	struct tracked *all[NWRITES + NREADS + 3];
	uint64_t delay_ns, t_kill, last = 0, end;
	int n = 0, before = 0, ok = 0, failed = 0;
	struct child ch;
	struct plx_ep *ep;

	child_start(&ch);
	ep = connect_child(&ch);
	/* the reactor works (after the previous round's kill, too) */
	verified_write(ep, &ch, SMALL_OFF, 4096);

	fill(src, 4096); /* new data each round, cheaply */
	for (int i = 0; i < NWRITES; i++) {
		tracked_init(&w[i]);
		EXPECT_OK(plx_ep_write(ep, &w[i].op, src + (size_t)i * CHUNK,
				       CHUNK, &ch.d, (uint64_t)i * CHUNK));
		all[n++] = &w[i];
	}
	for (int i = 0; i < NREADS; i++) {
		tracked_init(&rd[i]);
		EXPECT_OK(plx_ep_read(ep, &rd[i].op, dst + (size_t)i * CHUNK,
				      CHUNK, &ch.d, (uint64_t)i * CHUNK));
		all[n++] = &rd[i];
	}
	/* a receive nothing will match */
	tracked_init(&rv);
	EXPECT_OK(plx_ep_recv(ep, &rv.op, dst + NREADS * (size_t)CHUNK, 64, 9,
			      ~0ull));
	all[n++] = &rv;
	/* a 1 MiB message the child echoes: the echo may be arriving */
	tracked_init(&es);
	tracked_init(&er);
	EXPECT_OK(plx_ep_recv(ep, &er.op, dst + (NREADS + 1) * (size_t)CHUNK,
			      CHUNK, 2, ~0ull));
	EXPECT_OK(plx_ep_send(ep, &es.op, src, CHUNK, 1));
	all[n++] = &er;
	all[n++] = &es;

	delay_ns = plx_test_rand(&seed) % (30 * MS);
	end = plx_now_ns() + delay_ns;
	while (plx_now_ns() < end)
		plx_reactor_poll(&P.r);
	for (int i = 0; i < n; i++)
		before += all[i]->done;
	EXPECT_OK(kill(ch.pid, SIGKILL));
	t_kill = plx_now_ns();

	/* every op completes, and the endpoint goes down, well in time */
	for (;;) {
		int done = 0;

		for (int i = 0; i < n; i++)
			done += all[i]->done != 0;
		if (done == n && P.down)
			break;
		if (plx_now_ns() - t_kill > KILL_BOUND_MS * MS)
			PLX_FAIL("round %d: %d ops%s still pending %d ms after "
				 "the kill",
				 round, n - done,
				 P.down ? "" : " and PLX_EP_DOWN",
				 KILL_BOUND_MS);
		if (plx_reactor_poll(&P.r) > 0)
			last = plx_now_ns();
	}
	child_reap(&ch, SIGKILL);
	/* nothing completes twice, however long we keep polling */
	for (int i = 0; i < 50; i++)
		plx_reactor_wait(&P.r, 1);

	for (int i = 0; i < n; i++) {
		struct tracked *t = all[i];

		if (t->done != 1)
			PLX_FAIL("round %d: op %d completed %d times", round, i,
				 t->done);
		if (t->status == 0 && t != &rv) {
			EXPECT_U64_EQ(t->bytes, CHUNK);
			ok++;
			continue;
		}
		if (t->status != PLX_ECONNRESET)
			PLX_FAIL("round %d: op %d failed with %d (%s), want "
				 "PLX_ECONNRESET",
				 round, i, t->status, plx_errname(t->status));
		failed++;
	}
	if (er.status == 0)
		EXPECT_MEM_EQ(dst + (NREADS + 1) * (size_t)CHUNK, src, CHUNK);
	EXPECT_EQ(P.down, 1);
	EXPECT_STATUS(P.down_status, PLX_ECONNRESET);
	EXPECT_TRUE(!plx_ep_is_up(ep));
	EXPECT_GE(failed, 1); /* the receive at least: nothing was sent */
	if (round < 3 || round % 10 == 0)
		fprintf(stderr,
			"round %d: kill after %.2f ms, %d ops done before; "
			"%d succeeded, %d failed; last completion %.2f ms "
			"after the kill\n",
			round, (double)delay_ns / MS, before, ok, failed,
			last > t_kill ? (double)(last - t_kill) / MS : 0.0);
	close_ep(ep);
	return last > t_kill ? last - t_kill : 0;
}

static void test_kill_mid_transfer_completes_every_op(void)
{
	int rounds = plx_test_ci() ? 10 : 100;

	/* fork() under ThreadSanitizer costs seconds per child */
	if (PLX_TEST_TSAN)
		rounds = 3;
	uint64_t worst = 0, start = plx_now_ns();

	for (int i = 0; i < rounds; i++) {
		uint64_t t = kill_round(i);

		if (t > worst)
			worst = t;
	}
	fprintf(stderr,
		"%d kill rounds in %.1f s; slowest last completion %.2f ms "
		"after the kill\n",
		rounds, (double)(plx_now_ns() - start) / 1e9,
		(double)worst / MS);
}

static void test_reactor_serves_new_child_after_kills(void)
{
	struct child ch;
	struct plx_ep *ep;
	uint64_t end = plx_now_ns() + 5000 * MS;
	int rc;

	child_start(&ch);
	ep = connect_child(&ch);
	verified_write(ep, &ch, 0, CHUNK);
	close_ep(ep);
	child_stop(&ch);
	EXPECT_OK(plx_tcp_shutdown(&P.r));
	while ((rc = plx_reactor_fini(&P.r)) == PLX_EBUSY && plx_now_ns() < end)
		plx_reactor_wait(&P.r, 1);
	EXPECT_OK(rc);
}

int main(void)
{
	main_pid = getpid();
	atexit(reap_live_child);
	signal(SIGPIPE, SIG_IGN);
	seed = plx_test_seed("two_process");
	src = malloc((size_t)NWRITES * CHUNK);
	dst = malloc((size_t)(NREADS + 2) * CHUNK);
	EXPECT_TRUE(src && dst);
	fill(src, (size_t)NWRITES * CHUNK);

	EXPECT_OK(plx_reactor_init(&P.r, NULL));
	plx_tcp_config_init(&P.cfg);
	P.cfg.event_cb = parent_event;
	EXPECT_OK(plx_tcp_init(&P.r, &P.cfg));

	test_ops_across_processes();
	test_kill_mid_transfer_completes_every_op();
	test_reactor_serves_new_child_after_kills();
	free(src);
	free(dst);
	return 0;
}
