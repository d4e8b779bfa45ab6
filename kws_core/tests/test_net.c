/*
 * test_net.c - unit tests of the net-blob reader, the int8 kernels and the
 * stream (kws_net.c).
 *
 * Reads the committed fixture tests/data/net_ko16.kwn and net_ko16_ref.bin
 * (made by tools/make_test_net_model.py: the exported blob, and int8 input
 * windows with ai-edge-litert's reference-kernel outputs). Ends with
 * "N passed, M failed" and exits non-zero if anything failed.
 */
#include "kws_net.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef KWS_NET_DATA
#define KWS_NET_DATA "../../tests/data"
#endif

#include "check.h"

/* ------------------------------------------------------------------------ */

static uint32_t *g_blob;      /* 4-aligned copy of the fixture */
static size_t g_blob_len;
static uint8_t *g_ref;        /* u32 count + pairs */
static size_t g_ref_len;

static void *read_file(const char *name, size_t *len)
{
    char path[1024];
    FILE *f;
    long n;
    void *buf;
    snprintf(path, sizeof path, "%s/%s", KWS_NET_DATA, name);
    f = fopen(path, "rb");
    if (f == NULL) { fprintf(stderr, "cannot open %s\n", path); exit(2); }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 8u);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) { fprintf(stderr, "read %s\n", path); exit(2); }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static uint32_t get_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

static void fix_crc(uint8_t *b, size_t len)
{
    uint32_t crc;
    put_u32(b + 12, 0u);
    crc = kws_crc32(0u, b, len);
    put_u32(b + 12, crc);
}

static void test_parse_fixture(void)
{
    kws_net net;
    CHECK_EQ(kws_net_parse((const uint8_t *)g_blob, g_blob_len, 0u, &net), KWS_OK);
    CHECK_EQ(net.n_phones, 35);
    CHECK_EQ(net.n_feat, 40);
    CHECK_EQ(net.in_frames, net.chunk_frames + net.context_frames - 1);
    CHECK_EQ(net.output_zero_point, -128);
    CHECK(net.n_layers >= 3 && net.n_layers <= KWS_NET_MAX_LAYERS);
    CHECK(kws_net_scratch_bytes(&net) > 0u);
    CHECK_EQ(kws_net_scratch_bytes(NULL), 0);
    CHECK_EQ(kws_net_parse((const uint8_t *)g_blob, g_blob_len, net.phone_set_id, &net), KWS_OK);
    CHECK_EQ(kws_net_parse((const uint8_t *)g_blob, g_blob_len, net.phone_set_id ^ 1u, &net),
             KWS_ERR_PHONESET);
    CHECK_EQ(kws_net_parse(NULL, g_blob_len, 0u, &net), KWS_ERR_ARG);
    CHECK_EQ(kws_net_parse((const uint8_t *)g_blob, g_blob_len, 0u, NULL), KWS_ERR_ARG);
}

static void test_invoke_matches_reference(void)
{
    kws_net net;
    uint32_t n, i, j, in_sz, out_sz;
    const uint8_t *p;
    int8_t *out;
    void *scratch;
    size_t sb;
    CHECK_EQ(kws_net_parse((const uint8_t *)g_blob, g_blob_len, 0u, &net), KWS_OK);
    in_sz = (uint32_t)net.in_frames * net.n_feat;
    out_sz = (uint32_t)net.chunk_frames * net.n_phones;
    n = get_u32(g_ref);
    CHECK(n > 0u);
    CHECK_EQ(g_ref_len, 4u + (size_t)n * (in_sz + out_sz));
    if (g_ref_len != 4u + (size_t)n * (in_sz + out_sz)) return;
    sb = kws_net_scratch_bytes(&net);
    scratch = malloc(sb);
    out = (int8_t *)malloc(out_sz);
    CHECK_EQ(kws_net_invoke(&net, (const int8_t *)(g_ref + 4), out, scratch, sb - 1u), KWS_ERR_NOMEM);
    CHECK_EQ(kws_net_invoke(&net, NULL, out, scratch, sb), KWS_ERR_ARG);
    for (i = 0, p = g_ref + 4; i < n; i++, p += in_sz + out_sz) {
        uint32_t diff = 0;
        CHECK_EQ(kws_net_invoke(&net, (const int8_t *)p, out, scratch, sb), KWS_OK);
        for (j = 0; j < out_sz; j++) diff += out[j] != (int8_t)p[in_sz + j];
        CHECK_EQ(diff, 0);
    }
    free(out);
    free(scratch);
}

