/* SPDX-License-Identifier: MIT */
/*
 * RDMA transport: device selection and the per-reactor verbs resources
 * (PD, completion channel, one CQ), polled in the reactor's CQ phase.
 *
 * Verbs objects are touched only by the owner thread. The CQ is polled
 * directly in poll(); the completion channel exists only so that a
 * sleeping owner wakes when a completion arrives: its fd is non-blocking
 * and sits in the reactor's epoll set, poll() drains its events and arm()
 * requests the next notification.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "pollux/cuda.h"
#include "reactor/internal.h"
#include "transport/rdma/rdma_internal.h"
#include "transport/rdma/route.h"
#include "transport/transport.h"

static const struct plx__transport_ops rdma_ops;

struct plx__rdma *plx__rdma_get(struct plx_reactor *r)
{
	return plx__reactor_transport(r, &rdma_ops);
}

int plx__rdma_gid_rank(int type, const uint8_t gid[16])
{
	static const uint8_t v4map[12] = {0, 0, 0, 0, 0,    0,
					  0, 0, 0, 0, 0xff, 0xff};
	static const uint8_t zero[16];

	if (!memcmp(gid, zero, 16))
		return 0;
	if (type != IBV_GID_TYPE_ROCE_V2)
		return 1;
	if (!memcmp(gid, v4map, sizeof(v4map)))
		return 4;
	/* fe80::/10 link-local: fine on one L2 segment, never routed */
	if (gid[0] == 0xfe && (gid[1] & 0xc0) == 0x80)
		return 2;
	return 3;
}

/* ---- completion queue phase ------------------------------------------ */

static void rdma_deliver(struct plx_reactor *r, struct plx__rdma *d,
			 const struct ibv_wc *wc)
{
	struct plx__rdma_wc_handler *h =
		(struct plx__rdma_wc_handler *)(uintptr_t)wc->wr_id;

	d->completions++;
	if (!h) {
		plx__log(d->x, PLX_LOG_WARN,
			 "rdma: completion without handler: qp %u status %d "
			 "(%s)",
			 wc->qp_num, (int)wc->status,
			 wc->status == IBV_WC_SUCCESS ? "success" : "error");
		return;
	}
	h->fn(r, h, wc);
}

/* Take the completion channel's events (fd is non-blocking) so that the
 * fd stops being readable; acknowledge them in batches (every ack takes a
 * lock in libibverbs). Events mean the CQ's notification has fired. */
static void rdma_drain_events(struct plx__rdma *d)
{
	struct ibv_cq *cq;
	void *cq_ctx;

	while (d->ibv->get_cq_event(d->ch, &cq, &cq_ctx) == 0) {
		d->notify_armed = false;
		d->unacked++;
		d->cq_events++;
	}
	if (d->unacked >= 64) {
		d->ibv->ack_cq_events(d->cq, d->unacked);
		d->unacked = 0;
	}
}

static int rdma_poll(struct plx_reactor *r, void *ctx, uint32_t budget)
{
	struct plx__rdma *d = ctx;
	struct ibv_wc wc[PLX__RDMA_STASH];
	uint32_t done = 0;
	int n;

	/* completions arm() already took off the CQ come first, in order */
	while (d->nstash && done < budget) {
		struct ibv_wc one = d->stash[0];

		d->nstash--;
		memmove(&d->stash[0], &d->stash[1],
			d->nstash * sizeof(d->stash[0]));
		rdma_deliver(r, d, &one);
		done++;
	}
	if (d->retiring || d->dead)
		plx__rchan_reap(d, plx__now_coarse());
	/* Only after an arm: a busy-polling owner makes no syscall here. */
	if (d->drain) {
		d->drain = false;
		rdma_drain_events(d);
	}
	while (done < budget) {
		uint32_t want = budget - done;

		if (want > PLX__RDMA_STASH)
			want = PLX__RDMA_STASH;
		n = ibv_poll_cq(d->cq, (int)want, wc);
		if (n < 0) {
			plx__log(d->x, PLX_LOG_ERROR,
				 "rdma: ibv_poll_cq failed (%d)", n);
			break;
		}
		for (int i = 0; i < n; i++)
			rdma_deliver(r, d, &wc[i]);
		done += (uint32_t)n;
		if ((uint32_t)n < want) {
			/* the stash was delivered first: no completion from
			 * before this call is left anywhere */
			d->cq_empty++;
			break;
		}
	}
	return (int)done;
}

