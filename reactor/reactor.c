/* SPDX-License-Identifier: MIT */
/*
 * The reactor: init/fini, the poll loop and its phases, arming and sleeping.
 *
 * Doorbell protocol (how no wake-up is lost). The owner announces sleep in
 * plx_reactor_arm(); producers ring the eventfd doorbell only when it does:
 *
 *   owner (arm)                         producer (submit)
 *   S4: store sleeping = 1  (seq_cst)   S1: CAS ring tail   (seq_cst)
 *   S2: load ring tail      (seq_cst)   S3: load sleeping   (seq_cst)
 *
 * All four are in one total order, so at least one side sees the other:
 * either the owner's S2 sees the claimed position (arm returns PLX_EBUSY)
 * or the producer's S3 sees sleeping == 1; it then takes the flag with an
 * exchange (only one producer per sleep writes the eventfd) and writes the
 * doorbell. A claimed-but-unpublished position counts as pending in S2, so
 * a producer stalled mid-push never lets the owner sleep past its item.
 * After a wake-up the next poll clears the flag and drains the doorbell and
 * the timerfd with one epoll_wait(0). A doorbell written after that drain
 * leaves the eventfd readable: the next sleep returns at once and the poll
 * after it drains it (one spurious wake, never a lost one).
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "reactor/hot.h"
#include "reactor/internal.h"
#include "reactor/req.h"
#include "transport/transport.h"

enum {
	PLX__TAG_DOORBELL = 1,
	PLX__TAG_TIMER = 2
};

PLX_API uint64_t plx_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t plx__coarse_res(void)
{
	struct timespec ts;

	if (clock_getres(CLOCK_MONOTONIC_COARSE, &ts))
		return 10000000; /* assume a 10 ms tick */
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

PLX_API void plx_reactor_config_init(struct plx_reactor_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->ring_capacity = 4096;
	cfg->max_batch = 256;
	cfg->max_timers = 65536;
	cfg->max_regions = 4096;
	cfg->log_level = PLX_LOG_WARN;
}

static int config_check(const struct plx_reactor_config *cfg)
{
	if (cfg->ring_capacity < 2 || cfg->ring_capacity > (1u << 30) ||
	    (cfg->ring_capacity & (cfg->ring_capacity - 1)))
		return PLX_EINVAL;
	if (!cfg->max_batch || !cfg->max_timers || !cfg->max_regions)
		return PLX_EINVAL;
	if (cfg->max_timers > (1u << 30) || cfg->max_regions > (1u << 30))
		return PLX_EINVAL;
	return 0;
}

static int ring_create(struct plx__reactor *x)
{
	uint32_t cap = x->cfg.ring_capacity;
	struct plx__ring_cell *cells;

	x->ring = plx__alloc_aligned(x, sizeof(*x->ring), PLX__CACHELINE);
	if (!x->ring)
		return PLX_ENOMEM;
	cells = plx__alloc_aligned(x, plx__ring_cells_size(cap),
				   PLX__CACHELINE);
	if (!cells) {
		plx__free(x, x->ring);
		x->ring = NULL;
		return PLX_ENOMEM;
	}
	plx__ring_init(x->ring, cells, cap);
	return 0;
}

static void ring_destroy(struct plx__reactor *x)
{
	if (!x->ring)
		return;
	plx__free(x, x->ring->cells);
	plx__free(x, x->ring);
	x->ring = NULL;
}

static int errno_status(void)
{
	return errno ? -errno : PLX_EIO;
}

static int epoll_add(int epfd, int fd, uint32_t events, uint64_t tag)
{
	struct epoll_event ev = {.events = events, .data.u64 = tag};

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) ? errno_status() : 0;
}

static int fds_create(struct plx__reactor *x)
{
	int rc;

	x->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (x->epfd < 0)
		return errno_status();
	x->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (x->evfd < 0) {
		rc = errno_status();
		goto close_epfd;
	}
	x->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (x->tfd < 0) {
		rc = errno_status();
		goto close_evfd;
	}
	rc = epoll_add(x->epfd, x->evfd, EPOLLIN, PLX__TAG_DOORBELL);
	if (rc)
		goto close_tfd;
	rc = epoll_add(x->epfd, x->tfd, EPOLLIN, PLX__TAG_TIMER);
	if (rc)
		goto close_tfd;
	return 0;

close_tfd:
	close(x->tfd);
close_evfd:
	close(x->evfd);
close_epfd:
	close(x->epfd);
	x->epfd = x->evfd = x->tfd = -1;
	return rc;
}

