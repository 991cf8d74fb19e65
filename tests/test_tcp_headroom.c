/* SPDX-License-Identifier: MIT */
/*
 * PLX_OP_HEADROOM (include/pollux/ep.h; conn.c, room_hdr()): the
 * PLX_HEADROOM bytes before a send's or write's source are pollux's, which
 * writes the frame header there and sends header and payload as one
 * buffer. Each source below sits behind 128 bytes of a known pattern, so
 * the test sees exactly which bytes pollux wrote.
 *
 * 1. Eager sends (an idle connection): send, write and write_imm of 1 B,
 *    4 KiB and 100 KiB with the flag. Each lands whole and completes; the
 *    bytes right before the source hold a header that parses as the
 *    frame sent (opcode, payload length; the write's address); the
 *    headroom's bytes before that header are untouched.
 * 2. The same ops without the flag: none of the 128 bytes is touched.
 * 3. Queued frames: eight writes in one batch, each from its own buffer
 *    with the flag, leave in one flush; each lands, and each headroom
 *    holds that write's own header.
 * 4. A frame cut by the flush budget (1 MiB here): a 3 MiB write with the
 *    flag leaves over several polls and lands whole.
 * 5. An op split over striped connections ignores the flag: its pieces'
 *    headers cannot go into the payload of the piece before, and the
 *    bytes before the source are left alone.
 * 6. An undefined flag: PLX_EINVAL from plx_ep_send() and plx_ep_send_mt(),
 *    and the op is not taken (it is sent next with the flag fixed).
 * 7. A resolve with the flag: its payload is the region's name, not a
 *    source; the bytes before the name are left alone, and it resolves.
 */
#include <string.h>

#include "tcp_pair.h"
#include "transport/tcp/tcp_internal.h"

#define MIB (1u << 20)
#define ROOM_BYTE 0xa5

static struct side A, B;

/* A buffer of @n bytes behind PLX_HEADROOM bytes of ROOM_BYTE. */
static uint8_t *room_buf(size_t n, uint32_t seed)
{
	uint8_t *base = malloc(PLX_HEADROOM + n);

	EXPECT_TRUE(base != NULL);
	memset(base, ROOM_BYTE, PLX_HEADROOM);
	plx_test_fill(base + PLX_HEADROOM, n, seed);
	return base + PLX_HEADROOM;
}

static void room_free(uint8_t *p)
{
	free(p - PLX_HEADROOM);
}

/* How many of the PLX_HEADROOM bytes before @p still hold ROOM_BYTE,
 * counted from the start of the headroom. */
static size_t room_untouched(const uint8_t *p)
{
	size_t k = 0;

	while (k < PLX_HEADROOM && (p - PLX_HEADROOM)[k] == ROOM_BYTE)
		k++;
	return k;
}

/* The header pollux left before @p: check it is one, of @opcode with
 * @len payload bytes, and that nothing before it was touched. */
static void check_room_hdr(const uint8_t *p, uint8_t opcode, size_t len,
			   struct plx__frame *f)
{
	size_t untouched = room_untouched(p);
	size_t hdr = PLX_HEADROOM - untouched;

	EXPECT_TRUE(hdr >= PLX__WIRE_BASE && hdr <= PLX__WIRE_HDR_MAX);
	EXPECT_EQ(plx__wire_parse(f, p - hdr, hdr, 1u << 30), (int)hdr);
	EXPECT_EQ(f->opcode, opcode);
	EXPECT_U64_EQ(f->payload_len, len);
}

static void no_stripes(struct side *s)
{
	s->cfg.stripes = 0;
	s->cfg.max_message = 4 * MIB;
	s->cfg.flush_max = MIB;
}

static struct plx_ep *connect_pair(void (*tweak)(struct side *s))
{
	struct plx_ep *ep;

	side_init_with(&B, "127.0.0.1", NULL, NULL, tweak);
	side_init_with(&A, NULL, NULL, NULL, tweak);
	EXPECT_OK(plx_tcp_connect(&A.r, "127.0.0.1", B.port, &ep));
	EXPECT_TRUE(pair_wait_event(&A, &B, &A, PLX_EP_CONNECTED, 5000));
	EXPECT_TRUE(pair_wait_event(&A, &B, &B, PLX_EP_ACCEPTED, 5000));
	return ep;
}

/* One op of @kind (PLX__K_SEND, _WRITE, _WRITE_IMM) of @len bytes from A
 * to B, with or without the flag; checks it lands and what the headroom
 * holds afterwards. */
