/* SPDX-License-Identifier: MIT */
/*
 * TCP transport: attach/detach, listeners, connect, accept, the poll phase
 * and the periodic tick (handshake deadlines, op timeouts, keepalive).
 *
 * Sockets: non-blocking, close-on-exec, TCP_NODELAY (pollux does its own
 * batching), SO_KEEPALIVE off (pollux pings at the application level, which
 * also covers a peer process that is alive but stuck), buffer sizes left to
 * kernel autotuning unless configured. All sockets sit in the transport's
 * own epoll set, which itself sits in the reactor fd, except connections
 * polled directly by a busy-polling owner (see poll_direct below).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "reactor/hot.h"
#include "transport/tcp/auth.h"
#include "transport/tcp/tcp_internal.h"

/* epoll tags: listeners are tagged with their index + 1; connections with
 * their pointer (always > PLX__TCP_MAX_LISTEN). */

PLX_API void plx_tcp_config_init(struct plx_tcp_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_endpoints = 1024;
	cfg->max_message = 1u << 20;
	cfg->max_frame = 256u << 20;
	cfg->send_queue = 4096;
	cfg->max_recvs = 1024;
	cfg->unexpected_count = 256;
	cfg->unexpected_size = 8192;
	cfg->stripes = 0;
	cfg->stripe_threshold = 8u << 20;
	cfg->stripe_chunk = 256u << 10;
	cfg->max_pieces = 4096;
	cfg->max_handshakes = 256;
	cfg->flush_max = 8u << 20;
	cfg->op_timeout_ns = 30ull * 1000000000ull;
	cfg->handshake_timeout_ns = 5ull * 1000000000ull;
	cfg->keepalive_ns = 1000000000ull;
	cfg->keepalive_probes = 3;
}

static int errno_status(void)
{
	return errno ? -errno : PLX_EIO;
}

static const struct plx__transport_ops tcp_ops;

struct plx__tcp *plx__tcp_get(struct plx_reactor *r)
{
	return plx__reactor_transport(r, &tcp_ops);
}

