/*
 * test_frontend.c - unit tests of the streaming log-mel front end.
 * Self-contained (no test framework); prints "N passed, M failed" last and
 * exits non-zero on any failure.
 */
#include "kws_frontend.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_pass = 0, g_fail = 0;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (cond) {                                                              \
            g_pass++;                                                            \
        } else {                                                                 \
            g_fail++;                                                            \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                        \
    } while (0)

#define TEST_PI 3.14159265358979323846
#define SR 16000u
#define LEN 400u
#define SHIFT 160u
#define NMEL 40u

static uint32_t expected_frames(uint32_t n) { return n < LEN ? 0u : 1u + (n - LEN) / SHIFT; }

/* 8-byte aligned heap block for a front end of this config. */
static kws_frontend *make_fe(const kws_frontend_config *cfg, uint64_t **mem_out)
{
    size_t sz = kws_frontend_size(cfg);
    uint64_t *mem = (uint64_t *)malloc(sz + 8);
    kws_frontend *fe = NULL;
    if (mem == NULL) return NULL;
    if (kws_frontend_init(cfg, mem, sz, &fe) != KWS_OK) {
        free(mem);
        return NULL;
    }
    *mem_out = mem;
    return fe;
}

/* Run the whole signal through in chunks of `chunk` samples (0 = one call),
 * never asking for more than `cap` frames per call (0 = unlimited). */
static uint32_t run_chunked(kws_frontend *fe, const int16_t *pcm, uint32_t n, uint32_t chunk,
                            uint32_t cap, float *feats, uint32_t max_total)
{
    uint32_t pos = 0, total = 0;
    kws_frontend_reset(fe);
    while (pos < n) {
        uint32_t len = chunk == 0u ? n - pos : (n - pos < chunk ? n - pos : chunk);
        uint32_t done = 0;
        while (done < len) {
            uint32_t used = 0, got = 0, room = max_total - total;
            uint32_t want = cap == 0u || cap > room ? room : cap;
            if (kws_frontend_process(fe, pcm + pos + done, len - done, feats + (size_t)total * NMEL,
                                     want, &used, &got) != KWS_OK)
                return 0xFFFFFFFFu;
            if (used < len - done && got != want) return 0xFFFFFFFEu; /* contract */
            done += used;
            total += got;
            if (used == 0 && got == 0) return 0xFFFFFFFDu; /* no progress */
        }
        pos += len;
    }
    return total;
}

/* Deterministic test signal: a sweep, a tone and LCG noise. */
static void make_signal(int16_t *pcm, uint32_t n)
{
    uint32_t i, state = 12345u;
    for (i = 0; i < n; i++) {
        double t = (double)i / SR;
        double v = 0.3 * sin(2.0 * TEST_PI * (200.0 * t + 1500.0 * t * t)) +
                   0.1 * sin(2.0 * TEST_PI * 440.0 * t);
        int32_t q;
        state = state * 1664525u + 1013904223u;
        v += 0.05 * ((double)(state >> 8) / 16777216.0 - 0.5);
        q = (int32_t)lrint(v * 32767.0);
        if (q > 32767) q = 32767;
        if (q < -32768) q = -32768;
        pcm[i] = (int16_t)q;
    }
}