static void fds_close(struct plx__reactor *x)
{
	close(x->tfd);
	close(x->evfd);
	close(x->epfd);
	x->epfd = x->evfd = x->tfd = -1;
}

static int identity_init(struct plx__reactor *x)
{
	static const uint8_t zero[16];
	int rc;

	if (!memcmp(x->cfg.node_id, zero, sizeof(zero))) {
		rc = plx__random(x->cfg.node_id, sizeof(x->cfg.node_id));
		if (rc)
			return rc;
	}
	do {
		rc = plx__random(&x->epoch, sizeof(x->epoch));
	} while (!rc && !x->epoch);
	return rc;
}

PLX_API int plx_reactor_init(struct plx_reactor *r,
			     const struct plx_reactor_config *cfg)
{
	struct plx__reactor *x;
	int rc;

	if (!r)
		return PLX_EINVAL;
	x = plx__r(r);
	memset(r, 0, sizeof(*r));
	if (cfg)
		x->cfg = *cfg;
	else
		plx_reactor_config_init(&x->cfg);
	rc = config_check(&x->cfg);
	if (rc)
		return rc;
	x->owner = pthread_self();
	x->epfd = x->evfd = x->tfd = -1;
	x->coarse_res = plx__coarse_res();

	rc = plx__heap_create(x);
	if (rc)
		return rc;
	rc = identity_init(x);
	if (rc)
		goto destroy_heap;
	rc = ring_create(x);
	if (rc)
		goto destroy_heap;
	rc = plx__timers_init(x);
	if (rc)
		goto destroy_ring;
	rc = plx__registry_init(x);
	if (rc)
		goto fini_timers;
	rc = fds_create(x);
	if (rc)
		goto fini_registry;
	return 0;

fini_registry:
	plx__registry_fini(x);
fini_timers:
	plx__timers_fini(x);
destroy_ring:
	ring_destroy(x);
destroy_heap:
	plx__heap_destroy(x);
	return rc;
}

static uint64_t transports_live(struct plx_reactor *r)
{
	struct plx__reactor *x = plx__r(r);
	uint64_t live = 0;

	for (uint32_t i = 0; i < x->ntransports; i++) {
		const struct plx__transport_ops *ops = x->transports[i].ops;

		if (ops->live)
			live += ops->live(r, x->transports[i].ctx);
	}
	return live;
}

PLX_API int plx_reactor_fini(struct plx_reactor *r)
{
	struct plx__reactor *x;
	uint64_t tlive;

	if (!r)
		return PLX_EINVAL;
	x = plx__r(r);
	PLX__ASSERT_OWNER(x);
	tlive = transports_live(r);
	if (plx__ring_pending_seq_cst(x->ring) || x->deferred.head ||
	    x->st.reqs_inflight || x->timers.n > x->timers.daemon ||
	    x->regs.n || tlive) {
		plx__log(x, PLX_LOG_DEBUG,
			 "fini refused: ring %d, requests %llu, timers %u, "
			 "regions %u, transport objects %llu",
			 plx__ring_pending_seq_cst(x->ring),
			 (unsigned long long)x->st.reqs_inflight, x->timers.n,
			 x->regs.n, (unsigned long long)tlive);
		return PLX_EBUSY;
	}
	for (uint32_t i = x->ntransports; i-- > 0;) {
		const struct plx__transport_ops *ops = x->transports[i].ops;

		if (ops->fini)
			ops->fini(r, x->transports[i].ctx);
	}
	x->ntransports = 0;
	x->npolled = 0;
	fds_close(x);
	plx__registry_fini(x);
	plx__timers_fini(x);
	ring_destroy(x);
	plx__heap_destroy(x);
	return 0;
}

void *plx__reactor_transport(struct plx_reactor *r,
			     const struct plx__transport_ops *ops)
{
	struct plx__reactor *x = plx__r(r);

	for (uint32_t i = 0; i < x->ntransports; i++)
		if (x->transports[i].ops == ops)
			return x->transports[i].ctx;
	return NULL;
}

