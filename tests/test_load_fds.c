/* SPDX-License-Identifier: MIT */
/*
 * Load: running out of file descriptors (RLIMIT_NOFILE lowered in this
 * process to exactly the descriptors it holds).
 *
 * 1. Accepting: a peer's connection is in the target's listen queue when
 *    the target has no descriptor left to accept it with. The target must
 *    neither accept nor spin: sleeping in plx_reactor_wait(100 ms) it may
 *    wake at most a few times per tick, and it logs the failure (with the
 *    errno's text) a bounded number of times. The peer is not connected.
 *    Once the limit is restored the same connection is accepted, the
 *    handshake completes on both sides and a write arrives intact.
 * 2. Connecting, listening, attaching the transport, creating a reactor:
 *    each fails with PLX_EMFILE, leaves no descriptor and no endpoint
 *    behind, and works again once the limit is restored; an endpoint that
 *    was up before keeps carrying verified writes throughout.
 * At the end every reactor finalises and the process holds exactly the
 * descriptors it held at the start.
 */
#include <fcntl.h>

#include "soak/proc_stats.h"
#include "tcp_pair.h"

#define MS 1000000ull

static struct side T, C; /* target (listens), client */
static int accept_logs;

static void t_log(void *arg, int level, const char *msg)
{
	(void)arg;
	(void)level;
	if (strstr(msg, "accept"))
		accept_logs++;
}

/* Out of descriptors: the soft limit just above the highest one open,
 * every free number below it taken by a filler (as if something else in
 * the process held them). */
static int fillers[1024], nfillers;
static rlim_t saved_limit;

static void exhaust(void)
{
	int fd;

	saved_limit = proc_nofile_set_soft((rlim_t)proc_fd_max() + 1);
	EXPECT_TRUE(saved_limit > 0);
	while ((fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0) {
		if (nfillers == (int)(sizeof(fillers) / sizeof(fillers[0])))
			PLX_FAIL("too many free descriptors below the limit");
		fillers[nfillers++] = fd;
	}
	EXPECT_EQ(errno, EMFILE);
}

static void replenish(void)
{
	while (nfillers)
		close(fillers[--nfillers]);
	EXPECT_TRUE(proc_nofile_set_soft(saved_limit) > 0);
}

static void write_and_check(struct plx_ep *ep, const struct plx_desc *d,
			    uint8_t *tmem, uint8_t salt)
{
	static uint8_t src[4096];
	struct tracked w;

	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i * 7 + salt);
	tracked_init(&w);
	EXPECT_OK(plx_ep_write(ep, &w.op, src, sizeof(src), d, 0));
	EXPECT_TRUE(pair_until(&T, &C, &w.done, 5000));
	EXPECT_OK(w.status);
	EXPECT_MEM_EQ(tmem, src, sizeof(src));
}

