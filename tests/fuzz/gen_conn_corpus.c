/* SPDX-License-Identifier: MIT */
/*
 * gen_conn_corpus OUTDIR - write the seed corpus of fuzz_conn to
 * OUTDIR/fuzz_conn: peer streams that reach each frame handler of a TCP
 * connection (allowed and refused writes and reads, resolves, sends into
 * every receive mode, answers to the victim's own ops, broken answers,
 * control-entry exhaustion, CLOSE, RDMA_CM), some written in small
 * chunks. Deterministic. The output is committed under
 * tests/fuzz/corpus/fuzz_conn:
 *
 *   build-dir/tests/fuzz/gen_conn_corpus tests/fuzz/corpus
 *
 * Seeds use fuzz_conn's conventions (tests/fuzz/fuzz_conn.c): byte 0 is
 * options; key 1..4 names region 0..3; an address below the arena size is
 * an offset into the arena (page 1 "rw", 2 "ro", 3 "wo", 4 unregistered,
 * 5 "half" for 2 KiB).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pollux/mem.h"
#include "pollux/status.h"
#include "transport/rdma/common/cm.h"
#include "transport/tcp/wire.h"

#define PAGE 4096u

/* fuzz_conn's option byte */
#define O_RAW 0x01
#define O_POOL 0x02
#define O_HOLD 0x04
#define O_RECV 0x08
#define O_CHUNK(i) ((uint8_t)((i) << 4)) /* 1, 2, 3, 7, 100, 509, 4096 B */
#define O_NOSEAL 0x80

static const char *outdir;
static int nfiles;

struct bytes {
	uint8_t b[65536];
	size_t n;
};

static struct bytes s;

