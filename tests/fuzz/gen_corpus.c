/* SPDX-License-Identifier: MIT */
/*
 * gen_corpus OUTDIR - write the seed corpora of the fuzz targets:
 * OUTDIR/fuzz_wire (a header of every opcode, a few broken ones),
 * OUTDIR/fuzz_handshake (peer transcripts: successful handshakes with and
 * without a key, in both roles, and each failure path, HELLOs altered in
 * transit included), OUTDIR/fuzz_desc (valid and broken descriptors)
 * and OUTDIR/fuzz_rdma_cm (RDMA connection messages of every kind, a few
 * broken ones). Deterministic: rerunning it rewrites the
 * same bytes. The output is committed under tests/fuzz/corpus/:
 *
 *   build-dir/tests/fuzz/gen_corpus tests/fuzz/corpus
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz/fuzz_hs_fixture.h"
#include "pollux/mem.h"
#include "transport/rdma/common/cm.h"
#include "transport/tcp/auth.h"
#include "transport/tcp/wire.h"

#define PEER_EPOCH 0x77ull

static const char *outdir;
static int nfiles;

static void die(const char *what)
{
	fprintf(stderr, "gen_corpus: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void mkdir_p(const char *path)
{
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		die(path);
}

static void put(const char *target, const char *name, const uint8_t *p,
		size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", outdir, target);
	mkdir_p(path);
	snprintf(path, sizeof(path), "%s/%s/%s", outdir, target, name);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, len, f) != len || fclose(f) != 0)
		die(path);
	nfiles++;
}

/* A growing byte string. */
struct bytes {
	uint8_t b[8192];
	size_t n;
};

static void add_frame(struct bytes *s, const struct plx__frame *f)
{
	int n = plx__wire_encode(f, s->b + s->n);

	if (n < 0 || s->n + (size_t)n + f->payload_len > sizeof(s->b)) {
		fprintf(stderr, "gen_corpus: cannot encode opcode %u\n",
			f->opcode);
		exit(1);
	}
	s->n += (size_t)n;
	memset(s->b + s->n, 0xc5, f->payload_len);
	s->n += f->payload_len;
}

static struct plx__frame frame(uint8_t opcode, uint64_t id, uint32_t plen)
{
	struct plx__frame f;

	memset(&f, 0, sizeof(f));
	f.opcode = opcode;
	f.id = id;
	f.payload_len = plen;
	return f;
}

static void put_frame(const char *name, const struct plx__frame *f)
{
	struct bytes s = {.n = 0};

	add_frame(&s, f);
	/* the wire target looks at the header only */
	put("fuzz_wire", name, s.b,
	    (size_t)plx__wire_hdr_size_flags(f->opcode, f->flags));
}

/* ----------------------------------------------------------------------
 * fuzz_wire
 */

static struct plx__frame hello(uint8_t role, bool auth, const char *node16,
			       uint64_t epoch)
{
	struct plx__frame f = frame(PLX__OP_HELLO, 0, 0);
	int i;

	f.flags = auth ? PLX__HELLO_AUTH : 0;
	f.hello.version = PLX__WIRE_VERSION;
	f.hello.role = role;
	f.hello.caps = PLX__CAP_WRITE_IMM | PLX__CAP_STRIPE;
	memcpy(f.hello.node_id, node16, 16);
	f.hello.epoch = epoch;
	for (i = 0; i < PLX__WIRE_NONCE; i++)
		f.hello.nonce[i] = (uint8_t)(0x90 + i);
	return f;
}

