/* SPDX-License-Identifier: MIT */
/*
 * A fault-injecting TCP proxy for tests: it listens on 127.0.0.1 (an
 * ephemeral port), and for every connection it accepts it connects to
 * 127.0.0.1:<target port> and forwards bytes both ways, applying at most
 * one fault per direction:
 *
 *   FPROXY_CLOSE    forward @at bytes, then close both sockets (FIN, or RST
 *                   where the kernel still holds unread bytes)
 *   FPROXY_RST      forward @at bytes, then reset both sockets (SO_LINGER 0:
 *                   bytes still in the proxy's send buffers are lost)
 *   FPROXY_STALL    forward @at bytes, then nothing in this direction for
 *                   @ns nanoseconds (UINT64_MAX: for ever), then go on
 *   FPROXY_DELAY    hold every chunk read at or after byte @at for @ns
 *                   before forwarding it; order is kept (for @len bytes,
 *                   0: to the end)
 *   FPROXY_CORRUPT  xor byte @at with @mask (0 means 0xff), once
 *   FPROXY_DRIBBLE  from byte @at on, forward one byte per send(), at most
 *                   one per fproxy_step() (and @ns apart, if set), for @len
 *                   bytes (0: to the end)
 *
 * Offsets count the bytes of one direction of one connection from 0. A
 * fault whose offset the stream never reaches never fires. A reset or
 * error on one side resets the other; a FIN is passed on once everything
 * before it has been forwarded.
 *
 * Two ways to drive it, pick one per proxy:
 *   - fproxy_step() from the test's own loop, between reactor polls
 *     (timeout 0: never blocks). Nothing else runs the proxy.
 *   - fproxy_start_thread(): a thread of its own that sleeps in poll()
 *     until a socket or a fault's timer needs it; it never busy-spins.
 *     Every other function may then be called from any thread.
 *
 * Plain C, non-blocking sockets, loopback only; test code (it allocates
 * with malloc and reports errors as -errno).
 */
#ifndef PLX_TEST_FAULT_PROXY_H
#define PLX_TEST_FAULT_PROXY_H

#include <stddef.h>
#include <stdint.h>

enum fproxy_kind {
	FPROXY_NONE = 0,
	FPROXY_CLOSE,
	FPROXY_RST,
	FPROXY_STALL,
	FPROXY_DELAY,
	FPROXY_CORRUPT,
	FPROXY_DRIBBLE,
};

/* Directions: from the connecting side to the target, and back. */
enum {
	FPROXY_C2S = 0,
	FPROXY_S2C = 1
};

struct fproxy_fault {
	enum fproxy_kind kind;
	uint64_t at;  /* stream offset in this direction where it applies */
	uint64_t len; /* DELAY, DRIBBLE: bytes affected from @at; 0: all */
	uint64_t ns;  /* STALL: duration; DELAY: hold; DRIBBLE: byte gap */
	uint8_t mask; /* CORRUPT: xor mask; 0 means 0xff */
};

/* One fault per direction, indexed by FPROXY_C2S / FPROXY_S2C. */
struct fproxy_faults {
	struct fproxy_fault dir[2];
};

/* How a connection ended. */
enum fproxy_end {
	FPROXY_OPEN = 0, /* still forwarding */
	FPROXY_EOF,	 /* both sides closed: FINs passed on */
	FPROXY_FAULT,	 /* a CLOSE or RST fault, or fproxy_drop_all() */
	FPROXY_ERROR,	 /* a side reset or failed: the other was reset */
	FPROXY_NOTARGET, /* connect() to the target failed */
};

struct fproxy_conn_info {
	uint64_t bytes[2]; /* forwarded, per direction */
	int fired[2];	   /* the direction's fault took effect */
	enum fproxy_end end;
};

struct fproxy_stats {
	uint64_t accepted; /* connections accepted */
	uint64_t live;	   /* of which still open */
	uint64_t fired;	   /* faults that took effect */
	uint64_t bytes[2]; /* forwarded, per direction, all connections */
};

struct fproxy;

/*
 * fproxy_create() - listen on 127.0.0.1, forward to 127.0.0.1:@target_port.
 * *@port_out: the proxy's port. Return: 0 or -errno.
 */
int fproxy_create(struct fproxy **out, uint16_t target_port,
		  uint16_t *port_out);

/*
 * fproxy_set_faults() - the faults for every connection accepted from now
 * on (NULL: none). Open connections keep theirs.
 */
void fproxy_set_faults(struct fproxy *p, const struct fproxy_faults *f);

/*
 * fproxy_step() - forward what can be forwarded now, waiting up to
 * @timeout_ms (0: not at all; -1: until something happens) for a socket
 * or a fault's timer. Return: >= 0, or -errno from poll(). Not with the
 * thread.
 */
int fproxy_step(struct fproxy *p, int timeout_ms);

/* fproxy_start_thread() - run the proxy on its own thread until destroy.
 * Return: 0 or -errno. */
int fproxy_start_thread(struct fproxy *p);

/* fproxy_drop_all() - close every open connection now (@rst: reset). */
void fproxy_drop_all(struct fproxy *p, int rst);

/*
 * fproxy_keep() - keep a record of every connection accepted from now on
 * (fproxy_conn_info()), with the first @capture bytes of each direction
 * as read, before any fault changed them (fproxy_capture()). Without it,
 * closed connections are forgotten and only fproxy_stats() counts them.
 */
void fproxy_keep(struct fproxy *p, size_t capture);

void fproxy_stats(struct fproxy *p, struct fproxy_stats *out);

/* Kept connections, in accept order from 0. Return: 0, or -ENOENT. */
int fproxy_conn_info(struct fproxy *p, unsigned int idx,
		     struct fproxy_conn_info *out);

/* Captured bytes of a kept connection's direction; *@len set. The buffer
 * stays valid until fproxy_destroy(); its bytes only grow while the
 * connection is open. NULL when @idx was not kept. */
const uint8_t *fproxy_capture(struct fproxy *p, unsigned int idx, int dir,
			      size_t *len);

/* fproxy_destroy() - stop the thread if any, close everything, free. */
void fproxy_destroy(struct fproxy *p);

#endif /* PLX_TEST_FAULT_PROXY_H */