static void test_fd_exhaustion_fails_cleanly_and_recovers(void)
{
	static uint8_t tmem[4096];
	struct plx_reactor_config rcfg;
	struct plx_reactor spare;
	struct plx_reactor fresh;
	struct plx_region reg;
	struct plx_desc d;
	struct plx_ep *ep, *ep2 = NULL, *bad = (struct plx_ep *)&bad;
	uint64_t end;
	int fds0, fds, wakes = 0, rc;
	uint16_t port2 = 0;

	fds0 = proc_fd_count();
	EXPECT_TRUE(fds0 > 0);
	plx_reactor_config_init(&rcfg);
	rcfg.log_cb = t_log;
	rcfg.log_level = PLX_LOG_DEBUG;
	side_init(&T, "127.0.0.1", NULL, &rcfg);
	side_init(&C, NULL, NULL, NULL);
	EXPECT_OK(plx_mem_register(&T.r, &reg, tmem, sizeof(tmem),
				   PLX_ACCESS_REMOTE_WRITE));
	EXPECT_OK(plx_mem_desc(&T.r, &reg, &d));
	EXPECT_OK(plx_reactor_init(&spare, NULL)); /* gets TCP later */

	/* 1. the accept that cannot get a descriptor */
	EXPECT_OK(plx_tcp_connect(&C.r, "127.0.0.1", T.port, &ep));
	exhaust();
	fds = proc_fd_count();
	/* the target alone, sleeping on its fd: it must not spin */
	end = plx_now_ns() + 500 * MS;
	while (plx_now_ns() < end) {
		plx_reactor_wait(&T.r, 100);
		wakes++;
	}
	for (int i = 0; i < 200; i++)
		pair_poll(&T, &C);
	EXPECT_TRUE(!side_has_event(&T, PLX_EP_ACCEPTED));
	EXPECT_TRUE(!side_has_event(&C, PLX_EP_CONNECTED));
	EXPECT_EQ(proc_fd_count(), fds);
	fprintf(stderr,
		"load_fds: out of descriptors: %d wake-ups in 500 ms, %d "
		"accept failures logged\n",
		wakes, accept_logs);
	EXPECT_TRUE(accept_logs >= 1);
	EXPECT_LE(wakes, 50);
	EXPECT_LE(accept_logs, 100);

	/* 2. connect, listen, transport, reactor: PLX_EMFILE, nothing kept */
	EXPECT_STATUS(plx_tcp_connect(&C.r, "127.0.0.1", T.port, &bad),
		      PLX_EMFILE);
	EXPECT_TRUE(bad == (struct plx_ep *)&bad); /* out param untouched */
	EXPECT_STATUS(plx_tcp_listen(&T.r, "127.0.0.1", 0, &port2), PLX_EMFILE);
	EXPECT_EQ(port2, 0);
	EXPECT_STATUS(plx_tcp_init(&spare, NULL), PLX_EMFILE);
	EXPECT_STATUS(plx_reactor_init(&fresh, NULL), PLX_EMFILE);
	EXPECT_EQ(proc_fd_count(), fds);

	/* the limit back: the queued connection is accepted, all works */
	replenish();
	EXPECT_TRUE(pair_wait_event(&T, &C, &C, PLX_EP_CONNECTED, 5000));
	EXPECT_TRUE(pair_wait_event(&T, &C, &T, PLX_EP_ACCEPTED, 5000));
	write_and_check(ep, &d, tmem, 1);
	EXPECT_OK(plx_tcp_listen(&T.r, "127.0.0.1", 0, &port2));
	EXPECT_TRUE(port2 != 0);
	EXPECT_OK(plx_tcp_init(&spare, NULL));
	EXPECT_OK(plx_tcp_connect(&spare, "127.0.0.1", port2, &ep2));
	EXPECT_OK(plx_reactor_init(&fresh, NULL));
	EXPECT_OK(plx_reactor_fini(&fresh));

	/* out of descriptors again with an endpoint up: it keeps working */
	exhaust();
	fds = proc_fd_count();
	EXPECT_STATUS(plx_tcp_connect(&C.r, "127.0.0.1", port2, &bad),
		      PLX_EMFILE);
	write_and_check(ep, &d, tmem, 2);
	EXPECT_EQ(proc_fd_count(), fds);
	replenish();

	/* teardown: everything finalises, every descriptor is back */
	end = plx_now_ns() + 5000 * MS;
	EXPECT_OK(plx_tcp_shutdown(&spare));
	while ((rc = plx_reactor_fini(&spare)) == PLX_EBUSY &&
	       plx_now_ns() < end)
		pair_poll(&T, &C), plx_reactor_poll(&spare);
	EXPECT_OK(rc);
	EXPECT_OK(plx_mem_deregister(&T.r, &reg));
	side_fini(&C, &T);
	side_fini(&T, NULL);
	EXPECT_EQ(proc_fd_count(), fds0);
}

int main(void)
{
	test_fd_exhaustion_fails_cleanly_and_recovers();
	return 0;
}