static void test_config_and_size(void)
{
    kws_frontend_config c = kws_frontend_default_config(), bad;
    uint64_t small[16];
    uint64_t *mem;
    kws_frontend *fe = (kws_frontend *)&small;
    size_t sz = kws_frontend_size(&c);

    CHECK(c.sample_rate == 16000u && c.frame_length == 400u && c.frame_shift == 160u);
    CHECK(c.fft_size == 512u && c.n_mels == 40u);
    CHECK(c.low_freq == 20.0f && c.high_freq == 7600.0f && c.energy_floor == 1e-10f);
    CHECK(sz > 0 && sz < 16384);
    CHECK(kws_frontend_size(NULL) == 0);

    /* Too small a buffer: NOMEM, also one byte short; *out cleared. */
    mem = (uint64_t *)malloc(sz + 8);
    CHECK(mem != NULL);
    if (mem == NULL) return;
    CHECK(kws_frontend_init(&c, small, sizeof small, &fe) == KWS_ERR_NOMEM && fe == NULL);
    CHECK(kws_frontend_init(&c, mem, sz - 1, &fe) == KWS_ERR_NOMEM && fe == NULL);
    CHECK(kws_frontend_init(&c, mem, 0, &fe) == KWS_ERR_NOMEM);
    CHECK(kws_frontend_init(&c, mem, sz, &fe) == KWS_OK && fe != NULL);
    CHECK(kws_frontend_init(&c, (uint8_t *)mem + 4, sz, &fe) == KWS_ERR_ALIGN);
    CHECK(kws_frontend_init(NULL, mem, sz, &fe) == KWS_ERR_ARG);
    CHECK(kws_frontend_init(&c, NULL, sz, &fe) == KWS_ERR_ARG);
    CHECK(kws_frontend_init(&c, mem, sz, NULL) == KWS_ERR_ARG);

    /* Out-of-range configurations: size 0, init ARG. */
    bad = c; bad.fft_size = 500u;
    CHECK(kws_frontend_size(&bad) == 0 && kws_frontend_init(&bad, mem, sz, &fe) == KWS_ERR_ARG);
    bad = c; bad.frame_length = 513u;
    CHECK(kws_frontend_size(&bad) == 0);
    bad = c; bad.frame_shift = 0u;
    CHECK(kws_frontend_size(&bad) == 0);
    bad = c; bad.n_mels = 0u;
    CHECK(kws_frontend_size(&bad) == 0);
    bad = c; bad.high_freq = 8001.0f;
    CHECK(kws_frontend_size(&bad) == 0);
    bad = c; bad.low_freq = bad.high_freq;
    CHECK(kws_frontend_size(&bad) == 0);
    bad = c; bad.low_freq = NAN;
    CHECK(kws_frontend_size(&bad) == 0);
    bad = c; bad.energy_floor = 0.0f;
    CHECK(kws_frontend_size(&bad) == 0);
    bad = c; bad.level_control = 2u;
    CHECK(kws_frontend_size(&bad) == 0 && kws_frontend_init(&bad, mem, sz, &fe) == KWS_ERR_ARG);
    CHECK(c.level_control == 1u); /* on by default: the detector's and the device's front end */
    free(mem);
}

static void test_process_args(void)
{
    kws_frontend_config c = kws_frontend_default_config();
    uint64_t *mem = NULL;
    kws_frontend *fe = make_fe(&c, &mem);
    int16_t pcm[1000];
    float feats[8 * NMEL];
    uint32_t used = 99, got = 99;

    CHECK(fe != NULL);
    if (fe == NULL) return;
    memset(pcm, 0, sizeof pcm);
    CHECK(kws_frontend_process(NULL, pcm, 10, feats, 1, &used, &got) == KWS_ERR_ARG);
    CHECK(kws_frontend_process(fe, NULL, 10, feats, 1, &used, &got) == KWS_ERR_ARG);
    CHECK(kws_frontend_process(fe, pcm, 10, NULL, 1, &used, &got) == KWS_ERR_ARG);
    CHECK(kws_frontend_process(fe, pcm, 10, feats, 1, NULL, &got) == KWS_ERR_ARG);
    CHECK(kws_frontend_process(fe, pcm, 10, feats, 1, &used, NULL) == KWS_ERR_ARG);
    CHECK(kws_frontend_process(fe, NULL, 0, NULL, 0, &used, &got) == KWS_OK && used == 0 && got == 0);

    /* max_frames = 0 buffers up to frame_length - 1 samples and no more. */
    CHECK(kws_frontend_process(fe, pcm, 1000, NULL, 0, &used, &got) == KWS_OK);
    CHECK(used == LEN - 1 && got == 0);
    CHECK(kws_frontend_process(fe, pcm, 1000, NULL, 0, &used, &got) == KWS_OK && used == 0);
    /* One more sample with room for one frame: exactly one frame. */
    CHECK(kws_frontend_process(fe, pcm, 1000, feats, 1, &used, &got) == KWS_OK);
    CHECK(got == 1 && used == 1 + SHIFT - 1);
    /* Frame count for the rest of a stream: 399 + 160 buffered so far + 1000. */
    kws_frontend_reset(fe);
    CHECK(kws_frontend_process(fe, pcm, 1000, feats, 8, &used, &got) == KWS_OK);
    CHECK(used == 1000 && got == expected_frames(1000));
    CHECK(kws_frontend_process(fe, pcm, 399, feats, 8, &used, &got) == KWS_OK);
    CHECK(used == 399 && got == expected_frames(1399) - expected_frames(1000));
    free(mem);
}

