/* SPDX-License-Identifier: MIT */
/*
 * libibverbs, loaded at run time (NCCL-style): dlopen("libibverbs.so.1")
 * and dlvsym() with explicit symbol versions into one process-wide table,
 * so pollux links nothing from rdma-core and runs where it is absent.
 *
 * <infiniband/verbs.h> is used for types, and for the data-path verbs it
 * defines as static inlines (ibv_post_send, ibv_post_recv, ibv_poll_cq,
 * ibv_req_notify_cq): those call through the context's ops and need no
 * symbol. Every other verb is called through struct plx__ibv.
 */
#ifndef PLX_RDMA_LOADER_H
#define PLX_RDMA_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include <infiniband/verbs.h>

struct plx__ibv {
	struct ibv_device **(*get_device_list)(int *num);
	void (*free_device_list)(struct ibv_device **list);
	const char *(*get_device_name)(struct ibv_device *dev);
	struct ibv_context *(*open_device)(struct ibv_device *dev);
	int (*close_device)(struct ibv_context *ctx);
	int (*query_device)(struct ibv_context *ctx,
			    struct ibv_device_attr *attr);
	/* The exported IBVERBS_1.1 symbol takes the smaller compat struct;
	 * call plx__ibv_query_port(), which does what verbs.h's inline does. */
	int (*query_port_compat)(struct ibv_context *ctx, uint8_t port,
				 struct _compat_ibv_port_attr *attr);
	int (*query_gid)(struct ibv_context *ctx, uint8_t port, int index,
			 union ibv_gid *gid);
	/* _ibv_query_gid_ex (IBVERBS_1.11): NULL on older rdma-core. */
	int (*query_gid_ex)(struct ibv_context *ctx, uint32_t port,
			    uint32_t index, struct ibv_gid_entry *entry,
			    uint32_t flags, size_t entry_size);
	struct ibv_pd *(*alloc_pd)(struct ibv_context *ctx);
	int (*dealloc_pd)(struct ibv_pd *pd);
	struct ibv_comp_channel *(*create_comp_channel)(struct ibv_context *c);
	int (*destroy_comp_channel)(struct ibv_comp_channel *ch);
	struct ibv_cq *(*create_cq)(struct ibv_context *ctx, int cqe,
				    void *cq_context,
				    struct ibv_comp_channel *ch, int vector);
	int (*destroy_cq)(struct ibv_cq *cq);
	int (*get_cq_event)(struct ibv_comp_channel *ch, struct ibv_cq **cq,
			    void **cq_context);
	void (*ack_cq_events)(struct ibv_cq *cq, unsigned int n);
	struct ibv_qp *(*create_qp)(struct ibv_pd *pd,
				    struct ibv_qp_init_attr *attr);
	int (*destroy_qp)(struct ibv_qp *qp);
	int (*modify_qp)(struct ibv_qp *qp, struct ibv_qp_attr *attr, int mask);
	/* The IBVERBS_1.1 ibv_reg_mr (int access), not the header's macro. */
	struct ibv_mr *(*reg_mr)(struct ibv_pd *pd, void *addr, size_t len,
				 int access);
	int (*dereg_mr)(struct ibv_mr *mr);
	/* ibv_reg_dmabuf_mr (IBVERBS_1.12, rdma-core 34): NULL on older
	 * rdma-core. GPUDirect RDMA over a dma-buf (docs/cuda.md). */
	struct ibv_mr *(*reg_dmabuf_mr)(struct ibv_pd *pd, uint64_t offset,
					size_t length, uint64_t iova, int fd,
					int access);
};

/*
 * plx__ibv_load() - load libibverbs once per process (thread-safe; the
 * library is never unloaded, as providers keep global state in it).
 * @tab_out: the table, on success.
 * @why_out: on failure, a static text saying what is missing.
 * Return: 0; PLX_EUNAVAIL (library or a required symbol missing).
 * Thread context: any thread.
 */
int plx__ibv_load(const struct plx__ibv **tab_out, const char **why_out);

/* ibv_query_port as verbs.h's inline does it: the context's extended op
 * when the provider has one (full struct), else the compat symbol. */
int plx__ibv_query_port(const struct plx__ibv *t, struct ibv_context *ctx,
			uint8_t port, struct ibv_port_attr *attr);

#endif /* PLX_RDMA_LOADER_H */
