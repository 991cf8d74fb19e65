/* SPDX-License-Identifier: MIT */
/*
 * A peer killed with SIGKILL at a random point, 100 times (in CI too).
 *
 * Each round forks a pollux server (tests/forked_peer.h: it echoes every
 * message) with one registered region, connects to it, and puts a mix of
 * ops in flight: writes and write_imms of 1 B to 256 KiB, reads, a send
 * with its echo and a receive nothing will match. The child is killed
 * after a seeded random delay of 0 to 4 ms (from before the handshake
 * ends to after the last op) and reaped. Then:
 *   - every op completes exactly once, within 2 s of the kill, with 0 or
 *     PLX_ECONNRESET (PLX_ECONNREFUSED if the child died before it
 *     accepted; the backlog's ops then fail too);
 *   - a read or echo that succeeded holds the right bytes; the parent's
 *     source buffers are unchanged;
 *   - PLX_EP_DOWN is reported once the endpoint had come up;
 *   - the same parent reactor serves the next child, and at the end
 *     plx_reactor_fini() returns 0.
 * Cheaper per round than test_tcp_two_process (which kills mid-way
 * through 32 MiB of writes): 100 rounds take a few seconds (10 under
 * ThreadSanitizer, where every fork() costs about a second).
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tcp_pair.h"

#define MS 1000000ull
#define CHUNK (256u * 1024)
#define REGION_LEN (4u * 1024 * 1024)
#define ROUNDS 100
#define BOUND_MS 2000
#define NW 6

#include "forked_peer.h"

static uint64_t seed;
static pid_t main_pid, live_child;
static uint8_t *src, *dst, *src0;

static void reap_live_child(void)
{
	if (getpid() != main_pid || live_child <= 0)
		return;
	kill(live_child, SIGKILL);
	waitpid(live_child, NULL, 0);
	live_child = 0;
}

/* The child: a server with one region, serving until killed. */
static void child_main(int to_parent)
{
	uint8_t msg[2 + PLX_DESC_BYTES];
	struct plx_desc d;
	uint16_t port;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != main_pid)
		_exit(3);
	memset(&S, 0, sizeof(S));
	S.buf = malloc(CHUNK);
	S.mem = mmap(NULL, REGION_LEN, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!S.buf || S.mem == MAP_FAILED || plx_reactor_init(&S.r, NULL))
		_exit(2);
	plx_tcp_config_init(&S.cfg);
	S.cfg.event_cb = srv_event;
	if (plx_tcp_init(&S.r, &S.cfg) ||
	    plx_tcp_listen(&S.r, "127.0.0.1", 0, &port) ||
	    plx_mem_register(&S.r, &S.reg, S.mem, REGION_LEN, PLX_ACCESS_ALL) ||
	    plx_mem_desc(&S.r, &S.reg, &d))
		_exit(2);
	memcpy(msg, &port, 2);
	if (plx_desc_serialize(&d, msg + 2, PLX_DESC_BYTES) != PLX_DESC_BYTES ||
	    write(to_parent, msg, sizeof(msg)) != (ssize_t)sizeof(msg))
		_exit(2);
	for (;;)
		plx_reactor_wait(&S.r, 10);
}

static pid_t child_start(uint16_t *port, struct plx_desc *d)
{
	uint8_t msg[2 + PLX_DESC_BYTES];
	size_t got = 0;
	int p[2];
	pid_t pid;

	EXPECT_OK(pipe2(p, O_CLOEXEC));
	fflush(stderr);
	pid = fork();
	EXPECT_GE(pid, 0);
	if (pid == 0) {
		close(p[0]);
		child_main(p[1]);
	}
	live_child = pid;
	close(p[1]);
	while (got < sizeof(msg)) {
		struct pollfd pfd = {.fd = p[0], .events = POLLIN};
		ssize_t n;

		if (poll(&pfd, 1, 5000) <= 0)
			PLX_FAIL("child did not report its port");
		n = read(p[0], msg + got, sizeof(msg) - got);
		if (n <= 0)
			PLX_FAIL("child pipe closed early");
		got += (size_t)n;
	}
	close(p[0]);
	memcpy(port, msg, 2);
	EXPECT_EQ(plx_desc_parse(d, msg + 2, PLX_DESC_BYTES), PLX_DESC_BYTES);
	return pid;
}

struct kop {
	struct tracked t;
	uint64_t len;
	uint8_t *check; /* success: these bytes must equal @want */
	const uint8_t *want;
};