static void test_sine_peak(void)
{
    kws_frontend_config c = kws_frontend_default_config();
    uint64_t *mem = NULL;
    kws_frontend *fe = make_fe(&c, &mem);
    const uint32_t n = SR; /* 1 s */
    int16_t *pcm = (int16_t *)malloc(n * sizeof(int16_t));
    float *feats = (float *)malloc((size_t)expected_frames(n) * NMEL * sizeof(float));
    uint32_t i, f, used = 0, got = 0, band = 0, ok = 1;
    double lo, hi, best = -1.0;

    CHECK(fe != NULL && pcm != NULL && feats != NULL);
    if (fe == NULL || pcm == NULL || feats == NULL) return;
    for (i = 0; i < n; i++) pcm[i] = (int16_t)lrint(16384.0 * sin(2.0 * TEST_PI * 1000.0 * i / SR));

    /* The band containing 1 kHz: the triangle with the largest weight there
     * (computed here independently of the library). */
    lo = 2595.0 * log10(1.0 + 20.0 / 700.0);
    hi = 2595.0 * log10(1.0 + 7600.0 / 700.0);
    for (i = 0; i < NMEL; i++) {
        double p[3], w;
        uint32_t j;
        for (j = 0; j < 3; j++)
            p[j] = 700.0 * (pow(10.0, (lo + (hi - lo) * (i + j) / (NMEL + 1)) / 2595.0) - 1.0);
        w = 1000.0 <= p[1] ? (1000.0 - p[0]) / (p[1] - p[0]) : (p[2] - 1000.0) / (p[2] - p[1]);
        if (w > best) { best = w; band = i; }
    }
    CHECK(best > 0.5);

    CHECK(kws_frontend_process(fe, pcm, n, feats, expected_frames(n), &used, &got) == KWS_OK);
    CHECK(used == n && got == expected_frames(n));
    for (f = 0; f < got; f++) {
        const float *row = feats + (size_t)f * NMEL;
        uint32_t arg = 0;
        for (i = 1; i < NMEL; i++)
            if (row[i] > row[arg]) arg = i;
        if (arg != band) ok = 0;
        /* A pure tone: far bands are tens of dB (several nepers) down. */
        if (!(row[band] > row[0] + 5.0f && row[band] > row[NMEL - 1] + 5.0f)) ok = 0;
    }
    CHECK(ok);
    /* Energy scale: a 0.5-amplitude tone through a 400-point Hann window has
     * |X| = 0.5 * 0.5 * 400 / 2 = 50 at its own bin, power 2500, log 7.82; the
     * band adds the main lobe's neighbouring bins with weights <= 1 (7.96 here). */
    CHECK(feats[band] > 7.0f && feats[band] < 9.0f);
    free(pcm);
    free(feats);
    free(mem);
}