void plx__tcp_watch(struct plx__conn *c, bool want_out)
{
	struct epoll_event ev = {.data.ptr = c};

	c->want_out = want_out;
	if (c->unwatched) {
		/* polled directly, blocked sends retried every poll; a
		 * paused connection is not read directly: back to epoll */
		if (c->rx_paused)
			plx__tcp_rewatch(c);
		return;
	}
	if (c->fd < 0)
		return;
	ev.events = (c->rx_paused ? 0 : EPOLLIN) | (want_out ? EPOLLOUT : 0);
	epoll_ctl(c->t->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Take a directly polled connection out of the epoll set: data arriving
 * on a socket in an epoll set pays for the epoll wake-up chain (this set,
 * then the reactor fd's) on the sender's side of loopback, on every
 * segment. */
static void unwatch(struct plx__conn *c)
{
	if (c->fd < 0 || epoll_ctl(c->t->epfd, EPOLL_CTL_DEL, c->fd, NULL))
		return;
	c->unwatched = true;
	c->t->nunwatched++;
}

/* Put it back (before the owner sleeps, when it goes cold or pauses, or
 * when there are too many connections to poll directly). */
void plx__tcp_rewatch(struct plx__conn *c)
{
	struct epoll_event ev = {.data.ptr = c};

	if (!c->unwatched)
		return;
	c->unwatched = false;
	c->t->nunwatched--;
	if (c->fd < 0 || c->state == PLX__C_DEAD)
		return;
	ev.events = (c->rx_paused ? 0 : EPOLLIN) | (c->want_out ? EPOLLOUT : 0);
	epoll_ctl(c->t->epfd, EPOLL_CTL_ADD, c->fd, &ev);
}

static void rewatch_all(struct plx__tcp *t)
{
	for (struct plx__conn *c = t->conns; c && t->nunwatched; c = c->next)
		plx__tcp_rewatch(c);
}

static void on_tick(struct plx_reactor *r, struct plx_timer *tm)
{
	struct plx__tcp *t = tm->user;

	(void)r;
	/* an ACK held back for a peer that stopped mid-frame */
	for (struct plx__conn *c = t->conns; c; c = c->next)
		if (c->state == PLX__C_UP || c->state == PLX__C_DRAIN)
			plx__conn_ack_now(c);
	plx__tcp_expire(t, plx__now_coarse());
}

/*
 * accept4() out of descriptors (EMFILE, ENFILE) or kernel memory: the
 * connection stays in the listen queue and the listener stays readable,
 * so trying again at once would spin (and a sleeping owner would never
 * sleep). The listeners leave the epoll set for PLX__TCP_ACCEPT_RETRY_NS;
 * the peer waits (its handshake timeout runs) and is accepted once
 * descriptors are free again.
 */
#define PLX__TCP_ACCEPT_RETRY_NS (50 * 1000000ull)

static void listeners_watch(struct plx__tcp *t, uint32_t events)
{
	for (uint32_t i = 0; i < t->nlisten; i++) {
		struct epoll_event ev = {.events = events};

		ev.data.ptr = (void *)(uintptr_t)(i + 1);
		epoll_ctl(t->epfd, EPOLL_CTL_MOD, t->lfd[i], &ev);
	}
}

static void on_accept_retry(struct plx_reactor *r, struct plx_timer *tm)
{
	struct plx__tcp *t = tm->user;

	(void)r;
	t->accept_paused = false;
	listeners_watch(t, EPOLLIN);
}

static void accept_pause(struct plx__tcp *t, int err)
{
	if (t->accept_paused)
		return;
	if (plx_timer_start(t->r, &t->accept_retry, PLX__TCP_ACCEPT_RETRY_NS,
			    0))
		return; /* no timer left: keep trying every poll */
	t->accept_paused = true;
	listeners_watch(t, 0);
	plx__log(plx__r(t->r), PLX_LOG_WARN,
		 "tcp: accept: %s; listeners paused for 50 ms",
		 plx_strerror(-err));
}

static int accept_all(struct plx__tcp *t, int lfd, uint32_t budget)
{
	int n = 0;

	while (budget--) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct plx__conn *c;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM)
				accept_pause(t, errno);
			else if (errno != EAGAIN && errno != EINTR &&
				 errno != ECONNABORTED)
				plx__log(plx__r(t->r), PLX_LOG_WARN,
					 "tcp: accept: %s",
					 plx_strerror(-errno));
			break;
		}
		if (t->nhandshakes >= t->cfg.max_handshakes) {
			/* half-open connections are capped: a peer that
			 * opens many and never speaks costs us nothing more */
			close(fd);
			t->hs_refused++;
			if ((t->hs_refused & (t->hs_refused - 1)) == 0)
				plx__log(plx__r(t->r), PLX_LOG_WARN,
					 "tcp: %u handshakes in progress "
					 "(max_handshakes): connection closed "
					 "(%llu so far)",
					 t->nhandshakes,
					 (unsigned long long)t->hs_refused);
			continue;
		}
		c = plx__conn_new(t, fd, 1, PLX__C_HANDSHAKE);
		if (!c) {
			close(fd);
			continue;
		}
		c->hs_counted = true;
		t->nhandshakes++;
		plx__conn_start_handshake(c);
		n++;
	}
	return n;
}

/*
 * Direct polling. With few connections, reading each connection that can
 * expect traffic costs one recv() per poll, where epoll_wait() + recv()
 * costs two: for a busy-polling owner that is the difference between the
 * raw-socket floor and 1.5x it. Direct mode reads primary connections and
 * those with answers outstanding every poll, retries blocked sends, and
 * still calls epoll_wait() every 256th poll, and in the first poll after
 * the owner slept, for the rest (listeners, idle striped connections,
 * errors). With many connections epoll_wait() wins and runs every poll.
 *
 * Once the owner has polled PLX__TCP_BUSY_POLLS times without arming (it
 * busy-polls), the connections read directly also leave the epoll set:
 * a segment arriving on a watched socket runs the epoll wake-up chain
 * (this set, then the reactor fd's) in the sender's send() on loopback,
 * which cost about 0.2 us of each one-way trip here. They go back into the
 * set before the owner sleeps (tcp_arm), when one stops being read
 * directly (quiet, paused, dead) and when there are too many to poll.
 */