static void one_op(struct plx_ep *ep, uint8_t kind, size_t len, int room,
		   uint8_t *dst, const struct plx_desc *d, uint32_t seed)
{
	uint8_t *src = room_buf(len, seed);
	struct tracked w, rv;
	struct plx__frame f;
	int n0 = B.imm_count;

	tracked_init(&w);
	tracked_init(&rv);
	if (room)
		w.op.flags = PLX_OP_HEADROOM;
	memset(dst, 0, len);
	switch (kind) {
	case PLX__K_SEND:
		EXPECT_OK(plx_ep_recv(B.accepted, &rv.op, dst, len, 0, 0));
		EXPECT_OK(plx_ep_send(ep, &w.op, src, len, 7));
		break;
	case PLX__K_WRITE:
		EXPECT_OK(plx_ep_write(ep, &w.op, src, len, d, 64));
		break;
	default:
		EXPECT_OK(plx_ep_write_imm(ep, &w.op, src, len, d, 64, 99));
		break;
	}
	EXPECT_TRUE(pair_until(&A, &B, &w.done, 5000));
	EXPECT_OK(w.status);
	if (kind == PLX__K_SEND) {
		EXPECT_TRUE(pair_until(&A, &B, &rv.done, 5000));
		EXPECT_OK(rv.status);
		EXPECT_U64_EQ(rv.bytes, len);
		EXPECT_MEM_EQ(dst, src, len);
	} else {
		EXPECT_MEM_EQ(dst + 64, src, len);
	}
	if (kind == PLX__K_WRITE_IMM)
		EXPECT_EQ(B.imm_count, n0 + 1);
	if (!room) {
		EXPECT_EQ(room_untouched(src), PLX_HEADROOM);
	} else {
		check_room_hdr(src,
			       kind == PLX__K_SEND  ? PLX__OP_SEND :
			       kind == PLX__K_WRITE ? PLX__OP_WRITE :
						      PLX__OP_WRITE_IMM,
			       len, &f);
		if (kind == PLX__K_SEND)
			EXPECT_U64_EQ(f.tag, 7);
		else
			EXPECT_U64_EQ(f.addr, d->addr + 64);
	}
	room_free(src);
}

