/* SPDX-License-Identifier: MIT */
/*
 * Riding ACKs (wire.h, PLX__F_ACK): the cumulative ACK a side owes goes
 * out in the header of its next data frame instead of a frame of its own.
 *
 * 1. A write ping-pong through the capturing proxy of tests/fault/: in
 *    both directions nearly every write carries the ACK of the write
 *    before it, and almost no ACK frame is sent; every write succeeds.
 *    With 64 KiB writes (PLX__TCP_RIDE_MAX and more) the ACK goes as an
 *    ACK frame right ahead of the write instead.
 * 2. A write that took the ACK but is cancelled while still queued (in a
 *    batch, so it never reached the socket) gives the ACK back: it leaves
 *    on its own at the end of the batch, and the peer's write completes
 *    (without that, the peer waited until its op timed out).
 * 3. The ACK of a write too large for the staging buffer leaves in the
 *    target's next poll, with nothing else read or sent: a writer with
 *    one op in flight waits for it (before, the next poll only found the
 *    socket empty and the ACK left in the poll after that).
 */
#include <string.h>

#include "fault/proxy.h"
#include "tcp_pair.h"
#include "transport/tcp/tcp_internal.h"
#include "transport/tcp/wire.h"

#define ROUNDS 200
#define MSG 64
#define BIG (64 * 1024)
#define LARGE (4 * PLX__TCP_STAGE) /* read straight into place */

static struct side A, B;
static uint8_t amem[BIG], bmem[BIG], src[BIG];
static uint8_t large_src[LARGE], large_dst[LARGE];

/* Poll both reactors and step the proxy (one thread, nothing spins). */
static void poll_all(struct fproxy *px)
{
	plx_reactor_poll(&A.r);
	if (px)
		fproxy_step(px, 0);
	plx_reactor_poll(&B.r);
	if (px)
		fproxy_step(px, 0);
}

static int wait_done(struct fproxy *px, const struct tracked *t, int ms)
{
	uint64_t end = plx_now_ns() + (uint64_t)ms * 1000000ull;

	while (!t->done && plx_now_ns() < end)
		poll_all(px);
	return t->done;
}

static int wait_byte(struct fproxy *px, const uint8_t *p, uint8_t v, int ms)
{
	uint64_t end = plx_now_ns() + (uint64_t)ms * 1000000ull;

	while (*(volatile const uint8_t *)p != v && plx_now_ns() < end)
		poll_all(px);
	return *(volatile const uint8_t *)p == v;
}

/* Frames of one captured direction: data frames with a riding ACK, ACK
 * frames, ACK frames right before a data frame, and all frames. */
static void count_frames(const uint8_t *b, size_t len, int *riding, int *acks,
			 int *ahead, int *frames)
{
	size_t off = 0;
	int prev_ack = 0;

	*riding = *acks = *ahead = *frames = 0;
	while (off < len) {
		struct plx__frame f;
		int hl = plx__wire_parse(&f, b + off, len - off, UINT32_MAX);

		if (hl <= 0 || len - off < (size_t)hl + f.payload_len)
			break;
		(*frames)++;
		if (f.flags & PLX__F_ACK)
			(*riding)++;
		if (prev_ack && f.opcode == PLX__OP_WRITE)
			(*ahead)++;
		prev_ack = f.opcode == PLX__OP_ACK;
		*acks += prev_ack;
		off += (size_t)hl + f.payload_len;
	}
}

static void connect_pair(struct fproxy **px, struct plx_ep **bep,
			 struct plx_desc *ad, struct plx_desc *bd,
			 struct plx_region *ar, struct plx_region *br)
{
	uint16_t port;