/*
 * Request a notification, then poll once more: a completion that landed
 * between the last poll and the request would otherwise raise no event
 * (the notification covers only completions added after it). What that
 * poll finds is stashed for the next poll() and the reactor stays awake.
 */
static int rdma_arm(struct plx_reactor *r, void *ctx)
{
	struct plx__rdma *d = ctx;
	int n, rc;

	(void)r;
	if (d->nstash)
		return PLX_EBUSY;
	if (!d->notify_armed) {
		rc = ibv_req_notify_cq(d->cq, 0);
		if (rc) {
			plx__log(d->x, PLX_LOG_ERROR,
				 "rdma: ibv_req_notify_cq failed (%d)", rc);
			return PLX_EBUSY; /* stay awake: keep polling */
		}
		d->notify_armed = true;
	}
	d->drain = true;
	n = ibv_poll_cq(d->cq, PLX__RDMA_STASH, d->stash);
	if (n > 0) {
		d->nstash = (uint32_t)n;
		return PLX_EBUSY;
	}
	return 0;
}

static uint64_t rdma_live(struct plx_reactor *r, void *ctx)
{
	struct plx__rdma *d = ctx;

	(void)r;
	/* completions not yet delivered, and channels whose QPs are still
	 * draining, keep the reactor busy */
	return d->nstash + d->nlive;
}

static void rdma_region_del(struct plx_reactor *r, void *ctx,
			    struct plx_region *reg);

/* Undo everything rdma_open() and plx_rdma_init() set up, in reverse. */
static void rdma_teardown(struct plx_reactor *r, struct plx__rdma *d,
			  bool watched)
{
	const struct plx__ibv *t = d->ibv;

	plx__rchan_fini_all(d);
	if (plx_timer_armed(&d->resolve_timer))
		plx_timer_stop(r, &d->resolve_timer);
	plx__gid_fini(d);
	/* regions still registered lose their MRs (and rkeys) */
	for (uint32_t i = 0; i < d->x->regs.n; i++)
		rdma_region_del(r, d, d->x->regs.v[i].reg);
	plx__free(d->x, d->mrs);
	if (watched)
		plx__reactor_unwatch_fd(r, d->ch->fd);
	if (d->cq) {
		/* every event got must be acknowledged before the CQ goes */
		if (d->unacked)
			t->ack_cq_events(d->cq, d->unacked);
		d->unacked = 0;
		if (t->destroy_cq(d->cq))
			plx__log(d->x, PLX_LOG_ERROR,
				 "rdma: ibv_destroy_cq failed (QPs still "
				 "attached?)");
	}
	if (d->ch && t->destroy_comp_channel(d->ch))
		plx__log(d->x, PLX_LOG_ERROR,
			 "rdma: ibv_destroy_comp_channel failed");
	if (d->qp_pd && d->qp_pd != d->pd && t->dealloc_pd(d->qp_pd))
		plx__log(d->x, PLX_LOG_ERROR,
			 "rdma: freeing the parent domain failed");
	if (d->td && ibv_dealloc_td(d->td))
		plx__log(d->x, PLX_LOG_ERROR, "rdma: ibv_dealloc_td failed");
	if (d->pd && t->dealloc_pd(d->pd))
		plx__log(d->x, PLX_LOG_ERROR,
			 "rdma: ibv_dealloc_pd failed (QPs or MRs still "
			 "allocated?)");
	if (d->ctx)
		t->close_device(d->ctx);
	plx__free(d->x, d);
}

static void rdma_fini(struct plx_reactor *r, void *ctx)
{
	rdma_teardown(r, ctx, true);
}

/* ---- memory regions ---------------------------------------------------- */

