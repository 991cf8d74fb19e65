/* SPDX-License-Identifier: MIT */
/*
 * TCP transport, two reactors in one process over loopback: connect and
 * handshake, send/recv with tags and the unexpected queue, write, read,
 * write_imm (notification after the data is in place), target-side checks
 * that leave memory untouched and the connection usable, timeouts, cancel,
 * close with ops in flight, IPv6.
 */
#include "tcp_pair.h"

#define MS 1000000ull

static struct side A, B;

static struct plx_ep *connect_pair(const char *addr)
{
	struct plx_ep *ep = NULL;

	side_init(&A, addr, NULL, NULL);
	side_init(&B, NULL, NULL, NULL);
	EXPECT_OK(plx_tcp_connect(&B.r, addr, A.port, &ep));
	EXPECT_TRUE(ep != NULL);
	EXPECT_TRUE(pair_wait_event(&A, &B, &B, PLX_EP_CONNECTED, 5000));
	EXPECT_TRUE(pair_wait_event(&A, &B, &A, PLX_EP_ACCEPTED, 5000));
	EXPECT_TRUE(plx_ep_is_up(ep));
	EXPECT_TRUE(A.accepted && plx_ep_is_up(A.accepted));
	return ep;
}

static void fini_pair(void)
{
	side_fini(&B, &A);
	side_fini(&A, NULL);
}

static void test_connect_learns_peer_identity(void)
{
	struct plx_ep *ep = connect_pair("127.0.0.1");
	uint8_t id_a[16], id_b[16], seen[16];
	uint64_t ep_a, ep_b, seen_epoch;

	plx_reactor_node_id(&A.r, id_a, &ep_a);
	plx_reactor_node_id(&B.r, id_b, &ep_b);
	plx_ep_peer(ep, seen, &seen_epoch);
	EXPECT_MEM_EQ(seen, id_a, 16);
	EXPECT_U64_EQ(seen_epoch, ep_a);
	plx_ep_peer(A.accepted, seen, &seen_epoch);
	EXPECT_MEM_EQ(seen, id_b, 16);
	EXPECT_U64_EQ(seen_epoch, ep_b);
	fini_pair();
}

static void test_send_recv_tags_and_unexpected(void)
{
	struct plx_ep *ep = connect_pair("127.0.0.1");
	struct tracked s[3], rv[3];
	char out[3][32], in[3][64];

	for (int i = 0; i < 3; i++) {
		tracked_init(&s[i]);
		tracked_init(&rv[i]);
		snprintf(out[i], sizeof(out[i]), "message %d", i);
		memset(in[i], 0, sizeof(in[i]));
	}
	/* posted before arrival, tag matched exactly */
	EXPECT_OK(plx_ep_recv(A.accepted, &rv[0].op, in[0], sizeof(in[0]), 7,
			      ~0ull));
	/* sent before any receive is posted: waits in the unexpected queue */
	EXPECT_OK(plx_ep_send(ep, &s[1].op, out[1], strlen(out[1]) + 1, 9));
	EXPECT_OK(plx_ep_send(ep, &s[0].op, out[0], strlen(out[0]) + 1, 7));
	EXPECT_TRUE(pair_until(&A, &B, &rv[0].done, 2000));
	EXPECT_OK(rv[0].status);
	EXPECT_U64_EQ(rv[0].bytes, strlen(out[0]) + 1);
	EXPECT_TRUE(!strcmp(in[0], out[0]));
	EXPECT_TRUE(pair_until(&A, &B, &s[1].done, 2000));
	EXPECT_OK(s[1].status);
	/* the tag-9 message was held; a wildcard receive takes it */
	EXPECT_OK(
		plx_ep_recv(A.accepted, &rv[1].op, in[1], sizeof(in[1]), 0, 0));
	EXPECT_TRUE(pair_until(&A, &B, &rv[1].done, 2000));
	EXPECT_TRUE(!strcmp(in[1], out[1]));
	EXPECT_EQ(rv[1].done, 1);
	/* a message longer than the posted buffer: PLX_EMSGSIZE both ends */
	EXPECT_OK(plx_ep_recv(A.accepted, &rv[2].op, in[2], 4, 0, 0));
	EXPECT_OK(plx_ep_send(ep, &s[2].op, out[2], strlen(out[2]) + 1, 1));
	EXPECT_TRUE(pair_until(&A, &B, &s[2].done, 2000));
	EXPECT_STATUS(rv[2].status, PLX_EMSGSIZE);
	EXPECT_STATUS(s[2].status, PLX_EMSGSIZE);
	for (int i = 0; i < 3; i++)
		EXPECT_EQ(s[i].done, 1);
	fini_pair();
}