static void test_alignment_and_truncation(void)
{
    kws_net net;
    uint8_t *shifted = (uint8_t *)malloc(g_blob_len + 8u);
    size_t len;
    memcpy(shifted + 1, g_blob, g_blob_len);
    CHECK_EQ(kws_net_parse(shifted + 1, g_blob_len, 0u, &net), KWS_ERR_ALIGN);
    free(shifted);
    for (len = 0; len < g_blob_len; len++)
        CHECK_EQ(kws_net_parse((const uint8_t *)g_blob, len, 0u, &net), KWS_ERR_TRUNCATED);
}

static void test_every_byte_flip_refused(void)
{
    kws_net net;
    uint8_t *b = (uint8_t *)g_blob;
    size_t i;
    int ok = 0;
    for (i = 0; i < g_blob_len; i++) {
        kws_status st;
        b[i] ^= 0x10u;
        st = kws_net_parse(b, g_blob_len, 0u, &net);
        b[i] ^= 0x10u;
        if (st == KWS_OK) { ok++; fprintf(stderr, "flip at %u accepted\n", (unsigned)i); }
    }
    CHECK_EQ(ok, 0);
    CHECK_EQ(kws_net_parse(b, g_blob_len, 0u, &net), KWS_OK);
}

/* Mutate one field (CRC recomputed) and expect a given status. */
static kws_status parse_mutated(size_t off, const void *val, size_t n)
{
    kws_net net;
    kws_status st;
    uint8_t *b = (uint8_t *)malloc(g_blob_len + 4u);
    uint8_t *a = (uint8_t *)(((uintptr_t)b + 3u) & ~(uintptr_t)3u);
    memcpy(a, g_blob, g_blob_len);
    memcpy(a + off, val, n);
    fix_crc(a, g_blob_len);
    st = kws_net_parse(a, g_blob_len, 0u, &net);
    free(b);
    return st;
}

static void test_field_checks(void)
{
    const uint8_t *b = (const uint8_t *)g_blob;
    uint32_t L0 = get_u32(b + 52), sm = get_u32(b + 56);
    uint16_t u16;
    uint32_t u32;
    int32_t i32;
    uint8_t u8;
    CHECK_EQ(parse_mutated(0, "KWSM", 4), KWS_ERR_MAGIC);
    u16 = 2; CHECK_EQ(parse_mutated(4, &u16, 2), KWS_ERR_VERSION);
    u16 = 0; CHECK_EQ(parse_mutated(48, &u16, 2), KWS_ERR_CORRUPT);          /* no layers */
    u16 = 33; CHECK_EQ(parse_mutated(48, &u16, 2), KWS_ERR_CORRUPT);
    u16 = 0; CHECK_EQ(parse_mutated(20, &u16, 2), KWS_ERR_CORRUPT);          /* n_phones */
    u16 = 36; CHECK_EQ(parse_mutated(20, &u16, 2), KWS_ERR_CORRUPT);         /* chain end */
    u16 = 41; CHECK_EQ(parse_mutated(22, &u16, 2), KWS_ERR_CORRUPT);         /* n_feat */
    u16 = 9; CHECK_EQ(parse_mutated(26, &u16, 2), KWS_ERR_CORRUPT);          /* context */
    u16 = 19; CHECK_EQ(parse_mutated(28, &u16, 2), KWS_ERR_CORRUPT);         /* lookahead */
    i32 = 0; CHECK_EQ(parse_mutated(44, &i32, 4), KWS_ERR_UNSUPPORTED);      /* softmax zp */
    u32 = 0; CHECK_EQ(parse_mutated(32, &u32, 4), KWS_ERR_CORRUPT);          /* input scale 0 */
    u32 = 0x7FC00000u; CHECK_EQ(parse_mutated(32, &u32, 4), KWS_ERR_CORRUPT); /* NaN */
    u32 = (uint32_t)g_blob_len; CHECK_EQ(parse_mutated(52, &u32, 4), KWS_ERR_CORRUPT);
    u32 = 2; CHECK_EQ(parse_mutated(56, &u32, 4), KWS_ERR_CORRUPT);          /* misaligned */
    u32 = (uint32_t)g_blob_len - 4u; CHECK_EQ(parse_mutated(60, &u32, 4), KWS_ERR_CORRUPT);
    u8 = 3; CHECK_EQ(parse_mutated(L0, &u8, 1), KWS_ERR_UNSUPPORTED);       /* layer type */
    u16 = 0; CHECK_EQ(parse_mutated(L0 + 2, &u16, 2), KWS_ERR_CORRUPT);      /* kernel 0 */
    u16 = 4; CHECK_EQ(parse_mutated(L0 + 2, &u16, 2), KWS_ERR_CORRUPT);      /* frames chain */
    u16 = 15; CHECK_EQ(parse_mutated(L0 + 6, &u16, 2), KWS_ERR_CORRUPT);     /* out_ch chain */
    u16 = 0x80u; CHECK_EQ(parse_mutated(L0 + 14, &u16, 2), KWS_ERR_CORRUPT); /* act_max 128 */
    i32 = 200; CHECK_EQ(parse_mutated(L0 + 16, &i32, 4), KWS_ERR_CORRUPT);   /* input offset */
    u32 = (uint32_t)g_blob_len - 4u; CHECK_EQ(parse_mutated(L0 + 24, &u32, 4), KWS_ERR_CORRUPT);
    u32 = 0xFFFFFFFCu; CHECK_EQ(parse_mutated(L0 + 28, &u32, 4), KWS_ERR_CORRUPT);
    u32 = 66u; CHECK_EQ(parse_mutated(L0 + 32, &u32, 4), KWS_ERR_CORRUPT);
    u16 = 2; CHECK_EQ(parse_mutated(L0 + 40, &u16, 2), KWS_ERR_CORRUPT);     /* conv dm */
    u32 = 1; CHECK_EQ(parse_mutated(L0 + 44, &u32, 4), KWS_ERR_UNSUPPORTED); /* reserved */
    {   /* a shift out of range */
        uint32_t shift_off = get_u32(b + L0 + 36);
        i32 = 31; CHECK_EQ(parse_mutated(shift_off, &i32, 4), KWS_ERR_CORRUPT);
        i32 = -1; CHECK_EQ(parse_mutated(get_u32(b + L0 + 32), &i32, 4), KWS_ERR_CORRUPT);
    }
    i32 = 1; CHECK_EQ(parse_mutated(sm + 8, &i32, 4), KWS_ERR_CORRUPT);      /* diff_min > 0 */
    i32 = 40; CHECK_EQ(parse_mutated(sm + 4, &i32, 4), KWS_ERR_CORRUPT);
    u16 = 1; CHECK_EQ(parse_mutated(50, &u16, 2), KWS_ERR_UNSUPPORTED);      /* flags */
}

