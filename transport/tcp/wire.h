/* SPDX-License-Identifier: MIT */
/*
 * pollux TCP wire protocol, version 2: frame layout, encoders and the
 * validating parser. Pure functions over byte buffers: no sockets, no
 * allocation, no reactor. docs/wire-protocol.md is the normative text.
 *
 * Every frame = base header (16 bytes) + an opcode-specific extension of
 * fixed size + payload_len payload bytes. All integers little-endian.
 *
 *   off size field
 *     0    2 magic        'P' 'X' (0x50 0x58)
 *     2    1 opcode       PLX__OP_*
 *     3    1 flags        opcode-specific; undefined bits must be 0
 *     4    4 payload_len  bytes following the extension
 *     8    8 id           sequence / request id (meaning per opcode)
 *    16    -  extension   plx__wire_ext_size(opcode) bytes
 *
 * Every header ends with a CRC32C of its other bytes (u32, the last four
 * bytes of the extension), except HELLO, whose layout is frozen across
 * versions: it carries the CRC in the low half of its id (version >= 2).
 * Headers stay multiples of 8 bytes. Payloads are not covered: TCP's
 * checksum protects them.
 */
#ifndef PLX_TCP_WIRE_H
#define PLX_TCP_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define PLX__WIRE_MAGIC0 0x50	/* 'P' */
#define PLX__WIRE_MAGIC1 0x58	/* 'X' */
#define PLX__WIRE_VERSION 2	/* the version this implementation speaks */
#define PLX__WIRE_VERSION_MIN 2 /* and the lowest it accepts (no CRC in 1) */
#define PLX__WIRE_BASE 16
#define PLX__WIRE_EXT_MAX 64
#define PLX__WIRE_HDR_MAX (PLX__WIRE_BASE + PLX__WIRE_EXT_MAX)
#define PLX__WIRE_NAME_MAX 64 /* region names, bytes, no NUL on the wire */
#define PLX__WIRE_PROOF 32    /* HMAC-SHA-256 proof in READY */
#define PLX__WIRE_NONCE 32

enum plx__opcode {
	/* handshake */
	PLX__OP_HELLO = 0x01, /* ext: struct plx__hello */
	PLX__OP_READY = 0x02, /* ext: proof[32] (zeros without a key) */
	/* data */
	PLX__OP_SEND = 0x10,	  /* ext: tag u64; payload: message */
	PLX__OP_WRITE = 0x11,	  /* ext: addr u64, key u64; payload: data */
	PLX__OP_WRITE_IMM = 0x12, /* ext: addr, key, imm u32, crc */
	PLX__OP_READ_REQ = 0x13,  /* ext: addr, key, len u32; no payload */
	PLX__OP_READ_RESP = 0x14, /* ext: status i32, crc; payload: data */
	/* acknowledgements */
	PLX__OP_ACK = 0x20,  /* ext: cumulative seq u64; id 0 */
	PLX__OP_NACK = 0x21, /* ext: status i32, crc; id: failed seq */
	/* names */
	PLX__OP_RESOLVE_REQ = 0x30,  /* payload: name (1..64 bytes) */
	PLX__OP_RESOLVE_RESP = 0x31, /* ext: status i32, crc; payload: desc */
	/* liveness and shutdown */
	PLX__OP_PING = 0x40,  /* id: nonce */
	PLX__OP_PONG = 0x41,  /* id: the ping's nonce */
	PLX__OP_CLOSE = 0x42, /* ext: status i32, crc; the sender closes */

	PLX__OP_RDMA_CM = 0x50, /* payload: an RDMA connection message
				 * (transport/rdma/common/cm.h) */
};
/* (each extension above is followed by pad u32 to the next 8 bytes where
 * needed, then the crc u32 that ends every header but HELLO's) */

/* HELLO flags (frame flags byte) */
#define PLX__HELLO_AUTH 0x01 /* sender requires authentication */
/*
 * SEND, WRITE, WRITE_IMM and READ_REQ flag: the header also carries a
 * cumulative ACK (u64, what an ACK frame's seq says), which makes it 8
 * bytes longer. The ACK sits at header size - 16, just before the last
 * eight bytes (the opcode's u32 - pad, imm or len - and the CRC), which
 * stay the last eight. Sent only to a peer with PLX__CAP_ACK_RIDE.
 */
#define PLX__F_ACK 0x80

/* HELLO extension, 64 bytes: version u16 @0, role u8 @2, conn_index u8 @3,
 * caps u32 @4, node_id[16] @8, epoch u64 @24, nonce[32] @32. */
struct plx__hello {
	uint16_t version;    /* highest version the sender speaks */
	uint8_t role;	     /* 0: connecting side, 1: accepting side */
	uint8_t conn_index;  /* 0: primary; 1..: striped data connection */
	uint32_t caps;	     /* PLX__CAP_*; unknown bits: ignored */
	uint8_t node_id[16]; /* sender's node id */
	uint64_t epoch;	     /* sender's epoch (new per process start) */
	uint8_t nonce[PLX__WIRE_NONCE]; /* fresh random challenge */
};

/*
 * Extension sizes, CRC included: HELLO 64 (no CRC field), READY 40, SEND
 * 16, WRITE 24, WRITE_IMM 24, READ_REQ 24, READ_RESP 8, ACK 16, NACK 8,
 * RESOLVE_REQ 8, RESOLVE_RESP 8, PING 8, PONG 8, CLOSE 8, RDMA_CM 8. "pad"
 * fields are zero on the wire.
 */

/*
 * Capability bits in HELLO. A receiver ignores bits it does not know (a
 * newer peer may set them); the connection uses the bits both sides set.
 */