static void test_eager_and_plain(void)
{
	static const size_t sizes[] = {1, 4096, 100 * 1024};
	static const uint8_t kinds[] = {PLX__K_SEND, PLX__K_WRITE,
					PLX__K_WRITE_IMM};
	struct plx_ep *ep = connect_pair(no_stripes);
	size_t cap = 200 * 1024;
	uint8_t *dst = malloc(cap);
	struct plx_region reg;
	struct plx_desc d;
	uint32_t seed = 1;

	EXPECT_OK(plx_mem_register(&B.r, &reg, dst, cap, PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_desc(&B.r, &reg, &d));
	for (int room = 1; room >= 0; room--)
		for (size_t k = 0; k < 3; k++)
			for (size_t s = 0; s < 3; s++)
				one_op(ep, kinds[k], sizes[s], room, dst, &d,
				       seed++);
	EXPECT_OK(plx_mem_deregister(&B.r, &reg));
	side_fini(&A, &B);
	side_fini(&B, NULL);
	free(dst);
}

static void test_batch(void)
{
	enum {
		N = 8,
		LEN = 3000
	};
	struct plx_ep *ep = connect_pair(no_stripes);
	uint8_t *dst = calloc(1, N * LEN), *src[N];
	struct tracked w[N];
	struct plx_region reg;
	struct plx_desc d;
	struct plx__frame f;
	int all = 0;

	EXPECT_OK(plx_mem_register(&B.r, &reg, dst, N * LEN, PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_desc(&B.r, &reg, &d));
	EXPECT_OK(plx_ep_batch_begin(ep));
	for (int i = 0; i < N; i++) {
		src[i] = room_buf(LEN, 100 + (uint32_t)i);
		tracked_init(&w[i]);
		w[i].op.flags = PLX_OP_HEADROOM;
		EXPECT_OK(plx_ep_write(ep, &w[i].op, src[i], LEN, &d,
				       (uint64_t)i * LEN));
	}
	/* queued, not sent: the headrooms are untouched so far */
	for (int i = 0; i < N; i++)
		EXPECT_EQ(room_untouched(src[i]), PLX_HEADROOM);
	EXPECT_OK(plx_ep_batch_end(ep));
	for (uint64_t end = plx_now_ns() + 5000000000ull;
	     !all && plx_now_ns() < end;) {
		pair_poll(&A, &B);
		all = 1;
		for (int i = 0; i < N; i++)
			all &= w[i].done;
	}
	EXPECT_TRUE(all);
	for (int i = 0; i < N; i++) {
		EXPECT_OK(w[i].status);
		EXPECT_MEM_EQ(dst + (size_t)i * LEN, src[i], LEN);
		check_room_hdr(src[i], PLX__OP_WRITE, LEN, &f);
		EXPECT_U64_EQ(f.addr, d.addr + (uint64_t)i * LEN);
		room_free(src[i]);
	}
	EXPECT_OK(plx_mem_deregister(&B.r, &reg));
	side_fini(&A, &B);
	side_fini(&B, NULL);
	free(dst);
}

/* One write of @len bytes from A to a region of B with the flag; checks
 * it lands. Returns its source, for the caller to check the headroom. */
static uint8_t *write_one(struct plx_ep *ep, size_t len, uint32_t seed)
{
	uint8_t *dst = calloc(1, len), *src = room_buf(len, seed);
	struct plx_region reg;
	struct plx_desc d;
	struct tracked w;

	EXPECT_OK(plx_mem_register(&B.r, &reg, dst, len, PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_desc(&B.r, &reg, &d));
	tracked_init(&w);
	w.op.flags = PLX_OP_HEADROOM;
	EXPECT_OK(plx_ep_write(ep, &w.op, src, len, &d, 0));
	EXPECT_TRUE(pair_until(&A, &B, &w.done, 10000));
	EXPECT_OK(w.status);
	EXPECT_MEM_EQ(dst, src, len);
	EXPECT_OK(plx_mem_deregister(&B.r, &reg));
	free(dst);
	return src;
}

static void test_cut_by_budget(void)
{
	size_t len = 3 * MIB;
	struct plx_ep *ep = connect_pair(no_stripes);
	uint8_t *src = write_one(ep, len, 7);
	struct plx__frame f;

	check_room_hdr(src, PLX__OP_WRITE, len, &f);
	side_fini(&A, &B);
	side_fini(&B, NULL);
	room_free(src);
}

static void striped(struct side *s)
{
	s->cfg.stripes = 2;
	s->cfg.stripe_threshold = 64 * 1024;
	s->cfg.stripe_chunk = 16 * 1024;
}

static void test_striped_ignores(void)
{
	struct plx_ep *ep = connect_pair(striped);
	uint64_t end = plx_now_ns() + 5000000000ull;
	uint8_t *src;

	/* the data connections come up after the first one */
	while (plx_ep_conn_count(ep) < 3 && plx_now_ns() < end)
		pair_poll(&A, &B);
	EXPECT_EQ(plx_ep_conn_count(ep), 3);
	src = write_one(ep, 256 * 1024, 9);
	EXPECT_EQ(room_untouched(src), PLX_HEADROOM);
	side_fini(&A, &B);
	side_fini(&B, NULL);
	room_free(src);
}

static void test_undefined_flag(void)
{
	struct plx_ep *ep = connect_pair(no_stripes);
	uint8_t *src = room_buf(64, 3), dst[64];
	struct tracked w, rv;

	tracked_init(&w);
	tracked_init(&rv);
	EXPECT_OK(plx_ep_recv(B.accepted, &rv.op, dst, sizeof(dst), 0, 0));
	w.op.flags = 0x2;
	EXPECT_STATUS(plx_ep_send(ep, &w.op, src, 64, 0), PLX_EINVAL);
	w.op.flags = PLX_OP_HEADROOM | 0x80000000u;
	EXPECT_STATUS(plx_ep_send_mt(ep, &w.op, src, 64, 0), PLX_EINVAL);
	EXPECT_EQ(room_untouched(src), PLX_HEADROOM);
	/* not taken: the same op goes once its flags are right */
	w.op.flags = PLX_OP_HEADROOM;
	EXPECT_OK(plx_ep_send(ep, &w.op, src, 64, 0));
	EXPECT_TRUE(pair_until(&A, &B, &rv.done, 5000));
	EXPECT_TRUE(pair_until(&A, &B, &w.done, 5000));
	EXPECT_OK(w.status);
	EXPECT_MEM_EQ(dst, src, 64);
	side_fini(&A, &B);
	side_fini(&B, NULL);
	room_free(src);
}

static void test_resolve_ignores(void)
{
	struct plx_ep *ep = connect_pair(no_stripes);
	uint8_t mem[256], *name = room_buf(16, 5);
	struct plx_region reg;
	struct plx_desc d, got;
	struct tracked w;

	memcpy(name, "kv-cache-blocks", 16);
	EXPECT_OK(
		plx_mem_register(&B.r, &reg, mem, sizeof(mem), PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_name(&B.r, &reg, (const char *)name));
	EXPECT_OK(plx_mem_desc(&B.r, &reg, &d));
	tracked_init(&w);
	w.op.flags = PLX_OP_HEADROOM;
	EXPECT_OK(plx_ep_resolve(ep, &w.op, (const char *)name, &got));
	EXPECT_TRUE(pair_until(&A, &B, &w.done, 5000));
	EXPECT_OK(w.status);
	EXPECT_U64_EQ(got.addr, d.addr);
	EXPECT_U64_EQ(got.key, d.key);
	EXPECT_EQ(room_untouched(name), PLX_HEADROOM);
	EXPECT_OK(plx_mem_deregister(&B.r, &reg));
	side_fini(&A, &B);
	side_fini(&B, NULL);
	room_free(name);
}

int main(void)
{
	test_eager_and_plain();
	test_batch();
	test_cut_by_budget();
	test_striped_ignores();
	test_undefined_flag();
	test_resolve_ignores();
	printf("test_tcp_headroom: ok\n");
	return 0;
}
