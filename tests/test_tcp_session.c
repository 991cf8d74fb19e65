/* SPDX-License-Identifier: MIT */
/*
 * TCP sessions: pre-shared-key authentication (right key, wrong key, key on
 * one side only), peer restart detected by the epoch, simultaneous open
 * resolved to one connection with every queued op completed (1000 rounds),
 * handshake timeout against a silent peer.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tcp_pair.h"
#include "transport/tcp/tcp_internal.h"

static struct side A, B;

static void test_auth_matching_key_connects(void)
{
	struct plx_ep *ep;

	side_init(&A, "127.0.0.1", "correct horse", NULL);
	side_init(&B, NULL, "correct horse", NULL);
	EXPECT_OK(plx_tcp_connect(&B.r, "127.0.0.1", A.port, &ep));
	EXPECT_TRUE(pair_wait_event(&A, &B, &B, PLX_EP_CONNECTED, 5000));
	EXPECT_TRUE(pair_wait_event(&A, &B, &A, PLX_EP_ACCEPTED, 5000));
	side_fini(&B, &A);
	side_fini(&A, NULL);
}

static void expect_refused(const char *psk_a, const char *psk_b, int want)
{
	struct plx_ep *ep;
	struct tracked t;
	char b[4];

	side_init(&A, "127.0.0.1", psk_a, NULL);
	side_init(&B, NULL, psk_b, NULL);
	EXPECT_OK(plx_tcp_connect(&B.r, "127.0.0.1", A.port, &ep));
	/* an op queued on the connecting endpoint fails, never hangs */
	tracked_init(&t);
	EXPECT_OK(plx_ep_send(ep, &t.op, "hi", 2, 0));
	EXPECT_TRUE(pair_wait_event(&A, &B, &B, PLX_EP_DOWN, 5000));
	EXPECT_STATUS(side_event_status(&B, PLX_EP_DOWN), want);
	EXPECT_TRUE(pair_until(&A, &B, &t.done, 1000));
	EXPECT_STATUS(t.status, want);
	EXPECT_TRUE(!side_has_event(&B, PLX_EP_CONNECTED));
	EXPECT_TRUE(!side_has_event(&A, PLX_EP_ACCEPTED));
	EXPECT_STATUS(plx_ep_send(ep, &t.op, b, 1, 0), PLX_ENOTCONN);
	side_fini(&B, &A);
	side_fini(&A, NULL);
}

static void test_auth_wrong_key_refused_both_sides(void)
{
	expect_refused("key one", "key two", PLX_EAUTH);
	expect_refused("key one", NULL, PLX_EAUTH);
	expect_refused(NULL, "key two", PLX_EAUTH);
}

static void test_peer_restart_fails_inflight(void)
{
	struct plx_reactor_config cfg;
	struct plx_ep *ep, *ep2, *a_ep;
	struct tracked rv;
	uint64_t e1, e2;
	char buf[16];

	plx_reactor_config_init(&cfg);
	memset(cfg.node_id, 0x42, 16); /* B keeps its node id across restart */
	side_init(&A, "127.0.0.1", NULL, NULL);
	side_init(&B, NULL, NULL, &cfg);
	EXPECT_OK(plx_tcp_connect(&B.r, "127.0.0.1", A.port, &ep));
	EXPECT_TRUE(pair_wait_event(&A, &B, &A, PLX_EP_ACCEPTED, 5000));
	a_ep = A.accepted;
	plx_ep_peer(a_ep, NULL, &e1);
	/* A has a receive posted on B: in flight when B "restarts" */
	tracked_init(&rv);
	EXPECT_OK(plx_ep_recv(a_ep, &rv.op, buf, sizeof(buf), 0, 0));
	/* B dies without a word: its reactor is torn down abruptly by
	 * closing the sockets (as the kernel does for a killed process) */
	struct plx__tcp *tb = plx__tcp_get(&B.r);

	for (struct plx__conn *c = tb->conns; c; c = c->next)
		shutdown(c->fd, SHUT_RDWR);
	side_fini(&B, NULL);
	/* a new process with the same node id and a new epoch */
	side_init(&B, NULL, NULL, &cfg);
	EXPECT_OK(plx_tcp_connect(&B.r, "127.0.0.1", A.port, &ep2));
	EXPECT_TRUE(pair_wait_event(&A, &B, &B, PLX_EP_CONNECTED, 5000));
	/* A reports the restart (or the down + a fresh accept) and nothing
	 * of the old session survives */
	EXPECT_TRUE(pair_until(&A, &B, &rv.done, 2000));
	EXPECT_STATUS(rv.status, PLX_ECONNRESET);
	/* the old connection died first (PLX_EP_DOWN); the new one from
	 * the same node with a new epoch is reported as a restart */
	EXPECT_TRUE(side_has_event(&A, PLX_EP_DOWN));
	EXPECT_TRUE(pair_wait_event(&A, &B, &A, PLX_EP_RESTARTED, 5000));
	plx_ep_peer(a_ep, NULL, &e2);
	EXPECT_NE(e1, e2);
	/* the endpoint works with the new incarnation */
	pair_write_check(&A, &B, ep2, "fresh");
	side_fini(&B, &A);
	side_fini(&A, NULL);
}

