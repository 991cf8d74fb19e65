/* SPDX-License-Identifier: MIT */
/*
 * pollux TCP transport: listeners, connecting, and its configuration.
 * Endpoints and operations are in pollux/ep.h.
 */
#ifndef POLLUX_TCP_H
#define POLLUX_TCP_H

#include <stddef.h>
#include <stdint.h>

#include "pollux/ep.h"
#include "pollux/export.h"
#include "pollux/reactor.h"

#ifdef __cplusplus
extern "C" {
#endif

struct plx_tcp_config {
	uint32_t max_endpoints;	       /* peers at once; 1024 */
	uint32_t max_message;	       /* largest send/recv message; 1 MiB */
	uint32_t max_frame;	       /* largest write/read payload; 256 MiB
				      * (PLX_EMSGSIZE above it) */
	uint32_t send_queue;	       /* ops queued or awaiting ack per
				      * endpoint; 4096 */
	uint32_t max_recvs;	       /* posted receives per endpoint; 1024 */
	uint32_t unexpected_count;     /* unexpected-queue slots, all peers;
				      * 256 */
	uint32_t unexpected_size;      /* bytes per slot; 8 KiB (larger
				      * unexpected messages wait in the
				      * socket until a receive is posted) */
	uint32_t stripes;	       /* extra data connections the
				      * connecting side opens per peer; 0
				      * (measured: no gain on 2 cores, see
				      * docs/benchmarks.md) */
	uint32_t stripe_threshold;     /* writes/reads of at least this many
				      * bytes are split over the data
				      * connections; 8 MiB */
	uint32_t stripe_chunk;	       /* bytes per piece of a split op;
				      * 256 KiB */
	uint32_t max_pieces;	       /* pieces in flight, all peers; 4096 */
	uint32_t max_handshakes;       /* accepted connections still in
				      * their handshake, all peers; 256:
				      * beyond, new ones are closed at once
				      * (each holds an fd and ~19 KiB until
				      * it completes or handshake_timeout) */
	uint32_t flush_max;	       /* bytes a connection hands its
				      * socket in one flush at most; the
				      * rest leaves at the next poll, so one
				      * poll stays short while a long queue
				      * streams to a fast reader; 8 MiB;
				      * 64 KiB..1 GiB (docs/tcp.md, "Flush
				      * budget") */
	uint64_t op_timeout_ns;	       /* default per-op timeout; 30 s */
	uint64_t handshake_timeout_ns; /* 5 s */
	uint64_t keepalive_ns;	       /* idle time before a ping; 1 s */
	uint32_t keepalive_probes;     /* unanswered pings before down; 3 */
	int sndbuf;		       /* SO_SNDBUF, 0: kernel autotuning */
	int rcvbuf;		       /* SO_RCVBUF, 0: kernel autotuning */
	const char *congestion;	       /* TCP congestion control of every
				      * connection and listener
				      * (TCP_CONGESTION, e.g. "cubic"), or
				      * NULL: the system's default
				      * (net.ipv4.tcp_congestion_control).
				      * Copied; an unknown or not permitted
				      * name fails plx_tcp_init() with
				      * PLX_EINVAL. See docs/tcp.md */
	const void *psk;	       /* pre-shared key, or NULL: no auth */
	size_t psk_len;
	plx_ep_event_cb event_cb; /* endpoint events (may be NULL) */
	plx_imm_cb imm_cb;	  /* write_imm notifications */
	/* Receive mode for messages of unknown size: with msg_cb and
	 * msg_pool set, a message that matches no posted receive lands in a
	 * buffer of msg_pool and goes to msg_cb, instead of the unexpected
	 * queue. A message larger than the pool's buffers is refused
	 * (PLX_EMSGSIZE at both ends); an empty pool stops reading from
	 * that peer until buffers are returned (back-pressure). */
	plx_msg_cb msg_cb;
	struct plx_pool *msg_pool;
	void *cb_arg;
};

/* plx_tcp_config_init() - defaults (documented per field). Any thread. */
PLX_API void plx_tcp_config_init(struct plx_tcp_config *cfg);

/*
 * plx_tcp_init() - attach the TCP transport to @r. @cfg is copied (the
 * PSK is turned into a MAC key at once and not kept).
 * Return: 0; PLX_EEXIST (already attached); PLX_EINVAL; PLX_ENOMEM.
 * Thread context: owner thread. Detached by plx_reactor_fini().
 */
PLX_API int plx_tcp_init(struct plx_reactor *r,
			 const struct plx_tcp_config *cfg);

/*
 * plx_tcp_listen() - accept peers on @addr (numeric IPv4 or IPv6, e.g.
 * "127.0.0.1", "::1", "0.0.0.0") and @port (0: ephemeral).
 * @port_out: the bound port, or NULL.
 * Return: 0; PLX_EADDRINUSE; PLX_EINVAL (bad address); PLX_ENOSPC (too
 * many listeners); PLX_EUNAVAIL (transport not initialised); -errno.
 * Thread context: owner thread.
 */
PLX_API int plx_tcp_listen(struct plx_reactor *r, const char *addr,
			   uint16_t port, uint16_t *port_out);

/*
 * plx_tcp_connect() - start connecting to @addr:@port (numeric IPv4/IPv6).
 * Never blocks: the endpoint is returned at once and ops may be submitted
 * on it immediately; they are sent once the handshake completes.
 * PLX_EP_CONNECTED or PLX_EP_DOWN follows. If the peer turns out to be one
 * we already have an endpoint for (for example both sides connected at
 * once), the two merge: both handles then name the same peer and the ops
 * queued on either are kept.
 * Return: 0; PLX_EINVAL; PLX_ENOSPC (max_endpoints); PLX_EUNAVAIL; -errno.
 * Thread context: owner thread.
 */
PLX_API int plx_tcp_connect(struct plx_reactor *r, const char *addr,
			    uint16_t port, struct plx_ep **ep_out);

/*
 * plx_tcp_shutdown() - close every endpoint (their ops complete with
 * PLX_ECANCELED, PLX_EP_CLOSED follows for each) and every listener, so
 * that plx_reactor_fini() can succeed after the next poll.
 * Return: 0; PLX_EUNAVAIL. Thread context: owner thread.
 */
PLX_API int plx_tcp_shutdown(struct plx_reactor *r);

#ifdef __cplusplus
}
#endif

#endif /* POLLUX_TCP_H */
