/*
 * fuzz_proto.c - libFuzzer target for the serial flashing protocol's receiver
 * (kws_core/src/kws_proto.c: SLIP decoding, frame checks, payload parsers).
 *
 * Each input is a stream of bytes as they would arrive on the device's UART:
 *   1. it is fed one byte at a time to a kws_proto_rx (and, split at an
 *      input-chosen point, to a second one, which must see the same events);
 *   2. every frame reported must be well formed: its length within the limits,
 *      its payload inside the receiver's buffer, and re-encoded with
 *      kws_proto_encode (also into a buffer of exactly the encoded size, and
 *      one byte short, which must fail) and fed to a fresh receiver it must come
 *      back as the same frame; the payload parsers (HELLO, BEGIN, DATA) run on
 *      it and their results must lie inside the payload;
 *   3. every text line must hold only text bytes;
 *   4. the whole input is also given to kws_proto_parse_body as one body.
 * Besides the sanitizers, a broken check aborts with its line.
 *
 * Build for fuzzing (tools/fuzz.sh does this with FUZZ_TARGET=proto):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Ikws_core/include \
 *       kws_core/fuzz/fuzz_proto.c kws_core/src/kws_proto.c kws_core/src/kws_model.c -lm
 * Replay driver without libFuzzer (tests/test_flash.py):
 *   gcc -g -O1 -DKWS_FUZZ_REPLAY -fsanitize=address,undefined -Ikws_core/include \
 *       kws_core/fuzz/fuzz_proto.c kws_core/src/kws_proto.c kws_core/src/kws_model.c -lm
 */
#if defined(KWS_FUZZ_REPLAY) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* opendir, stat */
#endif

#include "kws.h"
#include "kws_proto.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"

static int is_text(uint8_t b) { return (b >= 0x20u && b <= 0x7Eu) || b == '\t' || b == '\r'; }

static void check_frame(const kws_proto_rx *rx, const kws_proto_frame *f)
{
    static uint8_t wire[KWS_PROTO_MAX_WIRE];
    static kws_proto_rx rx2;
    kws_proto_frame g;
    size_t n, i, n_frames = 0;
    uint16_t ver, hmax;
    uint32_t size, crc, ps, off, dn;
    const uint8_t *d;

    FUZZ_CHECK(f->type != 0u);
    FUZZ_CHECK(f->len <= KWS_PROTO_MAX_PAYLOAD);
    FUZZ_CHECK(f->payload == rx->buf + KWS_PROTO_HEADER);
    FUZZ_CHECK(f->payload + f->len + KWS_PROTO_TRAILER <= rx->buf + sizeof rx->buf);

    /* Re-encode: exact size works, one byte less does not, and it decodes back. */
    n = kws_proto_encode(f->type, f->seq, f->payload, f->len, wire, sizeof wire);
    FUZZ_CHECK(n >= f->len + 10u && n <= KWS_PROTO_MAX_WIRE);
    FUZZ_CHECK(kws_proto_encode(f->type, f->seq, f->payload, f->len, wire, n) == n);
    FUZZ_CHECK(kws_proto_encode(f->type, f->seq, f->payload, f->len, wire, n - 1u) == 0u);
    n = kws_proto_encode(f->type, f->seq, f->payload, f->len, wire, n);
    FUZZ_CHECK(wire[0] == KWS_PROTO_END && wire[n - 1u] == KWS_PROTO_END);
    for (i = 1; i + 1u < n; i++) FUZZ_CHECK(wire[i] != KWS_PROTO_END);
    kws_proto_rx_init(&rx2);
    for (i = 0; i < n; i++) {
        kws_proto_event ev = kws_proto_rx_push(&rx2, wire[i], &g);
        FUZZ_CHECK(ev == KWS_PROTO_NONE || ev == KWS_PROTO_FRAME);
        if (ev == KWS_PROTO_FRAME) {
            n_frames++;
            FUZZ_CHECK(g.type == f->type && g.seq == f->seq && g.len == f->len);
            FUZZ_CHECK(memcmp(g.payload, f->payload, f->len) == 0);
        }
    }
    FUZZ_CHECK(n_frames == 1u);

    /* Payload parsers: results inside the payload. */
    if (kws_proto_get_hello(f, &ver, &hmax)) FUZZ_CHECK(f->type == KWS_MSG_HELLO && f->len >= 4u);
    if (kws_proto_get_begin(f, &size, &crc, &ps)) FUZZ_CHECK(f->type == KWS_MSG_BEGIN && f->len == 12u);
    if (kws_proto_get_data(f, &off, &d, &dn)) {
        FUZZ_CHECK(f->type == KWS_MSG_DATA);
        FUZZ_CHECK(dn >= 1u && dn <= KWS_PROTO_MAX_DATA);
        FUZZ_CHECK(d == f->payload + 4 && d + dn == f->payload + f->len);
    }
}