static void test_write_read_write_imm(void)
{
	struct plx_ep *ep = connect_pair("127.0.0.1");
	static uint8_t target[1 << 16], src[4096], back[4096];
	struct plx_region reg;
	struct plx_desc d;
	struct tracked w, r, wi;
	uint64_t seed = plx_test_seed("write_read");

	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)plx_test_rand(&seed);
	memset(target, 0, sizeof(target));
	EXPECT_OK(plx_mem_register(&A.r, &reg, target, sizeof(target),
				   PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_desc(&A.r, &reg, &d));

	tracked_init(&w);
	EXPECT_OK(plx_ep_write(ep, &w.op, src, sizeof(src), &d, 100));
	EXPECT_TRUE(pair_until(&A, &B, &w.done, 2000));
	EXPECT_OK(w.status);
	EXPECT_U64_EQ(w.bytes, sizeof(src));
	/* completion means the data is in place at the target */
	EXPECT_MEM_EQ(target + 100, src, sizeof(src));
	EXPECT_EQ(target[99], 0);
	EXPECT_EQ(target[100 + sizeof(src)], 0);

	tracked_init(&r);
	EXPECT_OK(plx_ep_read(ep, &r.op, back, sizeof(back), &d, 100));
	EXPECT_TRUE(pair_until(&A, &B, &r.done, 2000));
	EXPECT_OK(r.status);
	EXPECT_MEM_EQ(back, src, sizeof(src));

	tracked_init(&wi);
	A.imm_expect = src;
	A.imm_at = target + 8192;
	EXPECT_OK(plx_ep_write_imm(ep, &wi.op, src, 512, &d, 8192, 0xabcd1234));
	EXPECT_TRUE(pair_until(&A, &B, &wi.done, 2000));
	EXPECT_OK(wi.status);
	EXPECT_EQ(A.imm_count, 1);
	EXPECT_U64_EQ(A.last_imm, 0xabcd1234);
	EXPECT_U64_EQ(A.last_imm_addr, (uint64_t)(uintptr_t)(target + 8192));
	EXPECT_U64_EQ(A.last_imm_len, 512);
	EXPECT_TRUE(A.imm_data_ok);

	EXPECT_OK(plx_mem_deregister(&A.r, &reg));
	fini_pair();
}

static void test_large_write_in_place(void)
{
	struct plx_ep *ep = connect_pair("127.0.0.1");
	size_t n = 8u << 20;
	uint8_t *target = calloc(1, n), *src = malloc(n), *back = malloc(n);
	struct plx_region reg;
	struct plx_desc d;
	struct tracked w, r;
	uint64_t seed = plx_test_seed("large_write");

	EXPECT_TRUE(target && src && back);
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = plx_test_rand(&seed);

		memcpy(src + i, &v, 8);
	}
	EXPECT_OK(plx_mem_register(&A.r, &reg, target, n, PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_desc(&A.r, &reg, &d));
	tracked_init(&w);
	EXPECT_OK(plx_ep_write(ep, &w.op, src, n, &d, 0));
	EXPECT_TRUE(pair_until(&A, &B, &w.done, 10000));
	EXPECT_OK(w.status);
	EXPECT_MEM_EQ(target, src, n);
	tracked_init(&r);
	EXPECT_OK(plx_ep_read(ep, &r.op, back, n, &d, 0));
	EXPECT_TRUE(pair_until(&A, &B, &r.done, 10000));
	EXPECT_OK(r.status);
	EXPECT_MEM_EQ(back, src, n);
	EXPECT_OK(plx_mem_deregister(&A.r, &reg));
	free(target);
	free(src);
	free(back);
	fini_pair();
}