static void gen_wire(void)
{
	struct plx__frame f;
	uint8_t b[PLX__WIRE_HDR_MAX];
	int i;

	f = hello(0, false, "fuzz-node-peer!!", 7);
	put_frame("hello", &f);
	f = hello(1, true, "fuzz-node-peer!!", 7);
	put_frame("hello-auth", &f);
	f = frame(PLX__OP_READY, 0, 0);
	for (i = 0; i < PLX__WIRE_PROOF; i++)
		f.proof[i] = (uint8_t)(i * 7);
	put_frame("ready", &f);
	f = frame(PLX__OP_SEND, 1, 100);
	f.tag = 0x1234;
	put_frame("send", &f);
	f.flags = PLX__F_ACK;
	f.ack = 0x100000001ull;
	put_frame("send-ack", &f);
	f = frame(PLX__OP_WRITE, 2, 4096);
	f.addr = 0x7f0000001000ull;
	f.key = 0xfeedfacecafebeefull;
	put_frame("write", &f);
	f.flags = PLX__F_ACK; /* with a riding ACK */
	f.ack = 9;
	put_frame("write-ack", &f);
	f.flags = 0;
	f.ack = 0;
	f.opcode = PLX__OP_WRITE_IMM;
	f.imm = 0xdeadbeef;
	put_frame("write-imm", &f);
	f.flags = PLX__F_ACK;
	f.ack = 9;
	put_frame("write-imm-ack", &f);
	f = frame(PLX__OP_READ_REQ, 3, 0);
	f.addr = 0x7f0000001000ull;
	f.key = 0xfeedfacecafebeefull;
	f.len = 64;
	put_frame("read-req", &f);
	f.flags = PLX__F_ACK;
	f.ack = 1;
	put_frame("read-req-ack", &f);
	f = frame(PLX__OP_READ_RESP, 3, 64);
	put_frame("read-resp", &f);
	f = frame(PLX__OP_READ_RESP, 4, 0);
	f.status = PLX_EFAULT;
	put_frame("read-resp-fail", &f);
	f = frame(PLX__OP_ACK, 0, 0);
	f.seq = 2;
	put_frame("ack", &f);
	f = frame(PLX__OP_NACK, 5, 0);
	f.status = PLX_EKEYREJECTED;
	put_frame("nack", &f);
	f = frame(PLX__OP_RESOLVE_REQ, 6, 8);
	put_frame("resolve-req", &f);
	f = frame(PLX__OP_RESOLVE_RESP, 6, PLX_DESC_BYTES);
	put_frame("resolve-resp", &f);
	f = frame(PLX__OP_RESOLVE_RESP, 7, 0);
	f.status = PLX_ENOENT;
	put_frame("resolve-resp-fail", &f);
	f = frame(PLX__OP_PING, 99, 0);
	put_frame("ping", &f);
	f = frame(PLX__OP_PONG, 99, 0);
	put_frame("pong", &f);
	f = frame(PLX__OP_CLOSE, 0, 0);
	put_frame("close", &f);
	f.status = PLX_EAUTH;
	put_frame("close-eauth", &f);
	f = frame(PLX__OP_RDMA_CM, 0, PLX__WIRE_CM_MIN + 8);
	put_frame("rdma-cm", &f);

	/* broken: bad magic, unknown opcode, truncated, oversized */
	f = frame(PLX__OP_SEND, 1, 100);
	plx__wire_encode(&f, b);
	b[1] = 'Y';
	put("fuzz_wire", "bad-magic", b, 24);
	b[1] = 'X';
	b[2] = 0x15;
	put("fuzz_wire", "bad-opcode", b, 24);
	b[2] = PLX__OP_SEND;
	put("fuzz_wire", "truncated", b, 13);
	f.payload_len = UINT32_MAX;
	plx__wire_encode(&f, b);
	put("fuzz_wire", "oversized", b, 24);
}

/* ----------------------------------------------------------------------
 * fuzz_handshake: what a peer sends to the target's fixed identity.
 */

static uint8_t key[32];

/* @f's HELLO as the READY proofs cover it: flags byte, then extension. */
static void hello_bytes(const struct plx__frame *f,
			uint8_t out[PLX__AUTH_HELLO_BYTES])
{
	uint8_t b[PLX__WIRE_HDR_MAX];

	plx__wire_encode(f, b);
	out[0] = b[3];
	memcpy(out + 1, b + PLX__WIRE_BASE, PLX__AUTH_HELLO_BYTES - 1);
}

/*
 * The peer's READY to the target (role @our_role, keyed when @k), with the
 * right proof for key @k over the peer's HELLO @peer_hello and ours.
 */
static struct plx__frame peer_ready(const struct plx__frame *peer_hello,
				    uint8_t our_role, const uint8_t *k)
{
	struct plx__frame f = frame(PLX__OP_READY, 0, 0);
	uint8_t ours[PLX__AUTH_HELLO_BYTES], theirs[PLX__AUTH_HELLO_BYTES];

	if (!k)
		return f;
	fuzz_hs_our_hello(ours, our_role, 1);
	hello_bytes(peer_hello, theirs);
	plx__auth_proof(f.proof, k, theirs, ours);
	return f;
}

