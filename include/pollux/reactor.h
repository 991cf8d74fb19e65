/* SPDX-License-Identifier: MIT */
/*
 * pollux reactor: a caller-owned, single-threaded, poll-mode event loop.
 *
 * The caller owns struct plx_reactor (embed it anywhere, any storage), calls
 * plx_reactor_init() on the thread that will drive it (the *owner thread*),
 * and then calls plx_reactor_poll() from its own loop. pollux never creates a
 * thread. Each poll is one bounded, non-blocking iteration in this order:
 *
 *   1. drain the cross-thread request rings (at most max_batch requests)
 *   2. poll RDMA completion queues          (transports of phase CQ)
 *   3. poll sockets                         (transports of phase SOCKET)
 *   4. poll CUDA copy events                (transports of phase CUDA)
 *   5. fire expired timers (whether one may have expired is asked when
 *      the poll begins: a timer expiring during phases 1-4 fires in the
 *      next poll, unless it was started due within the clock's tick)
 *   6. run deferred completions
 *
 * and returns the number of events it handled (0 when idle).
 *
 * Event-driven use: put plx_reactor_fd() in your own poll()/epoll, call
 * plx_reactor_arm() before sleeping (it returns PLX_EBUSY instead of arming
 * when work is already pending, so no wake-up can be lost), and call
 * plx_reactor_poll() when the fd is readable or your timeout fires.
 * plx_reactor_wait() packages the same steps.
 *
 * Functions without the _mt suffix are owner-thread only; debug builds
 * (NDEBUG undefined) abort when one is called from another thread.
 */
#ifndef POLLUX_REACTOR_H
#define POLLUX_REACTOR_H

#include <stddef.h>
#include <stdint.h>

#include "pollux/export.h"
#include "pollux/status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct plx_reactor;
struct plx_req;
struct plx_timer;

/* Log levels, most severe first. */
enum plx_log_level {
	PLX_LOG_ERROR = 0,
	PLX_LOG_WARN = 1,
	PLX_LOG_INFO = 2,
	PLX_LOG_DEBUG = 3,
};

/*
 * plx_log_cb - diagnostics sink. pollux itself never prints.
 * @arg:   log_arg from the config.
 * @level: enum plx_log_level.
 * @msg:   NUL-terminated text, valid only during the call.
 * Called on the owner thread (or the thread calling plx_reactor_init).
 */
typedef void (*plx_log_cb)(void *arg, int level, const char *msg);

/* Reactor configuration. Fill with plx_reactor_config_init() first. */
struct plx_reactor_config {
	uint32_t ring_capacity; /* request ring slots, power of two; 4096 */
	uint32_t max_batch;	/* ring requests drained per poll; 256 */
	uint32_t max_timers;	/* armed timers at once; 65536 */
	uint32_t max_regions;	/* registered memory regions; 4096 */
	plx_log_cb log_cb;	/* NULL: no diagnostics */
	void *log_arg;
	int log_level;	     /* messages above this level are dropped; WARN */
	uint8_t node_id[16]; /* this node's 128-bit id; all zero: random */
};

/*
 * plx_reactor_config_init() - fill @cfg with the documented defaults.
 * Thread context: any thread.
 */
PLX_API void plx_reactor_config_init(struct plx_reactor_config *cfg);

/*
 * struct plx_reactor - caller-owned reactor storage. Its contents are
 * private; only its size and alignment are part of the ABI. Do not copy or
 * move an initialised reactor.
 */
struct plx_reactor {
	PLX_ALIGNAS(64) unsigned char plx_opaque[1536];
};

/*
 * plx_reactor_init() - initialise @r; the calling thread becomes its owner.
 * @r:   caller memory, need not be zeroed.
 * @cfg: configuration, or NULL for defaults. Copied; may be freed after.
 *
 * Creates the reactor fd (an epoll fd), its eventfd doorbell and timerfd,
 * a private mimalloc heap, and the request ring.
 *
 * Return: 0; PLX_EINVAL (bad config: capacity not a power of two, zero
 * limits); PLX_ENOMEM; PLX_EMFILE (out of file descriptors).
 * On failure nothing is left allocated. Thread context: any thread; it
 * becomes the owner thread.
 */
PLX_API int plx_reactor_init(struct plx_reactor *r,
			     const struct plx_reactor_config *cfg);

/*
 * plx_reactor_fini() - release everything @r holds.
 *
 * Return: 0; PLX_EBUSY while anything is live (requests in the ring or
 * awaiting completion, armed timers, registered regions, open transports);
 * @r is then unchanged and still usable. Thread context: owner thread.
 * Producers must have stopped submitting before fini returns 0.
 */
PLX_API int plx_reactor_fini(struct plx_reactor *r);

/*
 * plx_reactor_poll() - one bounded, non-blocking iteration (phases above).
 *
 * Return: the number of events handled (requests drained, completions run,
 * timers fired, transport events), 0 when idle. Never blocks, never
 * allocates. Thread context: owner thread.
 */
PLX_API int plx_reactor_poll(struct plx_reactor *r);

