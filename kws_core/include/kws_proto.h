/*
 * kws_proto.h - framing of the serial flashing protocol (docs/flash-protocol.md).
 *
 * Strict C99, also valid C++. No allocation, no global state: the receiver is a
 * struct the caller owns, fed one byte at a time (a UART interrupt or a polling
 * loop); frames are encoded into a caller buffer or through a byte callback.
 *
 * On the wire a frame is SLIP (RFC 1055): END (0xC0), the escaped body, END.
 * Inside the body 0xC0 is sent as ESC ESC_END (0xDB 0xDC), 0xDB as ESC ESC_ESC
 * (0xDB 0xDD). The body is
 *
 *   u8 type | u8 seq | u16 len (LE) | payload[len] | u32 crc32 (LE)
 *
 * where crc32 is kws_crc32 (zlib's CRC-32) of type..payload. A body that is too
 * short, whose len disagrees with its size, whose CRC is wrong, that holds a
 * bad escape or that overflows the receive buffer is dropped (KWS_PROTO_BAD)
 * and the receiver waits for the next END.
 *
 * A plain text line (bytes 0x20..0x7E, TAB or CR, ended by LF, outside any
 * escape) is reported as KWS_PROTO_TEXT, so a device can take both its text
 * commands and protocol frames on one serial line: a frame body always starts
 * with a type byte below 0x20 and so is never taken for text.
 *
 * The message payloads (HELLO, INFO, BEGIN, DATA, COMMIT, RESET, BYE) are
 * described in docs/flash-protocol.md; the parsers for the payloads a device
 * receives are here too, so that everything that reads outside data is in one
 * fuzzed place (kws_core/fuzz/fuzz_proto.c).
 */
#ifndef KWS_PROTO_H
#define KWS_PROTO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KWS_PROTO_VERSION 1u

#define KWS_PROTO_END 0xC0u
#define KWS_PROTO_ESC 0xDBu
#define KWS_PROTO_ESC_END 0xDCu
#define KWS_PROTO_ESC_ESC 0xDDu

/* Model bytes per DATA frame, and the largest payload of any frame. */
#define KWS_PROTO_MAX_DATA 512u
#define KWS_PROTO_MAX_PAYLOAD (KWS_PROTO_MAX_DATA + 8u)
#define KWS_PROTO_HEADER 4u /* type, seq, len */
#define KWS_PROTO_TRAILER 4u /* crc32 */
#define KWS_PROTO_MAX_BODY (KWS_PROTO_HEADER + KWS_PROTO_MAX_PAYLOAD + KWS_PROTO_TRAILER)
/* Worst case on the wire: every body byte escaped, plus two ENDs. */
#define KWS_PROTO_MAX_WIRE (2u * KWS_PROTO_MAX_BODY + 2u)

/* Message types: requests from the host; a reply has the request's type | 0x80
 * and the request's seq, and its payload starts with a status byte. */
enum {
    KWS_MSG_HELLO = 0x01,
    KWS_MSG_INFO = 0x02,
    KWS_MSG_BEGIN = 0x03,
    KWS_MSG_DATA = 0x04,
    KWS_MSG_COMMIT = 0x05,
    KWS_MSG_RESET = 0x06,
    KWS_MSG_BYE = 0x07,
    KWS_MSG_REPLY = 0x80
};

/* Reply status byte. */
enum {
    KWS_PST_OK = 0,
    KWS_PST_VERSION = 1,    /* protocol version not supported */
    KWS_PST_TYPE = 2,       /* unknown message type */
    KWS_PST_STATE = 3,      /* DATA/COMMIT without a BEGIN */
    KWS_PST_SIZE = 4,       /* model larger than a slot (or < 64 B, not a multiple of 4) */
    KWS_PST_PHONESET = 5,   /* model for another phone set */
    KWS_PST_OFFSET = 6,     /* DATA offset out of order or past the announced size */
    KWS_PST_FLASH = 7,      /* erase/program failed */
    KWS_PST_CRC = 8,        /* the written image's CRC is not the announced one */
    KWS_PST_MODEL = 9,      /* kws_model_parse refused it (detail: kws_status) */
    KWS_PST_NOMEM = 10,     /* decoder does not fit the device's RAM / too many keywords */
    KWS_PST_INCOMPLETE = 11,/* COMMIT before all bytes arrived */
    KWS_PST_ARG = 12        /* malformed payload */
};

