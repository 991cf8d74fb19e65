/* SPDX-License-Identifier: MIT */
/*
 * Half-open connections are capped (plx_tcp_config.max_handshakes). A
 * target with max_handshakes 4 and a 300 ms handshake timeout is opened
 * 10 times by raw sockets that never speak: it keeps 4 of them and
 * closes the other 6 at once (the peer reads EOF or a reset); the 4 are
 * closed at their handshake timeout, after which a pollux client
 * connects and moves data. max_handshakes 0 is refused by plx_tcp_init().
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tcp_pair.h"

#define NRAW 10
#define CAP 4

static void small_cap(struct side *s)
{
	s->cfg.max_handshakes = CAP;
	s->cfg.handshake_timeout_ns = 300000000ull;
}

/* Has the target closed raw socket @fd? (Its HELLO bytes are read and
 * dropped.) */
static int closed_by_peer(int fd)
{
	char buf[512];

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n > 0)
			continue;
		if (n == 0)
			return 1;
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : 1;
	}
}

static int count_closed(const int *fds)
{
	int n = 0;

	for (int i = 0; i < NRAW; i++)
		n += closed_by_peer(fds[i]);
	return n;
}

int main(void)
{
	static struct side T, C;
	struct plx_tcp_config bad;
	struct plx_reactor r;
	struct sockaddr_in a;
	struct plx_region reg;
	struct plx_desc d;
	struct plx_ep *ep;
	struct tracked t;
	static char mem[4096], src[64];
	int fds[NRAW], closed = 0;

	EXPECT_OK(plx_reactor_init(&r, NULL));
	plx_tcp_config_init(&bad);
	EXPECT_EQ(bad.max_handshakes, 256);
	bad.max_handshakes = 0;
	EXPECT_STATUS(plx_tcp_init(&r, &bad), PLX_EINVAL);
	EXPECT_OK(plx_reactor_fini(&r));

	side_init_with(&T, "127.0.0.1", NULL, NULL, small_cap);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons(T.port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (int i = 0; i < NRAW; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		EXPECT_TRUE(fds[i] >= 0);
		EXPECT_OK(connect(fds[i], (struct sockaddr *)&a, sizeof(a)));
	}
	/* accepted, and all but CAP closed at once */
	for (uint64_t end = plx_now_ns() + 2000000000ull;
	     plx_now_ns() < end && closed < NRAW - CAP;) {
		plx_reactor_poll(&T.r);
		closed = count_closed(fds);
		usleep(1000);
	}
	EXPECT_EQ(closed, NRAW - CAP);
	/* the rest at their handshake timeout (300 ms, checked at the
	 * transport's tick) */
	for (uint64_t end = plx_now_ns() + 5000000000ull;
	     plx_now_ns() < end && closed < NRAW;) {
		plx_reactor_poll(&T.r);
		closed = count_closed(fds);
		usleep(1000);
	}
	EXPECT_EQ(closed, NRAW);
	for (int i = 0; i < NRAW; i++)
		close(fds[i]);

	/* a real peer gets in and works */
	side_init(&C, NULL, NULL, NULL);
	EXPECT_OK(
		plx_mem_register(&T.r, &reg, mem, sizeof(mem), PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_desc(&T.r, &reg, &d));
	EXPECT_OK(plx_tcp_connect(&C.r, "127.0.0.1", T.port, &ep));
	EXPECT_TRUE(pair_wait_event(&C, &T, &C, PLX_EP_CONNECTED, 5000));
	memset(src, 0x6b, sizeof(src));
	tracked_init(&t);
	EXPECT_OK(plx_ep_write(ep, &t.op, src, sizeof(src), &d, 100));
	EXPECT_TRUE(pair_until(&C, &T, &t.done, 5000));
	EXPECT_OK(t.status);
	EXPECT_MEM_EQ(mem + 100, src, sizeof(src));
	EXPECT_OK(plx_mem_deregister(&T.r, &reg));
	EXPECT_OK(plx_ep_close(ep));
	side_fini(&C, &T);
	side_fini(&T, NULL);
	return 0;
}