/*
 * plx_reactor_fd() - the fd to watch for readability in the caller's own
 * poll()/epoll. It becomes readable after plx_reactor_arm() returned 0 and
 * then something happened (a submission, an expired timer, transport I/O).
 * The fd belongs to the reactor: do not read it or close it.
 * Return: the fd (>= 0). Thread context: any thread.
 */
PLX_API int plx_reactor_fd(const struct plx_reactor *r);

/*
 * plx_reactor_arm() - announce that the owner is about to sleep on the fd.
 *
 * Programs the timer fd for the next timer deadline and lets producers ring
 * the doorbell. The next plx_reactor_poll() disarms.
 *
 * Return: 0 when armed (sleep now); PLX_EBUSY when work is already pending
 * (call plx_reactor_poll() instead of sleeping). Thread context: owner.
 */
PLX_API int plx_reactor_arm(struct plx_reactor *r);

/*
 * plx_reactor_wait() - poll; when idle, arm and sleep on the reactor fd for
 * at most @timeout_ms (-1: until something happens), then poll again.
 *
 * Return: events handled (>= 0, may be 0 on timeout); PLX_EINTR when a
 * signal interrupted the sleep. Thread context: owner thread.
 */
PLX_API int plx_reactor_wait(struct plx_reactor *r, int timeout_ms);

/*
 * Counters. Plain snapshots; read with plx_reactor_stats() on the owner
 * thread (ring_full is counted by producers and read atomically).
 */
struct plx_reactor_stats {
	uint64_t polls;		/* plx_reactor_poll() calls */
	uint64_t events;	/* events handled in total */
	uint64_t ring_drained;	/* requests taken from the rings */
	uint64_t ring_full;	/* _mt submissions refused with PLX_EAGAIN */
	uint64_t completions;	/* request completions delivered */
	uint64_t timers_fired;	/* timer callbacks run */
	uint64_t arms;		/* plx_reactor_arm() returned 0 */
	uint64_t arm_busy;	/* plx_reactor_arm() returned PLX_EBUSY */
	uint64_t doorbells;	/* doorbell writes observed (wake-ups) */
	uint64_t heap_allocs;	/* internal allocations made (setup paths) */
	uint64_t heap_live;	/* internal allocations not yet freed */
	uint64_t regions;	/* currently registered regions */
	uint64_t timers_armed;	/* currently armed timers */
	uint64_t reqs_inflight; /* requests submitted, not yet completed */
};

/*
 * plx_reactor_stats() - copy the counters into @out.
 * Return: 0. Thread context: owner thread.
 */
PLX_API int plx_reactor_stats(const struct plx_reactor *r,
			      struct plx_reactor_stats *out);

/*
 * plx_reactor_node_id() - this reactor's 128-bit node id and its random
 * per-init 64-bit epoch (a restarted process has a new epoch).
 * @id_out:    16 bytes, or NULL.
 * @epoch_out: or NULL. Thread context: any thread.
 */
PLX_API void plx_reactor_node_id(const struct plx_reactor *r, uint8_t *id_out,
				 uint64_t *epoch_out);

/*
 * plx_now_ns() - CLOCK_MONOTONIC in nanoseconds, the clock of every pollux
 * deadline. Thread context: any thread.
 */
PLX_API uint64_t plx_now_ns(void);

/* ----------------------------------------------------------------------
 * Requests: caller-owned structs handed to the reactor, from the owner
 * thread or (with _mt functions) from any thread.
 */

/*
 * plx_req_cb - completion callback, run on the owner thread from inside
 * plx_reactor_poll(), exactly once per successful submission. @req->status
 * and @req->bytes hold the result. The callback may resubmit or reuse @req;
 * pollux does not touch @req after the callback has been entered.
 */
typedef void (*plx_req_cb)(struct plx_reactor *r, struct plx_req *req);

/*
 * plx_call_fn - work to run on the owner thread (plx_submit_call*).
 * Return the status to complete @req with (>= 0: success, negative:
 * PLX_E*), or PLX_EINPROGRESS to complete it later yourself with
 * plx_req_complete().
 */
typedef int (*plx_call_fn)(struct plx_reactor *r, struct plx_req *req);

/*
 * struct plx_req - one request. Initialise with plx_req_init(). Between a
 * successful submission and its completion the request belongs to pollux:
 * do not modify, free or resubmit it.
 *
 * Completion is delivered one of two ways, chosen at plx_req_init():
 *  - @cb set: the callback runs on the owner thread;
 *  - @cb NULL: the request is a completion handle; any thread may test it
 *    with plx_req_test_mt() or wait on it with plx_req_wait_mt().
 */
struct plx_req {
	plx_req_cb cb;	    /* completion callback, or NULL (handle mode) */
	void *user;	    /* caller's cookie, untouched by pollux */
	int status;	    /* result: >= 0 success, negative PLX_E* */
	uint32_t plx_state; /* private: lifecycle, accessed atomically */
	uint64_t bytes;	    /* result: bytes moved, where meaningful */
	/* private below: owned by pollux while the request is in flight */
	struct plx_req *plx_next;
	plx_call_fn plx_fn;
	uint32_t plx_flags; /* private: owner-thread bookkeeping */
	uint32_t plx_op;    /* private: operation code */
	uint64_t plx_arg[6];
};

