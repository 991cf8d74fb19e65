/* SPDX-License-Identifier: MIT */
/*
 * pollux endpoints and operations: the same calls and the same semantics on
 * every transport.
 *
 * An endpoint (struct plx_ep) is pollux's connection to one peer reactor,
 * identified by the peer's node id. It is created by a transport's connect
 * call or by accepting a peer, owned by the library, and released by
 * plx_ep_close(). Operations on it use caller-owned struct plx_op.
 *
 * Completion semantics (each op completes exactly once, in
 * plx_reactor_poll(), never inside the submitting call):
 *  - send:      the message is in the target reactor: delivered into a
 *               posted receive, handed to its message-pool handler, or
 *               held in its bounded unexpected queue.
 *  - recv:      the message is in the caller's buffer; bytes = its length.
 *  - write:     the data is in the target's registered memory.
 *  - write_imm: the data is in place and the target's notification handler
 *               has been called with the immediate.
 *  - read:      the data is in the caller's buffer.
 * On success status = 0 and bytes = bytes moved. Failures: PLX_ETIMEDOUT
 * (the op's timeout passed), PLX_ECANCELED (plx_op_cancel or endpoint
 * close), PLX_ECONNRESET (peer restarted or connection lost), PLX_EFAULT /
 * PLX_EACCES / PLX_EKEYREJECTED (the target refused the remote range),
 * PLX_EMSGSIZE (a received message did not fit the posted buffer),
 * PLX_ENOTSUP (the op's local buffer is registered CUDA device memory and
 * the CUDA transport has no bounce pool, docs/cuda.md; also returned at
 * submission), PLX_ECUDA (a staging copy failed).
 * After a failure the target memory of a write may hold some of the data.
 *
 * Buffers: the source of send/write/write_imm and the destination of
 * recv/read belong to pollux from submission until the completion is
 * delivered; then the caller may reuse them.
 */
#ifndef POLLUX_EP_H
#define POLLUX_EP_H

#include <stddef.h>
#include <stdint.h>

#include "pollux/export.h"
#include "pollux/mem.h"
#include "pollux/reactor.h"
#include "pollux/status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct plx_ep;

/*
 * struct plx_op - one operation. Embed it in your own struct (get back with
 * container_of from the request in the callback). Initialise with
 * plx_op_init(); then it may be submitted again after each completion.
 */
struct plx_op {
	struct plx_req req;  /* cb, user, status, bytes */
	uint64_t timeout_ns; /* 0: the transport's default */
	uint32_t flags;	     /* PLX_OP_*; plx_op_init() clears them */
	uint32_t plx_pad;
	uint64_t plx_priv[33];
};

/*
 * PLX_OP_HEADROOM - the PLX_HEADROOM bytes just before the source of a
 * send, write or write_imm are pollux's too, from submission until the
 * completion, and their contents are lost. Over TCP, pollux writes the
 * frame header there and hands header and payload to the kernel as one
 * buffer, which is cheaper than two (docs/tcp.md, "Headroom"). Where it
 * cannot (RDMA, a buffer in device memory, an op split over striped
 * connections) the flag is ignored and those bytes are left alone; it has
 * no effect on receives, reads and resolves. Two ops in flight must not
 * share headroom. Submitting an op with a flag not defined here returns
 * PLX_EINVAL.
 */
#define PLX_OP_HEADROOM 0x1u
#define PLX_HEADROOM 128

/*
 * plx_op_init() - prepare @op; @cb runs on the owner thread at completion
 * (NULL: completion-handle mode, see plx_req_wait_mt()).
 * Thread context: any thread (the op must not be in flight).
 */
PLX_API void plx_op_init(struct plx_op *op, plx_req_cb cb, void *user);

/* Endpoint events, delivered to the transport's event callback. */
enum plx_ep_event {
	PLX_EP_ACCEPTED = 1,  /* a new peer connected to us */
	PLX_EP_CONNECTED = 2, /* handshake done (connect or reconnect) */
	PLX_EP_RESTARTED = 3, /* the peer restarted: in-flight ops failed */
	PLX_EP_DOWN = 4,      /* connection lost; status says why */
	PLX_EP_CLOSED = 5,    /* plx_ep_close() finished: @ep is gone */
};

