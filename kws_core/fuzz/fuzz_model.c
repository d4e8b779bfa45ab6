/*
 * fuzz_model.c - libFuzzer target for the keyword-model reader and the decoder.
 *
 * Each input is taken as a .kwm file:
 *   1. it is copied into a malloc'd buffer of exactly its size (malloc is
 *      aligned, so the parser accepts it, and ASan sees any read past the end);
 *   2. kws_model_parse() runs on it with expected id 0 and with the Korean and
 *      English phone-set ids; a misaligned copy must give KWS_ERR_ALIGN;
 *   3. if the only fault is the checksum, the copy's CRC field is patched and
 *      the copy parsed again, so that mutated files reach the deeper checks
 *      instead of all stopping at KWS_ERR_CRC;
 *   4. when a parse succeeds, a decoder is built in a malloc'd buffer of
 *      exactly kws_decoder_size() bytes and fed ~50 frames of deterministic
 *      log-posteriors derived from the input (frames that follow the model's
 *      own states, noise, NaN/inf/huge values), in chunks of varying size,
 *      then flushed; then reset and fed the same frames again, which must give
 *      the same detections. Every keyword name is read (strlen) on the way.
 *
 * Besides the sanitizers, the target checks the API contract of kws.h and the
 * decoder semantics of docs/kwm-format.md (statuses, detection ranges, score
 * <= 0 and >= threshold, refractory spacing, determinism after reset) and
 * aborts with a message naming the broken check.
 *
 * Build for fuzzing (tools/fuzz.sh does this):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Ikws_core/include \
 *       kws_core/fuzz/fuzz_model.c kws_core/src/kws_model.c kws_core/src/kws_decoder.c -lm
 * Build a replay driver without libFuzzer (runs each file or folder given):
 *   gcc -g -O1 -DKWS_FUZZ_REPLAY -fsanitize=address,undefined -Ikws_core/include \
 *       kws_core/fuzz/fuzz_model.c kws_core/src/kws_model.c kws_core/src/kws_decoder.c -lm
 *   ./a.out crash-... kws_core/fuzz/regressions/
 */
#if defined(KWS_FUZZ_REPLAY) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* opendir, stat */
#endif

#include "kws.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"

/* Phone-set ids of the shipped phone sets (ko-v1, en-v1); see kws/phonesets.py. */
#define FUZZ_ID_KO 0xFE80B53Du
#define FUZZ_ID_EN 0x12D221D3u

#define FUZZ_FRAMES 50u
/* Bound on floats per stream, so that a model claiming 65535 phones stays fast. */
#define FUZZ_MAX_FLOATS (1u << 17)


/* ------------------------------------------------------------------------ */
/* Deterministic pseudo-random numbers from the input                        */
/* ------------------------------------------------------------------------ */

typedef struct fuzz_rng {
    uint32_t s;
} fuzz_rng;

static uint32_t fuzz_next(fuzz_rng *r)
{
    uint32_t x = r->s; /* xorshift32 */
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    r->s = x;
    return x;
}

static uint32_t fuzz_seed(const uint8_t *data, size_t size)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    size_t i;
    for (i = 0; i < size; i++) {
        h ^= data[i];
        h *= 16777619u;
    }
    return h != 0u ? h : 0x9E3779B9u;
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* ------------------------------------------------------------------------ */
/* Log-posterior frames                                                      */
/* ------------------------------------------------------------------------ */

static float fuzz_special(fuzz_rng *r)
{
    switch (fuzz_next(r) % 10u) {
    case 0: return NAN;
    case 1: return INFINITY;
    case 2: return -INFINITY;
    case 3: return FLT_MAX;
    case 4: return -FLT_MAX;
    case 5: return FLT_MIN / 4.0f; /* subnormal */
    case 6: return -0.0f;
    case 7: return 1.0e30f;
    case 8: return -1.0e30f;
    default: return -(float)(fuzz_next(r) % 4000u) / 100.0f;
    }
}

/* Fill n_frames x n_phones log-posteriors. Most frames make the model's own
 * states (walked in file order) the best phone, so keyword paths complete and
 * detections happen; the rest are noise or special values. */