#define PLX__TCP_DIRECT_MAX 8
/* polls without plx_reactor_arm() after which the owner is taken to be
 * busy-polling and hot connections leave the epoll set */
#define PLX__TCP_BUSY_POLLS 1024

static bool conn_hot(const struct plx__conn *c)
{
	return (c->state == PLX__C_UP || c->state == PLX__C_DRAIN ||
		c->state == PLX__C_HANDSHAKE) &&
	       !c->rx_paused && !c->reap &&
	       (c->index == 0 || c->wait_ack.n || c->wait_read.n ||
		c->rx_state == PLX__RX_PAYLOAD ||
		(int32_t)(c->hot_until - c->t->npolls) > 0);
}

PLX__HOT static int poll_direct(struct plx__tcp *t, bool *need_epoll)
{
	struct plx__conn *c, *next;
	bool busy = t->npolls - t->arm_poll >= PLX__TCP_BUSY_POLLS;
	int events = 0;

	for (c = t->conns; c; c = next) {
		next = c->next;
		if (c->state == PLX__C_CONNECTING)
			*need_epoll = true;
		if (c->want_out && !c->reap) {
			int rc = plx__conn_flush(c);

			if (rc) {
				plx__conn_fail(c, rc);
				continue;
			}
			/* stopped reading for lack of control entries? */
			if (c->rx_paused && c->ctrl_used + 2 < PLX__TCP_CTRL) {
				events += plx__conn_resume(c);
				continue;
			}
		}
		if (conn_hot(c)) {
			if (busy && !c->unwatched && c->state == PLX__C_UP)
				unwatch(c);
			events += plx__conn_rx(c);
		} else if (c->unwatched && c->state != PLX__C_DEAD) {
			plx__tcp_rewatch(c);
		}
	}
	return events;
}

PLX__HOT static int tcp_poll(struct plx_reactor *r, void *ctx, uint32_t budget)
{
	struct plx__tcp *t = ctx;
	struct epoll_event evs[64];
	bool need_epoll = true;
	int n = 0, events = 0;

	(void)r;
	if (!t->nconns && !t->nlisten && !t->ev_pending)
		return 0;
	if (t->ndirty)
		plx__tcp_flush_dirty(t);
	if (t->nconns <= PLX__TCP_DIRECT_MAX) {
		/* the set's other members (listeners, quiet connections)
		 * every 256th poll, and in the first poll after the owner
		 * slept (what woke it may be one of them): the syscall
		 * (about 1 us here) every 16th poll had cost 0.02-0.05 of
		 * the 4 KiB ping-pong ratio */
		++t->npolls;
		need_epoll = (t->npolls & 255) == 0 ||
			     t->npolls - t->arm_poll == 1;
		events += poll_direct(t, &need_epoll);
	} else if (t->nunwatched) {
		rewatch_all(t);
	}
	if (need_epoll)
		n = epoll_wait(t->epfd, evs, budget < 64 ? (int)budget : 64, 0);
	for (int i = 0; i < n; i++) {
		uintptr_t tag = (uintptr_t)evs[i].data.ptr;

		if (tag && tag <= PLX__TCP_MAX_LISTEN) {
			events += accept_all(t, t->lfd[tag - 1], 16);
		} else {
			struct plx__conn *c = evs[i].data.ptr;

			/* a conn reaped earlier in this batch is skipped */
			if (!c->reap)
				events += plx__conn_on_event(c, evs[i].events);
		}
	}
	if (t->kick) {
		t->kick = false;
		events += plx__tcp_resume_all(t);
	}
	events += plx__tcp_events(t);
	if (t->nreap)
		plx__tcp_reap(t);
	return events;
}

static int tcp_arm(struct plx_reactor *r, void *ctx)
{
	struct plx__tcp *t = ctx;

	(void)r;
	/* queued frames must leave before the owner sleeps, and every
	 * connection must be watched by epoll again */
	if (t->ndirty)
		plx__tcp_flush_dirty(t);
	t->arm_poll = t->npolls;
	if (t->nunwatched)
		rewatch_all(t);
	/* a flush that spent its budget left its connection dirty */
	return t->kick || t->ev_pending || t->nreap || t->ndirty ? PLX_EBUSY :
								   0;
}