static void test_silence_and_dc(void)
{
    kws_frontend_config c = kws_frontend_default_config();
    uint64_t *mem = NULL;
    kws_frontend *fe = make_fe(&c, &mem);
    int16_t pcm[2000];
    float feats[16 * NMEL];
    uint32_t i, used, got, ok = 1;
    const float floor_v = (float)log(1e-10);

    CHECK(fe != NULL);
    if (fe == NULL) return;
    memset(pcm, 0, sizeof pcm);
    CHECK(kws_frontend_process(fe, pcm, 2000, feats, 16, &used, &got) == KWS_OK);
    CHECK(got == expected_frames(2000));
    for (i = 0; i < got * NMEL; i++)
        if (feats[i] != floor_v) ok = 0;
    CHECK(ok);
    CHECK(fabsf(floor_v - (-23.02585093f)) < 1e-5f);

    /* A constant (any DC level) is removed exactly: also the floor. */
    for (i = 0; i < 2000; i++) pcm[i] = -12345;
    kws_frontend_reset(fe);
    CHECK(kws_frontend_process(fe, pcm, 2000, feats, 16, &used, &got) == KWS_OK);
    ok = got == expected_frames(2000);
    for (i = 0; i < got * NMEL; i++)
        if (feats[i] != floor_v) ok = 0;
    CHECK(ok);
    free(mem);
}

static void test_chunking(void)
{
    static const uint32_t chunks[] = {1u, 7u, 160u, 1000u, 399u, 400u, 401u};
    static const uint32_t caps[] = {0u, 1u, 3u};
    kws_frontend_config c = kws_frontend_default_config();
    uint64_t *mem = NULL;
    kws_frontend *fe = make_fe(&c, &mem);
    const uint32_t n = 3u * SR + 123u;
    const uint32_t nf = expected_frames(n);
    int16_t *pcm = (int16_t *)malloc(n * sizeof(int16_t));
    float *ref = (float *)malloc((size_t)nf * NMEL * sizeof(float));
    float *got = (float *)malloc((size_t)nf * NMEL * sizeof(float));
    uint32_t ci, ki, r;

    CHECK(fe != NULL && pcm != NULL && ref != NULL && got != NULL);
    if (fe == NULL || pcm == NULL || ref == NULL || got == NULL) return;
    make_signal(pcm, n);
    r = run_chunked(fe, pcm, n, 0, 0, ref, nf);
    CHECK(r == nf);
    for (ci = 0; ci < sizeof chunks / sizeof chunks[0]; ci++) {
        for (ki = 0; ki < sizeof caps / sizeof caps[0]; ki++) {
            memset(got, 0xA5, (size_t)nf * NMEL * sizeof(float));
            r = run_chunked(fe, pcm, n, chunks[ci], caps[ki], got, nf);
            CHECK(r == nf && memcmp(ref, got, (size_t)nf * NMEL * sizeof(float)) == 0);
            if (r != nf || memcmp(ref, got, (size_t)nf * NMEL * sizeof(float)) != 0)
                printf("  chunk %u cap %u differs\n", (unsigned)chunks[ci], (unsigned)caps[ki]);
        }
    }
    /* Every value finite and above the floor for this signal. */
    {
        uint32_t i, ok = 1;
        for (i = 0; i < nf * NMEL; i++)
            if (!(ref[i] > -23.0f && ref[i] < 30.0f)) ok = 0;
        CHECK(ok);
    }
    free(pcm);
    free(ref);
    free(got);
    free(mem);
}

/* One frame against a direct evaluation of the definition in double
 * (O(N^2) DFT, dense triangles): checks the packed FFT, split step, window,
 * DC removal and sparse filters together. */
