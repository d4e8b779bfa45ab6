/*
 * kws_proto.c - SLIP framing with CRC-32 for the serial flashing protocol.
 * See kws_proto.h and docs/flash-protocol.md. No allocation, no globals.
 */
#include "kws_proto.h"

#include "kws.h" /* kws_crc32 */

#include <string.h>

uint16_t kws_proto_rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

uint32_t kws_proto_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

void kws_proto_wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

void kws_proto_wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

void kws_proto_rx_init(kws_proto_rx *rx)
{
    if (rx == NULL) return;
    memset(rx, 0, sizeof *rx);
}

int kws_proto_parse_body(const uint8_t *body, size_t n, kws_proto_frame *frame)
{
    uint16_t len;
    uint32_t crc;
    if (body == NULL || frame == NULL) return 0;
    if (n < KWS_PROTO_HEADER + KWS_PROTO_TRAILER || n > KWS_PROTO_MAX_BODY) return 0;
    len = kws_proto_rd16(body + 2);
    if (len > KWS_PROTO_MAX_PAYLOAD) return 0;
    if ((size_t)len + KWS_PROTO_HEADER + KWS_PROTO_TRAILER != n) return 0;
    crc = kws_crc32(0u, body, KWS_PROTO_HEADER + (size_t)len);
    if (crc != kws_proto_rd32(body + KWS_PROTO_HEADER + len)) return 0;
    if (body[0] == 0u) return 0; /* type 0 is reserved (text lines) */
    frame->type = body[0];
    frame->seq = body[1];
    frame->len = len;
    frame->payload = body + KWS_PROTO_HEADER;
    return 1;
}

static void rx_restart(kws_proto_rx *rx)
{
    rx->len = 0;
    rx->esc = 0;
    rx->overflow = 0;
    rx->binary = 0;
}

static int is_text_byte(uint8_t b) { return (b >= 0x20u && b <= 0x7Eu) || b == '\t' || b == '\r'; }

kws_proto_event kws_proto_rx_push(kws_proto_rx *rx, uint8_t byte, kws_proto_frame *frame)
{
    if (rx == NULL || frame == NULL) return KWS_PROTO_NONE;
    if (byte == KWS_PROTO_END) {
        kws_proto_event ev = KWS_PROTO_NONE;
        if (rx->overflow || rx->esc) {
            ev = KWS_PROTO_BAD;
        } else if (rx->len > 0u) {
            ev = kws_proto_parse_body(rx->buf, rx->len, frame) ? KWS_PROTO_FRAME : KWS_PROTO_BAD;
        }
        if (ev == KWS_PROTO_FRAME) rx->n_frames++;
        if (ev == KWS_PROTO_BAD) rx->n_bad++;
        rx_restart(rx);
        return ev;
    }
    if (byte == '\n' && !rx->binary && !rx->esc) {
        /* A text line (possibly truncated when it overflowed the buffer). */
        frame->type = 0;
        frame->seq = 0;
        frame->len = (uint16_t)rx->len;
        frame->payload = rx->buf;
        rx_restart(rx);
        return KWS_PROTO_TEXT;
    }
    if (!is_text_byte(byte)) rx->binary = 1;
    if (rx->esc) {
        rx->esc = 0;
        if (byte == KWS_PROTO_ESC_END) byte = KWS_PROTO_END;
        else if (byte == KWS_PROTO_ESC_ESC) byte = KWS_PROTO_ESC;
        else rx->overflow = 1; /* bad escape: the frame is dropped at its END */
    } else if (byte == KWS_PROTO_ESC) {
        rx->esc = 1;
        return KWS_PROTO_NONE;
    }
    if (rx->len < sizeof rx->buf) rx->buf[rx->len++] = byte;
    else if (rx->binary) rx->overflow = 1;
    /* (an over-long text line is truncated, as the text command loop did) */
    return KWS_PROTO_NONE;
}

typedef struct buf_sink {
    uint8_t *out;
    size_t cap, n;
    int full;
} buf_sink;