static void put_transcript(const char *name, const struct plx__frame *v, int n)
{
	struct bytes s = {.n = 0};
	int i;

	for (i = 0; i < n; i++)
		add_frame(&s, &v[i]);
	put("fuzz_handshake", name, s.b, s.n);
}

static void gen_handshake(void)
{
	struct plx__frame v[6];
	char name[64];
	uint8_t our_role;
	int auth;

	for (our_role = 0; our_role < 2; our_role++) {
		for (auth = 0; auth < 2; auth++) {
			const char *a = auth ? "auth" : "open";

			v[0] = hello(our_role ^ 1, auth, "fuzz-node-peer!!",
				     PEER_EPOCH);
			v[1] = peer_ready(&v[0], our_role, auth ? key : NULL);
			snprintf(name, sizeof(name), "%s-ok-we%u", a, our_role);
			put_transcript(name, v, 2);

			/* established, then traffic and a normal close */
			v[2] = frame(PLX__OP_SEND, 1, 16);
			v[3] = frame(PLX__OP_PING, 2, 0);
			v[4] = frame(PLX__OP_CLOSE, 0, 0);
			snprintf(name, sizeof(name), "%s-ok-traffic-we%u", a,
				 our_role);
			put_transcript(name, v, 5);

			/* a bad proof (or a proof where none belongs) */
			v[1].proof[5] ^= 0x20;
			snprintf(name, sizeof(name), "%s-badproof-we%u", a,
				 our_role);
			put_transcript(name, v, 2);

			/* the peer gives up after HELLO */
			v[1] = frame(PLX__OP_CLOSE, 0, 0);
			v[1].status = auth ? PLX_EAUTH : PLX_EVERSION;
			snprintf(name, sizeof(name), "%s-close-we%u", a,
				 our_role);
			put_transcript(name, v, 2);
		}
		/* version 0 and a newer version */
		v[0] = hello(our_role ^ 1, false, "fuzz-node-peer!!",
			     PEER_EPOCH);
		v[0].hello.version = 0;
		snprintf(name, sizeof(name), "version0-we%u", our_role);
		put_transcript(name, v, 1);
		v[0].hello.version = 9;
		v[0].hello.caps = 0xffffffffu;
		v[1] = peer_ready(&v[0], our_role, NULL);
		snprintf(name, sizeof(name), "version9-we%u", our_role);
		put_transcript(name, v, 2);
		/* the same with a key: the proof covers version 9 */
		v[0].flags = PLX__HELLO_AUTH;
		v[1] = peer_ready(&v[0], our_role, key);
		snprintf(name, sizeof(name), "auth-version9-we%u", our_role);
		put_transcript(name, v, 2);

		/*
		 * A man in the middle changed the peer's HELLO after the
		 * peer built its proof over the original: PLX_EAUTH.
		 */
		v[0] = hello(our_role ^ 1, true, "fuzz-node-peer!!",
			     PEER_EPOCH);
		v[1] = peer_ready(&v[0], our_role, key);
		v[0].hello.caps = 0; /* capabilities stripped */
		snprintf(name, sizeof(name), "auth-mitm-caps-we%u", our_role);
		put_transcript(name, v, 2);
		v[0].hello.caps = PLX__CAP_WRITE_IMM | PLX__CAP_STRIPE;
		v[0].hello.conn_index = 1;
		snprintf(name, sizeof(name), "auth-mitm-conn-we%u", our_role);
		put_transcript(name, v, 2);
	}

	/* out of order */
	v[0] = frame(PLX__OP_READY, 0, 0);
	put_transcript("ready-first", v, 1);
	v[0] = frame(PLX__OP_PING, 1, 0);
	put_transcript("ping-first", v, 1);
	v[0] = hello(1, false, "fuzz-node-peer!!", PEER_EPOCH);
	v[1] = v[0];
	put_transcript("hello-twice", v, 2);
	v[0] = frame(PLX__OP_CLOSE, 0, 0);
	put_transcript("close-first", v, 1);

	/* our own HELLO reflected (role 0 side, with and without AUTH) */
	v[0] = hello(0, true, "fuzz-node-ours!!", FUZZ_HS_EPOCH);
	fuzz_hs_nonce(v[0].hello.nonce);
	v[0].hello.caps = FUZZ_HS_CAPS;
	put_transcript("reflect-auth", v, 1);
	v[0].flags = 0;
	put_transcript("reflect-open", v, 1);
}

