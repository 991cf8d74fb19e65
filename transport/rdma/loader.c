/* SPDX-License-Identifier: MIT */
/*
 * libibverbs run-time loading. One table per process, filled once under
 * pthread_once; a failure is remembered (a missing library does not
 * appear later in a running process, and retrying would dlopen again on
 * every plx_rdma_init).
 *
 * Symbol versions are pinned as NCCL does: IBVERBS_1.1 for the verbs that
 * have a 1.0 compat twin (the 1.0 ones take the old ABI's structs), 1.0 for
 * the comp-channel calls (never re-versioned), 1.11 for _ibv_query_gid_ex
 * and 1.12 for ibv_reg_dmabuf_mr (both optional). A plain dlsym() would
 * pick the default version, which is the same today, but dlvsym() keeps us
 * on the ABI verbs.h describes if a newer default ever appears.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "pollux/status.h"
#include "transport/rdma/loader.h"

static struct plx__ibv ibv_tab;
static int ibv_rc;
static const char *ibv_why;
static char ibv_why_buf[160];
static pthread_once_t ibv_once = PTHREAD_ONCE_INIT;

/* Look up @name@@@ver into *@slot; remember the first missing one. */
static int sym(void *h, void *slot, const char *name, const char *ver,
	       int required)
{
	void *p = dlvsym(h, name, ver);

	/* POSIX: a function pointer round-trips through void *. */
	memcpy(slot, &p, sizeof(p));
	if (!p && required) {
		snprintf(ibv_why_buf, sizeof(ibv_why_buf),
			 "libibverbs.so.1 lacks symbol %s@%s", name, ver);
		ibv_why = ibv_why_buf;
		return -1;
	}
	return 0;
}

static void ibv_load_once(void)
{
	struct plx__ibv *t = &ibv_tab;
	const char *v11 = "IBVERBS_1.1", *v10 = "IBVERBS_1.0";
	void *h;
	int bad = 0;

	h = dlopen("libibverbs.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *e = dlerror();

		snprintf(ibv_why_buf, sizeof(ibv_why_buf),
			 "cannot load libibverbs.so.1 (rdma-core): %s",
			 e ? e : "unknown error");
		ibv_why = ibv_why_buf;
		ibv_rc = PLX_EUNAVAIL;
		return;
	}
	bad |= sym(h, &t->get_device_list, "ibv_get_device_list", v11, 1);
	bad |= sym(h, &t->free_device_list, "ibv_free_device_list", v11, 1);
	bad |= sym(h, &t->get_device_name, "ibv_get_device_name", v11, 1);
	bad |= sym(h, &t->open_device, "ibv_open_device", v11, 1);
	bad |= sym(h, &t->close_device, "ibv_close_device", v11, 1);
	bad |= sym(h, &t->query_device, "ibv_query_device", v11, 1);
	bad |= sym(h, &t->query_port_compat, "ibv_query_port", v11, 1);
	bad |= sym(h, &t->query_gid, "ibv_query_gid", v11, 1);
	bad |= sym(h, &t->query_gid_ex, "_ibv_query_gid_ex", "IBVERBS_1.11", 0);
	bad |= sym(h, &t->alloc_pd, "ibv_alloc_pd", v11, 1);
	bad |= sym(h, &t->dealloc_pd, "ibv_dealloc_pd", v11, 1);
	bad |= sym(h, &t->create_comp_channel, "ibv_create_comp_channel", v10,
		   1);
	bad |= sym(h, &t->destroy_comp_channel, "ibv_destroy_comp_channel", v10,
		   1);
	bad |= sym(h, &t->create_cq, "ibv_create_cq", v11, 1);
	bad |= sym(h, &t->destroy_cq, "ibv_destroy_cq", v11, 1);
	bad |= sym(h, &t->get_cq_event, "ibv_get_cq_event", v11, 1);
	bad |= sym(h, &t->ack_cq_events, "ibv_ack_cq_events", v11, 1);
	bad |= sym(h, &t->create_qp, "ibv_create_qp", v11, 1);
	bad |= sym(h, &t->destroy_qp, "ibv_destroy_qp", v11, 1);
	bad |= sym(h, &t->modify_qp, "ibv_modify_qp", v11, 1);
	bad |= sym(h, &t->reg_mr, "ibv_reg_mr", v11, 1);
	bad |= sym(h, &t->dereg_mr, "ibv_dereg_mr", v11, 1);
	bad |= sym(h, &t->reg_dmabuf_mr, "ibv_reg_dmabuf_mr", "IBVERBS_1.12",
		   0);
	if (bad) {
		/* Nothing from it was called: unloading is safe here. */
		dlclose(h);
		memset(t, 0, sizeof(*t));
		ibv_rc = PLX_EUNAVAIL;
		return;
	}
	ibv_rc = 0;
}

int plx__ibv_load(const struct plx__ibv **tab_out, const char **why_out)
{
	pthread_once(&ibv_once, ibv_load_once);
	if (ibv_rc) {
		if (why_out)
			*why_out = ibv_why;
		return ibv_rc;
	}
	*tab_out = &ibv_tab;
	return 0;
}

int plx__ibv_query_port(const struct plx__ibv *t, struct ibv_context *ctx,
			uint8_t port, struct ibv_port_attr *attr)
{
	struct verbs_context *vctx = verbs_get_ctx_op(ctx, query_port);

	if (!vctx) {
		memset(attr, 0, sizeof(*attr));
		return t->query_port_compat(
			ctx, port, (struct _compat_ibv_port_attr *)attr);
	}
	return vctx->query_port(ctx, port, attr, sizeof(*attr));
}