static void buf_put(void *ctx, uint8_t b)
{
    buf_sink *s = (buf_sink *)ctx;
    if (s->n < s->cap) s->out[s->n++] = b;
    else s->full = 1;
}

static void put_escaped(void (*put)(void *, uint8_t), void *ctx, const uint8_t *p, size_t n,
                        size_t *count)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (p[i] == KWS_PROTO_END) {
            put(ctx, KWS_PROTO_ESC);
            put(ctx, KWS_PROTO_ESC_END);
            *count += 2u;
        } else if (p[i] == KWS_PROTO_ESC) {
            put(ctx, KWS_PROTO_ESC);
            put(ctx, KWS_PROTO_ESC_ESC);
            *count += 2u;
        } else {
            put(ctx, p[i]);
            *count += 1u;
        }
    }
}

size_t kws_proto_send(uint8_t type, uint8_t seq, const void *payload, size_t len,
                      void (*put)(void *ctx, uint8_t byte), void *ctx)
{
    uint8_t hdr[KWS_PROTO_HEADER], trl[KWS_PROTO_TRAILER];
    uint32_t crc;
    size_t count = 0;
    if (put == NULL || len > KWS_PROTO_MAX_PAYLOAD || (len > 0u && payload == NULL)) return 0;
    hdr[0] = type;
    hdr[1] = seq;
    kws_proto_wr16(hdr + 2, (uint16_t)len);
    crc = kws_crc32(0u, hdr, sizeof hdr);
    if (len > 0u) crc = kws_crc32(crc, payload, len);
    kws_proto_wr32(trl, crc);
    put(ctx, KWS_PROTO_END);
    count++;
    put_escaped(put, ctx, hdr, sizeof hdr, &count);
    if (len > 0u) put_escaped(put, ctx, (const uint8_t *)payload, len, &count);
    put_escaped(put, ctx, trl, sizeof trl, &count);
    put(ctx, KWS_PROTO_END);
    count++;
    return count;
}

size_t kws_proto_encode(uint8_t type, uint8_t seq, const void *payload, size_t len,
                        uint8_t *out, size_t cap)
{
    buf_sink s;
    size_t n;
    if (out == NULL) return 0;
    s.out = out;
    s.cap = cap;
    s.n = 0;
    s.full = 0;
    n = kws_proto_send(type, seq, payload, len, buf_put, &s);
    return s.full ? 0u : n;
}

int kws_proto_get_hello(const kws_proto_frame *f, uint16_t *version, uint16_t *host_max)
{
    if (f == NULL || version == NULL || host_max == NULL || f->type != KWS_MSG_HELLO) return 0;
    if (f->len < 4u || f->payload == NULL) return 0;
    *version = kws_proto_rd16(f->payload);
    *host_max = kws_proto_rd16(f->payload + 2);
    return 1;
}

int kws_proto_get_begin(const kws_proto_frame *f, uint32_t *size, uint32_t *crc,
                        uint32_t *phone_set_id)
{
    if (f == NULL || size == NULL || crc == NULL || phone_set_id == NULL) return 0;
    if (f->type != KWS_MSG_BEGIN || f->len != 12u || f->payload == NULL) return 0;
    *size = kws_proto_rd32(f->payload);
    *crc = kws_proto_rd32(f->payload + 4);
    *phone_set_id = kws_proto_rd32(f->payload + 8);
    return 1;
}

int kws_proto_get_data(const kws_proto_frame *f, uint32_t *offset, const uint8_t **data,
                       uint32_t *n)
{
    if (f == NULL || offset == NULL || data == NULL || n == NULL) return 0;
    if (f->type != KWS_MSG_DATA || f->payload == NULL) return 0;
    if (f->len < 5u || f->len > 4u + KWS_PROTO_MAX_DATA) return 0;
    *offset = kws_proto_rd32(f->payload);
    *data = f->payload + 4;
    *n = (uint32_t)f->len - 4u;
    return 1;
}