/* kws_proto_rx_push results. */
typedef enum kws_proto_event {
    KWS_PROTO_NONE = 0,  /* byte taken, nothing complete yet */
    KWS_PROTO_FRAME = 1, /* a valid frame: see *frame */
    KWS_PROTO_BAD = 2,   /* a frame was dropped (CRC, size, escape, overflow) */
    KWS_PROTO_TEXT = 3   /* a text line: see *frame (type 0, payload = the line without LF) */
} kws_proto_event;

typedef struct kws_proto_frame {
    uint8_t type;
    uint8_t seq;
    uint16_t len;
    const uint8_t *payload; /* points into the receiver's buffer: valid until the next push */
} kws_proto_frame;

typedef struct kws_proto_rx {
    uint8_t buf[KWS_PROTO_MAX_BODY];
    uint32_t len;
    uint8_t esc;       /* last byte was ESC */
    uint8_t overflow;  /* more bytes than buf holds since the last END */
    uint8_t binary;    /* a byte that cannot be text since the last END/LF */
    uint8_t pad;
    uint32_t n_frames, n_bad; /* counters */
} kws_proto_rx;

void kws_proto_rx_init(kws_proto_rx *rx);

/* Feed one received byte. */
kws_proto_event kws_proto_rx_push(kws_proto_rx *rx, uint8_t byte, kws_proto_frame *frame);

/* Check an unescaped body (type, seq, len, payload, crc) and fill *frame
 * (payload points into body). 1 if valid, 0 if not. */
int kws_proto_parse_body(const uint8_t *body, size_t n, kws_proto_frame *frame);

/* Encode a frame (END, escaped body, END) into out[0..cap). Returns the bytes
 * written, or 0 when len > KWS_PROTO_MAX_PAYLOAD or cap is too small
 * (KWS_PROTO_MAX_WIRE always suffices). */
size_t kws_proto_encode(uint8_t type, uint8_t seq, const void *payload, size_t len,
                        uint8_t *out, size_t cap);

/* The same, one byte at a time through put(ctx, byte) (a UART transmit).
 * Returns the bytes sent, or 0 when len > KWS_PROTO_MAX_PAYLOAD. */
size_t kws_proto_send(uint8_t type, uint8_t seq, const void *payload, size_t len,
                      void (*put)(void *ctx, uint8_t byte), void *ctx);

/* ---- payloads a device receives (little-endian); 1 if well formed ---- */

/* HELLO: u16 protocol version, u16 largest payload the host accepts. */
int kws_proto_get_hello(const kws_proto_frame *f, uint16_t *version, uint16_t *host_max);
/* BEGIN: u32 model size, u32 model CRC-32, u32 phone-set id. */
int kws_proto_get_begin(const kws_proto_frame *f, uint32_t *size, uint32_t *crc,
                        uint32_t *phone_set_id);
/* DATA: u32 offset, then 1..KWS_PROTO_MAX_DATA model bytes. */
int kws_proto_get_data(const kws_proto_frame *f, uint32_t *offset, const uint8_t **data,
                       uint32_t *n);

uint16_t kws_proto_rd16(const uint8_t *p);
uint32_t kws_proto_rd32(const uint8_t *p);
void kws_proto_wr16(uint8_t *p, uint16_t v);
void kws_proto_wr32(uint8_t *p, uint32_t v);

#ifdef __cplusplus
}
#endif
#endif /* KWS_PROTO_H */
