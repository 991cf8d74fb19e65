/* SPDX-License-Identifier: MIT */
/*
 * One TCP connection: socket set-up, handshake plumbing, the receive state
 * machine and the transmit queue.
 *
 * Receive: bytes are read into a 64 KiB staging buffer while the parser is
 * between frames (a header's worth only, after a payload too large for
 * it). A frame's payload lands in its destination (a posted receive, the
 * target region of a write, the buffer of a read, an unexpected slot): the
 * part that came in the same read as the header is copied from the
 * staging buffer, everything after it is received straight into the
 * destination, a large payload's end together with a header's worth of
 * what follows it (rx_payload()). Nothing is allocated on this path once
 * the handshake is done (its end swaps the 4 KiB staging buffer for the
 * 64 KiB one), and a payload length is trusted only after the parser's
 * limits.
 *
 * Back-pressure: a message with no posted receive waits in an unexpected
 * slot; when none is free (or it is larger than a slot), the connection
 * stops reading (EPOLLIN off) and TCP flow control pushes back on the
 * sender until a receive is posted or a slot frees. When every control
 * frame entry is in use (the peer is not reading our responses), the
 * connection also stops reading until the transmit queue drains.
 *
 * Transmit: header and payload of each frame leave from where they are
 * (header in the op or control entry, payload in the caller's buffer) in
 * one sendmsg() per batch of up to 64 iovecs. A submission on an idle
 * connection is sent at once (eager); EPOLLOUT is armed only after a
 * partial write.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "reactor/hot.h"
#include "transport/tcp/tcp_internal.h"

/*
 * The data path's socket calls, as plain system calls that return the
 * byte count or -errno. glibc's recv(), send() and sendmsg() are
 * cancellation points: each call switches asynchronous cancellation on
 * and off around the system call (about 35 instructions, callgrind), and a
 * pthread_cancel() landing there would unwind out of the middle of
 * plx_reactor_poll(). On x86-64 the system call is made inline: neither
 * libc's syscall() nor errno is touched. After a system call (this
 * project's VMs run the kernel with page-table isolation), every page and
 * cache line the poll touches again costs more than in a loop without
 * one, so the fewer the path touches the better (docs/benchmarks.md, stop
 * 14). Sanitizer builds keep the libc calls, whose interceptors check the
 * buffers.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PLX__LIBC_SOCKETS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define PLX__LIBC_SOCKETS 1
#endif
#endif
#if !defined(PLX__LIBC_SOCKETS) && defined(__x86_64__) &&                      \
	(defined(__GNUC__) || defined(__clang__))
static inline long raw_syscall6(long nr, long a1, long a2, long a3, long a4,
				long a5, long a6)
{
	register long r10 __asm__("r10") = a4;
	register long r8 __asm__("r8") = a5;
	register long r9 __asm__("r9") = a6;
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10),
			   "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret; /* -4095..-1: -errno */
}

static inline ssize_t sys_recv(int fd, void *buf, size_t len, int flags)
{
	return raw_syscall6(SYS_recvfrom, fd, (long)buf, (long)len, flags, 0,
			    0);
}

static inline ssize_t sys_recvmsg(int fd, struct msghdr *msg, int flags)
{
	return raw_syscall6(SYS_recvmsg, fd, (long)msg, flags, 0, 0, 0);
}

static inline ssize_t sys_send(int fd, const void *buf, size_t len, int flags)
{
	return raw_syscall6(SYS_sendto, fd, (long)buf, (long)len, flags, 0, 0);
}

static inline ssize_t sys_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	return raw_syscall6(SYS_sendmsg, fd, (long)msg, flags, 0, 0, 0);
}
#else
static inline ssize_t neg_errno(ssize_t n)
{
	return n < 0 ? -(ssize_t)errno : n;
}

static inline ssize_t sys_recv(int fd, void *buf, size_t len, int flags)
{
	return neg_errno(recv(fd, buf, len, flags));
}

static inline ssize_t sys_recvmsg(int fd, struct msghdr *msg, int flags)
{
	return neg_errno(recvmsg(fd, msg, flags));
}

static inline ssize_t sys_send(int fd, const void *buf, size_t len, int flags)
{
	return neg_errno(send(fd, buf, len, flags));
}

static inline ssize_t sys_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	return neg_errno(sendmsg(fd, msg, flags));
}
#endif

/*
 * The data path's copies of a variable length (a payload out of staging,
 * a small frame into the send gather buffer). libc's memcpy() is a call
 * through the PLT into libc's text, and it reads its tuning variables
 * from libc's data: after each system call that is three or four pages
 * the turnaround would not touch otherwise (see above). x86-64 copies
 * with "rep movsb" inline, which CPUs with ERMS (2012 on) run at memcpy()
 * speed for these sizes (at most the 64 KiB staging buffer). Sanitizer
 * builds keep memcpy(), which their interceptors check.
 */
#if !defined(PLX__LIBC_SOCKETS) && defined(__x86_64__) &&                      \
	(defined(__GNUC__) || defined(__clang__))
static inline void copy_bytes(void *dst, const void *src, size_t n)
{
	__asm__ volatile("rep movsb"
			 : "+D"(dst), "+S"(src), "+c"(n)
			 :
			 : "memory");
}
#else
static inline void copy_bytes(void *dst, const void *src, size_t n)
{
	memcpy(dst, src, n);
}
#endif

/* The status of a failed socket call's -errno @e */
static int sock_status(ssize_t e)
{
	/* a send racing the peer's reset sees EPIPE: the same loss */
	if (e == -EPIPE)
		return PLX_ECONNRESET;
	return e < 0 ? (int)e : PLX_EIO;
}

static int errno_status(void)
{
	return sock_status(errno ? -(ssize_t)errno : 0);
}

struct plx__conn *plx__conn_new(struct plx__tcp *t, int fd, uint8_t role,
				uint8_t state)
{
	struct plx__reactor *x = plx__r(t->r);
	struct epoll_event ev;
	struct plx__conn *c;
	int one = 1;

	c = plx__zalloc(x, sizeof(*c));
	if (!c)
		return NULL;
	c->stage = plx__alloc(x, PLX__TCP_STAGE_HS);
	c->stage_cap = PLX__TCP_STAGE_HS;
	if (!c->stage) {
		plx__free(x, c);
		return NULL;
	}
	c->t = t;
	c->fd = fd;
	c->role = role;
	c->state = state;
	c->rx_slot = -1;
	c->last_rx_ns = plx__now_coarse();
	/* covers connect() too: a SYN that is never answered times out */
	c->hs_deadline = c->last_rx_ns + t->cfg.handshake_timeout_ns;
	for (int i = PLX__TCP_CTRL - 1; i >= 0; i--) {
		c->ctrl[i].free_next = c->ctrl_free;
		c->ctrl_free = &c->ctrl[i];
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (t->cfg.sndbuf)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &t->cfg.sndbuf,
			   sizeof(int));
	if (t->cfg.rcvbuf)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &t->cfg.rcvbuf,
			   sizeof(int));
	ev.events = state == PLX__C_CONNECTING ? EPOLLOUT : EPOLLIN;
	ev.data.ptr = c;
	if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		plx__free(x, c->stage);
		plx__free(x, c);
		return NULL;
	}
	c->want_out = state == PLX__C_CONNECTING;
	c->next = t->conns;
	if (t->conns)
		t->conns->prev = c;
	t->conns = c;
	t->nconns++;
	if (!plx_timer_armed(&t->tick))
		plx_timer_start(t->r, &t->tick, t->tick_ns, t->tick_ns);
	return c;
}

