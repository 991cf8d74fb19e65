/* SPDX-License-Identifier: MIT */
/*
 * plx_tcp_config.congestion: the named TCP congestion control is on every
 * socket the transport makes (listener, accepted, connected), read back
 * from the kernel with getsockopt(TCP_CONGESTION); without it the
 * system's default stays; the name is copied; a bad name fails
 * plx_tcp_init() with PLX_EINVAL and leaves the reactor usable.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tcp_pair.h"
#include "transport/tcp/tcp_internal.h"

static struct side A, B;
static char g_want[16];	  /* the algorithm the tests ask for */
static char g_sysdef[16]; /* the system's default */

static void cc_of(int fd, char *out)
{
	socklen_t len = 16;

	memset(out, 0, 16);
	EXPECT_TRUE(!getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, out, &len));
}

/* every connection of @s uses @name; with @lst, its listener too */
static void expect_cc(struct side *s, const char *name, int lst)
{
	struct plx__tcp *t = plx__tcp_get(&s->r);
	char got[16];
	int n = 0;

	for (struct plx__conn *c = t->conns; c; c = c->next, n++) {
		cc_of(c->fd, got);
		if (strcmp(got, name))
			fprintf(stderr, "conn fd %d: %s, want %s\n", c->fd, got,
				name);
		EXPECT_TRUE(!strcmp(got, name));
	}
	EXPECT_TRUE(n >= 1);
	if (lst) {
		cc_of(t->lfd[0], got);
		EXPECT_TRUE(!strcmp(got, name));
	}
}

static char g_name_buf[16];

static void tweak_cc(struct side *s)
{
	/* from a buffer the test overwrites after init: must be copied */
	memcpy(g_name_buf, g_want, sizeof(g_name_buf));
	s->cfg.congestion = g_name_buf;
}

static void test_set_on_every_socket(void)
{
	struct plx_ep *ep = NULL;

	side_init_with(&A, "127.0.0.1", NULL, NULL, tweak_cc);
	side_init_with(&B, NULL, NULL, NULL, tweak_cc);
	memset(g_name_buf, 'x', sizeof(g_name_buf) - 1);
	EXPECT_OK(plx_tcp_connect(&B.r, "127.0.0.1", A.port, &ep));
	EXPECT_TRUE(pair_wait_event(&A, &B, &B, PLX_EP_CONNECTED, 5000));
	EXPECT_TRUE(pair_wait_event(&A, &B, &A, PLX_EP_ACCEPTED, 5000));
	pair_write_check(&A, &B, ep, "congestion");
	expect_cc(&A, g_want, 1); /* listener and the accepted socket */
	expect_cc(&B, g_want, 0); /* the connected socket */
	side_fini(&B, &A);
	side_fini(&A, NULL);
}

static void test_default_left_alone(void)
{
	struct plx_ep *ep = NULL;

	side_init(&A, "127.0.0.1", NULL, NULL);
	side_init_with(&B, NULL, NULL, NULL, tweak_cc);
	EXPECT_OK(plx_tcp_connect(&B.r, "127.0.0.1", A.port, &ep));
	EXPECT_TRUE(pair_wait_event(&A, &B, &A, PLX_EP_ACCEPTED, 5000));
	pair_write_check(&A, &B, ep, "congestion");
	expect_cc(&A, g_sysdef, 1); /* not configured: the system's */
	expect_cc(&B, g_want, 0);
	side_fini(&B, &A);
	side_fini(&A, NULL);
}

static void test_bad_names(void)
{
	static const char *const bad[] = {
		"", "no-such-cc-alg", "0123456789abcdef" /* 16: too long */
	};
	struct plx_tcp_config cfg;
	struct plx_reactor r;

	EXPECT_OK(plx_reactor_init(&r, NULL));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		plx_tcp_config_init(&cfg);
		cfg.congestion = bad[i];
		EXPECT_STATUS(plx_tcp_init(&r, &cfg), PLX_EINVAL);
	}
	/* nothing was left attached: a good config goes on */
	plx_tcp_config_init(&cfg);
	cfg.congestion = g_want;
	EXPECT_OK(plx_tcp_init(&r, &cfg));
	EXPECT_OK(plx_reactor_fini(&r));
}

int main(void)
{
	char avail[256] = "";
	FILE *f;
	int fd;

	/* the system's default, read back from a fresh socket */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	EXPECT_TRUE(fd >= 0);
	cc_of(fd, g_sysdef);
	close(fd);
	/* ask for one that is not the default, so that the check can
	 * fail: reno is built into every kernel */
	snprintf(g_want, sizeof(g_want), "%s",
		 strcmp(g_sysdef, "reno") ? "reno" : "cubic");
	f = fopen("/proc/sys/net/ipv4/tcp_available_congestion_control", "r");
	if (f) {
		if (!fgets(avail, sizeof(avail), f))
			avail[0] = 0;
		fclose(f);
	}
	if (!strstr(avail, g_want)) {
		printf("SKIP: %s not available (%s)\n", g_want, avail);
		return 77;
	}
	printf("system default %s, testing %s\n", g_sysdef, g_want);
	test_set_on_every_socket();
	test_default_left_alone();
	test_bad_names();
	return 0;
}