static void kill_round(int round, int *n_ok, int *n_failed)
{
	static const uint64_t sizes[NW] = {1, 100, 4096, 9000, 65536, CHUNK};
	struct kop ops[3 * NW + 2];
	struct plx_ep *ep;
	struct plx_desc d;
	uint16_t port;
	uint64_t delay, t_kill, end;
	int n = 0, st;
	pid_t pid = child_start(&port, &d);

	P.connected = P.down = P.closed = P.unexpected = 0;
	EXPECT_OK(plx_tcp_connect(&P.r, "127.0.0.1", port, &ep));
	memset(ops, 0, sizeof(ops));
	/* submitted at once: they wait in the backlog for the handshake */
	for (int i = 0; i < NW; i++) {
		struct kop *w = &ops[n++], *r = &ops[n++], *wi = &ops[n++];
		uint64_t off = (uint64_t)i * 2 * CHUNK;

		tracked_init(&w->t);
		w->len = sizes[i];
		EXPECT_OK(
			plx_ep_write(ep, &w->t.op, src + off, w->len, &d, off));
		tracked_init(&wi->t);
		wi->len = sizes[i];
		EXPECT_OK(plx_ep_write_imm(ep, &wi->t.op, src + off + CHUNK,
					   wi->len, &d, off + CHUNK,
					   (uint32_t)i));
		/* the child's region starts zeroed; nothing writes here */
		tracked_init(&r->t);
		r->len = sizes[i];
		r->check = dst + off;
		r->want = NULL;
		memset(r->check, 0xa5, r->len);
		EXPECT_OK(plx_ep_read(ep, &r->t.op, r->check, r->len, &d,
				      REGION_LEN - CHUNK));
	}
	{
		struct kop *s = &ops[n++], *e = &ops[n++];

		tracked_init(&e->t);
		e->len = 3000;
		e->check = dst + 2 * NW * (uint64_t)CHUNK;
		e->want = src;
		EXPECT_OK(plx_ep_recv(ep, &e->t.op, e->check, CHUNK, 2, ~0ull));
		tracked_init(&s->t);
		s->len = 3000;
		EXPECT_OK(plx_ep_send(ep, &s->t.op, src, s->len, 1));
	}

	delay = plx_test_rand(&seed) % (4 * MS);
	end = plx_now_ns() + delay;
	while (plx_now_ns() < end)
		plx_reactor_poll(&P.r);
	EXPECT_OK(kill(pid, SIGKILL));
	t_kill = plx_now_ns();
	for (;;) {
		int done = 0;

		for (int i = 0; i < n; i++)
			done += ops[i].t.done != 0;
		if (done == n && (!P.connected || P.down))
			break;
		if (plx_now_ns() - t_kill > BOUND_MS * MS)
			PLX_FAIL("round %d: %d of %d ops pending %d ms after "
				 "the kill (down %d)",
				 round, n - done, n, BOUND_MS, P.down);
		plx_reactor_wait(&P.r, 1);
	}
	if (waitpid(pid, &st, 0) != pid || !WIFSIGNALED(st) ||
	    WTERMSIG(st) != SIGKILL)
		PLX_FAIL("round %d: child status 0x%x", round, st);
	live_child = 0;
	/* nothing completes twice, however long we keep polling */
	for (int i = 0; i < 20; i++)
		plx_reactor_wait(&P.r, 1);
	for (int i = 0; i < n; i++) {
		struct kop *k = &ops[i];

		if (k->t.done != 1)
			PLX_FAIL("round %d: op %d completed %d times", round, i,
				 k->t.done);
		if (k->t.status == 0) {
			(*n_ok)++;
			EXPECT_U64_EQ(k->t.bytes, k->len);
			if (k->check && k->want)
				EXPECT_MEM_EQ(k->check, k->want, k->len);
			else if (k->check)
				for (uint64_t b = 0; b < k->len; b++)
					EXPECT_EQ(k->check[b], 0);
			continue;
		}
		/* ECONNREFUSED: killed before it accepted the connection */
		if (k->t.status != PLX_ECONNRESET &&
		    k->t.status != PLX_ECONNREFUSED)
			PLX_FAIL("round %d: op %d failed with %s", round, i,
				 plx_errname(k->t.status));
		(*n_failed)++;
	}
	EXPECT_MEM_EQ(src, src0, 2 * NW * (size_t)CHUNK);
	if (P.down)
		EXPECT_STATUS(P.down_status, PLX_ECONNRESET);
	EXPECT_EQ(P.unexpected, 0);
	EXPECT_TRUE(!plx_ep_is_up(ep));
	EXPECT_OK(plx_ep_close(ep));
	PWAIT(P.closed, 2000);
}

int main(void)
{
	uint64_t t0;
	int ok = 0, failed = 0, rc, rounds = PLX_TEST_TSAN ? 10 : ROUNDS;

	main_pid = getpid();
	atexit(reap_live_child);
	signal(SIGPIPE, SIG_IGN);
	seed = plx_test_seed("fault_kill");
	src = malloc(2 * NW * (size_t)CHUNK);
	src0 = malloc(2 * NW * (size_t)CHUNK);
	dst = malloc((2 * NW + 1) * (size_t)CHUNK);
	EXPECT_TRUE(src && src0 && dst);
	for (size_t i = 0; i < 2 * NW * (size_t)CHUNK; i++)
		src[i] = (uint8_t)plx_test_rand(&seed);
	memcpy(src0, src, 2 * NW * (size_t)CHUNK);

	EXPECT_OK(plx_reactor_init(&P.r, NULL));
	plx_tcp_config_init(&P.cfg);
	P.cfg.event_cb = parent_event;
	EXPECT_OK(plx_tcp_init(&P.r, &P.cfg));
	t0 = plx_now_ns();
	for (int i = 0; i < rounds; i++)
		kill_round(i, &ok, &failed);
	fprintf(stderr,
		"%d kill rounds in %.1f s: %d ops succeeded, %d failed with "
		"PLX_ECONNRESET\n",
		rounds, (double)(plx_now_ns() - t0) / 1e9, ok, failed);
	/* some rounds must have caught ops in flight, some finished ones */
	EXPECT_GT(ok, 0);
	EXPECT_GT(failed, 0);
	EXPECT_OK(plx_tcp_shutdown(&P.r));
	t0 = plx_now_ns() + 5000 * MS;
	while ((rc = plx_reactor_fini(&P.r)) == PLX_EBUSY && plx_now_ns() < t0)
		plx_reactor_wait(&P.r, 1);
	EXPECT_OK(rc);
	free(src);
	free(src0);
	free(dst);
	return 0;
}