/*
 * plx_req_init() - prepare @req for submission.
 * @cb:   completion callback (owner thread), or NULL for handle mode.
 * @user: caller's cookie.
 * Thread context: any thread (the request must not be in flight).
 */
PLX_API void plx_req_init(struct plx_req *req, plx_req_cb cb, void *user);

/*
 * plx_submit_call_mt() - have the owner thread run @fn(@r, @req) in the next
 * poll's ring phase, then complete @req with @fn's result.
 *
 * Lock-free, wait-free unless the ring is contended: never blocks, never
 * allocates, never makes a syscall unless the owner is asleep (then one
 * eventfd write wakes it).
 *
 * Return: 0 (queued: @req will complete exactly once); PLX_EAGAIN (ring
 * full: not queued, no completion will come); PLX_EBUSY (@req is already in
 * flight); PLX_EINVAL (@fn NULL). Thread context: any thread.
 */
PLX_API int plx_submit_call_mt(struct plx_reactor *r, struct plx_req *req,
			       plx_call_fn fn);

/*
 * plx_submit_call() - owner-thread variant of plx_submit_call_mt(): @fn runs
 * in the deferred phase of the next poll, never inside this call.
 * Return: 0; PLX_EBUSY (@req in flight); PLX_EINVAL. Thread context: owner.
 */
PLX_API int plx_submit_call(struct plx_reactor *r, struct plx_req *req,
			    plx_call_fn fn);

/*
 * plx_req_complete() - complete a request whose plx_call_fn returned
 * PLX_EINPROGRESS. The completion is delivered in the deferred phase of the
 * current or next poll, never inside this call.
 * @status: the result (>= 0 or PLX_E*). @bytes: bytes moved.
 * Return: 0; PLX_EINVAL if @req is not awaiting completion. Thread: owner.
 */
PLX_API int plx_req_complete(struct plx_reactor *r, struct plx_req *req,
			     int status, uint64_t bytes);

/*
 * plx_req_test_mt() - has handle-mode request @req completed?
 * Return: 1 completed (read @req->status, @req->bytes: the reads are
 * ordered after the completion), 0 still in flight. Thread: any thread.
 */
PLX_API int plx_req_test_mt(const struct plx_req *req);

/*
 * plx_req_wait_mt() - wait for handle-mode request @req, at most
 * @timeout_ns nanoseconds (0: just test; UINT64_MAX: no bound). Spins
 * briefly, then sleeps on a futex; the owner thread makes the wake-up
 * syscall only when a waiter sleeps.
 * Return: 0 completed (result in @req); PLX_ETIMEDOUT (still in flight: it
 * still belongs to pollux); PLX_EINVAL (@req has a callback, or was never
 * submitted). Thread context: any thread except the owner (which would
 * wait on itself).
 */
PLX_API int plx_req_wait_mt(struct plx_req *req, uint64_t timeout_ns);

/* ----------------------------------------------------------------------
 * Timers: one-shot and periodic, kept in a binary heap (O(log n) start,
 * stop and expiry). Fired in phase 5 of plx_reactor_poll().
 */

typedef void (*plx_timer_cb)(struct plx_reactor *r, struct plx_timer *t);

/* struct plx_timer - caller-owned; private fields. */
struct plx_timer {
	plx_timer_cb cb;
	void *user;
	uint64_t plx_deadline;
	uint64_t plx_period;
	uint32_t plx_index; /* heap position + 1; 0 when not armed */
	uint32_t plx_pad;
};

/*
 * plx_timer_init() - prepare @t; @cb runs on the owner thread when it fires.
 * Thread context: any thread (the timer must not be armed).
 */
PLX_API void plx_timer_init(struct plx_timer *t, plx_timer_cb cb, void *user);

/*
 * plx_timer_start() - arm @t to fire @delay_ns from now, then every
 * @period_ns (0: once). Restarting an armed timer moves it.
 * Return: 0; PLX_ENOSPC (max_timers armed); PLX_EINVAL (no callback).
 * Thread context: owner thread; callable from inside a timer callback.
 */
PLX_API int plx_timer_start(struct plx_reactor *r, struct plx_timer *t,
			    uint64_t delay_ns, uint64_t period_ns);

/*
 * plx_timer_stop() - disarm @t. Its callback will not run again.
 * Return: 0; PLX_EALREADY (was not armed). Thread context: owner thread;
 * callable from inside any timer callback, including @t's own.
 */
PLX_API int plx_timer_stop(struct plx_reactor *r, struct plx_timer *t);

/*
 * plx_timer_armed() - 1 if @t is armed, else 0. Thread context: owner.
 */
PLX_API int plx_timer_armed(const struct plx_timer *t);

#ifdef __cplusplus
}
#endif

#endif /* POLLUX_REACTOR_H */