#define PLX__CAP_WRITE_IMM 0x1
#define PLX__CAP_STRIPE 0x2
#define PLX__CAP_RDMA 0x4     /* sender has the RDMA transport attached */
#define PLX__CAP_ACK_RIDE 0x8 /* sender takes PLX__F_ACK on data frames */
#define PLX__CAP_ALL                                                           \
	(PLX__CAP_WRITE_IMM | PLX__CAP_STRIPE | PLX__CAP_RDMA |                \
	 PLX__CAP_ACK_RIDE)

/* RDMA_CM payload bounds (transport/rdma/common/cm.h: 32 + 8 per QP). */
#define PLX__WIRE_CM_MIN 32
#define PLX__WIRE_CM_MAX 64
/* the receiver reads an RDMA_CM payload into its region-name buffer */
_Static_assert(PLX__WIRE_CM_MAX <= PLX__WIRE_NAME_MAX,
	       "RDMA_CM payloads fit a region name's buffer");

/* A decoded header. Fields not used by the opcode are zero. */
struct plx__frame {
	uint8_t opcode;
	uint8_t flags;
	uint32_t payload_len;
	uint64_t id; /* HELLO: 0 (its id field carries the CRC) */
	/* extension, decoded */
	uint64_t addr;		 /* WRITE, WRITE_IMM, READ_REQ */
	uint64_t key;		 /* WRITE, WRITE_IMM, READ_REQ */
	uint64_t len;		 /* READ_REQ: bytes requested (u32) */
	uint64_t tag;		 /* SEND */
	uint64_t seq;		 /* ACK: cumulative sequence */
	uint64_t ack;		 /* data frames with PLX__F_ACK: the same */
	uint32_t imm;		 /* WRITE_IMM */
	int32_t status;		 /* READ_RESP, NACK, RESOLVE_RESP, CLOSE */
	struct plx__hello hello; /* HELLO */
	uint8_t proof[PLX__WIRE_PROOF]; /* READY */
};

/*
 * plx__wire_ext_size() - extension size of @opcode, or -1 when unknown.
 */
int plx__wire_ext_size(uint8_t opcode);

/*
 * plx__wire_hdr_size() - full header size (base + ext) of @opcode, or -1.
 */
int plx__wire_hdr_size(uint8_t opcode);

/*
 * plx__wire_hdr_size_flags() - header size of @opcode with @flags (a
 * riding ACK adds 8 bytes to the opcodes that take one), or -1 when the
 * opcode is unknown.
 */
int plx__wire_hdr_size_flags(uint8_t opcode, uint8_t flags);

/*
 * plx__wire_parse() - validate and decode a header from @buf (@len bytes
 * available). Does not look at payload bytes.
 * @max_payload: the receiver's limit for payload_len.
 *
 * Checks, each as soon as its bytes are present, in byte order: magic;
 * known opcode; flags (only PLX__HELLO_AUTH, only on HELLO); payload_len
 * consistent with the opcode (HELLO, READY, READ_REQ, ACK, NACK, PING,
 * PONG, CLOSE carry none; RESOLVE_REQ 1..PLX__WIRE_NAME_MAX; RESOLVE_RESP
 * 0 or PLX_DESC_BYTES; RDMA_CM PLX__WIRE_CM_MIN..PLX__WIRE_CM_MAX), then payload_len <= @max_payload; ACK id 0; HELLO
 * role 0 or 1 (the version is left to the handshake; unknown caps bits are
 * accepted), and from version 2 on id's high half 0; statuses <= 0 (NACK
 * < 0; READ_RESP < 0 only without payload; RESOLVE_RESP < 0 exactly when
 * without payload); READ_REQ len 1..@max_payload; padding zero; last,
 * once the whole header is in, its CRC32C (a HELLO of version 0 or 1 has
 * none). docs/wire-protocol.md has the tables.
 *
 * Return: header size consumed (> 0); 0 when @len is too short to decide
 * (read more); PLX_EPROTO for a bad magic, unknown opcode, bad flags,
 * nonzero padding or inconsistent fields; PLX_EMSGSIZE when payload_len
 * (or READ_REQ len) exceeds @max_payload; PLX_EBADMSG when the CRC does
 * not match (the header changed on the way). On error @out is unspecified.
 * A prefix of a valid header never returns an error, and bytes after the
 * header are never read. An error is reported as soon as the bytes that
 * show it are present, and appending bytes never changes an error into
 * another result.
 */
int plx__wire_parse(struct plx__frame *out, const uint8_t *buf, size_t len,
		    uint32_t max_payload);

/*
 * plx__wire_encode() - write the header of @f (opcode-specific fields and
 * the CRC) into @buf, which must hold PLX__WIRE_HDR_MAX bytes.
 * Return: header size (> 0), or PLX_EINVAL for an unknown opcode or a
 * READ_REQ len above UINT32_MAX.
 */
int plx__wire_encode(const struct plx__frame *f, uint8_t *buf);

/*
 * plx__wire_seal() - recompute the CRC of the complete header at @buf in
 * place (after a test changed its bytes on purpose).
 * Return: the header size, or PLX_EINVAL for an unknown opcode.
 */
int plx__wire_seal(uint8_t *buf);

/*
 * plx__crc32c() - CRC32C (Castagnoli) of @len bytes, continuing @crc (0 to
 * start): the SSE4.2 instruction where the CPU has it, else a table.
 */
uint32_t plx__crc32c(uint32_t crc, const void *buf, size_t len);

#endif /* PLX_TCP_WIRE_H */