static uint64_t tcp_live(struct plx_reactor *r, void *ctx)
{
	struct plx__tcp *t = ctx;

	(void)r;
	return t->neps;
}

static void tcp_fini(struct plx_reactor *r, void *ctx)
{
	struct plx__tcp *t = ctx;
	struct plx__reactor *x = plx__r(r);

	/* endpoints are gone (live() == 0); drop stray accepted conns (the
	 * CUDA transport may be gone already: their slots go with it) */
	plx__stage_fini(t);
	while (t->conns) {
		if (!t->conns->reap)
			plx__conn_reap(t->conns);
		t->nreap--;
		plx__conn_free(t->conns);
	}
	for (uint32_t i = 0; i < t->nlisten; i++)
		close(t->lfd[i]);
	if (plx_timer_armed(&t->tick))
		plx_timer_stop(r, &t->tick);
	if (plx_timer_armed(&t->accept_retry))
		plx_timer_stop(r, &t->accept_retry);
	plx__reactor_unwatch_fd(r, t->epfd);
	close(t->epfd);
	plx__free(x, t->discard);
	plx__free(x, t->slots);
	plx__free(x, t->unexp);
	plx__free(x, t->slot_free);
	plx__free(x, t->pieces);
	plx__free(x, t->piece_free);
	explicit_bzero(t->key, sizeof(t->key));
	plx__free(x, t);
}

static void tcp_region_gone(struct plx_reactor *r, void *ctx, uint64_t addr,
			    uint64_t len)
{
	(void)r;
	plx__tcp_region_gone(ctx, addr, len);
}

static const struct plx__transport_ops tcp_ops = {
	.name = "tcp",
	.phase = PLX__PHASE_SOCKET,
	.poll = tcp_poll,
	.arm = tcp_arm,
	.live = tcp_live,
	.fini = tcp_fini,
	.region_gone = tcp_region_gone,
};

static int config_check(const struct plx_tcp_config *c)
{
	if (!c->max_endpoints || !c->max_message || !c->max_frame ||
	    !c->send_queue || !c->max_recvs || !c->unexpected_count ||
	    !c->unexpected_size || !c->op_timeout_ns ||
	    !c->handshake_timeout_ns || !c->keepalive_ns ||
	    !c->max_handshakes || !c->keepalive_probes)
		return PLX_EINVAL;
	if (c->unexpected_size > c->max_message || c->max_message > (1u << 30))
		return PLX_EINVAL;
	if (c->flush_max < (64u << 10) || c->flush_max > (1u << 30))
		return PLX_EINVAL;
	if (c->stripes > 8 ||
	    (c->stripes && (!c->stripe_chunk || !c->max_pieces ||
			    c->stripe_chunk > c->max_frame)))
		return PLX_EINVAL;
	if ((c->psk && !c->psk_len) || (!c->psk && c->psk_len))
		return PLX_EINVAL;
	if (c->congestion &&
	    (!c->congestion[0] || strnlen(c->congestion, 16) == 16))
		return PLX_EINVAL;
	return 0;
}

/* The configured congestion control on a socket before connect() or
 * listen() (accepted sockets inherit their listener's). */
static int sock_cc(const struct plx__tcp *t, int fd)
{
	if (!t->cc[0] || !setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, t->cc,
				     (socklen_t)strlen(t->cc)))
		return 0;
	return errno_status();
}

/* An unknown name (ENOENT) or one an unprivileged process may not pick
 * (EPERM, net.ipv4.tcp_allowed_congestion_control) fails at init, not at
 * the first connect. */
static int cc_init(struct plx__tcp *t)
{
	int fd, rc;

	if (!t->cfg.congestion)
		return 0;
	memcpy(t->cc, t->cfg.congestion, strlen(t->cfg.congestion) + 1);
	t->cfg.congestion = t->cc;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno_status();
	rc = sock_cc(t, fd);
	close(fd);
	return rc ? PLX_EINVAL : 0;
}