/*
 * plx_ep_event_cb - endpoint state changes, on the owner thread.
 * @status: 0, or the reason for PLX_EP_DOWN (PLX_EAUTH, PLX_EVERSION,
 * PLX_EPROTO, PLX_ETIMEDOUT, PLX_ECONNRESET, PLX_ECONNREFUSED...).
 */
typedef void (*plx_ep_event_cb)(struct plx_reactor *r, struct plx_ep *ep,
				int event, int status, void *arg);

/*
 * plx_msg_cb - a message that matched no posted receive, delivered in a
 * buffer of the transport's message pool (zero-copy: it was received
 * straight into @buf). The handler owns @buf from now on and returns it
 * with plx_pool_put() when done, on the owner thread, now or later.
 */
typedef void (*plx_msg_cb)(struct plx_reactor *r, struct plx_ep *ep,
			   uint64_t tag, void *buf, size_t len, void *arg);

/*
 * plx_imm_cb - write_imm notification at the target, on its owner thread,
 * after the data is in place. @addr/@len: where the data landed.
 */
typedef void (*plx_imm_cb)(struct plx_reactor *r, struct plx_ep *ep,
			   uint32_t imm, uint64_t addr, uint64_t len,
			   void *arg);

/*
 * plx_ep_send() - send @len bytes at @buf as one message with @tag.
 * Return: 0 (will complete); PLX_EAGAIN (send queue full); PLX_EMSGSIZE
 * (@len above the transport's max message); PLX_EBUSY (op in flight);
 * PLX_ESHUTDOWN (endpoint closing); PLX_EINVAL. Thread: owner.
 */
PLX_API int plx_ep_send(struct plx_ep *ep, struct plx_op *op, const void *buf,
			size_t len, uint64_t tag);

/*
 * plx_ep_recv() - post a receive for the next message from @ep whose tag
 * satisfies (msg_tag & @mask) == (@tag & @mask) (mask 0: any message).
 * Posted receives match in the order they were posted; a message that
 * arrived earlier and waits in the unexpected queue matches at once (still
 * completing from poll). A message longer than @cap completes the receive
 * with PLX_EMSGSIZE (its bytes are dropped).
 * Return: 0; PLX_EAGAIN (too many receives posted); PLX_EBUSY;
 * PLX_ESHUTDOWN; PLX_EINVAL. Thread context: owner thread.
 */
PLX_API int plx_ep_recv(struct plx_ep *ep, struct plx_op *op, void *buf,
			size_t cap, uint64_t tag, uint64_t mask);

/*
 * plx_ep_write() - write @len bytes from @src to the peer's region @dst at
 * byte offset @off. The target checks (address, length, key, access).
 * Return: 0; PLX_EINVAL (NULL, or [@off, @off + @len) outside @dst);
 * PLX_EAGAIN; PLX_EBUSY; PLX_ESHUTDOWN. Thread context: owner thread.
 */
PLX_API int plx_ep_write(struct plx_ep *ep, struct plx_op *op, const void *src,
			 size_t len, const struct plx_desc *dst, uint64_t off);

/*
 * plx_ep_write_imm() - plx_ep_write(), then the target's notification
 * handler gets @imm once the data is in place. Same returns.
 */
PLX_API int plx_ep_write_imm(struct plx_ep *ep, struct plx_op *op,
			     const void *src, size_t len,
			     const struct plx_desc *dst, uint64_t off,
			     uint32_t imm);

/*
 * plx_ep_read() - read @len bytes at offset @off of the peer's region @src
 * into @dst. Same returns as plx_ep_write(). Thread context: owner.
 */
PLX_API int plx_ep_read(struct plx_ep *ep, struct plx_op *op, void *dst,
			size_t len, const struct plx_desc *src, uint64_t off);

/*
 * plx_ep_resolve() - ask the peer for the descriptor of its region named
 * @name (see plx_mem_name()); on success *@out is filled before the
 * completion. @name and @out must stay valid until the completion.
 * Completion status: 0; PLX_ENOENT (no such name at the peer); PLX_EBADMSG
 * (the peer's descriptor did not parse). Return: as plx_ep_send().
 * Thread context: owner thread.
 */