static void fuzz_make_frames(const kws_model *m, fuzz_rng *r, float *x, uint32_t n_frames)
{
    const uint32_t np = m->n_phones;
    uint32_t cursor = fuzz_next(r) % m->n_states;
    const float offset = (float)(fuzz_next(r) % 64u) - 48.0f;
    uint32_t f, p;
    for (f = 0; f < n_frames; f++) {
        float *row = x + (size_t)f * np;
        const uint32_t kind = fuzz_next(r) % 16u;
        if (kind < 9u) { /* follow the model's states */
            const uint32_t best = m->states[cursor].phone;
            FUZZ_CHECK(best < np); /* the parser must refuse a phone out of range */
            for (p = 0; p < np; p++) row[p] = offset - 1.0f - (float)(fuzz_next(r) % 800u) / 100.0f;
            row[best] = offset - (float)(fuzz_next(r) % 3u) * 0.25f;
            if (fuzz_next(r) & 1u) cursor = (cursor + 1u) % m->n_states;
        } else if (kind < 13u) { /* noise */
            for (p = 0; p < np; p++) row[p] = offset - (float)(fuzz_next(r) % 3000u) / 100.0f;
        } else if (kind < 15u) { /* noise with special values */
            for (p = 0; p < np; p++) {
                row[p] = (fuzz_next(r) % 4u == 0u) ? fuzz_special(r)
                                                    : -(float)(fuzz_next(r) % 3000u) / 100.0f;
            }
        } else { /* one value everywhere (all NaN, all equal, all -inf, ...) */
            const float v = fuzz_special(r);
            for (p = 0; p < np; p++) row[p] = v;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Decoding with contract checks                                             */
/* ------------------------------------------------------------------------ */

typedef struct fuzz_stream {
    uint64_t hash;      /* of every detection, in order */
    uint32_t n_det;
} fuzz_stream;

static void fuzz_hash_det(fuzz_stream *s, const kws_detection *d)
{
    uint8_t b[32];
    size_t i;
    uint32_t sc;
    memcpy(&sc, &d->score, sizeof sc);
    memset(b, 0, sizeof b);
    memcpy(b, &d->keyword, 4);
    memcpy(b + 4, &sc, 4);
    memcpy(b + 8, &d->start_frame, 8);
    memcpy(b + 16, &d->end_frame, 8);
    for (i = 0; i < sizeof b; i++) {
        s->hash ^= b[i];
        s->hash *= 1099511628211ull;
    }
    s->n_det++;
}

/* A detection as the spec describes it. last_end[k] = end of k's previous
 * detection + 1 (0 = none yet). */
static void fuzz_check_det(const kws_model *m, const kws_decoder *dec, const kws_detection *d,
                           uint64_t *last_end, fuzz_stream *s)
{
    const kws_keyword_rec *kw;
    FUZZ_CHECK(d->keyword < m->n_keywords);
    kw = &m->keywords[d->keyword];
    FUZZ_CHECK(d->start_frame <= d->end_frame);
    FUZZ_CHECK(d->end_frame < kws_decoder_frames(dec));
    FUZZ_CHECK(d->end_frame - d->start_frame + 1u <= (uint64_t)kw->max_frames);
    FUZZ_CHECK(d->score == d->score);
    FUZZ_CHECK(d->score <= 0.0f);
    FUZZ_CHECK(d->score >= kws_decoder_get_threshold(dec, d->keyword));
    if (last_end[d->keyword] != 0u) {
        const uint64_t prev_end = last_end[d->keyword] - 1u;
        FUZZ_CHECK(d->end_frame > prev_end);
        FUZZ_CHECK(d->end_frame >= prev_end + m->refractory_frames);
    }
    last_end[d->keyword] = d->end_frame + 1u;
    fuzz_hash_det(s, d);
}

/* One stream: x (n_frames frames) in chunks whose sizes and output capacities
 * come from rng, then a flush. */
static void fuzz_stream_run(const kws_model *m, kws_decoder *dec, const float *x,
                            uint32_t n_frames, uint32_t rng_seed, kws_detection *out,
                            uint32_t out_cap, float *scores, uint64_t *last_end,
                            fuzz_stream *s)
{
    const uint32_t nk = m->n_keywords;
    const uint32_t np = m->n_phones;
    fuzz_rng r;
    uint32_t done = 0, k;
    uint32_t n_out, n_out2;

    r.s = rng_seed;
    memset(last_end, 0, (size_t)nk * sizeof *last_end);
    s->hash = 14695981039346656037ull;
    s->n_det = 0;
    FUZZ_CHECK(kws_decoder_frames(dec) == 0u);

    while (done < n_frames) {
        const uint32_t want_frames = 1u + fuzz_next(&r) % 8u;
        const uint32_t chunk = want_frames < n_frames - done ? want_frames : n_frames - done;
        /* Capacity: the minimum (nk) or room for every frame of the chunk. */
        const uint32_t cap = (fuzz_next(&r) & 1u) ? nk : out_cap;
        float *sc = (fuzz_next(&r) % 4u != 0u) ? scores : NULL;
        uint32_t n_done = 12345u, i, j;
        kws_status st;

        st = kws_decoder_process(dec, x + (size_t)done * np, chunk, out, cap, &n_done, &n_out, sc);
        FUZZ_CHECK(st == KWS_OK);
        FUZZ_CHECK(n_done >= 1u && n_done <= chunk); /* cap >= nk: at least one frame */
        FUZZ_CHECK(n_out <= cap);
        FUZZ_CHECK(n_out <= (uint64_t)n_done * nk);
        done += n_done;
        FUZZ_CHECK(kws_decoder_frames(dec) == done);
        for (i = 0; i < n_out; i++) fuzz_check_det(m, dec, &out[i], last_end, s);
        if (sc != NULL) {
            for (i = 0; i < n_done; i++) {
                for (j = 0; j < nk; j++) {
                    const float v = sc[(size_t)i * nk + j];
                    FUZZ_CHECK(v == KWS_NO_SCORE || (v == v && v <= 0.0f));
                }
            }
        }
    }

    /* Zero frames: nothing happens. */
    FUZZ_CHECK(kws_decoder_process(dec, x, 0u, out, nk, &n_out2, &n_out, scores) == KWS_OK);
    FUZZ_CHECK(n_out2 == 0u && n_out == 0u);
    /* A capacity under n_keywords is refused. */
    FUZZ_CHECK(kws_decoder_process(dec, x, 1u, out, nk - 1u, &n_out2, &n_out, NULL) == KWS_ERR_ARG);
    FUZZ_CHECK(kws_decoder_flush(dec, out, nk - 1u, &n_out) == KWS_ERR_ARG);
    FUZZ_CHECK(kws_decoder_frames(dec) == n_frames);

    FUZZ_CHECK(kws_decoder_flush(dec, out, nk, &n_out) == KWS_OK);
    FUZZ_CHECK(n_out <= nk);
    for (k = 0; k < n_out; k++) fuzz_check_det(m, dec, &out[k], last_end, s);
    /* Nothing is left pending after a flush. */
    FUZZ_CHECK(kws_decoder_flush(dec, out, nk, &n_out) == KWS_OK);
    FUZZ_CHECK(n_out == 0u);
}

static void fuzz_decode(const kws_model *m, const uint8_t *data, size_t size)
{
    const uint32_t nk = m->n_keywords;
    const uint32_t np = m->n_phones;
    size_t dsize;
    void *mem;
    kws_decoder *dec = NULL;
    uint32_t n_frames, k, thr_mode, out_cap;
    float *x, *scores, *thr;
    kws_detection *out;
    uint64_t *last_end;
    fuzz_rng r;
    fuzz_stream s1, s2;
    uint32_t chunk_seed;

    r.s = fuzz_seed(data, size);

    /* Keyword names and pronunciations: inside the string section, each with
     * its NUL (at offset + len) inside the section too. */
    for (k = 0; k < nk; k++) {
        const kws_keyword_rec *kw = &m->keywords[k];
        const char *name = kws_model_keyword_name(m, k);
        FUZZ_CHECK(name != NULL);
        FUZZ_CHECK(name == m->strings + kw->name_offset);
        FUZZ_CHECK(kw->name_len >= 1u);
        FUZZ_CHECK((uint64_t)kw->name_offset + kw->name_len < m->strings_size);
        FUZZ_CHECK(strlen(name) <= kw->name_len && name[kw->name_len] == '\0');
        FUZZ_CHECK((uint64_t)kw->pron_offset + kw->pron_len < m->strings_size);
        FUZZ_CHECK(m->strings[(size_t)kw->pron_offset + kw->pron_len] == '\0');
    }
    FUZZ_CHECK(kws_model_keyword_name(m, nk) == NULL);
    FUZZ_CHECK(kws_model_keyword_name(NULL, 0) == NULL);

    FUZZ_CHECK(kws_decoder_size(NULL) == 0u);
    dsize = kws_decoder_size(m);
    FUZZ_CHECK(dsize > 0u);
    mem = malloc(dsize);
    FUZZ_CHECK(mem != NULL);
    /* Too small by one byte, misaligned, NULL: refused. */
    FUZZ_CHECK(kws_decoder_init(m, mem, dsize - 1u, &dec) == KWS_ERR_NOMEM);
    FUZZ_CHECK(kws_decoder_init(m, (uint8_t *)mem + 4, dsize - 4u, &dec) != KWS_OK);
    FUZZ_CHECK(kws_decoder_init(m, NULL, dsize, &dec) == KWS_ERR_ARG);
    FUZZ_CHECK(kws_decoder_init(m, mem, dsize, &dec) == KWS_OK && dec != NULL);

    n_frames = FUZZ_FRAMES;
    if ((uint64_t)n_frames * np > FUZZ_MAX_FLOATS) n_frames = FUZZ_MAX_FLOATS / np;
    if (n_frames < 2u) n_frames = 2u;
    out_cap = nk * 8u; /* the largest chunk is 8 frames */

    x = (float *)malloc((size_t)n_frames * np * sizeof *x);
    scores = (float *)malloc((size_t)8u * nk * sizeof *scores);
    out = (kws_detection *)malloc((size_t)out_cap * sizeof *out);
    last_end = (uint64_t *)malloc((size_t)nk * sizeof *last_end);
    thr = (float *)malloc((size_t)nk * sizeof *thr);
    FUZZ_CHECK(x != NULL && scores != NULL && out != NULL && last_end != NULL && thr != NULL);

    fuzz_make_frames(m, &r, x, n_frames);

    /* Thresholds: the model's, very low (every complete path), 0, or random. */
    thr_mode = fuzz_next(&r) % 4u;
    for (k = 0; k < nk; k++) {
        FUZZ_CHECK(kws_decoder_get_threshold(dec, k) == m->keywords[k].threshold);
        switch (thr_mode) {
        case 0: thr[k] = m->keywords[k].threshold; break;
        case 1: thr[k] = -1.0e30f; break;
        case 2: thr[k] = 0.0f; break;
        default: thr[k] = -(float)(fuzz_next(&r) % 400u) / 100.0f; break;
        }
        FUZZ_CHECK(kws_decoder_set_threshold(dec, k, thr[k]) == KWS_OK);
        FUZZ_CHECK(kws_decoder_get_threshold(dec, k) == thr[k]);
    }
    FUZZ_CHECK(kws_decoder_set_threshold(dec, nk, -1.0f) == KWS_ERR_ARG);
    FUZZ_CHECK(kws_decoder_set_threshold(dec, 0, NAN) == KWS_ERR_ARG);
    FUZZ_CHECK(kws_decoder_get_threshold(dec, 0) == thr[0]);

    chunk_seed = fuzz_next(&r) | 1u;
    fuzz_stream_run(m, dec, x, n_frames, chunk_seed, out, out_cap, scores, last_end, &s1);

    /* Reset: frame count 0, the model's thresholds back; the same stream,
     * chunked differently, gives the same detections. */
    kws_decoder_reset(dec);
    FUZZ_CHECK(kws_decoder_frames(dec) == 0u);
    for (k = 0; k < nk; k++) {
        FUZZ_CHECK(kws_decoder_get_threshold(dec, k) == m->keywords[k].threshold);
        FUZZ_CHECK(kws_decoder_set_threshold(dec, k, thr[k]) == KWS_OK);
    }
    fuzz_stream_run(m, dec, x, n_frames, fuzz_next(&r) | 1u, out, out_cap, scores, last_end, &s2);
    FUZZ_CHECK(s1.n_det == s2.n_det);
    FUZZ_CHECK(s1.hash == s2.hash);

    free(thr);
    free(last_end);
    free(out);
    free(scores);
    free(x);
    free(mem);
}

/* ------------------------------------------------------------------------ */
/* Parsing                                                                   */
/* ------------------------------------------------------------------------ */

/* Parse buf with id 0 and with each fixed id; the results must agree.
 * Returns the status for id 0 (and the model in *m when KWS_OK). */
static kws_status fuzz_parse(const uint8_t *buf, size_t size, kws_model *m)
{
    static const uint32_t ids[2] = {FUZZ_ID_KO, FUZZ_ID_EN};
    kws_status st0 = kws_model_parse(buf, size, 0u, m);
    size_t i;
    FUZZ_CHECK(kws_status_str(st0) != NULL);
    FUZZ_CHECK((int)st0 >= (int)KWS_OK && (int)st0 <= (int)KWS_ERR_UNSUPPORTED);
    for (i = 0; i < 2u; i++) {
        kws_model m2;
        kws_status st = kws_model_parse(buf, size, ids[i], &m2);
        if (st0 == KWS_OK) {
            if (m->phone_set_id == ids[i]) {
                FUZZ_CHECK(st == KWS_OK);
                FUZZ_CHECK(m2.data == m->data && m2.size == m->size &&
                           m2.n_phones == m->n_phones && m2.n_keywords == m->n_keywords &&
                           m2.n_states == m->n_states && m2.n_arcs == m->n_arcs &&
                           m2.keywords == m->keywords && m2.states == m->states &&
                           m2.arcs == m->arcs && m2.strings == m->strings);
            } else {
                FUZZ_CHECK(st == KWS_ERR_PHONESET);
            }
        } else if (st0 != KWS_ERR_CORRUPT) {
            /* Every other error is found before the phone-set check. */
            FUZZ_CHECK(st == st0);
        } else {
            FUZZ_CHECK(st == KWS_ERR_CORRUPT || st == KWS_ERR_PHONESET);
        }
    }
    if (st0 == KWS_OK) {
        /* The view lies inside the buffer. */
        FUZZ_CHECK(m->data == buf);
        FUZZ_CHECK(m->size <= size && m->size >= 64u && (m->size & 3u) == 0u);
        FUZZ_CHECK(m->n_phones >= 1u && m->n_keywords >= 1u && m->n_states >= 1u);
        FUZZ_CHECK((const uint8_t *)m->keywords >= buf &&
                   (const uint8_t *)(m->keywords + m->n_keywords) <= buf + m->size);
        FUZZ_CHECK((const uint8_t *)m->states >= buf &&
                   (const uint8_t *)(m->states + m->n_states) <= buf + m->size);
        FUZZ_CHECK((const uint8_t *)m->arcs >= buf &&
                   (const uint8_t *)(m->arcs + m->n_arcs) <= buf + m->size);
        FUZZ_CHECK((const uint8_t *)m->strings >= buf &&
                   (const uint8_t *)m->strings + m->strings_size <= buf + m->size);
        FUZZ_CHECK(isfinite(m->emission_floor) && m->emission_floor < 0.0f);
    }
    return st0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf, *mis;
    kws_model m;
    kws_status st;

    FUZZ_CHECK(kws_model_parse(NULL, size, 0u, &m) == KWS_ERR_ARG);

    /* Exactly `size` bytes (at least 1 for malloc), malloc-aligned. */
    buf = (uint8_t *)malloc(size != 0u ? size : 1u);
    if (buf == NULL) return 0;
    if (size != 0u) memcpy(buf, data, size);

    FUZZ_CHECK(kws_model_parse(buf, size, 0u, NULL) == KWS_ERR_ARG);

    /* The same bytes one byte off alignment. */
    mis = (uint8_t *)malloc(size + 1u);
    if (mis != NULL) {
        kws_status sm;
        if (size != 0u) memcpy(mis + 1, data, size);
        sm = kws_model_parse(mis + 1, size, 0u, &m);
        if (size < 64u) FUZZ_CHECK(sm == KWS_ERR_TRUNCATED || sm == KWS_ERR_ALIGN);
        else FUZZ_CHECK(sm == KWS_ERR_ALIGN);
        free(mis);
    }

    st = fuzz_parse(buf, size, &m);
    if (st == KWS_ERR_CRC) {
        /* Only the checksum is wrong: patch it and go deeper. */
        const uint32_t file_size = rd32(buf + 8);
        static const uint8_t zeros[4] = {0u, 0u, 0u, 0u};
        uint32_t crc;
        FUZZ_CHECK(size >= 64u && file_size >= 64u && file_size <= size);
        crc = kws_crc32(0u, buf, 12u);
        crc = kws_crc32(crc, zeros, 4u);
        crc = kws_crc32(crc, buf + 16, (size_t)file_size - 16u);
        wr32(buf + 12, crc);
        st = fuzz_parse(buf, size, &m);
        FUZZ_CHECK(st != KWS_ERR_CRC);
    }
    if (st == KWS_OK) fuzz_decode(&m, data, size);

    free(buf);
    return 0;
}

#include "replay_main.h"