/* Count canonical endpoints and live (up) connections of a side. */
static void census(struct side *s, int *eps, int *up)
{
	struct plx__tcp *t = plx__tcp_get(&s->r);

	*eps = *up = 0;
	for (struct plx_ep *e = t->eps; e; e = e->next)
		if (e->canon == e && !e->closing)
			(*eps)++;
	for (struct plx__conn *c = t->conns; c; c = c->next)
		if (c->state == PLX__C_UP && c->index == 0)
			(*up)++;
}

/* Primary (non-striped) connections of a side, whatever their state. */
static int primaries(struct side *s)
{
	int n = 0;

	for (struct plx__conn *c = plx__tcp_get(&s->r)->conns; c; c = c->next)
		n += c->index == 0;
	return n;
}

static void test_simultaneous_open_one_connection(void)
{
	int rounds = 1000; /* cheap: about 1 ms a round */
	uint64_t seed = plx_test_seed("simultaneous_open");
	int merged = 0;

	for (int round = 0; round < rounds; round++) {
		struct plx_ep *ea, *eb;
		struct tracked ta[2], tb[2], ra[2], rb[2];
		char ina[2][8], inb[2][8];
		int eps, up, all;

		side_init(&A, "127.0.0.1", NULL, NULL);
		side_init(&B, "127.0.0.1", NULL, NULL);
		EXPECT_OK(plx_tcp_connect(&A.r, "127.0.0.1", B.port, &ea));
		EXPECT_OK(plx_tcp_connect(&B.r, "127.0.0.1", A.port, &eb));
		for (int i = 0; i < 2; i++) {
			tracked_init(&ta[i]);
			tracked_init(&tb[i]);
			tracked_init(&ra[i]);
			tracked_init(&rb[i]);
			/* queued on the connecting attempts */
			EXPECT_OK(plx_ep_send(ea, &ta[i].op, "a", 2,
					      (uint64_t)i));
			EXPECT_OK(plx_ep_send(eb, &tb[i].op, "b", 2,
					      (uint64_t)i));
			EXPECT_OK(plx_ep_recv(ea, &ra[i].op, ina[i], 8,
					      (uint64_t)i, ~0ull));
			EXPECT_OK(plx_ep_recv(eb, &rb[i].op, inb[i], 8,
					      (uint64_t)i, ~0ull));
		}
		/* a random number of polls on one side first */
		for (uint64_t k = plx_test_rand(&seed) % 4; k > 0; k--)
			plx_reactor_poll(&A.r);
		uint64_t end = plx_now_ns() + 5000000000ull;

		do {
			pair_poll(&A, &B);
			all = 1;
			for (int i = 0; i < 2; i++)
				all &= ta[i].done && tb[i].done && ra[i].done &&
				       rb[i].done;
		} while (!all && plx_now_ns() < end);
		if (!all)
			PLX_FAIL(
				"round %d: ops did not complete: ta %d %d tb %d %d "
				"ra %d %d rb %d %d",
				round, ta[0].done, ta[1].done, tb[0].done,
				tb[1].done, ra[0].done, ra[1].done, rb[0].done,
				rb[1].done);
		for (int i = 0; i < 2; i++) {
			EXPECT_OK(ta[i].status);
			EXPECT_OK(tb[i].status);
			EXPECT_OK(ra[i].status);
			EXPECT_OK(rb[i].status);
			EXPECT_TRUE(!strcmp(ina[i], "b"));
			EXPECT_TRUE(!strcmp(inb[i], "a"));
		}
		/* let the losing connection drain and close */
		end = plx_now_ns() + 2000000000ull;
		do {
			pair_poll(&A, &B);
			census(&A, &eps, &up);
			int eb_, ub;

			census(&B, &eb_, &ub);
			if (eps == 1 && up == 1 && eb_ == 1 && ub == 1 &&
			    primaries(&A) == 1 && primaries(&B) == 1)
				break;
		} while (plx_now_ns() < end);
		census(&A, &eps, &up);
		if (eps != 1 || up != 1)
			PLX_FAIL("round %d: A has %d endpoints, %d up conns",
				 round, eps, up);
		census(&B, &eps, &up);
		if (eps != 1 || up != 1)
			PLX_FAIL("round %d: B has %d endpoints, %d up conns",
				 round, eps, up);
		if (primaries(&A) != 1 || primaries(&B) != 1)
			PLX_FAIL("round %d: duplicate connection not closed",
				 round);
		/* striped data connections stay bounded */
		if (plx__tcp_get(&A.r)->nconns > 1 + 2 * A.cfg.stripes ||
		    plx__tcp_get(&B.r)->nconns > 1 + 2 * B.cfg.stripes)
			PLX_FAIL("round %d: too many data connections", round);
		merged += side_has_event(&A, PLX_EP_ACCEPTED) ? 0 : 1;
		side_fini(&A, &B);
		side_fini(&B, NULL);
	}
	fprintf(stderr, "%d simultaneous-open rounds, one connection each\n",
		rounds);
	(void)merged;
}

