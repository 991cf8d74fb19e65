/* SPDX-License-Identifier: MIT */
/*
 * TCP transport against a misbehaving peer.
 *
 * A pollux target listens on loopback with three registered regions
 * (read-write, read-only, write-only) filled with a seeded pattern, and a
 * well-behaved pollux client keeps writing and sending to it. A raw-socket
 * "evil peer", driven from the same thread between the reactor polls,
 * speaks the wire protocol by hand (plx__hs_* for the handshake,
 * plx__wire_encode / plx__wire_parse for frames) and misbehaves, one
 * connection per case: garbage and out-of-order frames before and during
 * the handshake, sequence ids that do not increase, stripe HELLOs for sessions that do not exist, malformed
 * or oversized frames after it, truncated frames, a reset in the middle
 * of a payload, a flood of READ_REQs it never reads, a flood of
 * unexpected messages; it also dribbles valid frames a byte at a time,
 * resolves names, and sends well-formed accesses to memory it may not
 * touch. Regions are also deregistered while a WRITE lands in them and
 * while READ_RESPs leave from them.
 *
 * After every case: the target's memory matches a byte-for-byte model
 * (only successful writes changed it; a write cut short may have landed as
 * a prefix), the client's ops completed, a protocol violation closed the
 * evil connection and reported PLX_EP_DOWN with PLX_EPROTO, a refused
 * access was answered (NACK / READ_RESP with the lookup's status) on a
 * connection that stays usable, and no unexpected slot or request leaked.
 * Finally the target shuts down and plx_reactor_fini() returns 0, and a
 * connect to a listener that drops SYNs fails only at its handshake
 * timeout.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tcp_pair.h"
#include "transport/tcp/handshake.h"
#include "transport/tcp/tcp_internal.h"
#include "transport/tcp/wire.h"

#define MS 1000000ull
#define WAIT_MS 2000
#define MEM_LEN (64 * 1024)
#define CLIENT_OFF (48 * 1024) /* the client writes above, the evil below */
#define SIDE_LEN 4096
#define MAX_FRAME (1u << 20)
#define MAX_MSG (256u << 10)
#define IN_CAP (64 * 1024)
#define MAX_RESP 64
#define RESP_MAX 1024
#define NBIG_READS 8 /* 1 MiB READ_RESPs queued at once */

/* ---- the target --------------------------------------------------------- */

struct target {
	struct plx_reactor r;
	struct plx_tcp_config cfg;
	uint16_t port;
	struct plx_region reg_rw, reg_ro, reg_wo;
	struct plx_desc rw, ro, wo;
	uint8_t client_node[16];
	struct plx_ep *client_ep;
	struct plx_ep *evil_ep;
	uint32_t base_conns; /* the client's connections (primary + stripes) */
	int evil_accepted;
	int evil_down;
	int evil_down_status;
	int client_down;
	int unexpected; /* events that no case should cause */
	int imm_count;
	uint32_t last_imm;
	uint64_t imm_addr, imm_len;
	const uint8_t *imm_expect;
	int imm_data_ok;
};

static struct target T;
static uint64_t seed;
static uint8_t mem[MEM_LEN], ro_mem[SIDE_LEN], wo_mem[SIDE_LEN];
static uint8_t other[SIDE_LEN]; /* never registered */
static uint8_t model[MEM_LEN], model_ro[SIDE_LEN], model_wo[SIDE_LEN];

static void target_event(struct plx_reactor *r, struct plx_ep *ep, int event,
			 int status, void *arg)
{
	uint8_t node[16];

	(void)r;
	(void)arg;
	switch (event) {
	case PLX_EP_ACCEPTED:
		plx_ep_peer(ep, node, NULL);
		if (!memcmp(node, T.client_node, 16)) {
			T.client_ep = ep;
		} else {
			T.evil_ep = ep;
			T.evil_accepted++;
		}
		break;
	case PLX_EP_DOWN:
		if (ep == T.client_ep) {
			T.client_down++;
		} else if (ep == T.evil_ep) {
			T.evil_down++;
			T.evil_down_status = status;
		} else {
			T.unexpected++;
		}
		break;
	case PLX_EP_CLOSED:
		if (ep == T.evil_ep)
			T.evil_ep = NULL;
		else if (ep == T.client_ep)
			T.client_ep = NULL;
		break;
	default:
		/* CONNECTED / RESTARTED: nobody reconnects here */
		T.unexpected++;
		break;
	}
}

static void target_imm(struct plx_reactor *r, struct plx_ep *ep, uint32_t imm,
		       uint64_t addr, uint64_t len, void *arg)
{
	(void)r;
	(void)ep;
	(void)arg;
	T.imm_count++;
	T.last_imm = imm;
	T.imm_addr = addr;
	T.imm_len = len;
	/* the data must be in place when the notification runs */
	T.imm_data_ok = T.imm_expect && !memcmp((const void *)(uintptr_t)addr,
						T.imm_expect, len);
}

static void fill_random(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)plx_test_rand(&seed);
}

/* New data for [off, off + n) of the region, different from the model in
 * every byte (so a prefix that landed is unambiguous). */
static void fresh_data(uint8_t *p, uint64_t off, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = model[off + i] ^
		       (uint8_t)(1 + plx_test_rand(&seed) % 255);
}