/* Random field mutations with a valid CRC: whatever parses must also run
 * (under the sanitizers this checks that validation covers the kernels). */
static void test_mutation_fuzz(void)
{
    uint32_t seed = 12345u;
    const uint8_t *b0 = (const uint8_t *)g_blob;
    size_t records_end = get_u32(b0 + 60); /* header + layer records + softmax */
    uint8_t *raw = (uint8_t *)malloc(g_blob_len + 4u);
    uint8_t *a = (uint8_t *)(((uintptr_t)raw + 3u) & ~(uintptr_t)3u);
    int8_t *in, *out;
    void *scratch;
    int iter, accepted = 0;
    in = (int8_t *)calloc(1u << 16, 1);
    out = (int8_t *)malloc(1u << 16);
    scratch = malloc(1u << 20);
    for (iter = 0; iter < 3000; iter++) {
        kws_net net;
        int k, nmut;
        memcpy(a, g_blob, g_blob_len);
        seed = seed * 1664525u + 1013904223u;
        nmut = 1 + (int)((seed >> 28) & 3u);
        for (k = 0; k < nmut; k++) {
            size_t off;
            seed = seed * 1664525u + 1013904223u;
            off = 16u + (seed >> 8) % (records_end - 16u);
            seed = seed * 1664525u + 1013904223u;
            switch ((seed >> 29) & 3u) {
            case 0: a[off] = (uint8_t)(seed >> 16); break;
            case 1: a[off] ^= (uint8_t)(1u << ((seed >> 16) & 7u)); break;
            case 2: a[off] = 0; break;
            default: a[off] = (uint8_t)(a[off] + 1u); break;
            }
        }
        fix_crc(a, g_blob_len);
        if (kws_net_parse(a, g_blob_len, 0u, &net) == KWS_OK) {
            size_t sb = kws_net_scratch_bytes(&net);
            accepted++;
            if ((size_t)net.in_frames * net.n_feat <= (1u << 16) &&
                (size_t)net.chunk_frames * net.n_phones <= (1u << 16) && sb <= (1u << 20))
                CHECK_EQ(kws_net_invoke(&net, in, out, scratch, sb), KWS_OK);
        }
    }
    CHECK(accepted > 0); /* some mutations (weights, biases) are harmless */
    free(scratch);
    free(out);
    free(in);
    free(raw);
}