static void die(const char *what)
{
	fprintf(stderr, "gen_conn_corpus: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void begin(uint8_t opt)
{
	s.n = 0;
	s.b[s.n++] = opt;
}

static void put(const char *name)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/fuzz_conn", outdir);
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		die(path);
	snprintf(path, sizeof(path), "%s/fuzz_conn/%s", outdir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(s.b, 1, s.n, f) != s.n || fclose(f) != 0)
		die(path);
	nfiles++;
}

/* Append @f with @plen payload bytes from @payload (NULL: a pattern). */
static void add(struct plx__frame f, const void *payload, uint32_t plen)
{
	int n;

	f.payload_len = plen;
	if (s.n + PLX__WIRE_HDR_MAX + plen > sizeof(s.b)) {
		fprintf(stderr, "gen_conn_corpus: seed too large\n");
		exit(1);
	}
	n = plx__wire_encode(&f, s.b + s.n);
	if (n < 0) {
		fprintf(stderr, "gen_conn_corpus: bad opcode %u\n", f.opcode);
		exit(1);
	}
	s.n += (size_t)n;
	for (uint32_t i = 0; i < plen; i++)
		s.b[s.n + i] = payload ? ((const uint8_t *)payload)[i] :
					 (uint8_t)(0xa0 + i * 7);
	s.n += plen;
}

static struct plx__frame fr(uint8_t opcode, uint64_t id)
{
	struct plx__frame f;

	memset(&f, 0, sizeof(f));
	f.opcode = opcode;
	f.id = id;
	return f;
}

static void write_(uint8_t op, uint64_t key, uint64_t addr, uint32_t len)
{
	struct plx__frame f = fr(op, 0);

	f.key = key;
	f.addr = addr;
	f.imm = op == PLX__OP_WRITE_IMM ? 0x1000u + (uint32_t)addr : 0;
	add(f, NULL, len);
}

static void read_(uint64_t id, uint64_t key, uint64_t addr, uint64_t len)
{
	struct plx__frame f = fr(PLX__OP_READ_REQ, id);

	f.key = key;
	f.addr = addr;
	f.len = len;
	add(f, NULL, 0);
}

static void status_(uint8_t op, uint64_t id, int32_t status, const void *p,
		    uint32_t len)
{
	struct plx__frame f = fr(op, id);

	f.status = status;
	add(f, p, len);
}

static void send_(uint64_t tag, uint32_t len)
{
	struct plx__frame f = fr(PLX__OP_SEND, 0);

	f.tag = tag;
	add(f, NULL, len);
}

static void resolve_(uint64_t id, const char *name, uint32_t len)
{
	add(fr(PLX__OP_RESOLVE_REQ, id), name, len);
}

static void ack_(uint64_t seq)
{
	struct plx__frame f = fr(PLX__OP_ACK, 0);

	f.seq = seq;
	add(f, NULL, 0);
}

/* A write whose header also carries a cumulative ACK (PLX__F_ACK). */
static void write_ack_(uint64_t key, uint64_t addr, uint32_t len, uint64_t ack)
{
	struct plx__frame f = fr(PLX__OP_WRITE, 0);

	f.key = key;
	f.addr = addr;
	f.flags = PLX__F_ACK;
	f.ack = ack;
	add(f, NULL, len);
}

static void writes(void)
{
	begin(0);
	write_(PLX__OP_WRITE, 1, PAGE + 16, 32);	   /* rw: allowed */
	write_(PLX__OP_WRITE, 2, 2 * PAGE, 8);		   /* ro: EACCES */
	write_(PLX__OP_WRITE, 99, PAGE, 8);		   /* EKEYREJECTED */
	write_(PLX__OP_WRITE, 1, PAGE + 4090, 32);	   /* EFAULT */
	write_(PLX__OP_WRITE, 1, 4 * PAGE, 8);		   /* unregistered */
	write_(PLX__OP_WRITE_IMM, 3, 3 * PAGE + 100, 24);  /* wo: allowed */
	write_(PLX__OP_WRITE_IMM, 4, 5 * PAGE + 2040, 16); /* EFAULT */
	write_(PLX__OP_WRITE, 4, 5 * PAGE, 2048);	   /* whole "half" */
	write_(PLX__OP_WRITE, 1, UINT64_MAX - 3, 8);	   /* wraps */
	write_(PLX__OP_WRITE, 1, PAGE, 0);		   /* empty */
	put("writes");
	s.b[0] = O_CHUNK(1);
	put("writes-bytewise");
	s.b[0] = O_CHUNK(4);
	put("writes-7");
}

static void reads(void)
{
	begin(0);
	read_(1, 1, PAGE, 64);		  /* rw */
	read_(2, 2, 2 * PAGE + 100, 300); /* ro */
	read_(3, 3, 3 * PAGE, 8);	  /* wo: EACCES */
	read_(4, 1, 4 * PAGE, 8);	  /* unregistered: EFAULT */
	read_(5, 1, 0, 8);		  /* guard page: EFAULT */
	read_(6, 1, PAGE, PAGE + 1);	  /* longer than the region */
	read_(7, 42, PAGE, 8);		  /* EKEYREJECTED */
	read_(8, 4, 5 * PAGE + 2000, 48); /* past "half" */
	read_(9, 1, PAGE, PAGE);	  /* the whole region */
	add(fr(PLX__OP_PING, 0x1234), NULL, 0);
	write_(PLX__OP_WRITE, 1, PAGE, 64); /* then read back */
	read_(10, 1, PAGE, 64);
	put("reads");
	s.b[0] = O_CHUNK(5);
	put("reads-100");
}

static void resolves(void)
{
	begin(0);
	resolve_(1, "rw", 2);
	resolve_(2, "ro", 2);
	resolve_(3, "nope", 4);
	resolve_(4, "rw\0x", 4); /* embedded NUL */
	resolve_(5, "half", 4);
	resolve_(6, "wo", 2);
	put("resolve");
}

/* Answers to the victim's ops: reads id 1 (16 B) and 2 (300 B), resolve
 * id 3, cancelled read id 4 (8 B); send, write, write_imm seq 1..3. */
static void answers(void)
{
	struct plx_desc d;
	uint8_t desc[PLX_DESC_BYTES];

	memset(&d, 0, sizeof(d));
	d.addr = 0x10000;
	d.len = 4096;
	d.key = 0x1234;
	d.access = PLX_ACCESS_ALL;
	d.hints = PLX_HINT_TCP;
	if (plx_desc_serialize(&d, desc, sizeof(desc)) != PLX_DESC_BYTES)
		die("descriptor");

	begin(0);
	status_(PLX__OP_READ_RESP, 1, 0, NULL, 16);
	status_(PLX__OP_READ_RESP, 2, 0, NULL, 300);
	status_(PLX__OP_RESOLVE_RESP, 3, 0, desc, sizeof(desc));
	status_(PLX__OP_READ_RESP, 4, 0, NULL, 8); /* cancelled: dropped */
	ack_(3);
	put("answers");
	s.b[0] = O_CHUNK(3);
	put("answers-3");

	begin(0);
	status_(PLX__OP_READ_RESP, 2, PLX_EFAULT, NULL, 0);
	status_(PLX__OP_RESOLVE_RESP, 3, PLX_ENOENT, NULL, 0);
	status_(PLX__OP_NACK, 2, PLX_EACCES, NULL, 0);
	ack_(1);
	ack_(3);
	status_(PLX__OP_READ_RESP, 1, 0, NULL, 16);
	put("answers-failed");

	begin(0);
	desc[0] ^= 1; /* bad magic: the resolve fails with PLX_EBADMSG */
	status_(PLX__OP_RESOLVE_RESP, 3, 0, desc, sizeof(desc));
	status_(PLX__OP_READ_RESP, 1, 0, NULL, 15); /* wrong length */
	put("answers-bad");

	/* the read must still complete when its answer fails the
	 * connection (it once stayed off every list: lost) */
	begin(0);
	status_(PLX__OP_READ_RESP, 2, 0, NULL, 299);
	put("read-resp-wrong-length");

	begin(0);
	status_(PLX__OP_READ_RESP, 9, 0, NULL, 16); /* never issued */
	put("answer-unknown-id");
	begin(0);
	status_(PLX__OP_RESOLVE_RESP, 1, 0, desc, sizeof(desc)); /* a read's */
	put("answer-wrong-kind");
	begin(0);
	ack_(9); /* beyond what was sent */
	put("ack-beyond");
	/* the same ACKs riding on the peer's writes */
	begin(0);
	status_(PLX__OP_READ_RESP, 1, 0, NULL, 16);
	write_ack_(1, PAGE + 16, 32, 1);
	write_ack_(1, PAGE + 48, 8, 3);
	write_ack_(1, PAGE + 56, 8, 3); /* again: nothing new */
	put("answers-riding");
	begin(0);
	write_ack_(1, PAGE + 16, 32, 9); /* beyond what was sent */
	put("riding-ack-beyond");
	begin(0);
	status_(PLX__OP_NACK, 7, PLX_EIO, NULL, 0);
	put("nack-beyond");
}

static void sends(void)
{
	begin(O_RECV);
	send_(1, 32);  /* posted receive, tag 1 */
	send_(2, 16);  /* the any-tag receive (16 B) */
	send_(3, 100); /* no receive left: larger than a slot, waits */
	put("sends-posted");

	begin(O_RECV);
	send_(7, 40); /* any-tag receive too small: NACK PLX_EMSGSIZE */
	send_(1, 64); /* tag 1 */
	send_(8, 10); /* unexpected slot */
	send_(9, 64); /* unexpected slot, exactly a slot */
	send_(10, 1);
	send_(11, 2); /* slots full: stops reading */
	put("sends-unexpected");

	begin(0);
	send_(5, 5000); /* above max_message: EPROTO */
	put("send-oversized");

	begin(O_POOL);
	send_(1, 100);
	send_(2, 128);
	send_(3, 129); /* larger than the pool's buffers: NACK */
	send_(4, 0);
	put("sends-pool");
	s.b[0] = O_POOL | O_HOLD;
	put("sends-pool-dry");
	s.b[0] = O_POOL | O_RECV | O_CHUNK(2);
	put("sends-pool-recv-2");
}

static void control(void)
{
	struct plx__cm_msg m;
	uint8_t cm[PLX__CM_MAX];
	int n;

	begin(0);
	add(fr(PLX__OP_PING, 1), NULL, 0);
	status_(PLX__OP_CLOSE, 0, PLX_EAUTH, NULL, 0);
	add(fr(PLX__OP_PING, 2), NULL, 0); /* after CLOSE: never read */
	put("close-error");

	begin(0);
	status_(PLX__OP_CLOSE, 0, 0, NULL, 0); /* retire this connection */
	add(fr(PLX__OP_PING, 3), NULL, 0);
	ack_(3);
	put("close-retire");

	begin(0);
	memset(&m, 0, sizeof(m));
	m.kind = PLX__CM_REQ;
	m.nqp = 1;
	m.mtu = 3;
	m.gen = 1;
	m.rd_atom = 16;
	m.lid = 1;
	m.qpn[0] = 17;
	m.psn[0] = 1;
	n = plx__cm_encode(&m, cm, sizeof(cm));
	if (n < 0)
		die("cm");
	add(fr(PLX__OP_RDMA_CM, 0), cm, (uint32_t)n);
	add(fr(PLX__OP_PING, 4), NULL, 0);
	put("rdma-cm");

	begin(0);
	add(fr(PLX__OP_HELLO, 0), NULL, 0); /* after the handshake */
	put("hello-again");

	/* a header changed on the way: its CRC no longer matches */
	begin(O_NOSEAL);
	add(fr(PLX__OP_PING, 5), NULL, 0);
	write_(PLX__OP_WRITE, 1, PAGE, 8);
	s.b[s.n - 8 - 20] ^= 0x10; /* a bit of the write's address */
	put("crc-bad");

	/* control entries run out: the connection stops reading */
	begin(0);
	for (int i = 0; i < 80; i++)
		read_((uint64_t)i + 1, 1, PAGE, PAGE);
	for (int i = 0; i < 80; i++)
		add(fr(PLX__OP_PING, (uint64_t)i), NULL, 0);
	put("flood");
}

static void raw(void)
{
	struct plx__frame f = fr(PLX__OP_HELLO, 0);

	begin(O_RAW);
	f.hello.version = PLX__WIRE_VERSION;
	f.hello.role = 0;
	f.hello.caps = PLX__CAP_WRITE_IMM;
	memcpy(f.hello.node_id, "raw-peer-node-id", 16);
	f.hello.epoch = 5;
	memset(f.hello.nonce, 0x11, sizeof(f.hello.nonce));
	add(f, NULL, 0);
	add(fr(PLX__OP_READY, 0), NULL, 0);
	add(fr(PLX__OP_PING, 9), NULL, 0);
	write_(PLX__OP_WRITE, 1, PAGE + 8, 8);
	status_(PLX__OP_READ_RESP, 1, 0, NULL, 16);
	put("raw-handshake");
	s.b[0] = O_RAW | O_CHUNK(1);
	put("raw-handshake-bytewise");
}

static void big(void)
{
	begin(O_CHUNK(6));
	write_(PLX__OP_WRITE, 1, PAGE, PAGE);
	write_(PLX__OP_WRITE_IMM, 3, 3 * PAGE, PAGE);
	read_(1, 1, PAGE, PAGE);
	send_(6, 4096);
	put("big");
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
		return 2;
	}
	outdir = argv[1];
	if (mkdir(outdir, 0755) != 0 && errno != EEXIST)
		die(outdir);
	writes();
	reads();
	resolves();
	answers();
	sends();
	control();
	raw();
	big();
	printf("gen_conn_corpus: %d files written under %s/fuzz_conn\n", nfiles,
	       outdir);
	return 0;
}