int plx__reactor_add_transport(struct plx_reactor *r,
			       const struct plx__transport_ops *ops, void *ctx)
{
	struct plx__reactor *x = plx__r(r);
	uint32_t i;

	PLX__ASSERT_OWNER(x);
	if (!ops || ops->phase >= PLX__PHASE_COUNT)
		return PLX_EINVAL;
	if (plx__reactor_transport(r, ops))
		return PLX_EEXIST;
	if (x->ntransports == PLX__MAX_TRANSPORTS)
		return PLX_ENOSPC;
	/* keep the slots sorted: the polled ones first, by phase (poll
	 * walks them once, in order), then those with nothing to poll */
	i = x->ntransports;
	if (ops->poll) {
		i = x->npolled;
		while (i > 0 && x->transports[i - 1].ops->phase > ops->phase)
			i--;
		memmove(&x->transports[i + 1], &x->transports[i],
			(x->ntransports - i) * sizeof(x->transports[0]));
		x->npolled++;
	}
	x->transports[i].ops = ops;
	x->transports[i].ctx = ctx;
	x->ntransports++;
	return 0;
}

int plx__reactor_watch_fd(struct plx_reactor *r, int fd, uint32_t events)
{
	struct plx__reactor *x = plx__r(r);

	PLX__ASSERT_OWNER(x);
	/* tag 0: transport fds are polled by their transport, not here */
	return epoll_add(x->epfd, fd, events, 0);
}

int plx__reactor_unwatch_fd(struct plx_reactor *r, int fd)
{
	struct plx__reactor *x = plx__r(r);

	PLX__ASSERT_OWNER(x);
	return epoll_ctl(x->epfd, EPOLL_CTL_DEL, fd, NULL) ? errno_status() : 0;
}

PLX_API int plx_reactor_fd(const struct plx_reactor *r)
{
	return plx__rc(r)->epfd;
}

/* After a sleep: clear the flag and drain the doorbell and timer fds. */
static void disarm(struct plx__reactor *x)
{
	struct epoll_event evs[8];
	uint64_t v;
	int n;

	x->armed = false;
	plx__store_relaxed(&x->sleeping, 0);
	/* after a sleep the coarse clock may lag by more than its
	 * resolution (its tick comes late too): the timer phase of this
	 * poll reads the precise clock, so a timer that woke us fires */
	x->timer_soon = true;
	n = epoll_wait(x->epfd, evs, 8, 0);
	for (int i = 0; i < n; i++) {
		switch (evs[i].data.u64) {
		case PLX__TAG_DOORBELL:
			if (read(x->evfd, &v, sizeof(v)) == sizeof(v))
				x->st.doorbells += v;
			break;
		case PLX__TAG_TIMER:
			if (read(x->tfd, &v, sizeof(v)) == sizeof(v))
				x->tfd_deadline = 0;
			break;
		default:
			break;
		}
	}
}

PLX__HOT static int drain_ring(struct plx_reactor *r, struct plx__reactor *x)
{
	uint32_t budget = x->cfg.max_batch;
	struct plx_req *req;
	int n = 0;

	while (budget-- && (req = plx__ring_pop(x->ring))) {
		n++;
		x->st.reqs_inflight++;
		plx__req_run(r, req);
	}
	x->st.ring_drained += (uint64_t)n;
	return n;
}

PLX__HOT static int poll_transports(struct plx_reactor *r,
				    struct plx__reactor *x)
{
	int n = 0;

	for (uint32_t i = 0; i < x->npolled; i++) {
		const struct plx__transport_ops *ops = x->transports[i].ops;
		int rc = ops->poll(r, x->transports[i].ctx, x->cfg.max_batch);

		if (rc > 0)
			n += rc;
	}
	return n;
}

PLX__HOT PLX_API int plx_reactor_poll(struct plx_reactor *r)
{
	struct plx__reactor *x = plx__r(r);
	bool due;
	int n;

	PLX__ASSERT_OWNER(x);
	x->st.polls++;
	if (PLX__UNLIKELY(x->armed))
		disarm(x);
	/* phase 5 asks here whether the earliest deadline may have passed:
	 * the clock's code and data are then touched before the transports'
	 * system calls, not between the read that brings a message in and
	 * the write it causes (docs/benchmarks.md, "Stop 19"). A deadline
	 * that passes during this poll is run by the next one; one started
	 * due within the clock's resolution sets timer_soon. */
	due = x->timers.n &&
	      plx__now_coarse() + x->coarse_res >= plx__timers_next(x);
	/* phase 1: request rings */
	n = drain_ring(r, x);
	/* phases 2-4: CQs, sockets, CUDA events (slots sorted by phase) */
	if (x->npolled)
		n += poll_transports(r, x);
	/* phase 5: timers. The precise clock is read only when the coarse
	 * one (a few ns) said the earliest deadline may have passed. */
	if (x->timers.n && (due || x->timer_soon)) {
		x->timer_soon = false;
		n += plx__timers_run(r, plx_now_ns());
	}
	/* phase 6: deferred completions */
	if (x->deferred.head)
		n += plx__req_run_deferred(r);
	x->st.events += (uint64_t)n;
	return n;
}