/* The stream against its definition: left pad with copies of the first frame,
 * right pad with copies of the last, windows every chunk frames, first n rows. */
static void check_stream(const kws_net *net, uint32_t n_frames, uint32_t seed)
{
    const uint32_t F = net->n_feat, P = net->n_phones, C = net->chunk_frames, W = net->in_frames;
    const uint32_t left = net->context_frames - 1u - net->lookahead_frames;
    uint32_t total = left + n_frames, k, i, t, got = 0, n_out;
    float *feats = (float *)malloc(sizeof(float) * n_frames * F);
    float *got_lp = (float *)malloc(sizeof(float) * (n_frames + 2u * C) * P);
    float *want = (float *)malloc(sizeof(float) * (n_frames + 2u * C) * P);
    int8_t *padded, *qout;
    void *scratch = malloc(kws_net_scratch_bytes(net));
    size_t ssize = kws_net_stream_size(net);
    void *mem = malloc(ssize);
    kws_net_stream *s;
    kws_status st;
    uint32_t mism = 0;
    for (i = 0; i < n_frames * F; i++) {
        seed = seed * 1664525u + 1013904223u;
        feats[i] = -12.0f + 14.0f * (float)(seed >> 8) / 16777216.0f;
    }
    /* reference */
    k = (n_frames + C - 1u) / C;
    if (total < (k - 1u) * C + W) total = (k - 1u) * C + W;
    padded = (int8_t *)malloc((size_t)total * F);
    qout = (int8_t *)malloc((size_t)C * P);
    for (t = 0; t < total; t++) {
        uint32_t src = t < left ? 0u : (t - left < n_frames ? t - left : n_frames - 1u);
        kws_net_quantize_frame(net, feats + (size_t)src * F, padded + (size_t)t * F);
    }
    for (i = 0; i < k; i++) {
        CHECK_EQ(kws_net_invoke(net, padded + (size_t)i * C * F, qout, scratch,
                                kws_net_scratch_bytes(net)), KWS_OK);
        for (t = 0; t < C * P; t++) want[(size_t)i * C * P + t] = net->logpost[qout[t] + 128];
    }
    /* stream */
    CHECK_EQ(kws_net_stream_init(net, mem, ssize - 1u, &s), KWS_ERR_NOMEM);
    CHECK_EQ(kws_net_stream_init(net, mem, ssize, &s), KWS_OK);
    for (t = 0; t < n_frames; t++) {
        st = kws_net_stream_push(s, feats + (size_t)t * F, got_lp + (size_t)got * P, &n_out);
        CHECK_EQ(st, KWS_OK);
        got += n_out;
    }
    do {
        st = kws_net_stream_flush(s, got_lp + (size_t)got * P, &n_out);
        CHECK_EQ(st, KWS_OK);
        got += n_out;
    } while (n_out > 0u && st == KWS_OK);
    CHECK_EQ(got, n_frames);
    for (i = 0; i < got * P && i < n_frames * P; i++) mism += got_lp[i] != want[i];
    CHECK_EQ(mism, 0);
    /* flushing again gives nothing; the stream restarted */
    CHECK_EQ(kws_net_stream_flush(s, got_lp, &n_out), KWS_OK);
    CHECK_EQ(n_out, 0);
    free(mem); free(scratch); free(qout); free(padded); free(want); free(got_lp); free(feats);
}

static void test_stream(void)
{
    kws_net net;
    static const uint32_t lens[] = { 1, 2, 7, 8, 9, 13, 17, 18, 19, 25, 26, 27, 33, 34, 35,
                                     41, 100, 257, 1000 };
    size_t i;
    CHECK_EQ(kws_net_parse((const uint8_t *)g_blob, g_blob_len, 0u, &net), KWS_OK);
    for (i = 0; i < sizeof lens / sizeof lens[0]; i++) check_stream(&net, lens[i], (uint32_t)i + 1u);
}

/* One stream object reused: utterances back to back, flushes in between,
 * a reset mid-utterance; every output must equal a fresh stream's. */