static void test_silent_peer_handshake_times_out(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	struct plx_reactor_config rc;
	struct plx_ep *ep;
	int lfd = socket(AF_INET, SOCK_STREAM, 0);

	/* a listener that accepts (kernel backlog) but never speaks */
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	EXPECT_OK(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)));
	EXPECT_OK(listen(lfd, 4));
	EXPECT_OK(getsockname(lfd, (struct sockaddr *)&sa, &len));
	plx_reactor_config_init(&rc);
	memset(&B, 0, sizeof(B));
	EXPECT_OK(plx_reactor_init(&B.r, &rc));
	plx_tcp_config_init(&B.cfg);
	B.cfg.event_cb = side_event;
	B.cfg.cb_arg = &B;
	B.cfg.handshake_timeout_ns = 100000000; /* 100 ms */
	EXPECT_OK(plx_tcp_init(&B.r, &B.cfg));
	uint64_t start = plx_now_ns(); /* before the handshake's clock */

	EXPECT_OK(plx_tcp_connect(&B.r, "127.0.0.1", ntohs(sa.sin_port), &ep));

	EXPECT_TRUE(pair_wait_event(&B, NULL, &B, PLX_EP_DOWN, 3000));
	EXPECT_STATUS(side_event_status(&B, PLX_EP_DOWN), PLX_ETIMEDOUT);
	EXPECT_GE(plx_now_ns() - start, 90000000);
	close(lfd);
	side_fini(&B, NULL);
}

int main(void)
{
	test_auth_matching_key_connects();
	test_auth_wrong_key_refused_both_sides();
	test_peer_restart_fails_inflight();
	test_silent_peer_handshake_times_out();
	test_simultaneous_open_one_connection();
	return 0;
}