static int arm_timer_fd(struct plx__reactor *x)
{
	uint64_t next = plx__timers_next(x);
	struct itimerspec its;

	if (next && next <= plx_now_ns())
		return PLX_EBUSY;
	if (next == x->tfd_deadline)
		return 0;
	memset(&its, 0, sizeof(its));
	/* next == 0 disarms the fd: a stale deadline would only wake us */
	its.it_value.tv_sec = (time_t)(next / 1000000000ull);
	its.it_value.tv_nsec = (long)(next % 1000000000ull);
	if (timerfd_settime(x->tfd, TFD_TIMER_ABSTIME, &its, NULL))
		return errno_status();
	x->tfd_deadline = next;
	return 0;
}

static int arm_transports(struct plx_reactor *r, struct plx__reactor *x)
{
	for (uint32_t i = 0; i < x->ntransports; i++) {
		const struct plx__transport_ops *ops = x->transports[i].ops;
		int rc;

		if (!ops->arm)
			continue;
		rc = ops->arm(r, x->transports[i].ctx);
		if (rc)
			return rc;
	}
	return 0;
}

PLX_API int plx_reactor_arm(struct plx_reactor *r)
{
	struct plx__reactor *x = plx__r(r);
	int rc;

	PLX__ASSERT_OWNER(x);
	if (x->deferred.head) {
		rc = PLX_EBUSY;
		goto busy;
	}
	/* S4: announce the sleep; pairs with S3 in the producers. */
	plx__store_seq_cst(&x->sleeping, 1);
	/* S2: pairs with S1 (ring.h). */
	if (plx__ring_pending_seq_cst(x->ring)) {
		rc = PLX_EBUSY;
		goto unannounce;
	}
	rc = arm_timer_fd(x);
	if (rc)
		goto unannounce;
	rc = arm_transports(r, x);
	if (rc)
		goto unannounce;
	x->armed = true;
	x->st.arms++;
	return 0;

unannounce:
	/* a producer may have taken the flag and rung already: the next
	 * poll's disarm drains that doorbell, so mark armed to get there */
	if (!plx__exchange_acq_rel(&x->sleeping, 0))
		x->armed = true;
busy:
	if (rc == PLX_EBUSY)
		x->st.arm_busy++;
	return rc;
}

PLX_API int plx_reactor_wait(struct plx_reactor *r, int timeout_ms)
{
	struct plx__reactor *x = plx__r(r);
	struct epoll_event ev;
	int n, rc;

	PLX__ASSERT_OWNER(x);
	n = plx_reactor_poll(r);
	if (n || timeout_ms == 0)
		return n;
	rc = plx_reactor_arm(r);
	if (rc == 0) {
		rc = epoll_wait(x->epfd, &ev, 1,
				timeout_ms < 0 ? -1 : timeout_ms);
		if (rc < 0 && errno == EINTR)
			return PLX_EINTR;
	} else if (rc != PLX_EBUSY) {
		return rc;
	}
	return plx_reactor_poll(r);
}

PLX_API int plx_reactor_stats(const struct plx_reactor *r,
			      struct plx_reactor_stats *out)
{
	const struct plx__reactor *x = plx__rc(r);

	PLX__ASSERT_OWNER(x);
	*out = x->st;
	out->ring_full = plx__load_relaxed(&x->ring_full);
	out->regions = x->regs.n;
	out->timers_armed = x->timers.n;
	return 0;
}

PLX_API void plx_reactor_node_id(const struct plx_reactor *r, uint8_t *id_out,
				 uint64_t *epoch_out)
{
	const struct plx__reactor *x = plx__rc(r);

	if (id_out)
		memcpy(id_out, x->cfg.node_id, sizeof(x->cfg.node_id));
	if (epoch_out)
		*epoch_out = x->epoch;
}
