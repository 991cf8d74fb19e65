/* SPDX-License-Identifier: MIT */
/*
 * pollux RDMA transport (libibverbs, loaded at run time).
 *
 * This first step attaches one verbs device to a reactor: device, port and
 * GID chosen by the rule in docs/rdma.md, one protection domain, one
 * completion queue polled in the CQ phase of plx_reactor_poll(), and a
 * completion channel whose fd joins the reactor fd for event-driven use.
 * Endpoints and operations over RDMA are not there yet (docs/rdma.md).
 *
 * Where rdma-core is not installed, or no device has an active port,
 * plx_rdma_init() returns PLX_EUNAVAIL and the reactor (and its TCP
 * transport) keeps working.
 */
#ifndef POLLUX_RDMA_H
#define POLLUX_RDMA_H

#include <stdint.h>

#include "pollux/export.h"
#include "pollux/reactor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* RDMA transport configuration. Fill with plx_rdma_config_init() first. */
struct plx_rdma_config {
	const char *device; /* verbs device name ("mlx5_0", "rxe0"), or
			     * NULL: the first device with an active port;
			     * read only during plx_rdma_init() */
	uint32_t port;	    /* port number (1-based), or 0: the first
			     * active port; 0 */
	int gid_index;	    /* GID table index, or -1: chosen by the rule
			     * in docs/rdma.md (RoCE v2 preferred); -1 */
	uint32_t cq_size;   /* completion queue entries; 4096 (clamped to
			     * the device's maximum) */
};

/* plx_rdma_config_init() - defaults (documented per field). Any thread. */
PLX_API void plx_rdma_config_init(struct plx_rdma_config *cfg);

/*
 * plx_rdma_init() - attach the RDMA transport to @r: load libibverbs,
 * choose device, port and GID, open the device, allocate a PD, a
 * completion channel and one CQ, and watch the channel's fd from the
 * reactor fd. @cfg may be NULL (defaults); it is copied.
 *
 * Return: 0; PLX_EUNAVAIL (libibverbs or one of its symbols missing, no
 * verbs device, or no device with an active port: the reason goes to the
 * log callback; the reactor is unchanged and its other transports keep
 * working); PLX_ENODEV (@cfg->device names no device); PLX_ENETDOWN (the
 * named device/port is not active); PLX_ENOENT (@cfg->gid_index is not a
 * valid, non-zero GID of the port); PLX_EINVAL (bad config); PLX_EEXIST
 * (already attached); PLX_ENOMEM; PLX_EVERBS or -errno (a verbs call
 * failed). On failure nothing is left allocated.
 * Thread context: owner thread. Detached by plx_reactor_fini().
 */
PLX_API int plx_rdma_init(struct plx_reactor *r,
			  const struct plx_rdma_config *cfg);

/* What plx_rdma_init() chose. */
struct plx_rdma_info {
	char device[64];     /* verbs device name, NUL-terminated */
	uint32_t port;	     /* port number, 1-based */
	int gid_index;	     /* GID table index in use */
	uint8_t gid[16];     /* that GID, network byte order */
	int roce_version;    /* 2: RoCE v2, 1: RoCE v1, 0: InfiniBand
			       * (or a GID type the library cannot tell) */
	int link_layer;	     /* 1: InfiniBand, 2: Ethernet (IBV_LINK_LAYER_*) */
	uint16_t lid;	     /* port LID (InfiniBand; 0 on RoCE) */
	uint32_t active_mtu; /* active path MTU of the port, bytes */
	uint32_t cq_size;    /* CQ entries actually created */
};

/*
 * plx_rdma_info() - copy what plx_rdma_init() chose into @out.
 * Return: 0; PLX_EUNAVAIL (the RDMA transport is not attached to @r).
 * Thread context: owner thread.
 */
PLX_API int plx_rdma_info(struct plx_reactor *r, struct plx_rdma_info *out);

#ifdef __cplusplus
}
#endif

#endif /* POLLUX_RDMA_H */