/* An accepted connection's handshake ended (done, or the conn died). */
void plx__conn_hs_done(struct plx__conn *c)
{
	if (c->hs_counted) {
		c->hs_counted = false;
		c->t->nhandshakes--;
	}
}

void plx__conn_free(struct plx__conn *c)
{
	struct plx__tcp *t = c->t;
	struct plx__reactor *x = plx__r(t->r);

	plx__conn_hs_done(c);
	if (c->fd >= 0)
		close(c->fd);
	if (c->rx_paused)
		t->paused--;
	if (c->tx_dirty)
		t->ndirty--;
	if (c->unwatched)
		t->nunwatched--;
	if (c->rx_slot >= 0)
		t->slot_free[t->nslot_free++] = (uint32_t)c->rx_slot;
	if (c->rx_poolbuf)
		plx_pool_put(t->cfg.msg_pool, c->rx_poolbuf);
	if (t->stage)
		plx__stage_conn_gone(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		t->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	t->nconns--;
	plx__hs_wipe(&c->hs);
	plx__free(x, c->stage);
	plx__free(x, c);
	if (!t->nconns && !t->neps && plx_timer_armed(&t->tick))
		plx_timer_stop(t->r, &t->tick);
}

PLX__HOT struct plx__ctrl *plx__conn_ctrl(struct plx__conn *c)
{
	struct plx__ctrl *e = c->ctrl_free;

	if (!e)
		return NULL;
	c->ctrl_free = e->free_next;
	c->ctrl_used++;
	memset(&e->tx, 0, sizeof(e->tx));
	e->tx.hdr = e->hdr;
	return e;
}

PLX__HOT static void ctrl_put(struct plx__conn *c, struct plx__ctrl *e)
{
	if (e->cs) {
		/* a staged READ_RESP left: its slots, and the control entry
		 * a paused connection may be waiting for, are free */
		plx__cuda_put(c->t->r, e->cs);
		e->cs = NULL;
		if (c->rx_paused)
			c->t->kick = true;
	}
	e->free_next = c->ctrl_free;
	c->ctrl_free = e;
	c->ctrl_used--;
}

PLX__HOT void plx__conn_queue(struct plx__conn *c, struct plx__txe *e)
{
	e->next = NULL;
	e->prev = c->txq_tail;
	e->sent = 0;
	if (c->txq_tail)
		c->txq_tail->next = e;
	else
		c->txq_head = e;
	c->txq_tail = e;
	c->txq_n++;
}

PLX__HOT int plx__conn_send_ctrl(struct plx__conn *c,
				 const struct plx__frame *f,
				 const void *payload, uint64_t len)
{
	struct plx__ctrl *e = plx__conn_ctrl(c);
	int n;

	if (!e)
		return PLX_ENOBUFS;
	n = plx__wire_encode(f, e->hdr);
	if (n < 0) {
		ctrl_put(c, e);
		return n;
	}
	e->tx.hdr_len = (uint32_t)n;
	e->tx.payload = payload;
	e->tx.payload_len = len;
	plx__conn_queue(c, &e->tx);
	return 0;
}

static void drain_check(struct plx__conn *c);

/* A frame has fully left. */
PLX__HOT static void tx_done(struct plx__conn *c, struct plx__txe *e)
{
	struct plx__op *o;

	if (!e->is_op) {
		ctrl_put(c, (struct plx__ctrl *)(void *)e);
		return;
	}
	o = (struct plx__op *)((char *)e - offsetof(struct plx__op, tx));
	o->state = PLX__S_WAIT;
	if (o->cancelled) {
		/* cancelled or timed out while its bytes were leaving */
		plx__oplist_remove(plx__op_has_response(o) ? &c->wait_read :
							     &c->wait_ack,
				   o);
		plx__op_done(c->t, o, o->req.status, 0);
	}
}

/*
 * Small batches (a message and the ACK riding with it) are gathered into
 * one contiguous buffer and sent with send(): on this path the kernel's
 * iovec import costs more than copying a few dozen bytes. Anything larger
 * goes out with sendmsg() straight from the callers' buffers. @total is
 * the iovecs' bytes in all: the callers count them as they build them.
 */
#define PLX__TCP_GATHER 256

PLX__HOT static ssize_t tx_send(struct plx__conn *c, const struct iovec *iov,
				int k, const struct msghdr *msg, uint64_t total)
{
	uint8_t buf[PLX__TCP_GATHER];
	size_t off = 0;

	if (k == 1)
		return sys_send(c->fd, iov[0].iov_base, iov[0].iov_len,
				MSG_NOSIGNAL | MSG_DONTWAIT);
	if (total > PLX__TCP_GATHER)
		return sys_sendmsg(c->fd, msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	for (int i = 0; i < k; i++) {
		copy_bytes(buf + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	return sys_send(c->fd, buf, total, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void send_ack(struct plx__conn *c);

/*
 * PLX_OP_HEADROOM: the header of @e, which has not started to leave, is
 * copied just before its payload; returns where the frame now starts, as
 * one buffer. The header is final by then (a riding ACK is written before
 * a frame first leaves), and until the frame is gone the copy equals
 * e->hdr, so a frame cut short goes on from either.
 */
PLX__HOT static const uint8_t *room_hdr(const struct plx__txe *e)
{
	uint8_t *h = (uint8_t *)(uintptr_t)e->payload - e->hdr_len;

	copy_bytes(h, e->hdr, e->hdr_len);
	return h;
}

/* A flush is under way: the next poll need not flush @c. */
PLX__HOT static void dirty_clear(struct plx__conn *c)
{
	if (c->tx_dirty) {
		c->tx_dirty = false;
		c->t->ndirty--;
	}
}

/* a payload cut by the flush budget is cut at a multiple of this, and a
 * budget left smaller than it waits for the next poll */
#define PLX__TCP_CUT 4096

PLX__HOT int plx__conn_flush(struct plx__conn *c)
{
	struct iovec iov[PLX__TCP_IOV];
	struct msghdr msg = {.msg_iov = iov};
	/* plx_tcp_config.flush_max: with a fast reader (loopback, another
	 * core) the kernel takes a long queue as fast as it is offered, and
	 * one sendmsg() of 64 MiB kept the owner thread 30-40 ms in one poll
	 * (docs/tcp.md, "Flush budget") */
	uint64_t budget = c->t->cfg.flush_max;
	ssize_t n;

	/* an ACK held back rides with whatever leaves now, and one that is
	 * due leaves now (on its own: a data frame queued since would have
	 * taken it) */
	if ((c->rx_seq != c->ack_sent && c->txq_head) || c->ack_due)
		send_ack(c);
	c->ack_due = false;
	dirty_clear(c);
	while (c->txq_head && c->fd >= 0 && c->state != PLX__C_CONNECTING) {
		uint64_t total = 0;
		int k = 0;

		if (budget < PLX__TCP_CUT) {
			plx__conn_mark_dirty(c); /* the next poll goes on */
			break;
		}
		for (struct plx__txe *e = c->txq_head;
		     e && k < PLX__TCP_IOV - 1 && total < budget; e = e->next) {
			uint64_t off = e->sent, take;
			/* the header goes into the headroom: header and
			 * payload are then one iovec */
			bool one = off == 0 && e->room;
			bool cut;

			if (off < e->hdr_len) {
				iov[k].iov_base = (void *)(one ? room_hdr(e) :
								 e->hdr + off);
				iov[k++].iov_len = e->hdr_len - off;
				total += e->hdr_len - off;
				off = 0;
			} else {
				off -= e->hdr_len;
			}
			/* a payload past the budget is cut (its header
			 * alone may have passed it), and nothing after it may
			 * go before the rest of it */
			take = e->payload_len - off;
			cut = total + take > budget;
			if (cut) {
				uint64_t room =
					total < budget ? budget - total : 0;

				take = room - room % PLX__TCP_CUT;
			}
			if (take && one) {
				iov[k - 1].iov_len += take;
				total += take;
			} else if (take) {
				iov[k].iov_base = (void *)(e->payload + off);
				iov[k++].iov_len = take;
				total += take;
			}
			if (cut)
				break;
		}
		msg.msg_iovlen = (size_t)k;
		n = tx_send(c, iov, k, &msg, total);
		if (n < 0) {
			if (n == -EINTR)
				continue;
			if (n == -EAGAIN) {
				if (!c->want_out)
					plx__tcp_watch(c, true);
				return 0;
			}
			return sock_status(n);
		}
		budget = (uint64_t)n < budget ? budget - (uint64_t)n : 0;
		while (n > 0) {
			struct plx__txe *e = c->txq_head;
			uint64_t left = e->hdr_len + e->payload_len - e->sent;

			if ((uint64_t)n < left) {
				e->sent += (uint64_t)n;
				break;
			}
			n -= (ssize_t)left;
			c->txq_head = e->next;
			if (c->txq_head)
				c->txq_head->prev = NULL;
			else
				c->txq_tail = NULL;
			c->txq_n--;
			tx_done(c, e);
		}
	}
	if (c->want_out && !c->txq_head && c->state != PLX__C_CONNECTING)
		plx__tcp_watch(c, false);
	if (c->state == PLX__C_DRAIN)
		drain_check(c);
	return 0;
}

/*
 * Send @e, the only frame of an idle connection, without the queue. What
 * does not leave at once is queued as plx__conn_flush() would leave it,
 * and flush goes on with it.
 */
PLX__HOT static int send_idle(struct plx__conn *c, struct plx__txe *e)
{
	struct iovec iov[2] = {{(void *)e->hdr, e->hdr_len},
			       {(void *)e->payload, e->payload_len}};
	struct msghdr msg = {.msg_iov = iov,
			     .msg_iovlen = e->payload_len ? 2 : 1};
	uint64_t len = e->hdr_len + e->payload_len;
	ssize_t n;

	if (e->room) {
		iov[0].iov_base = (void *)room_hdr(e);
		iov[0].iov_len = len;
		msg.msg_iovlen = 1;
	}
	dirty_clear(c);
	do
		n = tx_send(c, iov, (int)msg.msg_iovlen, &msg, len);
	while (n == -EINTR);
	if (PLX__LIKELY((uint64_t)n == len)) {
		tx_done(c, e);
		return 0;
	}
	plx__conn_queue(c, e);
	if (n < 0)
		return n == -EAGAIN ? plx__conn_flush(c) : sock_status(n);
	e->sent = (uint64_t)n;
	return plx__conn_flush(c);
}

PLX__HOT int plx__conn_submit(struct plx__conn *c, struct plx__txe *e,
			      bool hold)
{
	if (hold || c->want_out) {
		plx__conn_queue(c, e);
		return 0;
	}
	/* the state in which flush would send nothing before @e (no ACK
	 * owed but the one riding in its header) and build the same one or
	 * two iovecs: skip the queue's and flush's bookkeeping on the
	 * per-message path (docs/benchmarks.md, "Stop 15") */
	if (!c->txq_head && !c->ack_due && c->ack_sent == c->rx_seq &&
	    e->hdr_len + e->payload_len <= c->t->cfg.flush_max)
		return send_idle(c, e);
	plx__conn_queue(c, e);
	return plx__conn_flush(c);
}

/* ---- failure ------------------------------------------------------------ */

void plx__conn_fail(struct plx__conn *c, int status)
{
	if (c->state == PLX__C_DEAD)
		return;
	plx__log(plx__r(c->t->r), PLX_LOG_INFO, "tcp: connection %d down: %s",
		 c->fd, plx_errname(status));
	c->state = PLX__C_DEAD;
	if (c->ep)
		plx__ep_conn_lost(c->ep, c, status);
	else
		plx__conn_reap(c);
}

/* Close the socket now; free the struct at the end of the socket phase,
 * so callers up the stack may still look at c->state. */
void plx__conn_reap(struct plx__conn *c)
{
	plx__conn_hs_done(c);
	c->state = PLX__C_DEAD;
	if (c->reap)
		return;
	c->reap = true;
	c->t->nreap++;
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
}

void plx__tcp_reap(struct plx__tcp *t)
{
	struct plx__conn *c, *next;

	for (c = t->conns; c && t->nreap; c = next) {
		next = c->next;
		if (c->reap) {
			t->nreap--;
			plx__conn_free(c);
		}
	}
}

/* Take @e, which is in @c's transmit queue, out of it: O(1), so that
 * cancelling ops queued behind a full socket stays cheap. */
void plx__conn_unqueue(struct plx__conn *c, struct plx__txe *e)
{
	/* a riding ACK that will not leave now: send one again (a repeated
	 * cumulative ACK is harmless) */
	if (e->is_op && !e->sent && (e->hdr[3] & PLX__F_ACK)) {
		c->ack_sent = 0;
		c->ack_due = true;
		if (!c->want_out)
			plx__conn_mark_dirty(c);
	}
	if (e->prev)
		e->prev->next = e->next;
	else
		c->txq_head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->txq_tail = e->prev;
	e->next = e->prev = NULL;
	c->txq_n--;
}

/* A losing duplicate: close it once both directions are quiet. */
static void drain_check(struct plx__conn *c);

void plx__conn_drain(struct plx__conn *c)
{
	drain_check(c);
}

static void drain_check(struct plx__conn *c)
{
	struct plx__frame f = {.opcode = PLX__OP_CLOSE};

	if (c->wait_ack.n || c->wait_read.n || c->txq_head || c->rx_left)
		return;
	if (!c->close_sent)
		send_ack(c); /* one held back leaves before the CLOSE */
	if (!c->close_sent && !plx__conn_send_ctrl(c, &f, NULL, 0)) {
		c->close_sent = true;
		plx__conn_flush(c);
		return;
	}
	if (c->close_sent && c->close_rcvd && !c->txq_head)
		plx__conn_fail(c, 0);
}

/* ---- handshake ---------------------------------------------------------- */

void plx__conn_start_handshake(struct plx__conn *c)
{
	struct plx__tcp *t = c->t;
	struct plx__reactor *x = plx__r(t->r);
	struct plx__ctrl *e;
	int rc;

	c->hs_deadline = plx__now_coarse() + t->cfg.handshake_timeout_ns;
	rc = plx__hs_init(&c->hs, x->cfg.node_id, x->epoch, c->role, c->index,
			  plx__rdma_attached(t->r) ?
				  PLX__CAP_ALL :
				  PLX__CAP_ALL & ~(uint32_t)PLX__CAP_RDMA,
			  t->have_key ? t->key : NULL);
	e = rc ? NULL : plx__conn_ctrl(c);
	if (!e) {
		plx__conn_fail(c, rc ? rc : PLX_ENOBUFS);
		return;
	}
	e->tx.hdr_len = (uint32_t)plx__hs_hello(&c->hs, e->hdr);
	plx__conn_queue(c, &e->tx);
	rc = plx__conn_flush(c);
	if (rc)
		plx__conn_fail(c, rc);
}

/* The handshake is done: the small staging buffer of a connection in its
 * handshake gives way to the full one, with the bytes not parsed yet.
 * Without memory for it the connection goes on with the small one. */
static void stage_grow(struct plx__conn *c)
{
	struct plx__reactor *x = plx__r(c->t->r);
	uint32_t n = c->rx_end - c->rx_start;
	uint8_t *s;

	if (c->stage_cap >= PLX__TCP_STAGE)
		return;
	s = plx__alloc(x, PLX__TCP_STAGE);
	if (!s)
		return;
	memcpy(s, c->stage + c->rx_start, n);
	plx__free(x, c->stage);
	c->stage = s;
	c->stage_cap = PLX__TCP_STAGE;
	c->rx_start = 0;
	c->rx_end = n;
}

static int hs_frame(struct plx__conn *c)
{
	uint8_t out[PLX__WIRE_HDR_MAX];
	size_t out_len = 0;
	struct plx__ctrl *e;
	int rc = plx__hs_input(&c->hs, &c->cur, out, &out_len);

	if (out_len) {
		e = plx__conn_ctrl(c);
		if (e) {
			memcpy(e->hdr, out, out_len);
			e->tx.hdr_len = (uint32_t)out_len;
			plx__conn_queue(c, &e->tx);
			plx__conn_flush(c); /* best effort on failure paths */
		}
	}
	if (rc < 0)
		return rc;
	if (rc == 1) {
		c->state = PLX__C_UP;
		stage_grow(c);
		plx__conn_hs_done(c);
		plx__ep_attach(c);
	}
	return 0;
}

/* ---- receive ------------------------------------------------------------ */

static void pause_rx(struct plx__conn *c)
{
	if (c->rx_paused)
		return;
	c->rx_paused = true;
	c->t->paused++;
	plx__tcp_watch(c, c->want_out);
}

static void resume_rx(struct plx__conn *c)
{
	if (!c->rx_paused)
		return;
	c->rx_paused = false;
	c->t->paused--;
	plx__tcp_watch(c, c->want_out);
}

static void nack(struct plx__conn *c, uint64_t seq, int status)
{
	struct plx__frame f = {
		.opcode = PLX__OP_NACK, .id = seq, .status = status};

	/* a control entry was reserved before the frame was accepted */
	plx__conn_send_ctrl(c, &f, NULL, 0);
}

/* Answer a RESOLVE_REQ whose name is in c->name. */
static void resolve_answer(struct plx__conn *c)
{
	struct plx__frame r = {.opcode = PLX__OP_RESOLVE_RESP, .id = c->cur.id};
	struct plx__ctrl *e = plx__conn_ctrl(c);
	char name[PLX__WIRE_NAME_MAX + 1];
	struct plx_region *reg;
	struct plx_desc d;
	int n;

	if (!e)
		return; /* reserved before the frame was accepted */
	memcpy(name, c->name, c->cur.payload_len);
	name[c->cur.payload_len] = 0;
	reg = strlen(name) == c->cur.payload_len ? plx_mem_find(c->t->r, name) :
						   NULL;
	if (!reg || plx_mem_desc(c->t->r, reg, &d) ||
	    plx_desc_serialize(&d, e->body, sizeof(e->body)) != PLX_DESC_BYTES)
		r.status = PLX_ENOENT;
	else
		r.payload_len = PLX_DESC_BYTES;
	n = plx__wire_encode(&r, e->hdr);
	e->tx.hdr_len = (uint32_t)n;
	e->tx.payload = r.payload_len ? e->body : NULL;
	e->tx.payload_len = r.payload_len;
	plx__conn_queue(c, &e->tx);
}

/* Everything a frame does once its payload is in place. */
PLX__HOT static int frame_done(struct plx__conn *c)
{
	struct plx__tcp *t = c->t;
	struct plx__frame *f = &c->cur;
	struct plx__op *o = c->rx_op;
	uint64_t prev = c->rx_seq;

	c->rx_state = PLX__RX_HDR;
	c->rx_op = NULL;
	switch (f->opcode) {
	case PLX__OP_SEND:
		c->rx_seq = f->id; /* checked increasing in frame_dest() */
		c->rx_unacked += f->payload_len;
		if (o) {
			if (o->cancelled) {
				plx__op_done(t, o, o->req.status, 0);
			} else if (c->rx_status) {
				plx__op_done(t, o, c->rx_status, 0);
				nack(c, c->rx_seq, c->rx_status);
			} else {
				plx__op_done(t, o, 0, f->payload_len);
			}
		} else if (c->rx_poolbuf) {
			void *buf = c->rx_poolbuf;

			c->rx_poolbuf = NULL;
			t->cfg.msg_cb(t->r, c->ep->canon, f->tag, buf,
				      f->payload_len, t->cfg.cb_arg);
		} else if (c->rx_slot >= 0) {
			plx__unexp_push(c->ep, f->tag, f->payload_len,
					c->rx_slot);
			c->rx_slot = -1;
		} else {
			nack(c, c->rx_seq,
			     c->rx_status ? c->rx_status : PLX_ECANCELED);
		}
		break;
	case PLX__OP_WRITE:
	case PLX__OP_WRITE_IMM:
		c->rx_seq = f->id;
		c->rx_unacked += f->payload_len;
		if (c->rx_cuda) {
			/* still being copied to the device: acknowledged (or
			 * refused) when its last copy completes */
			plx__stage_rx_frame(c, prev);
			break;
		}
		if (c->rx_status) {
			nack(c, c->rx_seq, c->rx_status);
			break;
		}
		if (f->opcode == PLX__OP_WRITE_IMM && t->cfg.imm_cb)
			t->cfg.imm_cb(t->r, c->ep->canon, f->imm, f->addr,
				      f->payload_len, t->cfg.cb_arg);
		break;
	case PLX__OP_READ_RESP:
		if (o)
			plx__op_done(t, o, o->cancelled ? o->req.status : 0,
				     o->cancelled ? 0 : f->payload_len);
		break;
	case PLX__OP_RESOLVE_REQ:
		resolve_answer(c);
		break;
	case PLX__OP_RDMA_CM:
		/* c->name holds the message (at most PLX__WIRE_CM_MAX bytes) */
		if (c->ep)
			plx__rdma_cm_input(c->ep->canon, c->name,
					   f->payload_len);
		break;
	case PLX__OP_RESOLVE_RESP:
		if (!o)
			break;
		if (o->cancelled) {
			plx__op_done(t, o, o->req.status, 0);
		} else if (f->status < 0) {
			plx__op_done(t, o, f->status, 0);
		} else {
			struct plx_desc d;
			int rc = plx_desc_parse(&d, c->descbuf,
						sizeof(c->descbuf));

			if (rc > 0)
				*(struct plx_desc *)o->dst = d;
			plx__op_done(t, o, rc > 0 ? 0 : PLX_EBADMSG, 0);
		}
		break;
	default:
		break;
	}
	return 0;
}

/* The read or resolve waiting for response @id, or NULL. The list is in
 * id order (requests are numbered as they are queued), so a late answer
 * to one that was cancelled or timed out costs no walk of the rest. */
static struct plx__op *wait_read_find(struct plx__conn *c, uint64_t id)
{
	struct plx__op *o = c->wait_read.head;

	while (o && o->seq < id)
		o = o->next;
	return o && o->seq == id ? o : NULL;
}

/* Choose where the payload of the frame in c->cur goes. Return 1 when the
 * connection must stop here (header left unconsumed), 0 to go on, or a
 * negative status to close the connection. */
PLX__HOT static int frame_dest(struct plx__conn *c)
{
	struct plx__tcp *t = c->t;
	struct plx__frame *f = &c->cur;
	struct plx_region *reg;
	struct plx__op *o;
	int slot, rc;

	c->rx_dst = NULL;
	c->rx_status = 0;
	c->rx_op = NULL;
	/* sequenced frames carry increasing ids; a gap is an op the sender
	 * cancelled before it left */
	if ((f->opcode == PLX__OP_SEND || f->opcode == PLX__OP_WRITE ||
	     f->opcode == PLX__OP_WRITE_IMM) &&
	    f->id <= c->rx_seq)
		return PLX_EPROTO;
	switch (f->opcode) {
	case PLX__OP_SEND:
		if (f->payload_len > t->cfg.max_message)
			return PLX_EPROTO;
		o = plx__ep_match(c->ep->canon, f->tag);
		if (o) {
			c->rx_op = o;
			o->state = PLX__S_RXING;
			o->conn = c;
			if (f->payload_len > o->len)
				c->rx_status = PLX_EMSGSIZE;
			else
				c->rx_dst = o->dst;
			return 0;
		}
		if (t->cfg.msg_cb && t->cfg.msg_pool) {
			if (f->payload_len >
			    plx_pool_buf_size(t->cfg.msg_pool)) {
				c->rx_status = PLX_EMSGSIZE; /* dropped */
				return 0;
			}
			c->rx_poolbuf = plx_pool_get(t->cfg.msg_pool);
			if (!c->rx_poolbuf)
				return 1; /* wait for buffers to come back */
			c->rx_dst = c->rx_poolbuf;
			return 0;
		}
		slot = f->payload_len <= t->cfg.unexpected_size ?
			       plx__slot_get(t) :
			       -1;
		if (slot < 0)
			return 1; /* wait for a receive or a slot */
		c->rx_slot = slot;
		c->rx_dst = t->slots + (size_t)slot * t->cfg.unexpected_size;
		return 0;
	case PLX__OP_WRITE:
	case PLX__OP_WRITE_IMM:
		rc = plx_mem_lookup(t->r, f->addr, f->payload_len, f->key,
				    PLX_ACCESS_REMOTE_WRITE, &reg);
		if (rc)
			c->rx_status = rc;
		else if (reg->plx_hints & PLX_HINT_CUDA)
			return plx__stage_rx_begin(c, f->addr);
		else
			c->rx_dst = (uint8_t *)(uintptr_t)f->addr;
		return 0;
	case PLX__OP_READ_RESP:
		o = wait_read_find(c, f->id);
		if (!o) {
			if (f->id > c->tx_rid)
				return PLX_EPROTO;
			return 0; /* cancelled earlier: drop the payload */
		}
		/* a wrong length fails the connection, and with it the read:
		 * still on the list, so that it completes */
		if (o->kind != PLX__K_READ ||
		    (f->status == 0 && f->payload_len != o->len))
			return PLX_EPROTO;
		plx__oplist_remove(&c->wait_read, o);
		if (f->status < 0) {
			plx__op_done(t, o,
				     o->cancelled ? o->req.status : f->status,
				     0);
			return 0;
		}
		o->state = PLX__S_RXING;
		c->rx_op = o;
		c->rx_dst = o->dst;
		return 0;
	case PLX__OP_RESOLVE_REQ:
	case PLX__OP_RDMA_CM: /* at most PLX__WIRE_CM_MAX bytes (wire.h) */
		c->rx_dst = c->name;
		return 0;
	case PLX__OP_RESOLVE_RESP:
		o = wait_read_find(c, f->id);
		if (!o)
			return f->id > c->tx_rid ? PLX_EPROTO : 0;
		if (o->kind != PLX__K_RESOLVE)
			return PLX_EPROTO;
		plx__oplist_remove(&c->wait_read, o);
		o->state = PLX__S_RXING;
		c->rx_op = o;
		c->rx_dst = c->descbuf;
		return 0;
	default:
		return 0; /* RESOLVE_RESP etc.: dropped */
	}
}

/* frame_ctrl(): the frame cannot be handled now (no bounce slot): leave
 * its header in place and pause until slots come back */
#define RX_RETRY 3

/* A cumulative ACK (an ACK frame's, or one riding on a data frame):
 * everything sent up to @seq arrived. */
PLX__HOT static int ack_input(struct plx__conn *c, uint64_t seq)
{
	struct plx__op *o;

	if (seq > c->tx_seq)
		return PLX_EPROTO;
	while ((o = c->wait_ack.head) && o->seq <= seq) {
		if (o->state != PLX__S_WAIT)
			return PLX_EPROTO; /* acked before sent */
		plx__oplist_pop(&c->wait_ack);
		plx__op_done(c->t, o, o->cancelled ? o->req.status : 0,
			     o->cancelled ? 0 : o->len);
	}
	return 0;
}

/* Frames without payload, handled as soon as the header is in. */
PLX__HOT static int frame_ctrl(struct plx__conn *c)
{
	struct plx__tcp *t = c->t;
	struct plx__frame *f = &c->cur;
	struct plx_region *reg;
	struct plx__op *o;
	int rc;

	switch (f->opcode) {
	case PLX__OP_ACK:
		return ack_input(c, f->seq);
	case PLX__OP_NACK:
		if (f->id > c->tx_seq || !f->id)
			return PLX_EPROTO;
		for (o = c->wait_ack.head; o && o->seq != f->id; o = o->next)
			;
		if (o && o->state == PLX__S_WAIT) {
			plx__oplist_remove(&c->wait_ack, o);
			plx__op_done(t, o,
				     o->cancelled ? o->req.status : f->status,
				     0);
		}
		break;
	case PLX__OP_READ_REQ: {
		struct plx__frame r = {.opcode = PLX__OP_READ_RESP,
				       .id = f->id};
		const void *src = NULL;

		rc = plx_mem_lookup(t->r, f->addr, f->len, f->key,
				    PLX_ACCESS_REMOTE_READ, &reg);
		if (rc) {
			r.status = rc;
		} else if (reg->plx_hints & PLX_HINT_CUDA) {
			/* answered once copied out of the device */
			return plx__stage_read_req(c, f) ? RX_RETRY : 0;
		} else {
			src = (const void *)(uintptr_t)f->addr;
			r.payload_len = (uint32_t)f->len;
		}
		plx__conn_send_ctrl(c, &r, src, src ? f->len : 0);
		break;
	}
	case PLX__OP_PING: {
		struct plx__frame r = {.opcode = PLX__OP_PONG, .id = f->id};

		plx__conn_send_ctrl(c, &r, NULL, 0);
		break;
	}
	case PLX__OP_PONG:
		break;
	case PLX__OP_CLOSE:
		c->close_rcvd = true;
		if (f->status < 0)
			return f->status;
		/* CLOSE(0): the peer retires this connection (it lost a
		 * simultaneous open): stop using it, finish what is in
		 * flight, answer with our own CLOSE */
		if (c->state == PLX__C_UP && c->ep)
			plx__ep_retire(c->ep, c);
		c->state = PLX__C_DRAIN;
		drain_check(c);
		return c->state == PLX__C_DEAD ? 1 : 0;
	case PLX__OP_HELLO:
	case PLX__OP_READY:
		return PLX_EPROTO; /* handshake frames after the handshake */
	default:
		break;
	}
	return 0;
}

/* Handle the frames in the staging buffer. Return 1 when the connection
 * paused (or closed), 0 when the buffer needs more bytes, <0 on error. */
PLX__HOT static int rx_staged(struct plx__conn *c)
{
	struct plx__tcp *t = c->t;

	while (c->rx_state == PLX__RX_HDR) {
		uint32_t avail = c->rx_end - c->rx_start;

		/* a frame handler may have failed the connection (e.g. the
		 * handshake attached it to a peer that refused it) */
		if (c->state == PLX__C_DEAD)
			return 1;
		uint32_t max = t->cfg.max_frame > t->cfg.max_message ?
				       t->cfg.max_frame :
				       t->cfg.max_message;
		int hl, rc;

		if (!avail)
			return 0;
		hl = plx__wire_parse(&c->cur, c->stage + c->rx_start, avail,
				     max);
		if (hl < 0)
			return PLX_EPROTO;
		if (hl == 0)
			return 0;
		if (c->state == PLX__C_HANDSHAKE) {
			c->rx_start += (uint32_t)hl;
			rc = hs_frame(c);
			if (rc)
				return rc;
			continue;
		}
		/* keep room for the NACK / ACK / response this may need */
		if (c->ctrl_used + 2 >= PLX__TCP_CTRL)
			return 2;
		/* a riding ACK is taken first: cumulative, so taking it again
		 * when the frame is retried changes nothing */
		if (c->cur.flags & PLX__F_ACK) {
			rc = ack_input(c, c->cur.ack);
			if (rc)
				return rc;
		}
		if (c->cur.payload_len == 0 && c->cur.opcode != PLX__OP_SEND &&
		    c->cur.opcode != PLX__OP_WRITE &&
		    c->cur.opcode != PLX__OP_WRITE_IMM &&
		    c->cur.opcode != PLX__OP_READ_RESP &&
		    c->cur.opcode != PLX__OP_RESOLVE_RESP) {
			rc = frame_ctrl(c);
			if (rc == RX_RETRY)
				return 1;
			c->rx_start += (uint32_t)hl;
			if (rc)
				return rc;
			continue;
		}
		rc = frame_dest(c);
		if (rc)
			return rc;
		c->rx_start += (uint32_t)hl;
		c->rx_left = c->cur.payload_len;
		c->rx_big = c->rx_left >= PLX__TCP_BIG;
		c->rx_state = PLX__RX_PAYLOAD;
		/* the part of the payload that came with the header */
		avail = c->rx_end - c->rx_start;
		if (avail > c->rx_left)
			avail = (uint32_t)c->rx_left;
		/* a bounce slot takes at most its room (chunks may be smaller
		 * than the staging buffer); the rest waits there for the
		 * payload state (plx__conn_rx) */
		if (c->rx_cuda && avail > c->rx_room)
			avail = (uint32_t)c->rx_room;
		if (avail) {
			if (c->rx_dst) {
				copy_bytes(c->rx_dst, c->stage + c->rx_start,
					   avail);
				c->rx_dst += avail;
			}
			c->rx_start += avail;
			c->rx_left -= avail;
			if (c->rx_cuda)
				plx__stage_rx_landed(c, avail);
		}
		if (!c->rx_left)
			frame_done(c);
	}
	return 0;
}

/* What a cumulative ACK may cover: everything received, except frames
 * still being copied to device memory and those after them. */
PLX__HOT static uint64_t ack_upto(const struct plx__conn *c)
{
	return c->stg_frames ? c->stg_ack : c->rx_seq;
}

PLX__HOT static void send_ack(struct plx__conn *c)
{
	struct plx__frame f = {.opcode = PLX__OP_ACK};
	uint64_t upto = ack_upto(c);

	if (upto <= c->ack_sent || c->state < PLX__C_UP)
		return;
	f.seq = upto;
	if (!plx__conn_send_ctrl(c, &f, NULL, 0)) {
		c->ack_sent = upto;
		c->rx_unacked = 0;
	}
}

PLX__HOT uint64_t plx__conn_ride_ack(struct plx__conn *c)
{
	uint64_t upto = ack_upto(c);

	if (!(c->hs.caps_common & PLX__CAP_ACK_RIDE) || upto <= c->ack_sent ||
	    c->state < PLX__C_UP)
		return 0;
	c->ack_sent = upto;
	c->rx_unacked = 0;
	c->ack_due = false;
	return upto;
}

void plx__conn_ack_ahead(struct plx__conn *c)
{
	send_ack(c);
	c->ack_due = false;
}

/* Queue the ACK now allowed (a staged frame's copies completed), and any
 * response queued with it, for the next poll's flush. */
void plx__conn_ack_soon(struct plx__conn *c)
{
	send_ack(c);
	if (c->txq_head && !c->want_out)
		plx__conn_mark_dirty(c);
}

/* Send a coalesced ACK still held back (periodic tick). */
void plx__conn_ack_now(struct plx__conn *c)
{
	int rc;

	if (ack_upto(c) <= c->ack_sent || c->reap || c->want_out)
		return;
	send_ack(c);
	rc = plx__conn_flush(c);
	if (rc)
		plx__conn_fail(c, rc);
}

/* Bytes arrived: the peer is alive (the next tick stamps the time: no
 * clock read per read), and this connection stays on the direct-polling
 * list for a while (striped pieces arrive in streams). */
PLX__HOT static void rx_seen(struct plx__conn *c)
{
	c->rx_fresh = true;
	c->hot_until = c->t->npolls + 4096;
}

/*
 * Read up to @want payload bytes into @dst. A payload that goes straight
 * into place (a large one) is read together with a header's worth of
 * what follows it, into the empty staging buffer: while frames stream in,
 * the next header then comes with this read, not with a recv() of its
 * own. Return the payload bytes read (at most @want), 0 when the peer
 * closed, or -errno.
 */
PLX__HOT static ssize_t rx_payload(struct plx__conn *c, uint8_t *dst,
				   uint64_t want)
{
	struct iovec iov[2];
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
	ssize_t n;

	if (!c->rx_big || !c->rx_dst || c->rx_cuda)
		return sys_recv(c->fd, dst, want, MSG_DONTWAIT);
	iov[0].iov_base = dst;
	iov[0].iov_len = want;
	iov[1].iov_base = c->stage; /* nothing is staged: rx_start == rx_end */
	iov[1].iov_len = PLX__WIRE_HDR_MAX;
	n = sys_recvmsg(c->fd, &msg, MSG_DONTWAIT);
	if (n > 0 && (uint64_t)n > want) {
		c->rx_start = 0;
		c->rx_end = (uint32_t)((uint64_t)n - want);
		n = (ssize_t)want;
	}
	return n;
}

/* Read and handle what the socket has, within a bound. */
PLX__HOT int plx__conn_rx(struct plx__conn *c)
{
	int events = 0, rc = 0;
	/* a read shorter than asked for emptied the socket: do not pay a
	 * syscall to hear EAGAIN (level-triggered epoll, or the next direct
	 * poll, sees anything that arrives later) */
	bool drained = false;
	/* the loop stopped with the socket empty between frames, or right
	 * after a large frame (big_done): the peer has nothing more in
	 * flight to us, so it may wait for our ACK */
	bool idle = false;
	/* a payload read straight into place ended its frame, and this side
	 * waits for no responses: return to the owner rather than pay a
	 * recv() that most often says EAGAIN (a ping-pong's next frame comes
	 * only after the owner answers); what arrived meanwhile is read at
	 * the next poll. A reader with responses in flight reads on: they
	 * are coming, and its owner resubmits a poll's completions in one
	 * batch */
	bool big_done = false;
	uint32_t space;

	for (int round = 0; round < 8 && c->state != PLX__C_DEAD; round++) {
		ssize_t n;

		if (c->rx_state == PLX__RX_PAYLOAD) {
			uint8_t *dst;
			uint64_t want = c->rx_left;

			if (c->rx_cuda) {
				/* into a bounce slot, at most its room */
				if (!c->rx_cs && !plx__stage_rx_slot(c)) {
					rc = 1; /* resumed when slots return */
					break;
				}
				if (want > c->rx_room)
					want = c->rx_room;
			}
			dst = c->rx_dst ? c->rx_dst : c->t->discard;
			if (!c->rx_dst && want > PLX__TCP_STAGE)
				want = PLX__TCP_STAGE;
			if (PLX__UNLIKELY(c->rx_start < c->rx_end)) {
				/* payload still staged: a bounce slot took
				 * only its room of what came with the header */
				n = (ssize_t)(c->rx_end - c->rx_start);
				if ((uint64_t)n > want)
					n = (ssize_t)want;
				copy_bytes(dst, c->stage + c->rx_start,
					   (size_t)n);
				c->rx_start += (uint32_t)n;
			} else {
				if (drained)
					break;
				n = rx_payload(c, dst, want);
				if (n > 0) {
					rx_seen(c);
					drained = (uint64_t)n < want;
				}
			}
			if (n > 0) {
				if (c->rx_dst)
					c->rx_dst += n;
				c->rx_left -= (uint64_t)n;
				if (c->rx_cuda)
					plx__stage_rx_landed(c, (uint64_t)n);
				if (!c->rx_left) {
					frame_done(c);
					events++;
					big_done = c->rx_big && !c->wait_read.n;
				}
				continue;
			}
		} else {
			rc = rx_staged(c);
			if (rc == 2) {
				/* out of control entries: send what is queued
				 * and go on if that freed some; otherwise the
				 * peer is not reading, so stop reading too
				 * (resumed when the socket drains) */
				send_ack(c);
				rc = plx__conn_flush(c);
				if (rc)
					break;
				if (c->ctrl_used + 2 < PLX__TCP_CTRL)
					continue;
				rc = 1;
			}
			if (rc)
				break;
			if (c->rx_state == PLX__RX_PAYLOAD)
				continue;
			if (c->rx_start == c->rx_end) {
				c->rx_start = c->rx_end = 0;
			} else if (c->rx_start) {
				memmove(c->stage, c->stage + c->rx_start,
					c->rx_end - c->rx_start);
				c->rx_end -= c->rx_start;
				c->rx_start = 0;
			}
			if (drained) {
				idle = !c->rx_end;
				break;
			}
			if (big_done && !c->rx_end) {
				/* taken as idle: most often nothing follows
				 * (the peer waits for this ACK before its next
				 * op), and one ACK per large frame costs a
				 * streaming peer little */
				idle = true;
				break;
			}
			/* after a large frame, read just a header's worth
			 * into staging, so the next large payload is copied
			 * by the kernel straight into place, not through here */
			space = c->stage_cap - c->rx_end;
			if (c->rx_big && space > PLX__WIRE_HDR_MAX)
				space = PLX__WIRE_HDR_MAX;
			n = sys_recv(c->fd, c->stage + c->rx_end, space,
				     MSG_DONTWAIT);
			if (n > 0) {
				rx_seen(c);
				drained = (uint32_t)n < space;
				c->rx_end += (uint32_t)n;
				events++;
				continue;
			}
		}
		if (n == 0) {
			rc = PLX_ECONNRESET; /* orderly shutdown mid-session */
			break;
		}
		if (n == -EINTR)
			continue;
		if (n != -EAGAIN)
			rc = sock_status(n);
		else
			idle = c->rx_state == PLX__RX_HDR && !c->rx_end;
		break;
	}
	if (rc == 1) {
		if (c->state != PLX__C_DEAD)
			pause_rx(c);
		idle = true; /* stopped reading: acknowledge what we have */
		rc = 0;
	}
	if (c->state == PLX__C_DEAD)
		return events;
	if (rc < 0) {
		plx__conn_fail(c, rc);
		return events + 1;
	}
	/* Coalesced ACK: while more of the peer's data is already here or on
	 * its way (the read stopped mid-frame or at the round bound), the
	 * peer is still sending and the ACK waits, up to PLX__TCP_ACK_FRAMES
	 * frames or PLX__TCP_ACK_BYTES bytes; it leaves at once when the
	 * socket is empty between frames, so a sender whose window is all in
	 * flight never waits for it. Each ACK is a small segment that the
	 * sender's kernel must process against its busy socket. */
	if (idle || c->rx_seq - c->ack_sent >= PLX__TCP_ACK_FRAMES ||
	    c->rx_unacked >= PLX__TCP_ACK_BYTES)
		/* due at the next flush: riding on a data frame queued before
		 * it (the echo a completion callback sends) where the peer
		 * takes that, else as an ACK frame (plx__conn_flush()) */
		c->ack_due = ack_upto(c) > c->ack_sent;
	/* what this read queued (the ACK, responses) leaves with the next
	 * submission on this connection, or at the next poll: an echo sent
	 * from the completion callback then carries the ACK in one syscall */
	if ((c->txq_head || c->ack_due) && !c->want_out)
		plx__conn_mark_dirty(c);
	return events;
}

PLX__HOT void plx__conn_mark_dirty(struct plx__conn *c)
{
	if (c->tx_dirty)
		return;
	c->tx_dirty = true;
	c->t->ndirty++;
}

/* Flush every connection with queued frames (start of the socket phase,
 * and before the owner sleeps). */
PLX__HOT void plx__tcp_flush_dirty(struct plx__tcp *t)
{
	for (struct plx__conn *c = t->conns; c && t->ndirty; c = c->next) {
		int rc;

		if (!c->tx_dirty || c->reap)
			continue;
		rc = plx__conn_flush(c);
		if (rc)
			plx__conn_fail(c, rc);
	}
	/* a reaped conn still marked dirty is counted until it is freed */
}

/* Try again on a paused connection (a receive was posted, a slot or a
 * control entry freed). */
int plx__conn_resume(struct plx__conn *c)
{
	resume_rx(c);
	return plx__conn_rx(c);
}

PLX__HOT int plx__conn_on_event(struct plx__conn *c, uint32_t events)
{
	int err = 0, n = 0;
	socklen_t len = sizeof(err);

	if (c->state == PLX__C_CONNECTING) {
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return 0;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) ||
		    err) {
			plx__conn_fail(c, err ? -err : errno_status());
			return 1;
		}
		c->state = PLX__C_HANDSHAKE;
		plx__tcp_watch(c, false);
		plx__conn_start_handshake(c);
		return 1;
	}
	if (events & EPOLLOUT) {
		int rc = plx__conn_flush(c);

		if (rc) {
			plx__conn_fail(c, rc);
			return 1;
		}
		n++;
		if (c->rx_paused && c->ctrl_used + 2 < PLX__TCP_CTRL)
			return n + plx__conn_resume(c);
	}
	if (c->state != PLX__C_DEAD && c->rx_paused &&
	    (events & (EPOLLERR | EPOLLHUP))) {
		/* a paused connection does not read, but a reset must still
		 * end it (and the pending event would keep the fd readable) */
		int e = 0;
		socklen_t l = sizeof(e);

		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &l);
		plx__conn_fail(c, e ? -e : PLX_ECONNRESET);
		return n + 1;
	}
	if (c->state != PLX__C_DEAD && !c->rx_paused &&
	    (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		n += plx__conn_rx(c);
	return n;
}

/* Resume every paused connection (called from the poll phase). */
int plx__tcp_resume_all(struct plx__tcp *t)
{
	struct plx__conn *c, *next;
	int n = 0;

	for (c = t->conns; c && t->paused; c = next) {
		next = c->next;
		if (c->rx_paused)
			n += plx__conn_resume(c);
	}
	return n;
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/*
 * A registration was revoked (plx_mem_deregister). The registry already
 * refuses its key; what remains is access that was granted before:
 *  - a WRITE payload still arriving into it: the rest is dropped and the
 *    write is refused (NACK PLX_EKEYREJECTED) instead of acknowledged;
 *  - a READ_RESP queued with a payload read from it: if none of it has
 *    left, it becomes an error response (PLX_EKEYREJECTED, no payload); if
 *    some has, the frame cannot be finished without reading the memory, so
 *    the connection is closed (PLX_ECONNABORTED).
 */
void plx__tcp_region_gone(struct plx__tcp *t, uint64_t addr, uint64_t len)
{
	for (struct plx__conn *c = t->conns; c; c = c->next) {
		if (c->state == PLX__C_DEAD)
			continue;
		if (c->rx_state == PLX__RX_PAYLOAD && c->rx_cuda &&
		    overlaps(c->rx_dev, c->rx_left + c->rx_fill, addr, len))
			plx__stage_rx_drop(c, PLX_EKEYREJECTED);
		if (c->rx_state == PLX__RX_PAYLOAD && c->rx_dst && !c->rx_op &&
		    (c->cur.opcode == PLX__OP_WRITE ||
		     c->cur.opcode == PLX__OP_WRITE_IMM) &&
		    overlaps((uint64_t)(uintptr_t)c->rx_dst, c->rx_left, addr,
			     len)) {
			c->rx_dst = NULL;
			c->rx_status = PLX_EKEYREJECTED;
		}
		for (struct plx__txe *e = c->txq_head; e; e = e->next) {
			struct plx__frame f;

			if (e->is_op || !e->payload_len ||
			    !overlaps((uint64_t)(uintptr_t)e->payload,
				      e->payload_len, addr, len))
				continue;
			if (e->sent) {
				plx__conn_fail(c, PLX_ECONNABORTED);
				break;
			}
			if (plx__wire_parse(&f, e->hdr, e->hdr_len,
					    UINT32_MAX) <= 0)
				continue;
			f.status = PLX_EKEYREJECTED;
			f.payload_len = 0;
			e->hdr_len = (uint32_t)plx__wire_encode(
				&f, (uint8_t *)(uintptr_t)e->hdr);
			e->payload = NULL;
			e->payload_len = 0;
		}
	}
}