static void test_stream_reuse(void)
{
    kws_net net;
    size_t ssize;
    void *mem, *mem2;
    kws_net_stream *s, *f;
    float *feats, *a, *b;
    uint32_t seed = 99u, u, i, n_out, got_a, got_b, mism = 0, F, P;
    CHECK_EQ(kws_net_parse((const uint8_t *)g_blob, g_blob_len, 0u, &net), KWS_OK);
    F = net.n_feat;
    P = net.n_phones;
    ssize = kws_net_stream_size(&net);
    mem = malloc(ssize);
    mem2 = malloc(ssize);
    feats = (float *)malloc(sizeof(float) * 300u * F);
    a = (float *)malloc(sizeof(float) * 400u * P);
    b = (float *)malloc(sizeof(float) * 400u * P);
    CHECK_EQ(kws_net_stream_init(&net, mem, ssize, &s), KWS_OK);
    for (u = 0; u < 12u; u++) {
        uint32_t len;
        seed = seed * 1664525u + 1013904223u;
        len = 1u + (seed >> 8) % 300u;
        for (i = 0; i < len * F; i++) {
            seed = seed * 1664525u + 1013904223u;
            feats[i] = -12.0f + 14.0f * (float)(seed >> 8) / 16777216.0f;
        }
        if (u == 5u) { /* abandoned half-way: reset must start over */
            for (i = 0; i < len / 2u; i++) kws_net_stream_push(s, feats + (size_t)i * F, a, &n_out);
            kws_net_stream_reset(s);
        }
        got_a = got_b = 0;
        CHECK_EQ(kws_net_stream_init(&net, mem2, ssize, &f), KWS_OK);
        for (i = 0; i < len; i++) {
            CHECK_EQ(kws_net_stream_push(s, feats + (size_t)i * F, a + (size_t)got_a * P, &n_out), KWS_OK);
            CHECK(n_out == 0u || n_out == net.chunk_frames);
            got_a += n_out;
            CHECK_EQ(kws_net_stream_push(f, feats + (size_t)i * F, b + (size_t)got_b * P, &n_out), KWS_OK);
            got_b += n_out;
            CHECK_EQ(got_a, got_b);
        }
        do {
            CHECK_EQ(kws_net_stream_flush(s, a + (size_t)got_a * P, &n_out), KWS_OK);
            CHECK(n_out <= net.chunk_frames);
            got_a += n_out;
        } while (n_out > 0u);
        do {
            CHECK_EQ(kws_net_stream_flush(f, b + (size_t)got_b * P, &n_out), KWS_OK);
            got_b += n_out;
        } while (n_out > 0u);
        CHECK_EQ(got_a, len);
        CHECK_EQ(got_b, len);
        for (i = 0; i < len * P; i++) mism += a[i] != b[i];
    }
    CHECK_EQ(mism, 0);
    /* flush on a fresh stream, and NULL arguments */
    CHECK_EQ(kws_net_stream_flush(s, a, &n_out), KWS_OK);
    CHECK_EQ(n_out, 0);
    CHECK_EQ(kws_net_stream_push(NULL, feats, a, &n_out), KWS_ERR_ARG);
    CHECK_EQ(kws_net_stream_flush(s, NULL, &n_out), KWS_ERR_ARG);
    CHECK_EQ(kws_net_stream_init(&net, (uint8_t *)mem + 4, ssize, &f), KWS_ERR_ALIGN);
    free(b); free(a); free(feats); free(mem2); free(mem);
}

static void test_quantize(void)
{
    kws_net net;
    float x[40];
    int8_t q[40];
    uint32_t i;
    CHECK_EQ(kws_net_parse((const uint8_t *)g_blob, g_blob_len, 0u, &net), KWS_OK);
    for (i = 0; i < 40u; i++) x[i] = 0.0f;
    x[0] = 1.0e30f;
    x[1] = -1.0e30f;
    x[2] = (float)NAN;
    x[3] = (float)INFINITY;
    x[4] = 2.5f * net.input_scale;  /* a tie (if exact): rounds to even */
    kws_net_quantize_frame(&net, x, q);
    CHECK_EQ(q[0], 127);
    CHECK_EQ(q[1], -128);
    CHECK_EQ(q[2], net.input_zero_point);
    CHECK_EQ(q[3], 127);
    CHECK_EQ(q[5], net.input_zero_point);
}

int main(void)
{
    g_blob = (uint32_t *)read_file("net_ko16.kwn", &g_blob_len);
    g_ref = (uint8_t *)read_file("net_ko16_ref.bin", &g_ref_len);
    RUN(test_parse_fixture);
    RUN(test_invoke_matches_reference);
    RUN(test_alignment_and_truncation);
    RUN(test_every_byte_flip_refused);
    RUN(test_field_checks);
    RUN(test_mutation_fuzz);
    RUN(test_stream);
    RUN(test_stream_reuse);
    RUN(test_quantize);
    free(g_ref);
    free(g_blob);
    printf("%d passed, %d failed\n", g_tests_passed, g_tests_failed);
    return g_tests_failed == 0 ? 0 : 1;
}