static int slots_init(struct plx__tcp *t)
{
	struct plx__reactor *x = plx__r(t->r);
	uint32_t n = t->cfg.unexpected_count;

	t->slots =
		plx__alloc_aligned(x, (size_t)n * t->cfg.unexpected_size, 64);
	t->unexp = plx__zalloc(x, (size_t)n * sizeof(*t->unexp));
	t->slot_free = plx__alloc(x, (size_t)n * sizeof(*t->slot_free));
	t->discard = plx__alloc(x, PLX__TCP_STAGE);
	if (!t->slots || !t->unexp || !t->slot_free || !t->discard)
		return PLX_ENOMEM;
	if (t->cfg.stripes) {
		uint32_t m = t->cfg.max_pieces;

		t->pieces = plx__zalloc(x, (size_t)m * sizeof(*t->pieces));
		t->piece_free = plx__alloc(x, (size_t)m * sizeof(uint32_t));
		if (!t->pieces || !t->piece_free)
			return PLX_ENOMEM;
		for (uint32_t i = 0; i < m; i++)
			t->piece_free[i] = m - 1 - i;
		t->npiece_free = m;
	}
	for (uint32_t i = 0; i < n; i++)
		t->slot_free[i] = n - 1 - i;
	t->nslot_free = n;
	return 0;
}

PLX_API int plx_tcp_init(struct plx_reactor *r,
			 const struct plx_tcp_config *cfg)
{
	struct plx__reactor *x = plx__r(r);
	struct plx__tcp *t;
	int rc;

	PLX__ASSERT_OWNER(x);
	if (plx__tcp_get(r))
		return PLX_EEXIST;
	t = plx__zalloc(x, sizeof(*t));
	if (!t)
		return PLX_ENOMEM;
	t->r = r;
	if (cfg)
		t->cfg = *cfg;
	else
		plx_tcp_config_init(&t->cfg);
	t->epfd = -1;
	rc = config_check(&t->cfg);
	if (!rc)
		rc = cc_init(t);
	if (rc)
		goto fail;
	if (t->cfg.psk) {
		rc = plx__auth_key_derive(t->key, t->cfg.psk, t->cfg.psk_len);
		if (rc)
			goto fail;
		t->have_key = true;
	}
	/* the PSK itself is not kept */
	t->cfg.psk = NULL;
	t->cfg.psk_len = 0;
	rc = slots_init(t);
	if (rc)
		goto fail;
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (t->epfd < 0) {
		rc = errno_status();
		goto fail;
	}
	rc = plx__reactor_watch_fd(r, t->epfd, EPOLLIN);
	if (rc)
		goto fail;
	rc = plx__reactor_add_transport(r, &tcp_ops, t);
	if (rc) {
		plx__reactor_unwatch_fd(r, t->epfd);
		goto fail;
	}
	/* deadlines are checked at a tenth of the shortest one, within
	 * [1 ms, 100 ms] */
	t->tick_ns = t->cfg.keepalive_ns;
	if (t->cfg.op_timeout_ns < t->tick_ns)
		t->tick_ns = t->cfg.op_timeout_ns;
	if (t->cfg.handshake_timeout_ns < t->tick_ns)
		t->tick_ns = t->cfg.handshake_timeout_ns;
	t->tick_ns /= 10;
	if (t->tick_ns < 1000000)
		t->tick_ns = 1000000;
	if (t->tick_ns > 100000000)
		t->tick_ns = 100000000;
	plx_timer_init(&t->tick, on_tick, t);
	t->tick.plx_pad = PLX__TIMER_DAEMON;
	plx_timer_init(&t->accept_retry, on_accept_retry, t);
	t->accept_retry.plx_pad = PLX__TIMER_DAEMON;
	return 0;

fail:
	if (t->epfd >= 0)
		close(t->epfd);
	plx__free(x, t->pieces);
	plx__free(x, t->piece_free);
	plx__free(x, t->discard);
	plx__free(x, t->slots);
	plx__free(x, t->unexp);
	plx__free(x, t->slot_free);
	plx__free(x, t);
	return rc;
}

static int parse_addr(const char *addr, uint16_t port,
		      struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

	if (!addr)
		return PLX_EINVAL;
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		*len = sizeof(*a4);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		*len = sizeof(*a6);
		return 0;
	}
	return PLX_EINVAL;
}