/* First index whose addr is above @addr. */
static uint32_t mr_upper(const struct plx__rdma *d, uint64_t addr)
{
	uint32_t lo = 0, hi = d->nmrs;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (d->mrs[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct ibv_mr *plx__rdma_mr_find(const struct plx__rdma *d, uint64_t addr,
				 uint64_t len)
{
	uint32_t i = mr_upper(d, addr);

	/* regions starting at or below @addr, nearest first; overlapping
	 * registrations are rare, so look only a few deep */
	for (uint32_t k = 0; k < 8 && i > 0; k++) {
		const struct plx__rmr *m = &d->mrs[--i];

		if (addr >= m->addr && addr < m->end && len <= m->end - addr)
			return m->mr;
	}
	return NULL;
}

static int ibv_access(uint32_t plx_access)
{
	int access = IBV_ACCESS_LOCAL_WRITE;

	if (plx_access & PLX_ACCESS_REMOTE_READ)
		access |= IBV_ACCESS_REMOTE_READ;
	if (plx_access & PLX_ACCESS_REMOTE_WRITE)
		access |= IBV_ACCESS_REMOTE_WRITE;
	return access;
}

/* Pin [addr, addr + len) and register it with the NIC (any thread: the
 * PD is only read; the verbs call is thread-safe). */
static int mr_make(struct plx__rdma *d, uint64_t addr, uint64_t len,
		   uint32_t plx_access, struct ibv_mr **out)
{
	/* pins the pages: the expensive part of a registration */
	errno = 0;
	*out = d->ibv->reg_mr(d->pd, (void *)(uintptr_t)addr, (size_t)len,
			      ibv_access(plx_access));
	return *out ? 0 : errno ? -errno : PLX_EVERBS;
}

static int rdma_region_pin(void *ctx, uint64_t addr, uint64_t len,
			   uint32_t access, void **state)
{
	struct ibv_mr *mr;
	int rc = mr_make(ctx, addr, len, access, &mr);

	*state = mr;
	return rc;
}

static void rdma_region_unpin(void *ctx, void *state)
{
	struct plx__rdma *d = ctx;

	if (state && d->ibv->dereg_mr(state))
		plx__log(d->x, PLX_LOG_ERROR, "rdma: ibv_dereg_mr failed");
}

/*
 * GPUDirect RDMA: an MR on device memory (@reg has PLX_HINT_CUDA), in
 * this order: a dma-buf the CUDA driver exports (ibv_reg_dmabuf_mr), then
 * ibv_reg_mr on the device pointer (works where nvidia-peermem is
 * loaded), else none: the region is staged (docs/cuda.md). @pinned: an MR
 * plx_mem_register_mt() made ahead with ibv_reg_mr (before the memory was
 * known to be device memory): used as the second choice, else released.
 * Return the MR or NULL; *@path says which way it went.
 */
static struct ibv_mr *gdr_mr(struct plx_reactor *r, struct plx__rdma *d,
			     struct plx_region *reg, struct ibv_mr *pinned,
			     uintptr_t *path)
{
	struct ibv_mr *mr = NULL;
	uint64_t off = 0;
	int fd = -1, rc, err;

	*path = PLX_CUDA_PATH_STAGING;
	if (!plx__cuda_gpudirect(r)) {
		rdma_region_unpin(d, pinned);
		return NULL;
	}
	if (!d->ibv->reg_dmabuf_mr) {
		plx__log(d->x, PLX_LOG_INFO,
			 "gpudirect: libibverbs has no ibv_reg_dmabuf_mr "
			 "(rdma-core before 34), trying ibv_reg_mr");
		rc = PLX_ENOTSUP;
	} else {
		rc = plx__cuda_dmabuf(r, reg, &fd, &off);
	}
	if (rc == 0) {
		errno = 0;
		mr = d->ibv->reg_dmabuf_mr(d->pd, off, (size_t)reg->plx_len,
					   reg->plx_addr, fd,
					   ibv_access(reg->plx_access));
		err = errno;
		/* the MR holds the dma-buf itself: the fd is done with */
		close(fd);
		if (mr) {
			rdma_region_unpin(d, pinned);
			*path = PLX_CUDA_PATH_DMABUF;
			return mr;
		}
		plx__log(d->x, PLX_LOG_INFO,
			 "gpudirect: dma-buf refused (%s), trying ibv_reg_mr",
			 plx_errname(err ? -err : PLX_EVERBS));
	}
	if (pinned) {
		*path = PLX_CUDA_PATH_PEERMEM;
		return pinned;
	}
	rc = mr_make(d, reg->plx_addr, reg->plx_len, reg->plx_access, &mr);
	if (rc == 0) {
		*path = PLX_CUDA_PATH_PEERMEM;
		return mr;
	}
	plx__log(d->x, PLX_LOG_INFO,
		 "gpudirect: ibv_reg_mr of device memory refused (%s): the "
		 "region at %#llx is staged",
		 plx_errname(rc), (unsigned long long)reg->plx_addr);
	return NULL;
}

static int rdma_region_add(struct plx_reactor *r, void *ctx,
			   struct plx_region *reg)
{
	struct plx__rdma *d = ctx;
	/* pinned ahead by plx_mem_register_mt(), or made here */
	struct ibv_mr *mr = reg->plx_transport[PLX__TSLOT_RDMA];
	uintptr_t path = PLX_CUDA_PATH_NONE;
	uint32_t i;

	reg->plx_transport[PLX__TSLOT_RDMA] = NULL;
	if (reg->plx_hints & PLX_HINT_CUDA) {
		mr = gdr_mr(r, d, reg, mr, &path);
		if (!mr) {
			/* no rkey: peers reach it over TCP, staged here */
			reg->plx_transport[PLX__TSLOT_GDR] = (void *)path;
			return 0;
		}
	}
	if (d->nmrs == d->cap_mrs) {
		uint32_t cap = d->cap_mrs ? 2 * d->cap_mrs : 16;
		struct plx__rmr *v = plx__alloc(d->x, cap * sizeof(*v));

		if (!v) {
			rdma_region_unpin(d, mr);
			return PLX_ENOMEM;
		}
		if (d->nmrs)
			memcpy(v, d->mrs, d->nmrs * sizeof(*v));
		plx__free(d->x, d->mrs);
		d->mrs = v;
		d->cap_mrs = cap;
	}
	if (!mr) {
		int rc = mr_make(d, reg->plx_addr, reg->plx_len,
				 reg->plx_access, &mr);

		if (rc) {
			plx__log(d->x, PLX_LOG_ERROR,
				 "rdma: ibv_reg_mr of %llu bytes failed (%s)",
				 (unsigned long long)reg->plx_len,
				 plx_errname(rc));
			return rc;
		}
	}
	i = mr_upper(d, reg->plx_addr);
	memmove(&d->mrs[i + 1], &d->mrs[i], (d->nmrs - i) * sizeof(d->mrs[0]));
	d->mrs[i].addr = reg->plx_addr;
	d->mrs[i].end = reg->plx_addr + reg->plx_len;
	d->mrs[i].mr = mr;
	d->nmrs++;
	reg->plx_transport[PLX__TSLOT_RDMA] = mr;
	reg->plx_transport[PLX__TSLOT_GDR] = (void *)path;
	reg->plx_rkey = mr->rkey;
	reg->plx_hints |= PLX_HINT_RDMA;
	return 0;
}

static void rdma_region_del(struct plx_reactor *r, void *ctx,
			    struct plx_region *reg)
{
	struct plx__rdma *d = ctx;
	struct ibv_mr *mr = reg->plx_transport[PLX__TSLOT_RDMA];

	(void)r;
	reg->plx_transport[PLX__TSLOT_GDR] = NULL;
	if (!mr)
		return;
	for (uint32_t i = 0; i < d->nmrs; i++) {
		if (d->mrs[i].mr != mr)
			continue;
		memmove(&d->mrs[i], &d->mrs[i + 1],
			(d->nmrs - i - 1) * sizeof(d->mrs[0]));
		d->nmrs--;
		break;
	}
	/* the rkey dies with the MR: a peer's access fails from now on */
	if (d->ibv->dereg_mr(mr))
		plx__log(d->x, PLX_LOG_ERROR, "rdma: ibv_dereg_mr failed");
	reg->plx_transport[PLX__TSLOT_RDMA] = NULL;
	reg->plx_rkey = 0;
	reg->plx_hints &= ~PLX_HINT_RDMA;
}

bool plx__rdma_attached(struct plx_reactor *r)
{
	return plx__rdma_get(r) != NULL;
}

static const struct plx__transport_ops rdma_ops = {
	.name = "rdma",
	.phase = PLX__PHASE_CQ,
	.poll = rdma_poll,
	.arm = rdma_arm,
	.live = rdma_live,
	.fini = rdma_fini,
	.region_gone = NULL,
	.region_add = rdma_region_add,
	.region_del = rdma_region_del,
	.region_pin = rdma_region_pin,
	.region_unpin = rdma_region_unpin,
};

/* ---- device, port and GID selection ---------------------------------- */

static uint32_t mtu_bytes(enum ibv_mtu m)
{
	return (m >= IBV_MTU_256 && m <= IBV_MTU_4096) ? 128u << m : 0;
}

/* Read sysfs's gid_attrs/@what/@idx of @port into @buf (what rdma-core
 * itself reads when it has no _ibv_query_gid_ex). Return bytes, <= 0. */
static ssize_t gid_sysfs(struct ibv_device *dev, uint32_t port,
			 const char *what, int idx, char *buf, size_t cap)
{
	char path[IBV_SYSFS_PATH_MAX + 64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/ports/%u/gid_attrs/%s/%d",
		 dev->ibdev_path, port, what, idx);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, cap - 1);
	close(fd);
	if (n > 0)
		buf[n] = 0;
	return n;
}

/* Entry @idx of @port's GID table: its type (IBV_GID_TYPE_*) and the
 * ifindex of its netdev (0: none), from _ibv_query_gid_ex where
 * rdma-core has it, else sysfs. Return 0, or -1: unknown. */
static int gid_entry(const struct plx__ibv *t, struct ibv_device *dev,
		     struct ibv_context *ctx, uint32_t port, int idx,
		     struct ibv_gid_entry *e)
{
	char buf[32];

	if (t->query_gid_ex)
		return t->query_gid_ex(ctx, port, (uint32_t)idx, e, 0,
				       sizeof(*e)) ?
			       -1 :
			       0;
	memset(e, 0, sizeof(*e));
	if (gid_sysfs(dev, port, "types", idx, buf, sizeof(buf)) <= 0)
		return -1;
	e->gid_type = strstr(buf, "RoCE v2") ? IBV_GID_TYPE_ROCE_V2 :
		      strstr(buf, "RoCE v1") ? IBV_GID_TYPE_ROCE_V1 :
					       IBV_GID_TYPE_IB;
	if (gid_sysfs(dev, port, "ndevs", idx, buf, sizeof(buf)) > 0) {
		buf[strcspn(buf, "\n")] = 0;
		e->ndev_ifindex = if_nametoindex(buf);
	}
	return 0;
}

/* Pick the GID of @port by the documented rule (or check cfg's index).
 * Fills info gid fields. Return 0 or PLX_ENOENT. */
static int choose_gid(struct plx__rdma *d, struct ibv_device *dev,
		      const struct ibv_port_attr *pa)
{
	const struct plx__ibv *t = d->ibv;
	struct plx_rdma_info *in = &d->info;
	int best = -1, best_rank = 0;
	uint32_t best_ifindex = 0;
	struct ibv_gid_entry e;
	union ibv_gid g;

	for (int i = 0; i < pa->gid_tbl_len; i++) {
		int type, rank;

		if (d->cfg.gid_index >= 0 && i != d->cfg.gid_index)
			continue;
		if (t->query_gid(d->ctx, (uint8_t)in->port, i, &g))
			continue;
		type = gid_entry(t, dev, d->ctx, in->port, i, &e) ?
			       -1 :
			       (int)e.gid_type;
		rank = plx__rdma_gid_rank(type, g.raw);
		if (rank > best_rank) {
			best = i;
			best_rank = rank;
			best_ifindex = type < 0 ? 0 : e.ndev_ifindex;
			memcpy(in->gid, g.raw, 16);
			in->roce_version =
				pa->link_layer != IBV_LINK_LAYER_ETHERNET ? 0 :
				type == IBV_GID_TYPE_ROCE_V2		  ? 2 :
				type == IBV_GID_TYPE_ROCE_V1		  ? 1 :
									    0;
		}
	}
	if (best < 0) {
		plx__log(d->x, PLX_LOG_WARN,
			 "rdma: %s port %u: no usable (non-zero) GID%s%d",
			 in->device, in->port,
			 d->cfg.gid_index >= 0 ? " at index " : "",
			 d->cfg.gid_index >= 0 ? d->cfg.gid_index : 0);
		return PLX_ENOENT;
	}
	in->gid_index = best;
	/* the netdev whose routes and neighbours a modify to RTR uses
	 * (transport/rdma/route.c); none on InfiniBand */
	d->ifindex = pa->link_layer == IBV_LINK_LAYER_ETHERNET ? best_ifindex :
								 0;
	return 0;
}

/* First active port of the open device (or cfg's port, if active). */
static int choose_port(struct plx__rdma *d, struct ibv_port_attr *pa_out)
{
	struct ibv_device_attr da;
	uint32_t p;

	if (d->ibv->query_device(d->ctx, &da))
		return PLX_EVERBS;
	for (p = 1; p <= da.phys_port_cnt; p++) {
		if (d->cfg.port && p != d->cfg.port)
			continue;
		if (plx__ibv_query_port(d->ibv, d->ctx, (uint8_t)p, pa_out))
			continue;
		if (pa_out->state == IBV_PORT_ACTIVE) {
			d->info.port = p;
			if (d->cfg.cq_size > (uint32_t)da.max_cqe)
				d->cfg.cq_size = (uint32_t)da.max_cqe;
			return 0;
		}
	}
	return PLX_ENETDOWN;
}

/* Open the device cfg names, or the first one with an active port. */
static int rdma_open(struct plx__rdma *d)
{
	const struct plx__ibv *t = d->ibv;
	struct ibv_device **list;
	struct ibv_port_attr pa;
	int n = 0, rc = PLX_EUNAVAIL, i;

	list = t->get_device_list(&n);
	if (!list || n == 0) {
		plx__log(d->x, PLX_LOG_WARN,
			 "rdma: no verbs device on this host (rdma-core "
			 "loaded, ibv_get_device_list found none)");
		if (list)
			t->free_device_list(list);
		return PLX_EUNAVAIL;
	}
	if (d->cfg.device)
		rc = PLX_ENODEV;
	for (i = 0; i < n; i++) {
		const char *name = t->get_device_name(list[i]);
		int prc;

		if (d->cfg.device && strcmp(name, d->cfg.device))
			continue;
		d->ctx = t->open_device(list[i]);
		if (!d->ctx) {
			plx__log(d->x, PLX_LOG_WARN,
				 "rdma: cannot open device %s", name);
			rc = d->cfg.device ? PLX_EVERBS : rc;
			continue;
		}
		snprintf(d->info.device, sizeof(d->info.device), "%s", name);
		prc = choose_port(d, &pa);
		if (prc == 0) {
			rc = choose_gid(d, list[i], &pa);
			if (rc == 0) {
				d->info.link_layer = pa.link_layer;
				d->info.lid = pa.lid;
				d->info.active_mtu = mtu_bytes(pa.active_mtu);
				break;
			}
		} else {
			plx__log(d->x, PLX_LOG_INFO,
				 "rdma: device %s: no active port%s", name,
				 d->cfg.port ? " (the one configured)" : "");
			rc = d->cfg.device ? prc : rc;
		}
		t->close_device(d->ctx);
		d->ctx = NULL;
		if (d->cfg.device)
			break;
	}
	t->free_device_list(list);
	if (rc == PLX_EUNAVAIL)
		plx__log(d->x, PLX_LOG_WARN,
			 "rdma: no verbs device with an active port");
	return rc;
}

/*
 * Only the owner thread touches the verbs objects, so ask the provider to
 * drop its locks where it can: a thread domain with a parent domain for
 * the QPs, and a CQ created single-threaded. Providers without them
 * (EOPNOTSUPP) get the plain objects; plx_rdma_info() says which.
 */
static void single_threaded(struct plx__rdma *d)
{
	struct ibv_td_init_attr ta = {0};
	struct ibv_cq_init_attr_ex ca = {
		.cqe = d->cfg.cq_size,
		.cq_context = d,
		.channel = d->ch,
		.comp_vector = 0,
		.wc_flags = IBV_WC_STANDARD_FLAGS,
		.comp_mask = IBV_CQ_INIT_ATTR_MASK_FLAGS,
		.flags = IBV_CREATE_CQ_ATTR_SINGLE_THREADED,
	};
	struct ibv_cq_ex *cqx;

	d->qp_pd = d->pd;
	d->td = ibv_alloc_td(d->ctx, &ta);
	if (d->td) {
		struct ibv_parent_domain_init_attr pa = {.pd = d->pd,
							 .td = d->td};
		struct ibv_pd *pd = ibv_alloc_parent_domain(d->ctx, &pa);

		if (pd) {
			d->qp_pd = pd;
			d->info.thread_domain = 1;
		} else {
			ibv_dealloc_td(d->td);
			d->td = NULL;
		}
	}
	cqx = ibv_create_cq_ex(d->ctx, &ca);
	if (cqx) {
		d->cq = ibv_cq_ex_to_cq(cqx);
		d->info.cq_single_threaded = 1;
	}
}

int plx_rdma_init(struct plx_reactor *r, const struct plx_rdma_config *cfg)
{
	struct plx__reactor *x = plx__r(r);
	const struct plx__ibv *t = NULL;
	const char *why = NULL;
	struct plx__rdma *d;
	int rc, fl;

	PLX__ASSERT_OWNER(x);
	if (plx__rdma_get(r))
		return PLX_EEXIST;
	if (plx__rdma_config_check(cfg))
		return PLX_EINVAL;
	rc = plx__ibv_load(&t, &why);
	if (rc) {
		plx__log(x, PLX_LOG_WARN, "rdma: unavailable: %s", why);
		return rc;
	}
	d = plx__zalloc(x, sizeof(*d));
	if (!d)
		return PLX_ENOMEM;
	d->x = x;
	d->ibv = t;
	d->nl_fd = -1;
	plx_timer_init(&d->resolve_timer, plx__rchan_resolve_fire, d);
	/* internal: never keeps plx_reactor_fini() busy (rdma_teardown()
	 * stops it) */
	d->resolve_timer.plx_pad = PLX__TIMER_DAEMON;
	if (cfg)
		d->cfg = *cfg;
	else
		plx_rdma_config_init(&d->cfg);
	rc = rdma_open(d);
	d->cfg.device = NULL; /* the caller's string is not kept */
	if (rc)
		goto fail;
	rc = PLX_EVERBS;
	d->pd = t->alloc_pd(d->ctx);
	if (!d->pd)
		goto fail_log;
	d->ch = t->create_comp_channel(d->ctx);
	if (!d->ch)
		goto fail_log;
	fl = fcntl(d->ch->fd, F_GETFL);
	if (fl < 0 || fcntl(d->ch->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		rc = -errno;
		goto fail_log;
	}
	single_threaded(d);
	if (!d->cq)
		d->cq = t->create_cq(d->ctx, (int)d->cfg.cq_size, d, d->ch, 0);
	if (!d->cq)
		goto fail_log;
	d->info.cq_size = (uint32_t)d->cq->cqe;
	{
		struct ibv_device_attr da;

		rc = t->query_device(d->ctx, &da);
		if (rc) {
			rc = -rc;
			goto fail_log;
		}
		d->max_qp_wr = (uint32_t)da.max_qp_wr;
		d->max_rd_atom =
			(uint32_t)(da.max_qp_rd_atom < da.max_qp_init_rd_atom ?
					   da.max_qp_rd_atom :
					   da.max_qp_init_rd_atom);
		if (d->max_rd_atom > 16)
			d->max_rd_atom = 16;
		if (d->max_rd_atom < 1)
			d->max_rd_atom = 1;
	}
	rc = plx__reactor_watch_fd(r, d->ch->fd, EPOLLIN);
	if (rc)
		goto fail_log;
	rc = plx__reactor_add_transport(r, &rdma_ops, d);
	if (rc) {
		rdma_teardown(r, d, true);
		return rc;
	}
	/* regions registered before the transport came get their MRs now */
	for (uint32_t i = 0; i < x->regs.n; i++) {
		rc = rdma_region_add(r, d, x->regs.v[i].reg);
		if (rc)
			plx__log(x, PLX_LOG_WARN,
				 "rdma: region at %#llx stays TCP-only (%s)",
				 (unsigned long long)x->regs.v[i].reg->plx_addr,
				 plx_errname(rc));
	}
	plx__log(x, PLX_LOG_INFO,
		 "rdma: %s port %u gid %d (RoCE v%d), mtu %u, cq %u",
		 d->info.device, d->info.port, d->info.gid_index,
		 d->info.roce_version, d->info.active_mtu, d->info.cq_size);
	return 0;

fail_log:
	plx__log(x, PLX_LOG_ERROR, "rdma: setting up %s failed (%s)",
		 d->info.device, plx_errname(rc));
fail:
	rdma_teardown(r, d, false);
	return rc;
}

int plx_rdma_info(struct plx_reactor *r, struct plx_rdma_info *out)
{
	struct plx__rdma *d;

	PLX__ASSERT_OWNER(plx__r(r));
	d = plx__rdma_get(r);
	if (!d)
		return PLX_EUNAVAIL;
	*out = d->info;
	return 0;
}

int plx_rdma_stats(struct plx_reactor *r, struct plx_rdma_stats *out)
{
	struct plx__rdma *d;

	PLX__ASSERT_OWNER(plx__r(r));
	d = plx__rdma_get(r);
	if (!d)
		return PLX_EUNAVAIL;
	*out = d->st;
	return 0;
}