static void test_against_direct_dft(void)
{
    kws_frontend_config c = kws_frontend_default_config();
    uint64_t *mem = NULL;
    kws_frontend *fe = make_fe(&c, &mem);
    int16_t pcm[LEN];
    float feats[NMEL];
    double x[LEN], power[257], mean = 0.0, worst = 0.0, lo, hi, pts[NMEL + 2];
    uint32_t i, k, m, used, got;

    CHECK(fe != NULL);
    if (fe == NULL) return;
    make_signal(pcm, LEN);
    CHECK(kws_frontend_process(fe, pcm, LEN, feats, 1, &used, &got) == KWS_OK && got == 1);
    for (i = 0; i < LEN; i++) mean += pcm[i] / 32768.0;
    mean /= LEN;
    for (i = 0; i < LEN; i++)
        x[i] = (pcm[i] / 32768.0 - mean) * (0.5 - 0.5 * cos(2.0 * TEST_PI * i / LEN));
    for (k = 0; k <= 256; k++) {
        double re = 0.0, im = 0.0;
        for (i = 0; i < LEN; i++) {
            double a = 2.0 * TEST_PI * (double)((k * i) % 512u) / 512.0;
            re += x[i] * cos(a);
            im -= x[i] * sin(a);
        }
        power[k] = re * re + im * im;
    }
    lo = 2595.0 * log10(1.0 + 20.0 / 700.0);
    hi = 2595.0 * log10(1.0 + 7600.0 / 700.0);
    for (i = 0; i < NMEL + 2; i++)
        pts[i] = 700.0 * (pow(10.0, (lo + (hi - lo) * i / (NMEL + 1)) / 2595.0) - 1.0);
    for (m = 0; m < NMEL; m++) {
        double e = 0.0, d;
        for (k = 0; k <= 256; k++) {
            double f = k * 31.25, up = (f - pts[m]) / (pts[m + 1] - pts[m]),
                   down = (pts[m + 2] - f) / (pts[m + 2] - pts[m + 1]);
            double w = up < down ? up : down;
            if (w > 0.0) e += w * power[k];
        }
        d = fabs(log(e > 1e-10 ? e : 1e-10) - feats[m]);
        if (d > worst) worst = d;
    }
    CHECK(worst < 1e-4);
    free(mem);
}

/* A non-default configuration works and stays chunking-invariant. */
static void test_other_config(void)
{
    kws_frontend_config c = kws_frontend_default_config();
    uint64_t *mem = NULL;
    kws_frontend *fe;
    int16_t pcm[4000];
    float a[64 * 23], b[64 * 23];
    uint32_t used, got, got2 = 0, i, pos, ok;

    c.sample_rate = 8000u;
    c.frame_length = 200u;
    c.frame_shift = 80u;
    c.fft_size = 256u;
    c.n_mels = 23u;
    c.high_freq = 3800.0f;
    fe = make_fe(&c, &mem);
    CHECK(fe != NULL);
    if (fe == NULL) return;
    make_signal(pcm, 4000);
    CHECK(kws_frontend_process(fe, pcm, 4000, a, 64, &used, &got) == KWS_OK);
    CHECK(used == 4000 && got == 1u + (4000u - 200u) / 80u);
    kws_frontend_reset(fe);
    for (pos = 0, ok = 1; pos < 4000; pos += 13) {
        uint32_t g = 0;
        uint32_t len = 4000 - pos < 13 ? 4000 - pos : 13;
        if (kws_frontend_process(fe, pcm + pos, len, b + (size_t)got2 * 23, 64 - got2, &used, &g) != KWS_OK ||
            used != len)
            ok = 0;
        got2 += g;
    }
    CHECK(ok);
    CHECK(got2 == got && memcmp(a, b, (size_t)got * 23 * sizeof(float)) == 0);
    for (i = 0; i < got * 23; i++)
        if (!(a[i] > -23.1f)) break;
    CHECK(i == got * 23);
    free(mem);
}

int main(void)
{
    test_config_and_size();
    test_process_args();
    test_sine_peak();
    test_silence_and_dc();
    test_chunking();
    test_against_direct_dft();
    test_other_config();
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail == 0 ? 0 : 1;
}