PLX_API int plx_tcp_listen(struct plx_reactor *r, const char *addr,
			   uint16_t port, uint16_t *port_out)
{
	struct plx__tcp *t = plx__tcp_get(r);
	struct sockaddr_storage ss;
	socklen_t len;
	struct epoll_event ev = {.events = EPOLLIN};
	int fd, one = 1, rc;

	PLX__ASSERT_OWNER(plx__r(r));
	if (!t)
		return PLX_EUNAVAIL;
	rc = parse_addr(addr, port, &ss, &len);
	if (rc)
		return rc;
	if (t->nlisten == PLX__TCP_MAX_LISTEN)
		return PLX_ENOSPC;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		return errno_status();
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	rc = sock_cc(t, fd);
	if (rc)
		goto close_fd;
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 1024)) {
		rc = errno_status();
		goto close_fd;
	}
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len)) {
		rc = errno_status();
		goto close_fd;
	}
	ev.data.ptr = (void *)(uintptr_t)(t->nlisten + 1);
	if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		rc = errno_status();
		goto close_fd;
	}
	t->lfd[t->nlisten++] = fd;
	if (port_out)
		*port_out =
			ntohs(ss.ss_family == AF_INET ?
				      ((struct sockaddr_in *)&ss)->sin_port :
				      ((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;

close_fd:
	close(fd);
	return rc;
}

/* A non-blocking socket with the configured congestion control, its
 * connect() to @ss started: the fd, or -errno. */
static int connect_start(const struct plx__tcp *t,
			 const struct sockaddr_storage *ss, socklen_t len)
{
	int fd = socket(ss->ss_family,
			SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int rc;

	if (fd < 0)
		return errno_status();
	rc = sock_cc(t, fd);
	if (!rc && connect(fd, (const struct sockaddr *)ss, len) &&
	    errno != EINPROGRESS)
		rc = errno_status();
	if (rc) {
		close(fd);
		return rc;
	}
	return fd;
}

PLX_API int plx_tcp_connect(struct plx_reactor *r, const char *addr,
			    uint16_t port, struct plx_ep **ep_out)
{
	struct plx__tcp *t = plx__tcp_get(r);
	struct sockaddr_storage ss;
	struct plx__conn *c;
	struct plx_ep *ep;
	socklen_t len;
	int fd, rc;

	PLX__ASSERT_OWNER(plx__r(r));
	if (!t)
		return PLX_EUNAVAIL;
	if (!ep_out || !port)
		return PLX_EINVAL;
	rc = parse_addr(addr, port, &ss, &len);
	if (rc)
		return rc;
	if (t->neps >= t->cfg.max_endpoints)
		return PLX_ENOSPC;
	fd = connect_start(t, &ss, len);
	if (fd < 0)
		return fd;
	ep = plx__ep_new(t);
	if (!ep) {
		close(fd);
		return PLX_ENOMEM;
	}
	c = plx__conn_new(t, fd, 0, PLX__C_CONNECTING);
	if (!c) {
		close(fd);
		plx__ep_maybe_free(ep);
		return PLX_ENOMEM;
	}
	memcpy(&ep->addr, &ss, len);
	ep->addrlen = len;
	c->ep = ep;
	c->ep_next = ep->conns;
	ep->conns = c;
	plx__tcp_watch(c, true); /* writable = connected (or failed) */
	*ep_out = ep;
	return 0;
}

/* Open the striped data connections of @ep (we connected to it). */
void plx__tcp_open_stripes(struct plx_ep *ep)
{
	struct plx__tcp *t = ep->t;

	ep->stripes_opened = true;
	for (uint32_t k = 1; k <= t->cfg.stripes; k++) {
		int fd = connect_start(t, &ep->addr, ep->addrlen);
		struct plx__conn *c;

		if (fd < 0)
			return;
		c = plx__conn_new(t, fd, 0, PLX__C_CONNECTING);
		if (!c) {
			close(fd);
			return;
		}
		c->index = (uint8_t)k;
		c->ep = ep;
		c->ep_next = ep->conns;
		ep->conns = c;
		plx__tcp_watch(c, true);
	}
}