static void test_target_rejects_bad_ranges_untouched(void)
{
	struct plx_ep *ep = connect_pair("127.0.0.1");
	static uint8_t mem[8192], snapshot[8192], src[256];
	struct plx_region rw, ro;
	struct plx_desc d, dro, forged;
	struct tracked t;

	memset(mem, 0x5a, sizeof(mem));
	memset(src, 0xee, sizeof(src));
	EXPECT_OK(plx_mem_register(&A.r, &rw, mem, 4096, PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_register(&A.r, &ro, mem + 4096, 4096,
				   PLX_ACCESS_REMOTE_READ));
	EXPECT_OK(plx_mem_desc(&A.r, &rw, &d));
	EXPECT_OK(plx_mem_desc(&A.r, &ro, &dro));
	memcpy(snapshot, mem, sizeof(mem));

	/* past the end of the region: forged descriptor with a larger len */
	forged = d;
	forged.len = 8192;
	tracked_init(&t);
	EXPECT_OK(plx_ep_write(ep, &t.op, src, 256, &forged, 4000));
	EXPECT_TRUE(pair_until(&A, &B, &t.done, 2000));
	EXPECT_STATUS(t.status, PLX_EFAULT);
	/* before the start */
	forged = d;
	forged.addr -= 64;
	tracked_init(&t);
	EXPECT_OK(plx_ep_write(ep, &t.op, src, 32, &forged, 0));
	EXPECT_TRUE(pair_until(&A, &B, &t.done, 2000));
	EXPECT_STATUS(t.status, PLX_EFAULT);
	/* unknown key */
	forged = d;
	forged.key ^= 1;
	tracked_init(&t);
	EXPECT_OK(plx_ep_write(ep, &t.op, src, 32, &forged, 0));
	EXPECT_TRUE(pair_until(&A, &B, &t.done, 2000));
	EXPECT_STATUS(t.status, PLX_EKEYREJECTED);
	/* read-only region */
	tracked_init(&t);
	EXPECT_OK(plx_ep_write_imm(ep, &t.op, src, 32, &dro, 0, 1));
	EXPECT_TRUE(pair_until(&A, &B, &t.done, 2000));
	EXPECT_STATUS(t.status, PLX_EACCES);
	EXPECT_EQ(A.imm_count, 0);
	/* a read of a range that is not registered */
	tracked_init(&t);
	forged = dro;
	forged.len = 8192;
	EXPECT_OK(plx_ep_read(ep, &t.op, snapshot + 0, 0 + 16, &forged, 4090));
	EXPECT_TRUE(pair_until(&A, &B, &t.done, 2000));
	EXPECT_STATUS(t.status, PLX_EFAULT);
	memcpy(snapshot, mem, 0); /* (read target above was snapshot) */
	/* revoked key */
	EXPECT_OK(plx_mem_deregister(&A.r, &ro));
	tracked_init(&t);
	EXPECT_OK(plx_ep_read(ep, &t.op, src, 16, &dro, 0));
	EXPECT_TRUE(pair_until(&A, &B, &t.done, 2000));
	EXPECT_STATUS(t.status, PLX_EKEYREJECTED);

	/* nothing landed anywhere */
	for (size_t i = 0; i < sizeof(mem); i++)
		if (mem[i] != 0x5a)
			PLX_FAIL("target byte %zu changed", i);
	/* and the connection still works */
	tracked_init(&t);
	EXPECT_OK(plx_ep_write(ep, &t.op, src, 64, &d, 0));
	EXPECT_TRUE(pair_until(&A, &B, &t.done, 2000));
	EXPECT_OK(t.status);
	EXPECT_MEM_EQ(mem, src, 64);
	EXPECT_OK(plx_mem_deregister(&A.r, &rw));
	fini_pair();
}

static void test_timeout_cancel_and_close_in_flight(void)
{
	struct plx_ep *ep = connect_pair("127.0.0.1");
	struct tracked s, rv, q[4];
	char buf[64] = "x";
	uint64_t start;

	/* the target never posts a receive and its slots fill; a send with a
	 * short timeout fails with PLX_ETIMEDOUT even though B keeps polling */
	tracked_init(&s);
	s.op.timeout_ns = 50 * MS;
	plx_reactor_poll(&A.r); /* A polls once, then stops */
	start = plx_now_ns();	/* before the op's clock starts */
	EXPECT_OK(plx_ep_send(ep, &s.op, buf, 1, 3));
	while (!s.done && plx_now_ns() - start < 2000 * MS)
		plx_reactor_poll(&B.r);
	EXPECT_EQ(s.done, 1);
	EXPECT_STATUS(s.status, PLX_ETIMEDOUT);
	EXPECT_GE(plx_now_ns() - start, 45 * MS);
	/* A catches up: the late ACK must not complete it again */
	for (int i = 0; i < 100; i++)
		pair_poll(&A, &B);
	EXPECT_EQ(s.done, 1);

	/* cancel a posted receive */
	tracked_init(&rv);
	EXPECT_OK(plx_ep_recv(ep, &rv.op, buf, sizeof(buf), 0, 0));
	EXPECT_OK(plx_op_cancel(&B.r, &rv.op));
	EXPECT_STATUS(plx_op_cancel(&B.r, &rv.op), PLX_EALREADY);
	EXPECT_EQ(rv.done, 0); /* never inside the call */
	pair_poll(&A, &B);
	EXPECT_EQ(rv.done, 1);
	EXPECT_STATUS(rv.status, PLX_ECANCELED);

	/* close with ops in flight: each completes once, PLX_ECANCELED */
	for (int i = 0; i < 4; i++) {
		tracked_init(&q[i]);
		if (i < 2)
			EXPECT_OK(plx_ep_recv(ep, &q[i].op, buf, 8, 0, 0));
		else
			EXPECT_OK(plx_ep_send(ep, &q[i].op, buf, 1, 0));
	}
	EXPECT_OK(plx_ep_close(ep));
	EXPECT_STATUS(plx_ep_close(ep), PLX_EALREADY);
	pair_poll(&B, NULL);
	for (int i = 0; i < 4; i++) {
		EXPECT_EQ(q[i].done, 1);
		EXPECT_STATUS(q[i].status, PLX_ECANCELED);
	}
	EXPECT_TRUE(side_has_event(&B, PLX_EP_CLOSED));
	/* the peer sees the connection go down */
	EXPECT_TRUE(pair_wait_event(&A, &B, &A, PLX_EP_DOWN, 2000));
	EXPECT_STATUS(side_event_status(&A, PLX_EP_DOWN), PLX_ESHUTDOWN);
	fini_pair();
}

static void test_ipv6_loopback(void)
{
	struct plx_ep *ep;
	struct tracked s, rv;
	char in[16] = {0};

	ep = connect_pair("::1");
	tracked_init(&s);
	tracked_init(&rv);
	EXPECT_OK(plx_ep_recv(A.accepted, &rv.op, in, sizeof(in), 0, 0));
	EXPECT_OK(plx_ep_send(ep, &s.op, "six", 4, 0));
	EXPECT_TRUE(pair_until(&A, &B, &rv.done, 2000));
	EXPECT_TRUE(!strcmp(in, "six"));
	fini_pair();
}

static void test_bad_arguments(void)
{
	struct plx_ep *ep = connect_pair("127.0.0.1");
	struct plx_desc d = {.addr = 4096, .len = 100, .key = 1};
	struct tracked t;
	char b[8];

	tracked_init(&t);
	EXPECT_STATUS(plx_ep_write(ep, &t.op, b, 8, &d, 96), PLX_EINVAL);
	EXPECT_STATUS(plx_ep_write(ep, &t.op, b, 8, NULL, 0), PLX_EINVAL);
	EXPECT_STATUS(plx_ep_read(ep, &t.op, NULL, 8, &d, 0), PLX_EINVAL);
	EXPECT_STATUS(plx_ep_send(ep, &t.op, b, 2u << 20, 0), PLX_EMSGSIZE);
	EXPECT_STATUS(plx_tcp_connect(&B.r, "not-an-ip", 1, &ep), PLX_EINVAL);
	EXPECT_STATUS(plx_tcp_listen(&B.r, "300.1.1.1", 0, NULL), PLX_EINVAL);
	EXPECT_EQ(t.done, 0);
	for (int i = 0; i < 10; i++)
		pair_poll(&A, &B);
	EXPECT_EQ(t.done, 0); /* refused calls never complete */
	fini_pair();
}

int main(void)
{
	test_connect_learns_peer_identity();
	test_send_recv_tags_and_unexpected();
	test_write_read_write_imm();
	test_large_write_in_place();
	test_target_rejects_bad_ranges_untouched();
	test_timeout_cancel_and_close_in_flight();
	test_ipv6_loopback();
	test_bad_arguments();
	return 0;
}