PLX_API int plx_ep_resolve(struct plx_ep *ep, struct plx_op *op,
			   const char *name, struct plx_desc *out);

/*
 * plx_ep_batch_begin() / plx_ep_batch_end() - ops submitted on @ep between
 * the two calls are queued without being sent; _end sends them all with as
 * few system calls as possible (one writev per connection for the lot when
 * the socket takes it). Nests. Large ops are still split over the striped
 * connections. Each op still completes on its own.
 * Return: 0; PLX_EINVAL (end without begin). Thread context: owner thread.
 */
PLX_API int plx_ep_batch_begin(struct plx_ep *ep);
PLX_API int plx_ep_batch_end(struct plx_ep *ep);

/*
 * Any-thread variants. They check their arguments on the calling thread,
 * then hand the op to the owner through the request ring; the owner starts
 * it in the ring phase of its next poll. Completion as for the owner-thread
 * calls: the op's callback on the owner thread, or (callback NULL) the
 * completion handle any thread can wait on (plx_req_wait_mt(&op->req)).
 * If the owner cannot start the op (queue full, endpoint closing...), the
 * op completes with that status. @ep must stay open while submissions may
 * still arrive. Return: 0 (the op will complete); PLX_EAGAIN (request ring
 * full: not submitted); PLX_EBUSY (op in flight); PLX_EINVAL; PLX_EMSGSIZE.
 * Thread context: any thread.
 */
PLX_API int plx_ep_send_mt(struct plx_ep *ep, struct plx_op *op,
			   const void *buf, size_t len, uint64_t tag);
PLX_API int plx_ep_recv_mt(struct plx_ep *ep, struct plx_op *op, void *buf,
			   size_t cap, uint64_t tag, uint64_t mask);
PLX_API int plx_ep_write_mt(struct plx_ep *ep, struct plx_op *op,
			    const void *src, size_t len,
			    const struct plx_desc *dst, uint64_t off);
PLX_API int plx_ep_write_imm_mt(struct plx_ep *ep, struct plx_op *op,
				const void *src, size_t len,
				const struct plx_desc *dst, uint64_t off,
				uint32_t imm);
PLX_API int plx_ep_read_mt(struct plx_ep *ep, struct plx_op *op, void *dst,
			   size_t len, const struct plx_desc *src,
			   uint64_t off);

/*
 * plx_op_cancel() - cancel @op. It completes with PLX_ECANCELED (from
 * poll), unless it already completed or completes first. An op whose bytes
 * have started to leave completes once they have left, since its buffer is
 * still being read; a write may then have reached the target in part or in
 * whole. Return: 0 (the completion will come); PLX_EALREADY (not in
 * flight). Thread context: owner thread.
 */
PLX_API int plx_op_cancel(struct plx_reactor *r, struct plx_op *op);

/*
 * plx_ep_close() - close @ep: every op in flight completes with
 * PLX_ECANCELED, the connections are shut, then PLX_EP_CLOSED is reported
 * (after every completion of the endpoint's ops has been delivered) and
 * @ep must not be used again. Return: 0; PLX_EALREADY (closing).
 * Thread context: owner thread.
 */
PLX_API int plx_ep_close(struct plx_ep *ep);

/* plx_ep_peer() - the peer's node id (16 bytes) and epoch; zeros until the
 * first handshake completed. Thread context: owner thread. */
PLX_API void plx_ep_peer(const struct plx_ep *ep, uint8_t *node_out,
			 uint64_t *epoch_out);

/* plx_ep_set_user() / plx_ep_user() - one caller pointer per endpoint. */
PLX_API void plx_ep_set_user(struct plx_ep *ep, void *user);
PLX_API void *plx_ep_user(const struct plx_ep *ep);

/* plx_ep_conn_count() - established connections of @ep (the primary plus
 * striped data connections that are up), or PLX_EINVAL. Owner thread. */
PLX_API int plx_ep_conn_count(const struct plx_ep *ep);

/* plx_ep_is_up() - 1 when the endpoint has an established connection. */
PLX_API int plx_ep_is_up(const struct plx_ep *ep);

#ifdef __cplusplus
}
#endif

#endif /* POLLUX_EP_H */