	side_init(&A, "127.0.0.1", NULL, NULL);
	side_init(&B, NULL, NULL, NULL);
	if (px) {
		EXPECT_EQ(fproxy_create(px, A.port, &port), 0);
		fproxy_keep(*px, 4u << 20);
	} else {
		port = A.port;
	}
	EXPECT_OK(plx_tcp_connect(&B.r, "127.0.0.1", port, bep));
	for (uint64_t end = plx_now_ns() + 5000000000ull;
	     plx_now_ns() < end &&
	     !(side_has_event(&B, PLX_EP_CONNECTED) && A.accepted);)
		poll_all(px ? *px : NULL);
	EXPECT_TRUE(side_has_event(&B, PLX_EP_CONNECTED) && A.accepted);
	EXPECT_OK(plx_mem_register(&A.r, ar, amem, sizeof(amem),
				   PLX_ACCESS_REMOTE_WRITE));
	EXPECT_OK(plx_mem_register(&B.r, br, bmem, sizeof(bmem),
				   PLX_ACCESS_REMOTE_WRITE));
	EXPECT_OK(plx_mem_desc(&A.r, ar, ad));
	EXPECT_OK(plx_mem_desc(&B.r, br, bd));
}

static void teardown(struct fproxy *px, struct plx_ep *bep,
		     struct plx_region *ar, struct plx_region *br)
{
	EXPECT_OK(plx_mem_deregister(&A.r, ar));
	EXPECT_OK(plx_mem_deregister(&B.r, br));
	EXPECT_OK(plx_ep_close(bep));
	for (uint64_t end = plx_now_ns() + 2000000000ull;
	     plx_now_ns() < end && !side_has_event(&B, PLX_EP_CLOSED);)
		poll_all(px);
	if (px) /* side_fini() polls only the reactors from here on */
		EXPECT_EQ(fproxy_start_thread(px), 0);
	side_fini(&B, &A);
	side_fini(&A, NULL);
	if (px)
		fproxy_destroy(px);
}

static void ping_pong(size_t msg, int rounds)
{
	struct fproxy *px = NULL;
	struct plx_ep *bep;
	struct plx_desc ad, bd;
	struct plx_region ar, br;
	struct tracked bw, aw;
	const uint8_t *cap;
	size_t len;
	int riding, acks, ahead, frames;

	connect_pair(&px, &bep, &ad, &bd, &ar, &br);
	/* as plx_bench's write ping-pong: each side answers as soon as the
	 * other's write is in its memory; B also waits for its own write's
	 * completion, A only before it reuses its op */
	tracked_init(&aw);
	aw.done = 1;
	for (int i = 1; i <= rounds; i++) {
		uint8_t v = (uint8_t)(i % 250 + 1);

		memset(src, v, msg);
		tracked_init(&bw);
		EXPECT_OK(plx_ep_write(bep, &bw.op, src, msg, &ad, 0));
		EXPECT_TRUE(wait_byte(px, &amem[msg - 1], v, 2000));
		EXPECT_TRUE(wait_done(px, &aw, 2000));
		EXPECT_OK(aw.status);
		tracked_init(&aw);
		EXPECT_OK(plx_ep_write(A.accepted, &aw.op, amem, msg, &bd, 0));
		EXPECT_TRUE(wait_byte(px, &bmem[msg - 1], v, 2000));
		EXPECT_TRUE(wait_done(px, &bw, 2000));
		EXPECT_OK(bw.status);
	}
	EXPECT_TRUE(wait_done(px, &aw, 2000));
	EXPECT_OK(aw.status);
	for (int d = 0; d < 2; d++) {
		cap = fproxy_capture(px, 0, d, &len);
		EXPECT_TRUE(cap != NULL);
		count_frames(cap, len, &riding, &acks, &ahead, &frames);
		fprintf(stderr,
			"%zu B %s: %d frames, %d with a riding ACK, %d ACK "
			"frames, %d of them right ahead of a write\n",
			msg, d == FPROXY_C2S ? "c2s" : "s2c", frames, riding,
			acks, ahead);
		/* each write but the first of a direction acknowledges the
		 * one before it; an ACK frame may still leave at the tick */
		if (msg < PLX__TCP_RIDE_MAX) {
			EXPECT_GE(riding, rounds - 10);
			EXPECT_LE(acks, 10);
		} else {
			EXPECT_EQ(riding, 0);
			EXPECT_GE(ahead, rounds - 10);
		}
	}
	teardown(px, bep, &ar, &br);
}