static void target_init(void)
{
	memset(&T, 0, sizeof(T));
	EXPECT_OK(plx_reactor_init(&T.r, NULL));
	plx_tcp_config_init(&T.cfg);
	T.cfg.max_frame = MAX_FRAME;
	T.cfg.max_message = MAX_MSG;
	T.cfg.keepalive_ns = 5000 * MS; /* no pings during a case */
	T.cfg.event_cb = target_event;
	T.cfg.imm_cb = target_imm;
	EXPECT_OK(plx_tcp_init(&T.r, &T.cfg));
	EXPECT_OK(plx_tcp_listen(&T.r, "127.0.0.1", 0, &T.port));

	fill_random(mem, sizeof(mem));
	fill_random(ro_mem, sizeof(ro_mem));
	fill_random(wo_mem, sizeof(wo_mem));
	memset(other, 0x33, sizeof(other));
	memcpy(model, mem, sizeof(mem));
	memcpy(model_ro, ro_mem, sizeof(ro_mem));
	memcpy(model_wo, wo_mem, sizeof(wo_mem));
	EXPECT_OK(plx_mem_register(&T.r, &T.reg_rw, mem, sizeof(mem),
				   PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_register(&T.r, &T.reg_ro, ro_mem, sizeof(ro_mem),
				   PLX_ACCESS_REMOTE_READ));
	EXPECT_OK(plx_mem_register(&T.r, &T.reg_wo, wo_mem, sizeof(wo_mem),
				   PLX_ACCESS_REMOTE_WRITE));
	EXPECT_OK(plx_mem_desc(&T.r, &T.reg_rw, &T.rw));
	EXPECT_OK(plx_mem_desc(&T.r, &T.reg_ro, &T.ro));
	EXPECT_OK(plx_mem_desc(&T.r, &T.reg_wo, &T.wo));
	EXPECT_OK(plx_mem_name(&T.r, &T.reg_rw, "rw-region"));
}

static void check_bytes(const char *what, const uint8_t *got,
			const uint8_t *want, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (got[i] != want[i])
			PLX_FAIL("%s byte %zu is 0x%02x, model says 0x%02x",
				 what, i, got[i], want[i]);
}

static void check_memory(void)
{
	check_bytes("read-write region", mem, model, sizeof(mem));
	check_bytes("read-only region", ro_mem, model_ro, sizeof(ro_mem));
	check_bytes("write-only region", wo_mem, model_wo, sizeof(wo_mem));
	for (size_t i = 0; i < sizeof(other); i++)
		if (other[i] != 0x33)
			PLX_FAIL("unregistered byte %zu changed", i);
}

/* A write of @src to [off, off + len) that was cut short: what landed must
 * be a prefix of @src (fresh_data() data). Apply it to the model. */
static size_t model_prefix(uint64_t off, const uint8_t *src, size_t len)
{
	size_t k = 0;

	while (k < len && mem[off + k] == src[k])
		k++;
	check_bytes("bytes after the landed prefix", mem + off + k,
		    model + off + k, len - k);
	memcpy(model + off, src, k);
	return k;
}

/* ---- the well-behaved client -------------------------------------------- */

static struct side C;
static struct plx_ep *cep;

static struct {
	struct tracked w, s, rv;
	uint8_t data[512];
	char msg[48], in[64];
	uint64_t off;
	unsigned int n;
} cl;

/* ---- the evil peer ------------------------------------------------------ */

struct evil {
	int fd;
	struct plx__hs hs;
	uint8_t node[16];
	int established;
	int hs_status;
	int closed;    /* EOF or error seen */
	int close_err; /* 0: EOF, else the errno */
	int bad_input; /* the target sent something unparseable or wrong */
	int sending;   /* inside evil_send(): do not interleave a PONG */
	int mid_frame; /* a frame is half sent on purpose */
	uint8_t in[IN_CAP];
	size_t in_len;
	uint64_t seq;	/* last acknowledged-class frame id we sent */
	uint64_t rid;	/* last read id we sent */
	uint64_t acked; /* highest cumulative ACK received */
	int nnack;
	uint64_t nack_id[MAX_RESP];
	int nack_status[MAX_RESP];
	int nresolve;
	uint64_t resolve_id;
	int resolve_status;
	uint32_t resolve_len;
	uint8_t resolve_desc[PLX_DESC_BYTES];
	int nresp;
	uint64_t resp_id[MAX_RESP];
	int resp_status[MAX_RESP];
	uint32_t resp_len[MAX_RESP];
	uint8_t resp_data[MAX_RESP][RESP_MAX];
	int close_frames;
	int close_status;
	/* bytes sent in the same write() as our READY (frames that arrive
	 * together with the end of the handshake) */
	uint8_t ready_tail[256];
	size_t ready_tail_len;
	int ping_pending;
	uint64_t ping_id;
	int pongs;
	uint64_t pong_id;
	int sends; /* SEND frames from the target */
	int other_frames;
};

static struct evil E;
static int evil_active;
static int evil_rcvbuf; /* SO_RCVBUF for the next evil socket, 0: default */

static void evil_pump(void);

static void world_poll(void)
{
	plx_reactor_poll(&T.r);
	plx_reactor_poll(&C.r);
	if (evil_active)
		evil_pump();
}

#define WAIT_FOR(cond, ms)                                                     \
	do {                                                                   \
		uint64_t end_ = plx_now_ns() + (uint64_t)(ms)*MS;              \
		while (!(cond) && plx_now_ns() < end_)                         \
			world_poll();                                          \
		if (!(cond))                                                   \
			PLX_FAIL("timed out after %d ms waiting for %s",       \
				 (int)(ms), #cond);                            \
	} while (0)

static void polls(int n)
{
	while (n-- > 0)
		world_poll();
}

static int evil_send_nb(const void *buf, size_t len)
{
	ssize_t n = send(E.fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);

	return n < 0 ? -errno : (int)n;
}

/* Send all of @buf, polling the reactors while the socket is full.
 * Return 0, or -errno once the target has closed the connection. */
static int evil_send(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t end = plx_now_ns() + WAIT_MS * MS;
	int rc = 0;

	E.sending = 1;
	while (len) {
		ssize_t n = send(E.fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN) {
			rc = -errno;
			break;
		}
		if (plx_now_ns() > end)
			PLX_FAIL("evil peer: send stalled (%zu bytes left)",
				 len);
		world_poll();
	}
	E.sending = 0;
	return rc;
}

static void evil_frame(const struct plx__frame *f, const uint8_t *payload)
{
	uint8_t out[PLX__WIRE_HDR_MAX];
	size_t out_len = 0;
	int rc, i;

	if (f->opcode == PLX__OP_CLOSE) {
		E.close_frames++;
		E.close_status = f->status;
	}
	if (!E.established) {
		/* only a peer that sent its HELLO runs the state machine */
		if (!E.hs.hello_sent || E.hs_status < 0)
			return;
		rc = plx__hs_input(&E.hs, f, out, &out_len);
		if (out_len && rc >= 0 && E.hs.ready_sent && E.ready_tail_len) {
			uint8_t both[PLX__WIRE_HDR_MAX + sizeof(E.ready_tail)];

			memcpy(both, out, out_len);
			memcpy(both + out_len, E.ready_tail, E.ready_tail_len);
			evil_send_nb(both, out_len + E.ready_tail_len);
			E.ready_tail_len = 0;
		} else if (out_len) {
			evil_send_nb(out, out_len);
		}
		if (rc == 1)
			E.established = 1;
		else if (rc < 0)
			E.hs_status = rc;
		return;
	}
	/* our HELLO has no PLX__CAP_ACK_RIDE: ACKs come as ACK frames */
	if (f->flags & PLX__F_ACK)
		E.bad_input = 2;
	switch (f->opcode) {
	case PLX__OP_SEND:
		E.sends++;
		break;
	case PLX__OP_ACK:
		/* cumulative, never backwards, never past what we sent */
		if (f->seq < E.acked || f->seq > E.seq)
			E.bad_input = 1;
		E.acked = f->seq;
		break;
	case PLX__OP_NACK:
		i = E.nnack++;
		if (i < MAX_RESP) {
			E.nack_id[i] = f->id;
			E.nack_status[i] = f->status;
		}
		break;
	case PLX__OP_READ_RESP:
		i = E.nresp++;
		if (i < MAX_RESP) {
			E.resp_id[i] = f->id;
			E.resp_status[i] = f->status;
			E.resp_len[i] = f->payload_len;
			memcpy(E.resp_data[i], payload,
			       f->payload_len < RESP_MAX ? f->payload_len :
							   RESP_MAX);
		}
		break;
	case PLX__OP_RESOLVE_RESP:
		E.nresolve++;
		E.resolve_id = f->id;
		E.resolve_status = f->status;
		E.resolve_len = f->payload_len;
		memcpy(E.resolve_desc, payload, f->payload_len);
		break;
	case PLX__OP_PING:
		E.ping_pending = 1;
		E.ping_id = f->id;
		break;
	case PLX__OP_PONG:
		E.pongs++;
		E.pong_id = f->id;
		break;
	case PLX__OP_CLOSE:
		break;
	default:
		E.other_frames++;
		break;
	}
}

/* Parse every whole frame in the input buffer. */
static void evil_parse(void)
{
	size_t off = 0;

	while (!E.bad_input) {
		struct plx__frame f;
		size_t avail = E.in_len - off;
		int hl = plx__wire_parse(&f, E.in + off, avail, IN_CAP / 2);

		if (hl < 0) {
			E.bad_input = hl;
			break;
		}
		if (hl == 0 || avail < (size_t)hl + f.payload_len)
			break;
		evil_frame(&f, E.in + off + hl);
		off += (size_t)hl + f.payload_len;
	}
	memmove(E.in, E.in + off, E.in_len - off);
	E.in_len -= off;
}

static void evil_pump(void)
{
	while (!E.closed) {
		ssize_t n;

		if (E.in_len == IN_CAP)
			PLX_FAIL("evil peer: input buffer full");
		n = recv(E.fd, E.in + E.in_len, IN_CAP - E.in_len,
			 MSG_DONTWAIT);
		if (n > 0) {
			E.in_len += (size_t)n;
			evil_parse();
			continue;
		}
		if (n == 0) {
			E.closed = 1;
		} else if (errno == EINTR) {
			continue;
		} else if (errno != EAGAIN) {
			E.closed = 1;
			E.close_err = errno;
		}
		break;
	}
	if (E.ping_pending && !E.sending && !E.mid_frame && !E.closed) {
		struct plx__frame f = {.opcode = PLX__OP_PONG, .id = E.ping_id};
		uint8_t b[PLX__WIRE_HDR_MAX];
		int n = plx__wire_encode(&f, b);

		E.ping_pending = 0;
		evil_send_nb(b, (size_t)n);
	}
}

static void evil_open(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	uint64_t epoch = plx_test_rand(&seed);
	int fl;

	memset(&E, 0, sizeof(E));
	for (int i = 0; i < 16; i++)
		E.node[i] = (uint8_t)plx_test_rand(&seed);
	EXPECT_OK(plx__hs_init(&E.hs, E.node, epoch, 0, 0, PLX__CAP_WRITE_IMM,
			       NULL));
	sa.sin_port = htons(T.port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	E.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	EXPECT_GE(E.fd, 0);
	if (evil_rcvbuf)
		EXPECT_OK(setsockopt(E.fd, SOL_SOCKET, SO_RCVBUF, &evil_rcvbuf,
				     sizeof(evil_rcvbuf)));
	/* the kernel completes it from the listen backlog */
	if (connect(E.fd, (struct sockaddr *)&sa, sizeof(sa)))
		PLX_FAIL("evil connect: %s", strerror(errno));
	fl = fcntl(E.fd, F_GETFL);
	EXPECT_OK(fcntl(E.fd, F_SETFL, fl | O_NONBLOCK));
	evil_active = 1;
}

static void evil_handshake(void)
{
	uint8_t out[PLX__WIRE_HDR_MAX];
	int n = plx__hs_hello(&E.hs, out);

	EXPECT_GT(n, 0);
	EXPECT_OK(evil_send(out, (size_t)n));
	WAIT_FOR(E.established || E.hs_status || E.closed, WAIT_MS);
	EXPECT_TRUE(E.established);
	WAIT_FOR(T.evil_ep != NULL, WAIT_MS);
	EXPECT_EQ(T.evil_accepted, 1);
}

/* The target must close the connection (EOF or reset) within a deadline. */
static void evil_expect_closed(void)
{
	WAIT_FOR(E.closed, WAIT_MS);
	if (E.close_err && E.close_err != ECONNRESET)
		PLX_FAIL("evil connection ended with %s",
			 strerror(E.close_err));
}

#define ANY_DOWN 1 /* evil_finish(): any PLX_EP_DOWN status will do */

/* Close our side. @want_down: the target had an endpoint for us and must
 * report PLX_EP_DOWN with this status (0: no handshake, no endpoint). */
static void evil_finish(int want_down)
{
	close(E.fd);
	evil_active = 0;
	if (E.bad_input)
		PLX_FAIL("target sent a bad frame or ACK (%d)", E.bad_input);
	EXPECT_EQ(E.other_frames, 0);
	if (want_down) {
		WAIT_FOR(T.evil_down, WAIT_MS);
		if (want_down == ANY_DOWN)
			EXPECT_LT(T.evil_down_status, 0);
		else
			EXPECT_STATUS(T.evil_down_status, want_down);
		EXPECT_OK(plx_ep_close(T.evil_ep));
		WAIT_FOR(T.evil_ep == NULL, WAIT_MS);
		EXPECT_EQ(T.evil_down, 1);
	} else {
		EXPECT_EQ(T.evil_accepted, 0);
	}
	/* only the client's connections are left at the target */
	WAIT_FOR(plx__tcp_get(&T.r)->nconns == T.base_conns, WAIT_MS);
	EXPECT_EQ(T.client_down, 0);
	EXPECT_EQ(T.unexpected, 0);
}

/* ---- cases -------------------------------------------------------------- */

static int case_no;

/* Start a case: the client puts a write and a send in flight that must
 * complete while the evil peer misbehaves. */
static void case_begin(const char *name)
{
	fprintf(stderr, "case %d: %s\n", ++case_no, name);
	T.evil_accepted = 0;
	T.evil_down = 0;
	T.evil_down_status = 1;
	tracked_init(&cl.w);
	tracked_init(&cl.s);
	tracked_init(&cl.rv);
	fill_random(cl.data, sizeof(cl.data));
	cl.off = CLIENT_OFF + (cl.n % 32) * sizeof(cl.data);
	snprintf(cl.msg, sizeof(cl.msg), "client message %u", cl.n);
	memset(cl.in, 0, sizeof(cl.in));
	EXPECT_OK(plx_ep_recv(T.client_ep, &cl.rv.op, cl.in, sizeof(cl.in),
			      cl.n, ~0ull));
	EXPECT_OK(plx_ep_write(cep, &cl.w.op, cl.data, sizeof(cl.data), &T.rw,
			       cl.off));
	EXPECT_OK(plx_ep_send(cep, &cl.s.op, cl.msg, strlen(cl.msg) + 1, cl.n));
	evil_open();
}

/* End a case: the client's ops completed once each, the model holds,
 * nothing leaked at the target. */
static void case_end(void)
{
	struct plx_reactor_stats st;

	WAIT_FOR(cl.w.done && cl.s.done && cl.rv.done, WAIT_MS);
	polls(4);
	EXPECT_EQ(cl.w.done, 1);
	EXPECT_EQ(cl.s.done, 1);
	EXPECT_EQ(cl.rv.done, 1);
	EXPECT_OK(cl.w.status);
	EXPECT_OK(cl.s.status);
	EXPECT_OK(cl.rv.status);
	EXPECT_TRUE(!strcmp(cl.in, cl.msg));
	memcpy(model + cl.off, cl.data, sizeof(cl.data));
	cl.n++;
	check_memory();
	EXPECT_EQ(plx__tcp_get(&T.r)->nslot_free, T.cfg.unexpected_count);
	EXPECT_OK(plx_reactor_stats(&T.r, &st));
	EXPECT_U64_EQ(st.reqs_inflight, 0);
}

static size_t enc(const struct plx__frame *f, uint8_t *buf)
{
	int n = plx__wire_encode(f, buf);

	EXPECT_GT(n, 0);
	return (size_t)n;
}

/* A WRITE of @len bytes of @data at region offset @off (id: next seq). */
static size_t write_frame(uint8_t *buf, uint64_t off, const uint8_t *data,
			  uint32_t len)
{
	struct plx__frame f = {.opcode = PLX__OP_WRITE,
			       .id = ++E.seq,
			       .payload_len = len,
			       .addr = T.rw.addr + off,
			       .key = T.rw.key};
	size_t n = enc(&f, buf);

	memcpy(buf + n, data, len);
	return n + len;
}

/* A valid write on an established connection: acknowledged, in place. */
static void evil_valid_write(uint64_t off, uint32_t len)
{
	uint8_t buf[PLX__WIRE_HDR_MAX + 1024], data[1024];
	int nack = E.nnack;
	size_t n;

	EXPECT_LE(len, sizeof(data));
	fresh_data(data, off, len);
	n = write_frame(buf, off, data, len);
	EXPECT_OK(evil_send(buf, n));
	WAIT_FOR(E.acked >= E.seq || E.closed, WAIT_MS);
	EXPECT_TRUE(!E.closed);
	EXPECT_EQ(E.nnack, nack);
	EXPECT_MEM_EQ(mem + off, data, len);
	memcpy(model + off, data, len);
}

static void test_garbage_before_handshake_closes(void)
{
	static const char http[] = "GET / HTTP/1.1\r\nHost: pollux\r\n\r\n";
	uint8_t junk[256];

	case_begin("text before the handshake");
	evil_send(http, sizeof(http) - 1);
	evil_expect_closed();
	EXPECT_TRUE(!E.established);
	evil_finish(0);
	case_end();

	case_begin("random bytes before the handshake");
	fill_random(junk, sizeof(junk));
	junk[0] = 0x00; /* not 'P': refused at the first byte */
	evil_send(junk, sizeof(junk));
	evil_expect_closed();
	evil_finish(0);
	case_end();
}

/* A well-formed frame that is not HELLO before the handshake is refused
 * with CLOSE(PLX_EPROTO); a WRITE must not land. */
static void expect_refused_before_ready(const char *name, const uint8_t *b,
					size_t n, int want)
{
	case_begin(name);
	evil_send(b, n);
	evil_expect_closed();
	EXPECT_EQ(E.close_frames, 1);
	EXPECT_STATUS(E.close_status, want);
	EXPECT_TRUE(!E.established);
	evil_finish(0);
	case_end();
}

static void test_frames_out_of_order_before_handshake(void)
{
	uint8_t b[2 * PLX__WIRE_HDR_MAX + 256], data[256];
	struct plx__frame f;
	struct plx__hs hs;
	size_t n;

	/* a data frame instead of HELLO: the payload must not land */
	E.seq = 0;
	fresh_data(data, 0, sizeof(data));
	n = write_frame(b, 0, data, sizeof(data));
	expect_refused_before_ready("WRITE before the handshake", b, n,
				    PLX_EPROTO);

	memset(&f, 0, sizeof(f));
	f.opcode = PLX__OP_READY;
	n = enc(&f, b);
	expect_refused_before_ready("READY before HELLO", b, n, PLX_EPROTO);

	memset(&f, 0, sizeof(f));
	f.opcode = PLX__OP_PING;
	f.id = 1;
	n = enc(&f, b);
	expect_refused_before_ready("PING before HELLO", b, n, PLX_EPROTO);

	/* HELLO claiming the accepting role */
	EXPECT_OK(plx__hs_init(&hs, (const uint8_t *)"0123456789abcdef", 7, 1,
			       0, 0, NULL));
	n = (size_t)plx__hs_hello(&hs, b);
	expect_refused_before_ready("HELLO with the wrong role", b, n,
				    PLX_EPROTO);

	/* HELLO with version 0: no common version */
	memset(&f, 0, sizeof(f));
	f.opcode = PLX__OP_HELLO;
	f.hello.version = 0;
	memset(f.hello.node_id, 0x71, 16);
	n = enc(&f, b);
	expect_refused_before_ready("HELLO with version 0", b, n, PLX_EVERSION);

	/* HELLO asking for authentication from a keyless target */
	f.hello.version = PLX__WIRE_VERSION;
	f.flags = PLX__HELLO_AUTH;
	n = enc(&f, b);
	expect_refused_before_ready("HELLO with AUTH, target has no key", b, n,
				    PLX_EAUTH);
}

static void test_hello_then_garbage_closes(void)
{
	uint8_t b[PLX__WIRE_HDR_MAX * 2 + 64], data[64];
	size_t n;

	case_begin("valid HELLO then garbage");
	n = (size_t)plx__hs_hello(&E.hs, b);
	fill_random(b + n, 64);
	b[n] = 0xff;
	evil_send(b, n + 64);
	evil_expect_closed();
	evil_finish(0); /* the target never saw our READY: no endpoint */
	case_end();

	case_begin("HELLO twice");
	n = (size_t)plx__hs_hello(&E.hs, b);
	memcpy(b + n, b, n);
	evil_send(b, 2 * n);
	evil_expect_closed();
	EXPECT_EQ(E.close_frames, 1);
	EXPECT_STATUS(E.close_status, PLX_EPROTO);
	evil_finish(0);
	case_end();

	/* HELLO then a WRITE instead of READY: must not land */
	case_begin("HELLO then WRITE before READY");
	n = (size_t)plx__hs_hello(&E.hs, b);
	fresh_data(data, 64, sizeof(data));
	n += write_frame(b + n, 64, data, sizeof(data));
	evil_send(b, n);
	evil_expect_closed();
	EXPECT_EQ(E.close_frames, 1);
	EXPECT_STATUS(E.close_status, PLX_EPROTO);
	evil_finish(0);
	case_end();
}

/* A HELLO for a striped data connection (conn_index 1) must name a live
 * session (node id and epoch); otherwise the target closes it once the
 * handshake is done, and no endpoint appears. */
static void expect_stripe_refused(const char *name, const uint8_t *node,
				  uint64_t epoch, const uint8_t *tail,
				  size_t tail_len)
{
	uint8_t b[PLX__WIRE_HDR_MAX];
	int n;

	case_begin(name);
	if (tail_len) /* tail may be NULL: memcpy(x, NULL, 0) is UB */
		memcpy(E.ready_tail, tail, tail_len);
	E.ready_tail_len = tail_len;
	EXPECT_OK(plx__hs_init(&E.hs, node, epoch, 0, 1, PLX__CAP_ALL, NULL));
	n = plx__hs_hello(&E.hs, b);
	EXPECT_GT(n, 0);
	evil_send(b, (size_t)n);
	evil_expect_closed();
	evil_finish(0);
	case_end();
}

static void test_stripe_hello_without_session_closes(void)
{
	struct plx__frame f = {
		.opcode = PLX__OP_SEND, .id = 1, .payload_len = 16};
	uint8_t tail[128];
	uint64_t epoch;
	size_t n;

	expect_stripe_refused("stripe HELLO for an unknown node",
			      (const uint8_t *)"unknown node id!", 1, NULL, 0);
	plx_reactor_node_id(&C.r, NULL, &epoch);
	expect_stripe_refused("stripe HELLO with the client's node, old epoch",
			      T.client_node, epoch + 1, NULL, 0);

	/* the same, with data frames in the same write as our READY: the
	 * target refuses the connection while parsing that buffer and must
	 * not go on to handle the frames behind the READY */
	n = enc(&f, tail);
	memset(tail + n, 0x5a, 16);
	n += 16;
	f = (struct plx__frame){.opcode = PLX__OP_PING, .id = 7};
	n += enc(&f, tail + n);
	expect_stripe_refused("stripe HELLO, frames behind the READY",
			      (const uint8_t *)"unknown node id!", 1, tail, n);
}

/* After a valid handshake, @b is a protocol violation: the target closes
 * the connection and reports PLX_EP_DOWN with @want. */
static void expect_violation(const char *name, const uint8_t *b, size_t n,
			     int want)
{
	case_begin(name);
	evil_handshake();
	evil_send(b, n); /* may fail once the target has closed */
	evil_expect_closed();
	evil_finish(want);
	case_end();
}

static void test_protocol_violations_close(void)
{
	uint8_t b[PLX__WIRE_HDR_MAX + 64], data[32];
	struct plx__frame f;
	size_t n;

	memset(data, 0xee, sizeof(data));
	E.seq = 0;
	n = write_frame(b, 256, data, sizeof(data));
	b[0] = 'Q';
	expect_violation("bad magic (first byte)", b, n, PLX_EPROTO);
	E.seq = 0;
	n = write_frame(b, 256, data, sizeof(data));
	b[1] = 'Y';
	expect_violation("bad magic (second byte)", b, n, PLX_EPROTO);
	E.seq = 0;
	n = write_frame(b, 256, data, sizeof(data));
	b[2] = 0x7f;
	expect_violation("unknown opcode 0x7f", b, n, PLX_EPROTO);
	b[2] = 0x00;
	expect_violation("unknown opcode 0x00", b, n, PLX_EPROTO);
	E.seq = 0;
	n = write_frame(b, 256, data, sizeof(data));
	b[3] = 0x40; /* 0x80 is defined: a riding ACK */
	expect_violation("undefined flag on WRITE", b, n, PLX_EPROTO);
	/* the riding-ACK flag set after encoding: the header is taken to be
	 * 8 bytes longer, so its CRC is read from the payload */
	E.seq = 0;
	n = write_frame(b, 256, data, sizeof(data));
	b[3] = 0x80;
	expect_violation("riding-ACK flag on a WRITE encoded without one", b, n,
			 PLX_EPROTO);

	/* lengths above the target's limits (header only is enough) */
	memset(&f, 0, sizeof(f));
	f.opcode = PLX__OP_WRITE;
	f.id = 1;
	f.addr = T.rw.addr;
	f.key = T.rw.key;
	f.payload_len = MAX_FRAME + 1;
	n = enc(&f, b);
	expect_violation("WRITE payload_len above max_frame", b, n, PLX_EPROTO);
	memset(&f, 0, sizeof(f));
	f.opcode = PLX__OP_SEND;
	f.id = 1;
	f.payload_len = 0xffffffffu;
	n = enc(&f, b);
	expect_violation("SEND payload_len 0xffffffff", b, n, PLX_EPROTO);
	f.payload_len = MAX_MSG + 1; /* within max_frame, above max_message */
	n = enc(&f, b);
	expect_violation("SEND payload_len above max_message", b, n,
			 PLX_EPROTO);
	memset(&f, 0, sizeof(f));
	f.opcode = PLX__OP_READ_REQ;
	f.id = 1;
	f.addr = T.rw.addr;
	f.key = T.rw.key;
	f.len = MAX_FRAME + 1;
	n = enc(&f, b);
	expect_violation("READ_REQ len above max_frame", b, n, PLX_EPROTO);
	f.len = 0;
	n = enc(&f, b);
	expect_violation("READ_REQ len 0", b, n, PLX_EPROTO);

	/* sequenced frames' ids start at 1 and increase (gaps allowed) */
	memset(&f, 0, sizeof(f));
	f.opcode = PLX__OP_SEND;
	n = enc(&f, b);
	expect_violation("SEND with id 0", b, n, PLX_EPROTO);
	{
		uint8_t b2[2 * PLX__WIRE_HDR_MAX];

		memset(&f, 0, sizeof(f));
		f.opcode = PLX__OP_WRITE;
		f.id = 7; /* a gap: 1..6 were cancelled by the sender */
		f.addr = T.rw.addr;
		f.key = T.rw.key;
		n = enc(&f, b2);
		f.opcode = PLX__OP_SEND;
		f.addr = f.key = 0;
		f.id = 7; /* not above the last */
		n += enc(&f, b2 + n);
		expect_violation("SEND repeating the last id", b2, n,
				 PLX_EPROTO);
	}

	/* fields that contradict the connection's state */
	memset(&f, 0, sizeof(f));
	f.opcode = PLX__OP_ACK;
	f.seq = 5;
	n = enc(&f, b);
	expect_violation("ACK of a sequence never sent", b, n, PLX_EPROTO);
	memset(&f, 0, sizeof(f));
	f.opcode = PLX__OP_NACK;
	f.id = 3;
	f.status = PLX_EIO;
	n = enc(&f, b);
	expect_violation("NACK of a sequence never sent", b, n, PLX_EPROTO);
	memset(&f, 0, sizeof(f));
	f.opcode = PLX__OP_READ_RESP;
	f.id = 9;
	n = enc(&f, b);
	expect_violation("READ_RESP nobody asked for", b, n, PLX_EPROTO);
	memset(&f, 0, sizeof(f));
	f.opcode = PLX__OP_HELLO;
	f.hello.version = PLX__WIRE_VERSION;
	memset(f.hello.node_id, 0x72, 16);
	n = enc(&f, b);
	expect_violation("HELLO after the handshake", b, n, PLX_EPROTO);
	memset(&f, 0, sizeof(f));
	f.opcode = PLX__OP_READY;
	n = enc(&f, b);
	expect_violation("READY after the handshake", b, n, PLX_EPROTO);
	/* the 4 bytes before a WRITE's CRC are padding and must be zero,
	 * even under a CRC that matches them */
	E.seq = 0;
	n = write_frame(b, 256, data, sizeof(data));
	b[plx__wire_hdr_size(PLX__OP_WRITE) - 8] = 1;
	EXPECT_EQ(plx__wire_seal(b), plx__wire_hdr_size(PLX__OP_WRITE));
	expect_violation("WRITE with nonzero padding", b, n, PLX_EPROTO);
	/* A header whose CRC does not match. (This case once set a byte it
	 * took for WRITE_IMM's padding, which is the CRC's first byte: one
	 * run in 256 found that byte already 1, so the frame was valid and
	 * the case timed out.) */
	memset(&f, 0, sizeof(f));
	f.opcode = PLX__OP_WRITE_IMM;
	f.id = 1;
	f.addr = T.rw.addr + 256;
	f.key = T.rw.key;
	f.payload_len = sizeof(data);
	n = enc(&f, b);
	b[n - 4] ^= 1; /* the CRC's first byte */
	memcpy(b + n, data, sizeof(data));
	expect_violation("WRITE_IMM with a wrong header CRC", b,
			 n + sizeof(data), PLX_EPROTO);
	EXPECT_EQ(T.imm_count, 0);

	/* a peer's CLOSE with an error status ends the connection with it */
	memset(&f, 0, sizeof(f));
	f.opcode = PLX__OP_CLOSE;
	f.status = PLX_EIO;
	n = enc(&f, b);
	expect_violation("CLOSE(PLX_EIO) from the peer", b, n, PLX_EIO);
}

static void test_truncated_frames(void)
{
	uint8_t b[PLX__WIRE_HDR_MAX + 1000], data[1000];
	size_t n;

	case_begin("truncated header, then close");
	evil_handshake();
	fresh_data(data, 4096, 64);
	n = write_frame(b, 4096, data, 64);
	EXPECT_OK(evil_send(b, 10));
	polls(20);
	EXPECT_TRUE(!E.closed); /* a prefix is not an error */
	shutdown(E.fd, SHUT_WR);
	evil_expect_closed();
	evil_finish(PLX_ECONNRESET);
	case_end();

	case_begin("truncated payload, then close");
	evil_handshake();
	fresh_data(data, 4096, sizeof(data));
	n = write_frame(b, 4096, data, sizeof(data));
	EXPECT_OK(evil_send(b, n - 900));
	/* the first 100 payload bytes land in place before the frame ends */
	WAIT_FOR(!memcmp(mem + 4096, data, 100), WAIT_MS);
	shutdown(E.fd, SHUT_WR);
	evil_expect_closed();
	evil_finish(PLX_ECONNRESET);
	EXPECT_EQ(model_prefix(4096, data, sizeof(data)), 100);
	EXPECT_EQ(E.acked, 0);
	case_end();
}

static void test_reset_mid_write_payload(void)
{
	static uint8_t b[PLX__WIRE_HDR_MAX + 8000], data[8000];
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	size_t n, sent;

	case_begin("reset in the middle of a WRITE payload");
	evil_handshake();
	fresh_data(data, 8192, sizeof(data));
	n = write_frame(b, 8192, data, sizeof(data));
	sent = n - sizeof(data) + 3000;
	EXPECT_OK(evil_send(b, sent));
	WAIT_FOR(!memcmp(mem + 8192, data, 3000), WAIT_MS);
	EXPECT_OK(setsockopt(E.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
	evil_finish(PLX_ECONNRESET); /* close() with linger 0: RST */
	EXPECT_EQ(model_prefix(8192, data, sizeof(data)), 3000);
	case_end();
}

/* The peer resets while its connection at the target is idle, and the
 * target sends before it polls again: the send itself meets the reset
 * (an idle connection's frame goes straight out, transport/tcp/conn.c,
 * plx__conn_submit()). The op fails with the connection's cause, once,
 * and the endpoint goes down with it. */
static void test_reset_then_idle_send(void)
{
	static const char msg[] = "to a peer that reset";
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	struct tracked s;

	case_begin("reset, then the target's send on the idle connection");
	evil_handshake();
	EXPECT_OK(setsockopt(E.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
	EXPECT_OK(close(E.fd)); /* RST, at once on loopback */
	E.fd = -1;		/* evil_finish()'s close() does nothing */
	evil_active = 0;
	tracked_init(&s);
	EXPECT_OK(plx_ep_send(T.evil_ep, &s.op, msg, sizeof(msg), 7));
	WAIT_FOR(s.done, WAIT_MS);
	EXPECT_STATUS(s.status, PLX_ECONNRESET);
	EXPECT_EQ(s.done, 1);
	evil_finish(PLX_ECONNRESET);
	case_end();
}

/* The target holds a WRITE's ACK back while the next frame is arriving
 * (docs/tcp.md, "Coalesced acknowledgements"); a peer that then stops in
 * the middle of that frame must still get the ACK, from the periodic
 * tick, and the next one once the frame is complete. */
static void test_held_ack_reaches_stalled_peer(void)
{
	uint8_t b[2 * (PLX__WIRE_HDR_MAX + 48)], da[48], db[48];
	uint64_t seq_a;
	size_t na, nb, cut;

	case_begin("ACK of a write while the peer stalls mid-frame");
	evil_handshake();
	fresh_data(da, 4000, sizeof(da));
	fresh_data(db, 4100, sizeof(db));
	na = write_frame(b, 4000, da, sizeof(da));
	seq_a = E.seq;
	nb = write_frame(b + na, 4100, db, sizeof(db));
	/* all of A and the header and part of B's payload, in one send */
	cut = na + (size_t)plx__wire_hdr_size(PLX__OP_WRITE) + 10;
	E.mid_frame = 1;
	EXPECT_OK(evil_send(b, cut));
	WAIT_FOR(E.acked >= seq_a || E.closed, WAIT_MS);
	EXPECT_TRUE(!E.closed);
	EXPECT_U64_EQ(E.acked, seq_a);
	EXPECT_MEM_EQ(mem + 4000, da, sizeof(da));
	memcpy(model + 4000, da, sizeof(da));
	E.mid_frame = 0;
	EXPECT_OK(evil_send(b + cut, na + nb - cut));
	WAIT_FOR(E.acked >= E.seq || E.closed, WAIT_MS);
	EXPECT_TRUE(!E.closed);
	EXPECT_MEM_EQ(mem + 4100, db, sizeof(db));
	memcpy(model + 4100, db, sizeof(db));
	evil_finish(PLX_ECONNRESET);
	case_end();
}

/* The target owes an ACK when it sends to a peer whose HELLO lacks
 * PLX__CAP_ACK_RIDE: the ACK goes as an ACK frame, never riding on the
 * SEND (evil_frame() flags any riding ACK as bad input). */
static void test_no_riding_ack_without_the_cap(void)
{
	static const char msg[] = "an answer";
	uint8_t buf[PLX__WIRE_HDR_MAX + 64], data[64];
	struct tracked s;
	size_t n;

	case_begin("a peer without ACK_RIDE gets ACK frames, no riding ACK");
	evil_handshake();
	fresh_data(data, 8000, sizeof(data));
	n = write_frame(buf, 8000, data, sizeof(data));
	EXPECT_OK(evil_send(buf, n));
	/* answer as soon as the write is in, as a completion would: with
	 * ACK_RIDE, the ACK it owes would ride on this SEND */
	WAIT_FOR(!memcmp(mem + 8000, data, sizeof(data)), WAIT_MS);
	memcpy(model + 8000, data, sizeof(data));
	tracked_init(&s);
	EXPECT_OK(plx_ep_send(T.evil_ep, &s.op, msg, sizeof(msg), 1));
	WAIT_FOR((E.sends == 1 && E.acked >= E.seq) || E.closed, WAIT_MS);
	EXPECT_TRUE(!E.closed);
	EXPECT_EQ(E.bad_input, 0);
	evil_finish(PLX_ECONNRESET);
	WAIT_FOR(s.done, WAIT_MS); /* never acknowledged: failed by close */
	EXPECT_LT(s.status, 0);
	case_end();
}

/* Valid frames sent in pieces: split at every byte boundary of a small
 * WRITE, then a WRITE, a WRITE_IMM and a READ_REQ one byte at a time. */
static void test_dribbled_frames_succeed(void)
{
	uint8_t b[PLX__WIRE_HDR_MAX + 256], data[256];
	struct plx__frame f;
	size_t n, hdr;

	case_begin("valid frames split at every byte and dribbled");
	evil_handshake();
	n = (size_t)plx__wire_hdr_size(PLX__OP_WRITE) + 48;
	for (size_t k = 1; k < n; k++) {
		fresh_data(data, 1000, 48);
		EXPECT_EQ(write_frame(b, 1000, data, 48), n);
		E.mid_frame = 1;
		EXPECT_OK(evil_send(b, k));
		polls(3);
		E.mid_frame = 0;
		EXPECT_OK(evil_send(b + k, n - k));
		WAIT_FOR(E.acked >= E.seq || E.closed, WAIT_MS);
		EXPECT_TRUE(!E.closed);
		EXPECT_MEM_EQ(mem + 1000, data, 48);
		memcpy(model + 1000, data, 48);
	}

	/* one byte at a time, with polls in between */
	fresh_data(data, 2000, sizeof(data));
	n = write_frame(b, 2000, data, sizeof(data));
	E.mid_frame = 1;
	for (size_t i = 0; i < n; i++) {
		EXPECT_OK(evil_send(b + i, 1));
		polls(2);
		EXPECT_TRUE(!E.closed);
	}
	E.mid_frame = 0;
	WAIT_FOR(E.acked >= E.seq, WAIT_MS);
	EXPECT_MEM_EQ(mem + 2000, data, sizeof(data));
	memcpy(model + 2000, data, sizeof(data));

	memset(&f, 0, sizeof(f));
	f.opcode = PLX__OP_WRITE_IMM;
	f.id = ++E.seq;
	f.addr = T.rw.addr + 3000;
	f.key = T.rw.key;
	f.imm = 0xfeedf00d;
	f.payload_len = 100;
	hdr = enc(&f, b);
	fresh_data(data, 3000, 100);
	memcpy(b + hdr, data, 100);
	T.imm_expect = data;
	E.mid_frame = 1;
	for (size_t i = 0; i < hdr + 100; i++) {
		EXPECT_OK(evil_send(b + i, 1));
		polls(2);
	}
	E.mid_frame = 0;
	WAIT_FOR(E.acked >= E.seq, WAIT_MS);
	EXPECT_EQ(T.imm_count, 1);
	EXPECT_U64_EQ(T.last_imm, 0xfeedf00d);
	EXPECT_U64_EQ(T.imm_addr, T.rw.addr + 3000);
	EXPECT_U64_EQ(T.imm_len, 100);
	EXPECT_TRUE(T.imm_data_ok);
	T.imm_expect = NULL;
	memcpy(model + 3000, data, 100);

	memset(&f, 0, sizeof(f));
	f.opcode = PLX__OP_READ_REQ;
	f.id = ++E.rid;
	f.addr = T.ro.addr + 100;
	f.key = T.ro.key;
	f.len = 200;
	hdr = enc(&f, b);
	E.mid_frame = 1;
	for (size_t i = 0; i < hdr; i++) {
		EXPECT_OK(evil_send(b + i, 1));
		polls(2);
	}
	E.mid_frame = 0;
	WAIT_FOR(E.nresp == 1, WAIT_MS);
	EXPECT_U64_EQ(E.resp_id[0], E.rid);
	EXPECT_OK(E.resp_status[0]);
	EXPECT_EQ(E.resp_len[0], 200);
	EXPECT_MEM_EQ(E.resp_data[0], model_ro + 100, 200);

	/* and liveness: PING is answered with its nonce */
	memset(&f, 0, sizeof(f));
	f.opcode = PLX__OP_PING;
	f.id = 0x1234567890ull;
	n = enc(&f, b);
	EXPECT_OK(evil_send(b, n));
	WAIT_FOR(E.pongs == 1, WAIT_MS);
	EXPECT_U64_EQ(E.pong_id, 0x1234567890ull);
	EXPECT_EQ(E.nnack, 0);
	evil_finish(PLX_ECONNRESET);
	case_end();
}

/* Frames in the same write() as our READY: the target reads them with
 * the end of the handshake into the small staging buffer of a connection
 * in its handshake, swaps it for the full one when the handshake is done
 * (conn.c, stage_grow) and must then handle them like any other. */
static void test_frames_behind_ready_land(void)
{
	uint8_t data[2][80];
	size_t n;

	case_begin("two writes in the same write() as READY");
	fresh_data(data[0], 5000, sizeof(data[0]));
	fresh_data(data[1], 5200, sizeof(data[1]));
	n = write_frame(E.ready_tail, 5000, data[0], sizeof(data[0]));
	n += write_frame(E.ready_tail + n, 5200, data[1], sizeof(data[1]));
	EXPECT_LE(n, sizeof(E.ready_tail));
	E.ready_tail_len = n;
	evil_handshake();
	WAIT_FOR(E.acked >= E.seq || E.closed, WAIT_MS);
	EXPECT_TRUE(!E.closed);
	EXPECT_U64_EQ(E.acked, 2);
	EXPECT_MEM_EQ(mem + 5000, data[0], sizeof(data[0]));
	EXPECT_MEM_EQ(mem + 5200, data[1], sizeof(data[1]));
	memcpy(model + 5000, data[0], sizeof(data[0]));
	memcpy(model + 5200, data[1], sizeof(data[1]));
	/* and the connection goes on */
	evil_valid_write(5400, 64);
	evil_finish(PLX_ECONNRESET);
	case_end();
}

/* Name resolution: a known name gives the region's descriptor, an unknown
 * one (or one with a NUL inside) PLX_ENOENT; the connection stays usable.
 * A name longer than PLX__WIRE_NAME_MAX is a protocol violation. */
static void test_resolve_requests(void)
{
	static const char *names[] = {"rw-region", "no-such-region",
				      "rw-region\0tail", "rw-regio"};
	static const size_t lens[] = {9, 14, 14, 8};
	uint8_t b[PLX__WIRE_HDR_MAX + PLX__WIRE_NAME_MAX + 1];
	struct plx__frame f;
	struct plx_desc d;
	size_t n;

	case_begin("RESOLVE_REQ known and unknown names");
	evil_handshake();
	for (int i = 0; i < 4; i++) {
		int before = E.nresolve;

		memset(&f, 0, sizeof(f));
		f.opcode = PLX__OP_RESOLVE_REQ;
		f.id = ++E.rid;
		f.payload_len = (uint32_t)lens[i];
		n = enc(&f, b);
		memcpy(b + n, names[i], lens[i]);
		EXPECT_OK(evil_send(b, n + lens[i]));
		WAIT_FOR(E.nresolve > before || E.closed, WAIT_MS);
		EXPECT_TRUE(!E.closed);
		EXPECT_U64_EQ(E.resolve_id, E.rid);
		if (i == 0) {
			EXPECT_OK(E.resolve_status);
			EXPECT_EQ(E.resolve_len, PLX_DESC_BYTES);
			EXPECT_EQ(plx_desc_parse(&d, E.resolve_desc,
						 PLX_DESC_BYTES),
				  PLX_DESC_BYTES);
			EXPECT_U64_EQ(d.addr, T.rw.addr);
			EXPECT_U64_EQ(d.len, T.rw.len);
			EXPECT_U64_EQ(d.key, T.rw.key);
		} else {
			EXPECT_STATUS(E.resolve_status, PLX_ENOENT);
			EXPECT_EQ(E.resolve_len, 0);
		}
	}
	evil_valid_write(12000, 64);
	evil_finish(PLX_ECONNRESET);
	case_end();

	memset(&f, 0, sizeof(f));
	f.opcode = PLX__OP_RESOLVE_REQ;
	f.id = 1;
	f.payload_len = PLX__WIRE_NAME_MAX + 1;
	n = enc(&f, b);
	memset(b + n, 'a', PLX__WIRE_NAME_MAX + 1);
	expect_violation("RESOLVE_REQ name too long", b,
			 n + PLX__WIRE_NAME_MAX + 1, PLX_EPROTO);
}

/* A well-formed access the target must refuse with @want. */
struct refusal {
	const char *what;
	uint8_t opcode;
	uint64_t addr;
	uint64_t key;
	uint32_t len;
	int want;
};

static size_t refusal_frame(uint8_t *b, const struct refusal *x,
			    const uint8_t *payload)
{
	struct plx__frame f = {
		.opcode = x->opcode, .addr = x->addr, .key = x->key};
	size_t n;

	if (x->opcode == PLX__OP_READ_REQ) {
		f.id = ++E.rid;
		f.len = x->len;
		return enc(&f, b);
	}
	f.id = ++E.seq;
	f.imm = 77;
	f.payload_len = x->len;
	n = enc(&f, b);
	memcpy(b + n, payload, x->len);
	return n + x->len;
}

static struct plx_region revoked;
static uint64_t revoked_key; /* the key of a deregistered region */

static int make_refusals(struct refusal *x)
{
	uint64_t rw = T.rw.addr, ro = T.ro.addr, wo = T.wo.addr;
	uint64_t oth = (uint64_t)(uintptr_t)other;
	int n = 0;

#define R(w, op, a, k, l, s)                                                   \
	x[n++] = (struct refusal){.what = w,                                   \
				  .opcode = op,                                \
				  .addr = a,                                   \
				  .key = k,                                    \
				  .len = l,                                    \
				  .want = s}
	R("WRITE to unregistered memory", PLX__OP_WRITE, oth, T.rw.key, 64,
	  PLX_EFAULT);
	R("WRITE with a wrong key", PLX__OP_WRITE, rw, T.rw.key ^ 1, 64,
	  PLX_EKEYREJECTED);
	R("WRITE with a revoked key", PLX__OP_WRITE, rw, revoked_key, 64,
	  PLX_EKEYREJECTED);
	R("WRITE across the region end", PLX__OP_WRITE, rw + MEM_LEN - 32,
	  T.rw.key, 64, PLX_EFAULT);
	R("WRITE across the region start", PLX__OP_WRITE, rw - 16, T.rw.key, 32,
	  PLX_EFAULT);
	R("WRITE wrapping the address space", PLX__OP_WRITE, UINT64_MAX - 15,
	  T.rw.key, 64, PLX_EFAULT);
	R("WRITE to a read-only region", PLX__OP_WRITE, ro, T.ro.key, 64,
	  PLX_EACCES);
	R("100 KiB WRITE past the region end", PLX__OP_WRITE,
	  rw + MEM_LEN - 100, T.rw.key, 100 * 1024, PLX_EFAULT);
	R("WRITE_IMM to a read-only region", PLX__OP_WRITE_IMM, ro, T.ro.key,
	  64, PLX_EACCES);
	R("WRITE_IMM with a wrong key", PLX__OP_WRITE_IMM, rw + 64,
	  T.rw.key ^ 0x8000, 64, PLX_EKEYREJECTED);
	R("WRITE_IMM past the region end", PLX__OP_WRITE_IMM, rw + MEM_LEN,
	  T.rw.key, 1, PLX_EFAULT);
	R("READ_REQ of unregistered memory", PLX__OP_READ_REQ, oth, T.rw.key,
	  64, PLX_EFAULT);
	R("READ_REQ with a wrong key", PLX__OP_READ_REQ, rw, T.rw.key ^ 2, 64,
	  PLX_EKEYREJECTED);
	R("READ_REQ across the region end", PLX__OP_READ_REQ, ro + SIDE_LEN - 8,
	  T.ro.key, 16, PLX_EFAULT);
	R("READ_REQ of a write-only region", PLX__OP_READ_REQ, wo, T.wo.key, 64,
	  PLX_EACCES);
	R("READ_REQ wrapping the address space", PLX__OP_READ_REQ,
	  UINT64_MAX - 7, T.rw.key, 16, PLX_EFAULT);
#undef R
	return n;
}

/* Wait for the answer to refused access @x (the last frame sent). */
static void expect_refusal_answer(const struct refusal *x, int nack, int nresp)
{
	if (x->opcode == PLX__OP_READ_REQ) {
		WAIT_FOR(E.nresp > nresp || E.closed, WAIT_MS);
		EXPECT_TRUE(!E.closed);
		EXPECT_EQ(E.nresp, nresp + 1);
		EXPECT_U64_EQ(E.resp_id[nresp], E.rid);
		EXPECT_STATUS(E.resp_status[nresp], x->want);
		EXPECT_EQ(E.resp_len[nresp], 0);
		return;
	}
	WAIT_FOR(E.nnack > nack || E.closed, WAIT_MS);
	EXPECT_TRUE(!E.closed);
	EXPECT_EQ(E.nnack, nack + 1);
	EXPECT_U64_EQ(E.nack_id[nack], E.seq);
	EXPECT_STATUS(E.nack_status[nack], x->want);
}

static void test_refused_accesses_keep_connection(void)
{
	static uint8_t payload[100 * 1024], b[104 * 1024];
	static uint8_t tmp[64];
	struct plx_desc d;
	struct refusal x[32];
	int nx, imm = T.imm_count;
	char name[96];

	/* a key that was valid once */
	EXPECT_OK(plx_mem_register(&T.r, &revoked, tmp, sizeof(tmp),
				   PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_desc(&T.r, &revoked, &d));
	revoked_key = d.key;
	EXPECT_OK(plx_mem_deregister(&T.r, &revoked));
	memset(payload, 0xee, sizeof(payload));
	nx = make_refusals(x);

	for (int i = 0; i < nx; i++) {
		size_t n;

		snprintf(name, sizeof(name), "refused: %s", x[i].what);
		case_begin(name);
		evil_handshake();
		n = refusal_frame(b, &x[i], payload);
		EXPECT_OK(evil_send(b, n));
		expect_refusal_answer(&x[i], 0, 0);
		/* the connection is still in sync and usable */
		evil_valid_write(20000 + (uint64_t)i * 64, 64);
		evil_finish(PLX_ECONNRESET);
		case_end();
	}
	EXPECT_EQ(T.imm_count, imm);

	/* all of them back to back on one connection, between valid writes
	 * and reads: every answer carries the right id */
	case_begin("refused accesses pipelined with valid ones");
	evil_handshake();
	{
		static uint8_t data[32][64];
		uint64_t want_nack[32], want_resp[32];
		int want_st[32], want_rst[32], nn = 0, nr = 0, nvalid = 0;
		size_t n = 0;

		for (int i = 0; i < nx; i++) {
			n = 0;
			/* a valid write before each refused access */
			fresh_data(data[nvalid], 30000 + (uint64_t)nvalid * 64,
				   64);
			n += write_frame(b + n, 30000 + (uint64_t)nvalid * 64,
					 data[nvalid], 64);
			nvalid++;
			n += refusal_frame(b + n, &x[i], payload);
			if (x[i].opcode == PLX__OP_READ_REQ) {
				want_resp[nr] = E.rid;
				want_rst[nr++] = x[i].want;
			} else {
				want_nack[nn] = E.seq;
				want_st[nn++] = x[i].want;
			}
			EXPECT_OK(evil_send(b, n));
		}
		WAIT_FOR((E.nnack >= nn && E.nresp >= nr && E.acked >= E.seq) ||
				 E.closed,
			 WAIT_MS);
		EXPECT_TRUE(!E.closed);
		EXPECT_EQ(E.nnack, nn);
		EXPECT_EQ(E.nresp, nr);
		for (int i = 0; i < nn; i++) {
			EXPECT_U64_EQ(E.nack_id[i], want_nack[i]);
			EXPECT_STATUS(E.nack_status[i], want_st[i]);
		}
		for (int i = 0; i < nr; i++) {
			EXPECT_U64_EQ(E.resp_id[i], want_resp[i]);
			EXPECT_STATUS(E.resp_status[i], want_rst[i]);
		}
		for (int i = 0; i < nvalid; i++) {
			EXPECT_MEM_EQ(mem + 30000 + i * 64, data[i], 64);
			memcpy(model + 30000 + i * 64, data[i], 64);
		}
	}
	evil_finish(PLX_ECONNRESET);
	case_end();
	EXPECT_EQ(T.imm_count, imm);
}

/* The target's connection to the evil peer (the primary: evil peers open
 * one connection each). */
static struct plx__conn *evil_conn(void)
{
	EXPECT_TRUE(T.evil_ep != NULL);
	return T.evil_ep->conn;
}

static void wait_client_ops(void)
{
	WAIT_FOR(cl.w.done && cl.s.done && cl.rv.done, WAIT_MS);
}

/* A peer that asks for much more than it reads: READ_REQs pile up
 * responses the target cannot send. The target must keep serving others,
 * and clean up when the peer resets. */
static void test_slow_reader_does_not_stall_target(void)
{
	uint8_t b[PLX__WIRE_HDR_MAX];
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	struct plx__frame f;
	size_t n;

	evil_rcvbuf = 4096;
	case_begin("peer floods READ_REQs and never reads");
	evil_handshake();
	evil_active = 0; /* stop reading */
	for (int i = 0; i < 256; i++) {
		memset(&f, 0, sizeof(f));
		f.opcode = PLX__OP_READ_REQ;
		f.id = ++E.rid;
		f.addr = T.rw.addr;
		f.key = T.rw.key;
		f.len = MEM_LEN;
		n = enc(&f, b);
		if (evil_send_nb(b, n) != (int)n)
			break; /* our send buffer is full: enough */
		polls(1);
	}
	/* the client is served while the evil connection is stuck */
	wait_client_ops();
	EXPECT_OK(setsockopt(E.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
	evil_finish(PLX_ECONNRESET);
	case_end();
	evil_rcvbuf = 0;
}

/* A peer that fills every unexpected-message slot (a pool shared by all
 * peers) and more, so the target stops reading from it, then resets. The
 * client's message, which has a posted receive, still gets through; the
 * reset is noticed although the target is not reading that connection;
 * closing the endpoint gives every slot back. */
static void test_unexpected_flood_then_reset(void)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	struct plx__tcp *t = plx__tcp_get(&T.r);
	uint8_t b[PLX__WIRE_HDR_MAX + 64];
	struct plx__frame f;
	size_t n;

	EXPECT_EQ(t->nslot_free, T.cfg.unexpected_count);
	case_begin("peer fills the unexpected queue, then resets");
	evil_handshake();
	for (uint32_t i = 0; i < T.cfg.unexpected_count + 16; i++) {
		memset(&f, 0, sizeof(f));
		f.opcode = PLX__OP_SEND;
		f.id = ++E.seq;
		f.tag = 0xbad0000 + i;
		f.payload_len = 64;
		n = enc(&f, b);
		memset(b + n, 0xee, 64);
		EXPECT_OK(evil_send(b, n + 64));
	}
	WAIT_FOR(t->nslot_free == 0, WAIT_MS);
	wait_client_ops();
	polls(10);
	EXPECT_TRUE(evil_conn() && evil_conn()->rx_paused);
	EXPECT_OK(setsockopt(E.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
	evil_finish(PLX_ECONNRESET);
	EXPECT_EQ(t->nslot_free, T.cfg.unexpected_count);
	case_end();
}

/* plx_mem_deregister() revokes a region "at once": once it has returned,
 * the application may reuse the memory, so no byte of a write that was
 * still arriving may land there any more, and no byte of it may be read
 * for a response that was still leaving. */
static void test_deregister_during_transfer(void)
{
	static uint8_t victim[16384], b[PLX__WIRE_HDR_MAX + 8000];
	static uint8_t in[64 * 1024];
	uint8_t hdr[PLX__WIRE_HDR_MAX];
	struct plx_region vreg;
	struct plx_desc vd;
	struct plx__frame f;
	uint8_t *big;
	size_t n, total = 0, leaked = 0, hdr_have = 0, pay_left = 0;
	uint64_t end;
	int frames = 0;

	memset(victim, 0x11, sizeof(victim));
	EXPECT_OK(plx_mem_register(&T.r, &vreg, victim, sizeof(victim),
				   PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_desc(&T.r, &vreg, &vd));
	case_begin("region deregistered while a WRITE lands in it");
	evil_handshake();
	memset(&f, 0, sizeof(f));
	f.opcode = PLX__OP_WRITE;
	f.id = ++E.seq;
	f.addr = vd.addr;
	f.key = vd.key;
	f.payload_len = 8000;
	n = enc(&f, b);
	memset(b + n, 0xc3, 8000);
	EXPECT_OK(evil_send(b, n + 1000));
	WAIT_FOR(victim[999] == 0xc3, WAIT_MS);
	EXPECT_OK(plx_mem_deregister(&T.r, &vreg));
	memset(victim, 0x22, sizeof(victim)); /* the application reuses it */
	EXPECT_OK(evil_send(b + n + 1000, 7000));
	WAIT_FOR(E.nnack || E.acked >= E.seq || E.closed, WAIT_MS);
	polls(10);
	for (size_t i = 0; i < sizeof(victim); i++)
		if (victim[i] != 0x22)
			PLX_FAIL(
				"byte %zu of a deregistered region was written "
				"after plx_mem_deregister() returned",
				i);
	EXPECT_EQ(E.nnack, 1);
	EXPECT_STATUS(E.nack_status[0], PLX_EKEYREJECTED);
	evil_valid_write(13000, 64);
	evil_finish(PLX_ECONNRESET);
	case_end();

	/* 8 MiB of READ_RESPs leaving slowly: more than the socket buffers
	 * hold, to a peer whose window is tiny */
	big = mmap(NULL, MAX_FRAME, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	EXPECT_TRUE(big != MAP_FAILED);
	memset(big, 0xa5, MAX_FRAME);
	EXPECT_OK(plx_mem_register(&T.r, &vreg, big, MAX_FRAME,
				   PLX_ACCESS_REMOTE_READ));
	EXPECT_OK(plx_mem_desc(&T.r, &vreg, &vd));
	evil_rcvbuf = 4096;
	case_begin("region deregistered while READ_RESPs leave from it");
	evil_handshake();
	evil_active = 0; /* we read by hand below */
	for (int i = 0; i < NBIG_READS; i++) {
		memset(&f, 0, sizeof(f));
		f.opcode = PLX__OP_READ_REQ;
		f.id = ++E.rid;
		f.addr = vd.addr;
		f.key = vd.key;
		f.len = MAX_FRAME;
		n = enc(&f, b);
		EXPECT_OK(evil_send(b, n));
	}
	polls(50);
	if (!evil_conn() || !evil_conn()->txq_head)
		PLX_FAIL("precondition: READ_RESPs should still be leaving");
	EXPECT_OK(plx_mem_deregister(&T.r, &vreg));
	memset(big, 0x5a, MAX_FRAME); /* reused for something secret */
	end = plx_now_ns() + 10000 * MS;
	while (frames < NBIG_READS && plx_now_ns() < end) {
		ssize_t k = recv(E.fd, in, sizeof(in), MSG_DONTWAIT);

		if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR))
			break; /* the target may close instead */
		if (k < 0) {
			polls(1);
			continue;
		}
		total += (size_t)k;
		for (size_t i = 0; i < (size_t)k;) {
			size_t m = (size_t)k - i;
			int hl;

			if (pay_left) {
				m = m < pay_left ? m : pay_left;
				for (size_t j = i; j < i + m; j++)
					leaked += in[j] == 0x5a;
				i += m;
				pay_left -= m;
				frames += !pay_left;
				continue;
			}
			hdr[hdr_have++] = in[i++];
			hl = plx__wire_parse(&f, hdr, hdr_have, MAX_FRAME);
			EXPECT_GE(hl, 0);
			if (hl > 0) {
				EXPECT_EQ(f.opcode, PLX__OP_READ_RESP);
				pay_left = f.payload_len;
				hdr_have = 0;
				frames += !pay_left;
			}
		}
	}
	fprintf(stderr,
		"received %zu bytes, %d whole responses; %zu payload bytes "
		"were written after deregistration\n",
		total, frames, leaked);
	if (leaked)
		PLX_FAIL("%zu bytes of a deregistered region were sent after "
			 "plx_mem_deregister() returned",
			 leaked);
	evil_rcvbuf = 0;
	evil_finish(ANY_DOWN);
	case_end();
	munmap(big, MAX_FRAME);
}

static void test_target_finishes_cleanly(void)
{
	uint64_t end = plx_now_ns() + 5000 * MS;
	int rc;

	side_fini(&C, NULL);
	EXPECT_OK(plx_mem_deregister(&T.r, &T.reg_rw));
	EXPECT_OK(plx_mem_deregister(&T.r, &T.reg_ro));
	EXPECT_OK(plx_mem_deregister(&T.r, &T.reg_wo));
	EXPECT_OK(plx_tcp_shutdown(&T.r));
	while ((rc = plx_reactor_fini(&T.r)) == PLX_EBUSY && plx_now_ns() < end)
		plx_reactor_poll(&T.r);
	EXPECT_OK(rc);
	check_memory();
}

/* ---- a peer that never answers our SYN ---------------------------------- */

static struct {
	int down, status;
	uint64_t t_down;
} Q;

static void quiet_event(struct plx_reactor *r, struct plx_ep *ep, int event,
			int status, void *arg)
{
	(void)r;
	(void)ep;
	(void)arg;
	if (event == PLX_EP_DOWN && !Q.down++) {
		Q.status = status;
		Q.t_down = plx_now_ns();
	}
}

/* A listener whose accept queue is full drops our SYN: the TCP connect
 * stays in progress. It must fail with PLX_ETIMEDOUT after
 * handshake_timeout_ns (the contract of the handshake deadline), not at
 * the transport's first tick. */
static void test_unanswered_syn_waits_for_handshake_timeout(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	struct plx_tcp_config cfg;
	struct plx_reactor r;
	struct plx_ep *ep;
	uint64_t start, end, hs = 400 * MS;
	int lfd, fill[4], nfill = 0, full = 0, rc;

	fprintf(stderr, "case %d: connect to a listener that drops SYNs\n",
		++case_no);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	EXPECT_GE(lfd, 0);
	EXPECT_OK(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)));
	EXPECT_OK(listen(lfd, 0));
	EXPECT_OK(getsockname(lfd, (struct sockaddr *)&sa, &sl));
	/* fill the accept queue until a connect stays pending */
	while (!full && nfill < 4) {
		struct pollfd pfd = {.events = POLLOUT};
		int fd = socket(AF_INET,
				SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		EXPECT_GE(fd, 0);
		fill[nfill++] = fd;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) &&
		    errno != EINPROGRESS)
			PLX_FAIL("filler connect: %s", strerror(errno));
		pfd.fd = fd;
		full = poll(&pfd, 1, 100) == 0;
	}
	if (!full)
		PLX_SKIP("the kernel accepted every connect");

	memset(&Q, 0, sizeof(Q));
	EXPECT_OK(plx_reactor_init(&r, NULL));
	plx_tcp_config_init(&cfg);
	cfg.handshake_timeout_ns = hs;
	cfg.event_cb = quiet_event;
	EXPECT_OK(plx_tcp_init(&r, &cfg));
	EXPECT_OK(plx_tcp_connect(&r, "127.0.0.1", ntohs(sa.sin_port), &ep));
	start = plx_now_ns();
	end = start + 3000 * MS;
	while (!Q.down && plx_now_ns() < end)
		plx_reactor_wait(&r, 1);
	if (!Q.down)
		PLX_FAIL("no PLX_EP_DOWN 3 s after a connect nobody answers");
	fprintf(stderr, "unanswered connect failed after %.1f ms with %s\n",
		(double)(Q.t_down - start) / MS, plx_errname(Q.status));
	EXPECT_STATUS(Q.status, PLX_ETIMEDOUT);
	if (Q.t_down - start < hs - 50 * MS)
		PLX_FAIL("connect failed after %.1f ms, before "
			 "handshake_timeout_ns (%.0f ms)",
			 (double)(Q.t_down - start) / MS, (double)hs / MS);
	EXPECT_OK(plx_tcp_shutdown(&r));
	end = plx_now_ns() + 2000 * MS;
	while ((rc = plx_reactor_fini(&r)) == PLX_EBUSY && plx_now_ns() < end)
		plx_reactor_wait(&r, 1);
	EXPECT_OK(rc);
	for (int i = 0; i < nfill; i++)
		close(fill[i]);
	close(lfd);
}

int main(void)
{
	seed = plx_test_seed("misbehaving_peer");
	target_init();
	side_init(&C, NULL, NULL, NULL);
	plx_reactor_node_id(&C.r, T.client_node, NULL);
	EXPECT_OK(plx_tcp_connect(&C.r, "127.0.0.1", T.port, &cep));
	WAIT_FOR(plx_ep_is_up(cep) && T.client_ep, WAIT_MS);
	/* the client opens its striped data connections too */
	T.base_conns = 1 + C.cfg.stripes;
	WAIT_FOR(plx__tcp_get(&T.r)->nconns == T.base_conns &&
			 plx__tcp_get(&C.r)->nconns == T.base_conns,
		 WAIT_MS);
	polls(100);
	EXPECT_EQ(plx__tcp_get(&T.r)->nconns, T.base_conns);

	test_garbage_before_handshake_closes();
	test_frames_out_of_order_before_handshake();
	test_hello_then_garbage_closes();
	test_stripe_hello_without_session_closes();
	test_protocol_violations_close();
	test_truncated_frames();
	test_reset_mid_write_payload();
	test_reset_then_idle_send();
	test_dribbled_frames_succeed();
	test_frames_behind_ready_land();
	test_held_ack_reaches_stalled_peer();
	test_no_riding_ack_without_the_cap();
	test_resolve_requests();
	test_refused_accesses_keep_connection();
	test_slow_reader_does_not_stall_target();
	test_unexpected_flood_then_reset();
	test_deregister_during_transfer();
	test_target_finishes_cleanly();
	test_unanswered_syn_waits_for_handshake_timeout();
	fprintf(stderr, "%d cases\n", case_no);
	return 0;
}