typedef struct fuzz_events {
    uint32_t frames, bad, text;
    uint32_t hash;
} fuzz_events;

static void feed(kws_proto_rx *rx, const uint8_t *data, size_t size, fuzz_events *ev)
{
    size_t i, k;
    for (i = 0; i < size; i++) {
        kws_proto_frame f;
        kws_proto_event e;
        memset(&f, 0xA5, sizeof f);
        e = kws_proto_rx_push(rx, data[i], &f);
        FUZZ_CHECK(e == KWS_PROTO_NONE || e == KWS_PROTO_FRAME || e == KWS_PROTO_BAD || e == KWS_PROTO_TEXT);
        FUZZ_CHECK(rx->len <= sizeof rx->buf);
        ev->hash = ev->hash * 31u + (uint32_t)e;
        if (e == KWS_PROTO_FRAME) {
            ev->frames++;
            check_frame(rx, &f);
            ev->hash = kws_crc32(ev->hash, f.payload, f.len);
        } else if (e == KWS_PROTO_TEXT) {
            ev->text++;
            FUZZ_CHECK(f.type == 0u && f.payload == rx->buf && f.len <= sizeof rx->buf);
            for (k = 0; k < f.len; k++) FUZZ_CHECK(is_text(f.payload[k]));
            ev->hash = kws_crc32(ev->hash, f.payload, f.len);
        } else if (e == KWS_PROTO_BAD) {
            ev->bad++;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static kws_proto_rx rx, rx_b;
    fuzz_events a, b;
    kws_proto_frame f;
    size_t split = size ? (size_t)data[0] % (size + 1u) : 0u;

    FUZZ_CHECK(kws_proto_rx_push(NULL, 0, &f) == KWS_PROTO_NONE);
    FUZZ_CHECK(kws_proto_encode(1u, 0u, NULL, 1u, NULL, 0u) == 0u);
    FUZZ_CHECK(kws_proto_encode(1u, 0u, data, KWS_PROTO_MAX_PAYLOAD + 1u, NULL, 0u) == 0u);

    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    kws_proto_rx_init(&rx);
    feed(&rx, data, size, &a);
    /* The same stream in two pieces (a receiver has no notion of chunks). */
    kws_proto_rx_init(&rx_b);
    feed(&rx_b, data, split, &b);
    feed(&rx_b, data + split, size - split, &b);
    FUZZ_CHECK(a.frames == b.frames && a.bad == b.bad && a.text == b.text && a.hash == b.hash);
    FUZZ_CHECK(rx.n_frames == a.frames && rx.n_bad == a.bad);

    /* The input as one unescaped body. */
    if (kws_proto_parse_body(data, size, &f)) {
        FUZZ_CHECK(size >= 8u && f.len + 8u == size && f.payload == data + 4);
        FUZZ_CHECK(kws_crc32(0u, data, size - 4u) == kws_proto_rd32(data + size - 4u));
    }
    return 0;
}

#include "replay_main.h"