static void test_ping_pong_acks_ride(void)
{
	ping_pong(MSG, ROUNDS);
	ping_pong(BIG, 40);
}

static void test_cancelled_rider_gives_ack_back(void)
{
	struct plx_ep *bep;
	struct plx_desc ad, bd;
	struct plx_region ar, br;
	struct tracked aw, bw;

	connect_pair(NULL, &bep, &ad, &bd, &ar, &br);
	/* A writes to B; B owes the ACK once the data is in */
	memset(src, 0x5a, sizeof(src));
	tracked_init(&aw);
	EXPECT_OK(plx_ep_write(A.accepted, &aw.op, src, MSG, &bd, 0));
	EXPECT_TRUE(wait_byte(NULL, &bmem[MSG - 1], 0x5a, 2000));
	EXPECT_EQ(aw.done, 0);
	/* B's next write takes the ACK, stays queued, and is cancelled */
	EXPECT_OK(plx_ep_batch_begin(bep));
	tracked_init(&bw);
	EXPECT_OK(plx_ep_write(bep, &bw.op, src, MSG, &ad, 0));
	EXPECT_OK(plx_op_cancel(&B.r, &bw.op));
	EXPECT_OK(plx_ep_batch_end(bep));
	EXPECT_TRUE(wait_done(NULL, &bw, 1000));
	EXPECT_STATUS(bw.status, PLX_ECANCELED);
	/* the ACK left anyway: A's write completes, long before a timeout */
	EXPECT_TRUE(wait_done(NULL, &aw, 1000));
	EXPECT_OK(aw.status);
	EXPECT_NE(amem[MSG - 1], 0x5a); /* the cancelled write never landed */
	teardown(NULL, bep, &ar, &br);
}

static void test_large_write_acked_next_poll(void)
{
	struct plx_ep *bep;
	struct plx_desc ad, bd, ld;
	struct plx_region ar, br, lr;
	struct tracked bw;

	connect_pair(NULL, &bep, &ad, &bd, &ar, &br);
	EXPECT_OK(plx_mem_register(&A.r, &lr, large_dst, sizeof(large_dst),
				   PLX_ACCESS_REMOTE_WRITE));
	EXPECT_OK(plx_mem_desc(&A.r, &lr, &ld));
	for (int i = 1; i <= 3; i++) {
		uint8_t v = (uint8_t)(0x30 + i);

		memset(large_src, v, sizeof(large_src));
		tracked_init(&bw);
		EXPECT_OK(plx_ep_write(bep, &bw.op, large_src, LARGE, &ld, 0));
		/* until the last byte is in A's memory (A's poll that read
		 * it ended the frame) */
		EXPECT_TRUE(wait_byte(NULL, &large_dst[LARGE - 1], v, 2000));
		EXPECT_EQ(large_dst[0], v);
		/* one more poll of A; from here on only B polls */
		plx_reactor_poll(&A.r);
		for (uint64_t end = plx_now_ns() + 1000000000ull;
		     !bw.done && plx_now_ns() < end;)
			plx_reactor_poll(&B.r);
		EXPECT_TRUE(bw.done);
		EXPECT_OK(bw.status);
	}
	EXPECT_OK(plx_mem_deregister(&A.r, &lr));
	teardown(NULL, bep, &ar, &br);
}

int main(void)
{
	test_ping_pong_acks_ride();
	test_cancelled_rider_gives_ack_back();
	test_large_write_acked_next_poll();
	fprintf(stderr, "test_tcp_ack_ride: all passed\n");
	return 0;
}
