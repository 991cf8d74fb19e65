/* SPDX-License-Identifier: MIT */
/*
 * RC queue-pair attributes for RESET->INIT->RTR->RTS, built from the
 * connection details both sides exchange, and checked against the field
 * widths the InfiniBand spec gives them. Pure functions: no verbs calls.
 */
#ifndef PLX_RDMA_QP_ATTR_H
#define PLX_RDMA_QP_ATTR_H

#include <stdbool.h>
#include <stdint.h>

#include <infiniband/verbs.h>

/* What one QP needs to know to connect to its peer. */
struct plx__qp_conn {
	uint8_t port;		/* local port, 1-based */
	uint16_t pkey_index;	/* 0 */
	uint32_t access;	/* IBV_ACCESS_* the peer may use on us;
				 * local write + remote write + remote read */
	uint32_t remote_qpn;	/* 24 bits; 0 and 1 are special QPs */
	uint32_t remote_psn;	/* peer's first send PSN (our RQ PSN), 24 b */
	uint32_t local_psn;	/* our first send PSN, 24 bits */
	int path_mtu;		/* enum ibv_mtu, IBV_MTU_256..IBV_MTU_4096 */
	bool global;		/* GRH present: always on RoCE */
	uint8_t remote_gid[16]; /* peer's GID (global) */
	uint8_t sgid_index;	/* our GID index (global) */
	uint8_t hop_limit;	/* GRH hop limit; 64 (routed RoCE v2 needs
				 * more than 1) */
	uint8_t traffic_class;	/* GRH traffic class; 0 */
	uint32_t flow_label;	/* GRH flow label, 20 bits; 0 */
	uint16_t remote_lid;	/* peer's LID (InfiniBand, not global) */
	uint8_t sl;		/* service level, 4 bits; 0 */
	uint8_t min_rnr_timer;	/* 5-bit code (not ms); 12 (0.64 ms) */
	uint8_t timeout;	/* local ACK timeout, 5-bit exponent:
				 * 4.096 us * 2^timeout; 14 (~67 ms) */
	uint8_t retry_cnt;	/* 3 bits; 7 */
	uint8_t rnr_retry;	/* 3 bits, 7 = retry forever; 7 */
	uint8_t max_rd_atomic;	/* reads/atomics we issue at once; 1 */
	uint8_t max_dest_rd_atomic; /* reads/atomics we serve at once; 1 */
};

/* plx__qp_conn_defaults() - the defaults documented per field; zeroes
 * the addressing fields. Pure. */
void plx__qp_conn_defaults(struct plx__qp_conn *c);

/*
 * plx__qp_conn_check() - validate @c by the spec's field widths.
 * Return: 0; PLX_ERANGE (a field exceeds its width: min_rnr_timer or
 * timeout > 31, retry_cnt or rnr_retry > 7, sl > 15, QPN/PSN > 24 bits,
 * flow label > 20 bits); PLX_EINVAL (port 0, remote QPN 0 or 1, MTU not an
 * ibv_mtu, global with an all-zero GID or hop limit 0, not global with
 * LID 0, max_*_rd_atomic 0).
 */
int plx__qp_conn_check(const struct plx__qp_conn *c);

/*
 * plx__qp_attr_init/rtr/rts() - the ibv_modify_qp() arguments for one
 * transition: RESET->INIT, INIT->RTR, RTR->RTS. Each validates @c first
 * and writes @attr (fully, zero elsewhere) and @mask only on success:
 * _init only the fields INIT uses (port not 0, known access bits: the
 * peer's QPN and address are not known before the exchange), _rtr and
 * _rts all of them.
 * Return: 0 or what plx__qp_conn_check() returns (_init: PLX_EINVAL).
 * Pure.
 */
int plx__qp_attr_init(const struct plx__qp_conn *c, struct ibv_qp_attr *attr,
		      int *mask);
int plx__qp_attr_rtr(const struct plx__qp_conn *c, struct ibv_qp_attr *attr,
		     int *mask);
int plx__qp_attr_rts(const struct plx__qp_conn *c, struct ibv_qp_attr *attr,
		     int *mask);

#endif /* PLX_RDMA_QP_ATTR_H */