/* ----------------------------------------------------------------------
 * fuzz_desc
 */

static void put_desc(const char *name, const struct plx_desc *d)
{
	uint8_t b[PLX_DESC_BYTES];

	if (plx_desc_serialize(d, b, sizeof(b)) != PLX_DESC_BYTES) {
		fprintf(stderr, "gen_corpus: bad descriptor %s\n", name);
		exit(1);
	}
	put("fuzz_desc", name, b, sizeof(b));
}

static void gen_desc(void)
{
	struct plx_desc d;
	uint8_t b[PLX_DESC_BYTES];

	memset(&d, 0, sizeof(d));
	d.addr = 0x7f0012345000ull;
	d.len = 0x10000;
	d.key = 0x0123456789abcdefull;
	memcpy(d.owner, "fuzz-node-peer!!", 16);
	d.access = PLX_ACCESS_ALL;
	d.hints = PLX_HINT_TCP;
	put_desc("tcp", &d);
	d.hints = PLX_HINT_TCP | PLX_HINT_RDMA;
	d.rkey = 0xabcd;
	put_desc("rdma", &d);
	d.hints = PLX_HINT_RDMA | PLX_HINT_CUDA;
	d.access = PLX_ACCESS_REMOTE_READ;
	put_desc("cuda", &d);
	d.addr = UINT64_MAX - 1;
	d.len = 1;
	d.hints = 0;
	d.rkey = 0;
	d.access = 0;
	put_desc("edge", &d);

	d.addr = 0x1000;
	d.len = 0x1000;
	plx_desc_serialize(&d, b, sizeof(b));
	b[2] = 2;
	put("fuzz_desc", "version2", b, sizeof(b));
	b[2] = 1;
	b[60] = 1;
	put("fuzz_desc", "reserved", b, sizeof(b));
	b[60] = 0;
	put("fuzz_desc", "truncated", b, 40);
}

/* ----------------------------------------------------------------------
 * fuzz_rdma_cm
 */

static void put_cm(const char *name, const struct plx__cm_msg *m)
{
	uint8_t b[PLX__CM_MAX];
	int n = plx__cm_encode(m, b, sizeof(b));

	if (n < 0) {
		fprintf(stderr, "gen_corpus: bad connection message %s\n",
			name);
		exit(1);
	}
	put("fuzz_rdma_cm", name, b, (size_t)n);
}

static void gen_cm(void)
{
	struct plx__cm_msg m;
	uint8_t b[PLX__CM_MAX];

	memset(&m, 0, sizeof(m));
	m.kind = PLX__CM_REQ;
	m.nqp = 1;
	m.mtu = 3;
	m.gen = 1;
	m.rd_atom = 16;
	memcpy(m.gid, "\0\0\0\0\0\0\0\0\0\0\xff\xff\x0a\x4d\0\x01", 16);
	m.qpn[0] = 17;
	m.psn[0] = 0x123456;
	put_cm("req1", &m);
	m.nqp = PLX__CM_MAX_QPS;
	for (uint32_t k = 1; k < PLX__CM_MAX_QPS; k++) {
		m.qpn[k] = 17 + k;
		m.psn[k] = 0xffffff - k;
	}
	m.kind = PLX__CM_REP;
	put_cm("rep4", &m);
	memset(m.gid, 0, 16);
	m.lid = 3;
	put_cm("rep4-ib", &m);
	memset(&m, 0, sizeof(m));
	m.kind = PLX__CM_RTU;
	m.gen = 0xffffffffu;
	put_cm("rtu", &m);
	m.kind = PLX__CM_REJ;
	m.status = PLX_EVERBS;
	put_cm("rej", &m);
	plx__cm_encode(&m, b, sizeof(b));
	put("fuzz_rdma_cm", "truncated", b, PLX__CM_MIN - 1);
	b[11] = 1;
	put("fuzz_rdma_cm", "pad", b, PLX__CM_MIN);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
		return 2;
	}
	outdir = argv[1];
	mkdir_p(outdir);
	if (plx__auth_key_derive(key, FUZZ_HS_PSK, sizeof(FUZZ_HS_PSK) - 1)) {
		fprintf(stderr, "gen_corpus: key derivation failed\n");
		return 1;
	}
	gen_wire();
	gen_handshake();
	gen_desc();
	gen_cm();
	printf("gen_corpus: %d files written under %s\n", nfiles, outdir);
	return 0;
}
