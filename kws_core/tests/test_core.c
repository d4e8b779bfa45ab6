/*
 * test_core.c - unit tests of the portable C core (kws_model.c, kws_decoder.c).
 *
 * Self-contained: a tiny check framework, a small in-memory .kwm writer, and
 * synthetic log-posterior streams. Ends with "N passed, M failed" and exits
 * non-zero if anything failed.
 */
#include "kws.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Check framework                                                           */
/* ------------------------------------------------------------------------ */

#include "check.h"

/* Deterministic PRNG (xorshift64*). */
static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd_u32(void)
{
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return (uint32_t)((g_rng * 0x2545F4914F6CDD1Dull) >> 32);
}
static float rnd_unit(void) /* [0, 1) */
{
    return (float)(rnd_u32() >> 8) * (1.0f / 16777216.0f);
}

/* ------------------------------------------------------------------------ */
/* In-memory .kwm writer                                                     */
/* ------------------------------------------------------------------------ */

#define MAX_PREDS 8

typedef struct tstate {
    uint16_t phone;
    uint8_t flags;
    uint8_t n_preds;
    uint16_t preds[MAX_PREDS];
} tstate;

typedef struct tkeyword {
    const char *name;
    const char *pron;
    float threshold;
    uint16_t max_frames;
    uint32_t n_states;
    const tstate *states;
} tkeyword;

typedef struct tmodel {
    uint32_t phone_set_id;
    uint16_t n_phones;
    uint16_t refractory;
    uint16_t hold;
    float floor_v;
    uint32_t n_keywords;
    const tkeyword *keywords;
} tmodel;

/* Where the writer put each section (for targeted corruption). */
typedef struct tlayout {
    uint32_t size, kw_off, st_off, arc_off, str_off, str_size, n_arcs;
    uint32_t name_off[8];
} tlayout;

static void put_u16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)((v >> 8) & 0xFFu);
}
static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)((v >> 8) & 0xFFu);
    p[2] = (uint8_t)((v >> 16) & 0xFFu);
    p[3] = (uint8_t)((v >> 24) & 0xFFu);
}
static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static void put_f32(uint8_t *p, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    put_u32(p, v);
}
static uint32_t pad4(uint32_t n) { return (n + 3u) & ~3u; }

static void fix_crc(uint8_t *b, uint32_t size)
{
    put_u32(b + 12, 0);
    put_u32(b + 12, kws_crc32(0, b, size));
}

/* Serialise m into buf (capacity cap bytes, zeroed first). Returns the size. */
static uint32_t build_model(const tmodel *m, uint8_t *buf, uint32_t cap, tlayout *lay)
{
    uint32_t n_states = 0, n_arcs = 0, str_size = 0, k, i, j;
    uint32_t kw_off, st_off, arc_off, str_off, size, first = 0, arc = 0, so = 0;
    tlayout dummy;
    if (lay == NULL) lay = &dummy;
    for (k = 0; k < m->n_keywords; k++) {
        n_states += m->keywords[k].n_states;
        for (i = 0; i < m->keywords[k].n_states; i++) n_arcs += m->keywords[k].states[i].n_preds;
        str_size += (uint32_t)strlen(m->keywords[k].name) + 1u + (uint32_t)strlen(m->keywords[k].pron) + 1u;
    }
    kw_off = 64;
    st_off = kw_off + m->n_keywords * 32u;
    arc_off = st_off + n_states * 8u;
    str_off = arc_off + pad4(n_arcs * 2u);
    size = str_off + pad4(str_size);
    if (size > cap) {
        fprintf(stderr, "build_model: buffer too small\n");
        exit(2);
    }
    memset(buf, 0, cap);
    memcpy(buf, "KWSM", 4);
    put_u16(buf + 4, 1);
    put_u16(buf + 6, 0);
    put_u32(buf + 8, size);
    put_u32(buf + 16, m->phone_set_id);
    put_u16(buf + 20, m->n_phones);
    put_u16(buf + 22, m->n_keywords);
    put_u32(buf + 24, n_states);
    put_u32(buf + 28, n_arcs);
    put_u32(buf + 32, kw_off);
    put_u32(buf + 36, st_off);
    put_u32(buf + 40, arc_off);
    put_u32(buf + 44, str_off);
    put_u32(buf + 48, str_size);
    put_u16(buf + 52, 10);
    put_u16(buf + 54, m->refractory);
    put_u16(buf + 56, m->hold);
    put_u16(buf + 58, 0);
    put_f32(buf + 60, m->floor_v);
    for (k = 0; k < m->n_keywords; k++) {
        const tkeyword *kw = &m->keywords[k];
        uint8_t *r = buf + kw_off + k * 32u;
        uint32_t nl = (uint32_t)strlen(kw->name), pl = (uint32_t)strlen(kw->pron);
        if (k < 8) lay->name_off[k] = so;
        put_u32(r + 0, so);
        put_u16(r + 4, nl);
        memcpy(buf + str_off + so, kw->name, nl);
        so += nl + 1u;
        put_u16(r + 6, pl);
        put_u32(r + 8, so);
        memcpy(buf + str_off + so, kw->pron, pl);
        so += pl + 1u;
        put_u32(r + 12, first);
        put_u32(r + 16, kw->n_states);
        put_f32(r + 20, kw->threshold);
        put_u16(r + 24, kw->max_frames);
        put_u16(r + 26, 0);
        put_f32(r + 28, -1.0f);
        for (i = 0; i < kw->n_states; i++) {
            const tstate *s = &kw->states[i];
            uint8_t *sr = buf + st_off + (first + i) * 8u;
            put_u16(sr + 0, s->phone);
            sr[2] = s->flags;
            sr[3] = s->n_preds;
            put_u32(sr + 4, arc);
            for (j = 0; j < s->n_preds; j++) {
                put_u16(buf + arc_off + arc * 2u, s->preds[j]);
                arc++;
            }
        }
        first += kw->n_states;
    }
    fix_crc(buf, size);
    lay->size = size;
    lay->kw_off = kw_off;
    lay->st_off = st_off;
    lay->arc_off = arc_off;
    lay->str_off = str_off;
    lay->str_size = str_size;
    lay->n_arcs = n_arcs;
    return size;
}

/* ------------------------------------------------------------------------ */
/* Test models                                                               */
/* ------------------------------------------------------------------------ */

#define PHONESET_ID 0x12345678u
#define N_PHONES 6u
#define FLOOR (-6.0f)

#define S_ KWS_STATE_SELF
#define E_ KWS_STATE_ENTRY
#define F_ KWS_STATE_FINAL

/* Keyword 0: phones 1,2,3 with 2 states each (a plain left-to-right chain). */
static const tstate chain_states[6] = {
    {1, S_ | E_, 0, {0}},
    {1, S_, 1, {0}},
    {2, S_, 1, {1}},
    {2, S_, 1, {2}},
    {3, S_, 1, {3}},
    {3, S_ | F_, 1, {4}},
};

/* Keyword 1: phones 4,5,4 with an optional middle (skip arc 0 -> 2). */
static const tstate skip_states[3] = {
    {4, S_ | E_, 0, {0}},
    {5, S_, 1, {0}},
    {4, S_ | F_, 2, {1, 0}},
};

static const tkeyword two_keywords[2] = {
    {"abc", "a b c", -1.0f, 100, 6, chain_states},
    {"dee", "d e d", -1.0f, 100, 3, skip_states},
};

static tmodel two_kw_model(void)
{
    tmodel m;
    m.phone_set_id = PHONESET_ID;
    m.n_phones = N_PHONES;
    m.refractory = 20;
    m.hold = 5;
    m.floor_v = FLOOR;
    m.n_keywords = 2;
    m.keywords = two_keywords;
    return m;
}

/* Model buffer, 8-byte aligned. */
#define MODEL_CAP 4096u
typedef union model_buf {
    uint64_t align;
    uint8_t b[MODEL_CAP];
} model_buf;

/* ------------------------------------------------------------------------ */
/* Model tests                                                               */
/* ------------------------------------------------------------------------ */

static void test_crc32(void)
{
    const char *s = "123456789";
    uint32_t c;
    CHECK_EQ(kws_crc32(0, s, 9), 0xCBF43926u);
    c = kws_crc32(0, s, 4);
    c = kws_crc32(c, s + 4, 5);
    CHECK_EQ(c, 0xCBF43926u);
    CHECK_EQ(kws_crc32(0, s, 0), 0u);
    CHECK_EQ(kws_crc32(0, "a", 1), 0xE8B7BE43u);
}

static void test_status_str(void)
{
    int i, j;
    for (i = 0; i <= (int)KWS_ERR_UNSUPPORTED; i++) {
        const char *a = kws_status_str((kws_status)i);
        CHECK(a != NULL && a[0] != '\0');
        for (j = 0; j < i; j++) CHECK(strcmp(a, kws_status_str((kws_status)j)) != 0);
    }
    CHECK(strcmp(kws_status_str(KWS_OK), "ok") == 0);
    CHECK(kws_status_str((kws_status)99) != NULL);
}

static void test_valid_model(void)
{
    model_buf mb;
    tmodel tm = two_kw_model();
    tlayout lay;
    kws_model m;
    uint32_t size = build_model(&tm, mb.b, MODEL_CAP, &lay);
    CHECK_STATUS(kws_model_parse(mb.b, size, 0, &m), KWS_OK);
    CHECK_STATUS(kws_model_parse(mb.b, size, PHONESET_ID, &m), KWS_OK);
    CHECK_STATUS(kws_model_parse(mb.b, MODEL_CAP, PHONESET_ID, &m), KWS_OK); /* len > file_size ok */
    CHECK(m.data == mb.b);
    CHECK_EQ(m.size, size);
    CHECK_EQ(m.version_major, 1);
    CHECK_EQ(m.version_minor, 0);
    CHECK_EQ(m.phone_set_id, PHONESET_ID);
    CHECK_EQ(m.n_phones, N_PHONES);
    CHECK_EQ(m.n_keywords, 2);
    CHECK_EQ(m.n_states, 9);
    CHECK_EQ(m.n_arcs, 8);
    CHECK_EQ(m.frame_shift_ms, 10);
    CHECK_EQ(m.refractory_frames, 20);
    CHECK_EQ(m.hold_frames, 5);
    CHECK(m.emission_floor == FLOOR);
    CHECK(m.keywords[1].first_state == 6 && m.keywords[1].n_states == 3);
    CHECK(m.keywords[0].threshold == -1.0f && m.keywords[0].max_frames == 100);
    CHECK(m.states[8].phone == 4 && m.states[8].n_preds == 2 && m.states[8].flags == (S_ | F_));
    CHECK(m.arcs[m.states[8].pred_begin] == 1 && m.arcs[m.states[8].pred_begin + 1] == 0);
    CHECK(strcmp(kws_model_keyword_name(&m, 0), "abc") == 0);
    CHECK(strcmp(kws_model_keyword_name(&m, 1), "dee") == 0);
    CHECK(kws_model_keyword_name(&m, 2) == NULL);
    CHECK(kws_model_keyword_name(NULL, 0) == NULL);
    CHECK(strcmp(m.strings + m.keywords[1].pron_offset, "d e d") == 0);
    CHECK_EQ(m.strings_size, lay.str_size);

    /* Any minor version is accepted. */
    put_u16(mb.b + 6, 7);
    fix_crc(mb.b, size);
    CHECK_STATUS(kws_model_parse(mb.b, size, 0, &m), KWS_OK);
    CHECK_EQ(m.version_minor, 7);

    /* Argument errors. */
    CHECK_STATUS(kws_model_parse(NULL, size, 0, &m), KWS_ERR_ARG);
    CHECK_STATUS(kws_model_parse(mb.b, size, 0, NULL), KWS_ERR_ARG);
}

static void test_truncated(void)
{
    model_buf mb, cp;
    tmodel tm = two_kw_model();
    kws_model m;
    uint32_t size = build_model(&tm, mb.b, MODEL_CAP, NULL), n;
    int all_truncated = 1;
    for (n = 0; n < size; n++) {
        /* An exact-size heap copy, so the sanitizer sees any read past the end. */
        uint8_t *h = (uint8_t *)malloc(n ? n : 1);
        kws_status st;
        memcpy(h, mb.b, n);
        st = kws_model_parse(h, n, 0, &m);
        if (st != KWS_ERR_TRUNCATED) {
            all_truncated = 0;
            fprintf(stderr, "  length %u gave %s\n", (unsigned)n, kws_status_str(st));
        }
        free(h);
    }
    CHECK(all_truncated);
    /* A header that says more than the buffer holds. */
    memcpy(cp.b, mb.b, size);
    put_u32(cp.b + 8, size + 4);
    fix_crc(cp.b, size); /* CRC is irrelevant: the size check comes first */
    CHECK_STATUS(kws_model_parse(cp.b, size, 0, &m), KWS_ERR_TRUNCATED);
    put_u32(cp.b + 8, 0xFFFFFFFCu);
    CHECK_STATUS(kws_model_parse(cp.b, size, 0, &m), KWS_ERR_TRUNCATED);
}

static void test_bad_magic_version(void)
{
    model_buf mb;
    tmodel tm = two_kw_model();
    kws_model m;
    uint32_t size = build_model(&tm, mb.b, MODEL_CAP, NULL);
    mb.b[0] = 'X';
    CHECK_STATUS(kws_model_parse(mb.b, size, 0, &m), KWS_ERR_MAGIC);
    mb.b[0] = 'K';
    mb.b[3] = 'm';
    CHECK_STATUS(kws_model_parse(mb.b, size, 0, &m), KWS_ERR_MAGIC);
    mb.b[3] = 'M';
    put_u16(mb.b + 4, KWS_FORMAT_MAJOR + 1u);
    CHECK_STATUS(kws_model_parse(mb.b, size, 0, &m), KWS_ERR_VERSION);
    fix_crc(mb.b, size);
    CHECK_STATUS(kws_model_parse(mb.b, size, 0, &m), KWS_ERR_VERSION);
    put_u16(mb.b + 4, 0);
    fix_crc(mb.b, size);
    CHECK_STATUS(kws_model_parse(mb.b, size, 0, &m), KWS_ERR_VERSION);
}

static void test_crc_flips(void)
{
    model_buf mb;
    tmodel tm = two_kw_model();
    kws_model m;
    uint32_t size = build_model(&tm, mb.b, MODEL_CAP, NULL), pos;
    int bit, all_crc = 1;
    /* Bytes 12.. : the CRC field itself and everything after it. */
    for (pos = 12; pos < size; pos++) {
        for (bit = 0; bit < 8; bit += 3) {
            kws_status st;
            mb.b[pos] ^= (uint8_t)(1u << bit);
            st = kws_model_parse(mb.b, size, 0, &m);
            if (st != KWS_ERR_CRC) {
                all_crc = 0;
                fprintf(stderr, "  flip at %u bit %d gave %s\n", (unsigned)pos, bit, kws_status_str(st));
            }
            mb.b[pos] ^= (uint8_t)(1u << bit);
        }
    }
    CHECK(all_crc);
    CHECK_STATUS(kws_model_parse(mb.b, size, 0, &m), KWS_OK);
}

static void test_phoneset_align(void)
{
    model_buf mb;
    tmodel tm = two_kw_model();
    kws_model m;
    uint32_t size = build_model(&tm, mb.b, MODEL_CAP, NULL);
    uint8_t *u = (uint8_t *)malloc((size_t)size + 8u);
    size_t off;
    CHECK_STATUS(kws_model_parse(mb.b, size, PHONESET_ID + 1u, &m), KWS_ERR_PHONESET);
    CHECK_STATUS(kws_model_parse(mb.b, size, 0xFFFFFFFFu, &m), KWS_ERR_PHONESET);
    CHECK_STATUS(kws_model_parse(mb.b, size, PHONESET_ID, &m), KWS_OK);
    for (off = 1; off < 4; off++) {
        memcpy(u + off, mb.b, size);
        CHECK_STATUS(kws_model_parse(u + off, size, 0, &m), KWS_ERR_ALIGN);
    }
    memcpy(u + 4, mb.b, size);
    CHECK_STATUS(kws_model_parse(u + 4, size, 0, &m), KWS_OK);
    free(u);
}

/* Apply a mutation, fix the CRC, expect the given status, restore. */
typedef void (*mutator)(uint8_t *b, const tlayout *lay);

static kws_status parse_mutated(mutator fn, uint32_t len_delta)
{
    model_buf mb;
    tmodel tm = two_kw_model();
    tlayout lay;
    kws_model m;
    uint32_t size = build_model(&tm, mb.b, MODEL_CAP, &lay);
    uint8_t *h;
    kws_status st;
    fn(mb.b, &lay);
    size = get_u32(mb.b + 8);
    if (size >= 16 && size <= MODEL_CAP) fix_crc(mb.b, size);
    /* exact-size heap copy of [0, lay.size + len_delta) */
    h = (uint8_t *)malloc(lay.size + len_delta);
    memcpy(h, mb.b, lay.size + len_delta);
    st = kws_model_parse(h, lay.size + len_delta, 0, &m);
    free(h);
    return st;
}

static void mut_phone(uint8_t *b, const tlayout *l) { put_u16(b + l->st_off + 2u * 8u, N_PHONES); }
static void mut_phone_big(uint8_t *b, const tlayout *l) { put_u16(b + l->st_off + 7u * 8u, 0xFFFFu); }
static void mut_pred_ge(uint8_t *b, const tlayout *l)
{
    /* state 2 of keyword 0 (pred 1) -> pred 2 (itself) */
    put_u16(b + l->arc_off + 1u * 2u, 2);
}
static void mut_pred_gt(uint8_t *b, const tlayout *l)
{
    /* keyword 1, state 2: preds (1, 0) -> (1, 5): beyond the keyword */
    put_u16(b + l->arc_off + 7u * 2u, 5);
}
static void mut_pred_on_state0(uint8_t *b, const tlayout *l)
{
    b[l->st_off + 3] = 1; /* state 0 gets a predecessor (arc 0 = 0) */
}
static void mut_kw_gap(uint8_t *b, const tlayout *l)
{
    put_u32(b + l->kw_off + 32u + 12u, 7); /* keyword 1 starts at 7 instead of 6 */
    put_u32(b + l->kw_off + 32u + 16u, 2);
}
static void mut_kw_overlap(uint8_t *b, const tlayout *l)
{
    put_u32(b + l->kw_off + 32u + 12u, 5); /* keyword 1 starts inside keyword 0 */
    put_u32(b + l->kw_off + 32u + 16u, 4);
}
static void mut_kw_short(uint8_t *b, const tlayout *l)
{
    put_u32(b + l->kw_off + 32u + 16u, 2); /* keywords cover [0, 8) of 9 states */
}
static void mut_kw_long(uint8_t *b, const tlayout *l)
{
    put_u32(b + l->kw_off + 32u + 16u, 4); /* keyword 1 runs past n_states */
}
static void mut_kw_zero(uint8_t *b, const tlayout *l)
{
    put_u32(b + l->kw_off + 16u, 0);
    put_u32(b + l->kw_off + 32u + 12u, 0);
    put_u32(b + l->kw_off + 32u + 16u, 9);
}
static void mut_kw_huge(uint8_t *b, const tlayout *l)
{
    put_u32(b + l->kw_off + 32u + 16u, 0xFFFFFFFFu);
}
static void mut_kw_first_wrap(uint8_t *b, const tlayout *l)
{
    put_u32(b + l->kw_off + 32u + 12u, 0xFFFFFFFFu);
}
static void mut_n_preds(uint8_t *b, const tlayout *l) { b[l->st_off + 8u * 8u + 3u] = 3; }
static void mut_pred_begin(uint8_t *b, const tlayout *l) { put_u32(b + l->st_off + 8u * 8u + 4u, 0xFFFFFFFFu); }
static void mut_flag_bits(uint8_t *b, const tlayout *l) { b[l->st_off + 1u * 8u + 2u] |= 0x20u; } /* 0x10: BEST_PAYS */
static void mut_no_entry(uint8_t *b, const tlayout *l) { b[l->st_off + 2u] = S_; }
static void mut_no_final(uint8_t *b, const tlayout *l) { b[l->st_off + 5u * 8u + 2u] = S_; }
static void mut_name_len0(uint8_t *b, const tlayout *l) { put_u16(b + l->kw_off + 4u, 0); }
static void mut_name_nonul(uint8_t *b, const tlayout *l) { put_u16(b + l->kw_off + 4u, 4); }
static void mut_name_off(uint8_t *b, const tlayout *l) { put_u32(b + l->kw_off, l->str_size); }
static void mut_name_off_wrap(uint8_t *b, const tlayout *l) { put_u32(b + l->kw_off, 0xFFFFFFFFu); }
static void mut_pron_off(uint8_t *b, const tlayout *l) { put_u32(b + l->kw_off + 32u + 8u, l->str_size - 1u); put_u16(b + l->kw_off + 32u + 6u, 1); }
static void mut_thr_nan(uint8_t *b, const tlayout *l) { put_f32(b + l->kw_off + 20u, NAN); }
static void mut_thr_inf(uint8_t *b, const tlayout *l) { put_f32(b + l->kw_off + 32u + 20u, -INFINITY); }
static void mut_max_frames0(uint8_t *b, const tlayout *l) { put_u16(b + l->kw_off + 24u, 0); }
static void mut_floor0(uint8_t *b, const tlayout *l) { (void)l; put_f32(b + 60, 0.0f); }
static void mut_floor_pos(uint8_t *b, const tlayout *l) { (void)l; put_f32(b + 60, 1.0f); }
static void mut_floor_nan(uint8_t *b, const tlayout *l) { (void)l; put_f32(b + 60, NAN); }
static void mut_floor_inf(uint8_t *b, const tlayout *l) { (void)l; put_f32(b + 60, -INFINITY); }
static void mut_n_phones0(uint8_t *b, const tlayout *l) { (void)l; put_u16(b + 20, 0); }
static void mut_n_kw0(uint8_t *b, const tlayout *l) { (void)l; put_u16(b + 22, 0); }
static void mut_n_states0(uint8_t *b, const tlayout *l) { (void)l; put_u32(b + 24, 0); }
static void mut_n_states_big(uint8_t *b, const tlayout *l) { (void)l; put_u32(b + 24, 0x20000000u); }
static void mut_n_arcs_big(uint8_t *b, const tlayout *l) { (void)l; put_u32(b + 28, 0xFFFFFFFFu); }
static void mut_kw_off_unaligned(uint8_t *b, const tlayout *l) { put_u32(b + 32, l->kw_off + 2u); }
static void mut_kw_off_low(uint8_t *b, const tlayout *l) { (void)l; put_u32(b + 32, 60); }
static void mut_st_off_end(uint8_t *b, const tlayout *l) { put_u32(b + 36, l->size - 4u); }
static void mut_arc_off_wrap(uint8_t *b, const tlayout *l) { (void)l; put_u32(b + 40, 0xFFFFFFFCu); }
static void mut_str_size(uint8_t *b, const tlayout *l) { (void)l; put_u32(b + 48, 0xFFFFFFFFu); }
static void mut_str_off(uint8_t *b, const tlayout *l) { put_u32(b + 44, l->size); }
static void mut_size_odd(uint8_t *b, const tlayout *l) { put_u32(b + 8, l->size - 2u); }
static void mut_size_small(uint8_t *b, const tlayout *l) { (void)l; put_u32(b + 8, 60); }
static void mut_size_short(uint8_t *b, const tlayout *l) { put_u32(b + 8, l->size - 4u); }
static void mut_nothing(uint8_t *b, const tlayout *l) { (void)b; (void)l; }

static void test_corrupt(void)
{
    static const struct {
        const char *what;
        mutator fn;
        uint32_t len_delta;
        kws_status want;
    } cases[] = {
        {"nothing", mut_nothing, 0, KWS_OK},
        {"phone == n_phones", mut_phone, 0, KWS_ERR_CORRUPT},
        {"phone 0xFFFF", mut_phone_big, 0, KWS_ERR_CORRUPT},
        {"pred == own index", mut_pred_ge, 0, KWS_ERR_CORRUPT},
        {"pred > own index", mut_pred_gt, 0, KWS_ERR_CORRUPT},
        {"pred on state 0", mut_pred_on_state0, 0, KWS_ERR_CORRUPT},
        {"keyword gap", mut_kw_gap, 0, KWS_ERR_CORRUPT},
        {"keyword overlap", mut_kw_overlap, 0, KWS_ERR_CORRUPT},
        {"keywords short", mut_kw_short, 0, KWS_ERR_CORRUPT},
        {"keyword past n_states", mut_kw_long, 0, KWS_ERR_CORRUPT},
        {"keyword with 0 states", mut_kw_zero, 0, KWS_ERR_CORRUPT},
        {"keyword n_states huge", mut_kw_huge, 0, KWS_ERR_CORRUPT},
        {"keyword first_state wraps", mut_kw_first_wrap, 0, KWS_ERR_CORRUPT},
        {"n_preds past n_arcs", mut_n_preds, 0, KWS_ERR_CORRUPT},
        {"pred_begin wraps", mut_pred_begin, 0, KWS_ERR_CORRUPT},
        {"unknown state flag", mut_flag_bits, 0, KWS_ERR_CORRUPT},
        {"no entry state", mut_no_entry, 0, KWS_ERR_CORRUPT},
        {"no final state", mut_no_final, 0, KWS_ERR_CORRUPT},
        {"name_len 0", mut_name_len0, 0, KWS_ERR_CORRUPT},
        {"name without NUL", mut_name_nonul, 0, KWS_ERR_CORRUPT},
        {"name past strings", mut_name_off, 0, KWS_ERR_CORRUPT},
        {"name offset wraps", mut_name_off_wrap, 0, KWS_ERR_CORRUPT},
        {"pron NUL past strings", mut_pron_off, 0, KWS_ERR_CORRUPT},
        {"threshold NaN", mut_thr_nan, 0, KWS_ERR_CORRUPT},
        {"threshold -inf", mut_thr_inf, 0, KWS_ERR_CORRUPT},
        {"max_frames 0", mut_max_frames0, 0, KWS_ERR_CORRUPT},
        {"floor 0", mut_floor0, 0, KWS_ERR_CORRUPT},
        {"floor > 0", mut_floor_pos, 0, KWS_ERR_CORRUPT},
        {"floor NaN", mut_floor_nan, 0, KWS_ERR_CORRUPT},
        {"floor -inf", mut_floor_inf, 0, KWS_ERR_CORRUPT},
        {"n_phones 0", mut_n_phones0, 0, KWS_ERR_CORRUPT},
        {"n_keywords 0", mut_n_kw0, 0, KWS_ERR_CORRUPT},
        {"n_states 0", mut_n_states0, 0, KWS_ERR_CORRUPT},
        {"n_states huge", mut_n_states_big, 0, KWS_ERR_CORRUPT},
        {"n_arcs huge", mut_n_arcs_big, 0, KWS_ERR_CORRUPT},
        {"keywords_offset unaligned", mut_kw_off_unaligned, 0, KWS_ERR_CORRUPT},
        {"keywords_offset in header", mut_kw_off_low, 0, KWS_ERR_CORRUPT},
        {"states past the end", mut_st_off_end, 0, KWS_ERR_CORRUPT},
        {"arcs_offset wraps", mut_arc_off_wrap, 0, KWS_ERR_CORRUPT},
        {"strings_size huge", mut_str_size, 0, KWS_ERR_CORRUPT},
        {"strings at file end", mut_str_off, 0, KWS_ERR_CORRUPT},
        {"file_size not multiple of 4", mut_size_odd, 0, KWS_ERR_CORRUPT},
        {"file_size < 64", mut_size_small, 0, KWS_ERR_CORRUPT},
        {"file_size cuts strings", mut_size_short, 0, KWS_ERR_CORRUPT},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kws_status st = parse_mutated(cases[i].fn, cases[i].len_delta);
        if (st != cases[i].want) {
            g_cur_failures++;
            fprintf(stderr, "  corrupt case '%s': got %s, expected %s\n", cases[i].what,
                    kws_status_str(st), kws_status_str(cases[i].want));
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Decoder helpers                                                           */
/* ------------------------------------------------------------------------ */

typedef struct tdec {
    model_buf mb;
    kws_model model;
    void *mem;
    kws_decoder *dec;
} tdec;

static int tdec_open(tdec *t, const tmodel *tm)
{
    size_t sz;
    uint32_t size = build_model(tm, t->mb.b, MODEL_CAP, NULL);
    if (kws_model_parse(t->mb.b, size, 0, &t->model) != KWS_OK) return 0;
    sz = kws_decoder_size(&t->model);
    t->mem = malloc(sz); /* exact size: the sanitizer catches overruns */
    if (t->mem == NULL) return 0;
    return kws_decoder_init(&t->model, t->mem, sz, &t->dec) == KWS_OK;
}

static void tdec_close(tdec *t)
{
    free(t->mem);
    t->mem = NULL;
    t->dec = NULL;
}

/* Frame helpers: log-posteriors where phone `best` wins. */
static void frame_best(float *x, uint32_t best)
{
    uint32_t p;
    for (p = 0; p < N_PHONES; p++) x[p] = (p == best) ? -0.05f : -5.0f;
}

/* Background: phone 0 wins. Then place phones in `seq` (each `reps` frames) at `pos`. */
static void stream_fill(float *x, uint32_t n_frames)
{
    uint32_t f;
    for (f = 0; f < n_frames; f++) frame_best(x + (size_t)f * N_PHONES, 0);
}
static uint32_t stream_put(float *x, uint32_t pos, const uint32_t *seq, uint32_t n, uint32_t reps)
{
    uint32_t i, r;
    for (i = 0; i < n; i++)
        for (r = 0; r < reps; r++) frame_best(x + (size_t)(pos++) * N_PHONES, seq[i]);
    return pos;
}

/* Decode the whole stream in chunks of `chunk` frames with `cap` output slots
 * per call, then flush if asked. Returns the number of detections. */
static uint32_t decode_all(kws_decoder *dec, const float *x, uint32_t n_frames, uint32_t n_phones,
                           uint32_t n_kw, uint32_t chunk, uint32_t cap, int flush,
                           kws_detection *dets, uint32_t max_dets, float *scores, int *ok)
{
    uint32_t pos = 0, nd = 0;
    kws_detection *out = (kws_detection *)malloc(sizeof(kws_detection) * cap);
    *ok = 1;
    while (pos < n_frames) {
        uint32_t want = n_frames - pos < chunk ? n_frames - pos : chunk;
        uint32_t done = 0, n_out = 0, i;
        kws_status st = kws_decoder_process(dec, x + (size_t)pos * n_phones, want, out, cap, &done,
                                            &n_out, scores ? scores + (size_t)pos * n_kw : NULL);
        if (st != KWS_OK || done == 0 || done > want || n_out > cap) {
            *ok = 0;
            break;
        }
        for (i = 0; i < n_out; i++)
            if (nd < max_dets) dets[nd++] = out[i];
        pos += done;
    }
    if (flush && *ok) {
        uint32_t n_out = 0, i;
        if (kws_decoder_flush(dec, out, cap, &n_out) != KWS_OK) *ok = 0;
        for (i = 0; i < n_out; i++)
            if (nd < max_dets) dets[nd++] = out[i];
    }
    free(out);
    return nd;
}

static const uint32_t seq_abc[3] = {1, 2, 3};
static const uint32_t seq_cba[3] = {3, 2, 1};
static const uint32_t seq_ded[3] = {4, 5, 4};
static const uint32_t seq_dd[2] = {4, 4};

/* ------------------------------------------------------------------------ */
/* Decoder tests                                                             */
/* ------------------------------------------------------------------------ */

static void test_decoder_size_init(void)
{
    tmodel tm = two_kw_model();
    model_buf mb;
    kws_model m;
    kws_decoder *dec = NULL;
    uint32_t size = build_model(&tm, mb.b, MODEL_CAP, NULL);
    size_t sz;
    uint64_t *mem;
    CHECK_STATUS(kws_model_parse(mb.b, size, 0, &m), KWS_OK);
    sz = kws_decoder_size(&m);
    CHECK(sz > 0);
    CHECK(kws_decoder_size(NULL) == 0);
    mem = (uint64_t *)malloc(sz + 16);
    CHECK_STATUS(kws_decoder_init(&m, mem, sz - 1, &dec), KWS_ERR_NOMEM);
    CHECK(dec == NULL);
    CHECK_STATUS(kws_decoder_init(&m, mem, 0, &dec), KWS_ERR_NOMEM);
    CHECK_STATUS(kws_decoder_init(&m, (uint8_t *)mem + 4, sz, &dec), KWS_ERR_ALIGN);
    CHECK_STATUS(kws_decoder_init(NULL, mem, sz, &dec), KWS_ERR_ARG);
    CHECK_STATUS(kws_decoder_init(&m, NULL, sz, &dec), KWS_ERR_ARG);
    CHECK_STATUS(kws_decoder_init(&m, mem, sz, NULL), KWS_ERR_ARG);
    CHECK_STATUS(kws_decoder_init(&m, mem, sz, &dec), KWS_OK);
    CHECK(dec != NULL);
    CHECK_EQ(kws_decoder_frames(dec), 0);
    CHECK(kws_decoder_get_threshold(dec, 0) == -1.0f);
    CHECK(isnan(kws_decoder_get_threshold(dec, 2)));
    CHECK_STATUS(kws_decoder_set_threshold(dec, 1, -0.5f), KWS_OK);
    CHECK(kws_decoder_get_threshold(dec, 1) == -0.5f);
    CHECK_STATUS(kws_decoder_set_threshold(dec, 2, -0.5f), KWS_ERR_ARG);
    CHECK_STATUS(kws_decoder_set_threshold(dec, 0, NAN), KWS_ERR_ARG);
    CHECK(m.keywords[1].threshold == -1.0f); /* the model is untouched */
    {
        float x[N_PHONES];
        kws_detection out[2];
        uint32_t done = 9, n_out = 9;
        frame_best(x, 0);
        CHECK_STATUS(kws_decoder_process(dec, x, 1, out, 1, &done, &n_out, NULL), KWS_ERR_ARG);
        CHECK_STATUS(kws_decoder_process(dec, NULL, 1, out, 2, &done, &n_out, NULL), KWS_ERR_ARG);
        CHECK_STATUS(kws_decoder_process(dec, x, 0, out, 2, &done, &n_out, NULL), KWS_OK);
        CHECK(done == 0 && n_out == 0);
        CHECK_STATUS(kws_decoder_process(dec, x, 1, out, 2, &done, &n_out, NULL), KWS_OK);
        CHECK(done == 1 && n_out == 0);
        CHECK_EQ(kws_decoder_frames(dec), 1);
        CHECK_STATUS(kws_decoder_flush(dec, out, 1, &n_out), KWS_ERR_ARG);
    }
    kws_decoder_reset(dec);
    CHECK_EQ(kws_decoder_frames(dec), 0);
    CHECK(kws_decoder_get_threshold(dec, 1) == -1.0f);
    free(mem);
}

/* The chain keyword at frames 100..105 (2 frames per phone) is found once, exactly. */
static void test_detect_exact(void)
{
    tmodel tm = two_kw_model();
    tdec t;
    enum { NF = 200 };
    float *x = (float *)malloc(sizeof(float) * NF * N_PHONES);
    float *sc = (float *)malloc(sizeof(float) * NF * 2);
    kws_detection dets[8], out[2];
    uint32_t nd, done, n_out, f;
    int ok;
    CHECK(tdec_open(&t, &tm));
    stream_fill(x, NF);
    CHECK_EQ(stream_put(x, 100, seq_abc, 3, 2), 106);

    /* Nothing up to frame 109; the detection comes at frame 110 = end + hold. */
    CHECK_STATUS(kws_decoder_process(t.dec, x, 110, out, 2, &done, &n_out, sc), KWS_OK);
    CHECK(done == 110 && n_out == 0);
    CHECK_STATUS(kws_decoder_process(t.dec, x + 110 * N_PHONES, 1, out, 2, &done, &n_out, sc + 110 * 2), KWS_OK);
    CHECK(done == 1 && n_out == 1);
    if (n_out == 1) {
        CHECK_EQ(out[0].keyword, 0);
        CHECK_EQ(out[0].start_frame, 100);
        CHECK_EQ(out[0].end_frame, 105);
        CHECK(out[0].score == 0.0f);
    }
    CHECK_STATUS(kws_decoder_process(t.dec, x + 111 * N_PHONES, NF - 111, out, 2, &done, &n_out, sc + 111 * 2), KWS_OK);
    CHECK(done == NF - 111 && n_out == 0);
    CHECK_STATUS(kws_decoder_flush(t.dec, out, 2, &n_out), KWS_OK);
    CHECK_EQ(n_out, 0);
    CHECK_EQ(kws_decoder_frames(t.dec), NF);

    /* Scores: no complete path before 5 frames; 0 at frame 105; below threshold before. */
    for (f = 0; f < 5; f++) CHECK(sc[f * 2] == KWS_NO_SCORE);
    CHECK(sc[105 * 2] == 0.0f);
    for (f = 5; f < 105; f++) CHECK(sc[f * 2] < -1.0f);
    for (f = 0; f < NF; f++) CHECK(sc[f * 2 + 1] < -1.0f || sc[f * 2 + 1] == KWS_NO_SCORE);
    /* After the report the tokens were dropped: frames 110.. start from scratch. */
    CHECK(sc[110 * 2] != KWS_NO_SCORE);
    for (f = 111; f < 116; f++) CHECK(sc[f * 2] == KWS_NO_SCORE);

    /* Same through reset + one call with flush. */
    kws_decoder_reset(t.dec);
    nd = decode_all(t.dec, x, NF, N_PHONES, 2, NF, 2, 1, dets, 8, NULL, &ok);
    CHECK(ok);
    CHECK_EQ(nd, 1);
    CHECK(dets[0].keyword == 0 && dets[0].start_frame == 100 && dets[0].end_frame == 105);

    /* Flush reports a candidate still in its hold time. */
    kws_decoder_reset(t.dec);
    CHECK_STATUS(kws_decoder_process(t.dec, x, 108, out, 2, &done, &n_out, NULL), KWS_OK);
    CHECK(done == 108 && n_out == 0);
    CHECK_STATUS(kws_decoder_flush(t.dec, out, 2, &n_out), KWS_OK);
    CHECK_EQ(n_out, 1);
    CHECK(out[0].keyword == 0 && out[0].start_frame == 100 && out[0].end_frame == 105);
    CHECK_STATUS(kws_decoder_flush(t.dec, out, 2, &n_out), KWS_OK);
    CHECK_EQ(n_out, 0);

    /* A threshold above the peak silences it. */
    kws_decoder_reset(t.dec);
    CHECK_STATUS(kws_decoder_set_threshold(t.dec, 0, 0.5f), KWS_OK);
    nd = decode_all(t.dec, x, NF, N_PHONES, 2, 17, 2, 1, dets, 8, NULL, &ok);
    CHECK(ok);
    CHECK_EQ(nd, 0);

    tdec_close(&t);
    free(x);
    free(sc);
}

/* Absent keywords are not detected; the skip keyword is found on both paths. */
static void test_absent_and_skip(void)
{
    tmodel tm = two_kw_model();
    tdec t;
    enum { NF = 600 };
    float *x = (float *)malloc(sizeof(float) * NF * N_PHONES);
    kws_detection dets[16];
    uint32_t nd;
    int ok;
    CHECK(tdec_open(&t, &tm));

    /* Reversed order, partial words, other phones: nothing at all. */
    stream_fill(x, NF);
    stream_put(x, 50, seq_cba, 3, 3);
    stream_put(x, 120, seq_abc, 2, 3);     /* "ab" only */
    stream_put(x, 200, seq_abc + 1, 2, 3); /* "bc" only */
    stream_put(x, 300, seq_ded + 1, 2, 1); /* "ed" (no leading d) */
    nd = decode_all(t.dec, x, NF, N_PHONES, 2, NF, 2, 1, dets, 16, NULL, &ok);
    CHECK(ok);
    CHECK_EQ(nd, 0);

    /* "deeed" via the middle state, "dddd" via the skip arc (an equal later
     * score moves the candidate's end: it ends where the last 0 is reached). */
    kws_decoder_reset(t.dec);
    stream_fill(x, NF);
    stream_put(x, 100, seq_ded, 1, 1);      /* 100: d */
    stream_put(x, 101, seq_ded + 1, 1, 3);  /* 101..103: e */
    stream_put(x, 104, seq_ded, 1, 1);      /* 104: d */
    stream_put(x, 300, seq_dd, 2, 2);       /* 300..303: d */
    nd = decode_all(t.dec, x, NF, N_PHONES, 2, 33, 2, 1, dets, 16, NULL, &ok);
    CHECK(ok);
    CHECK_EQ(nd, 2);
    if (nd == 2) {
        CHECK(dets[0].keyword == 1 && dets[0].start_frame == 100 && dets[0].end_frame == 104);
        CHECK(dets[0].score == 0.0f);
        CHECK(dets[1].keyword == 1 && dets[1].start_frame == 300 && dets[1].end_frame == 303);
        CHECK(dets[1].score == 0.0f);
    }
    tdec_close(&t);
    free(x);
}

/* Refractory period: a candidate ending before last end + refractory_frames is
 * ignored; one ending exactly there is taken. */
static void test_refractory(void)
{
    tmodel tm = two_kw_model();
    tdec t;
    enum { NF = 500 };
    float *x = (float *)malloc(sizeof(float) * NF * N_PHONES);
    const float e_bad = -5.0f - (-0.05f);
    kws_detection dets[16];
    uint32_t nd;
    int ok;
    CHECK(tdec_open(&t, &tm));
    stream_fill(x, NF);
    stream_put(x, 100, seq_abc, 3, 2); /* ends 105: reported at 110, blocks ends < 125 */
    stream_put(x, 112, seq_abc, 3, 2); /* ends 117 < 125: ignored */
    stream_put(x, 119, seq_abc, 3, 2); /* ends 124 < 125: ignored, but its path one
                                          frame on (119..125, -4.95/7) is taken */
    stream_put(x, 300, seq_abc, 3, 2);
    nd = decode_all(t.dec, x, NF, N_PHONES, 2, NF, 2, 1, dets, 16, NULL, &ok);
    CHECK(ok);
    CHECK_EQ(nd, 3);
    if (nd == 3) {
        CHECK(dets[0].start_frame == 100 && dets[0].end_frame == 105 && dets[0].score == 0.0f);
        CHECK(dets[1].start_frame == 119 && dets[1].end_frame == 125);
        CHECK(dets[1].score == e_bad / 7.0f);
        CHECK(dets[2].start_frame == 300 && dets[2].end_frame == 305 && dets[2].score == 0.0f);
    }
    /* With a threshold above -4.95/7 the 119 occurrence is lost entirely. */
    kws_decoder_reset(t.dec);
    CHECK_STATUS(kws_decoder_set_threshold(t.dec, 0, -0.5f), KWS_OK);
    nd = decode_all(t.dec, x, NF, N_PHONES, 2, 3, 2, 1, dets, 16, NULL, &ok);
    CHECK(ok);
    CHECK_EQ(nd, 2);
    if (nd == 2) {
        CHECK(dets[0].start_frame == 100 && dets[0].end_frame == 105);
        CHECK(dets[1].start_frame == 300 && dets[1].end_frame == 305);
    }
    tdec_close(&t);
    free(x);
}

/* Peak picking keeps the best candidate; a strictly better one restarts the hold. */
static void test_peak_picking(void)
{
    tmodel tm = two_kw_model();
    tdec t;
    enum { NF = 300 };
    float *x = (float *)malloc(sizeof(float) * NF * N_PHONES);
    const float e_bad = -5.0f - (-0.05f); /* emission of a phone that is not the best */
    kws_detection out[2];
    uint32_t done, n_out;
    CHECK(tdec_open(&t, &tm));
    stream_fill(x, NF);
    /* 100: a, 101: (background), 102-103: b, 104-107: c. The score first
     * passes the threshold at 105 (-4.95/6), then improves at 106 and 107
     * (-4.95/7, -4.95/8) as the last phone goes on; 108 is worse. */
    stream_put(x, 100, seq_abc, 1, 1);
    stream_put(x, 102, seq_abc + 1, 1, 2);
    stream_put(x, 104, seq_abc + 2, 1, 4);
    CHECK_STATUS(kws_decoder_process(t.dec, x, 112, out, 2, &done, &n_out, NULL), KWS_OK);
    CHECK(done == 112 && n_out == 0);
    CHECK_STATUS(kws_decoder_process(t.dec, x + 112 * N_PHONES, 1, out, 2, &done, &n_out, NULL), KWS_OK);
    CHECK(done == 1 && n_out == 1);
    if (n_out == 1) {
        CHECK_EQ(out[0].keyword, 0);
        CHECK_EQ(out[0].start_frame, 100);
        CHECK_EQ(out[0].end_frame, 107);
        CHECK(out[0].score == e_bad / 8.0f);
    }
    CHECK_STATUS(kws_decoder_process(t.dec, x + 113 * N_PHONES, NF - 113, out, 2, &done, &n_out, NULL), KWS_OK);
    CHECK(done == NF - 113 && n_out == 0);
    tdec_close(&t);
    free(x);
}

/* Frame-by-frame, odd chunks with minimal output space, and one call agree exactly. */
static void test_chunking_invariance(void)
{
    tmodel tm = two_kw_model();
    tdec t;
    enum { NF = 20000, MAXD = 2000 };
    float *x = (float *)malloc(sizeof(float) * NF * N_PHONES);
    float *s1 = (float *)malloc(sizeof(float) * NF * 2);
    float *s2 = (float *)malloc(sizeof(float) * NF * 2);
    kws_detection *d1 = (kws_detection *)malloc(sizeof(kws_detection) * MAXD);
    kws_detection *d2 = (kws_detection *)malloc(sizeof(kws_detection) * MAXD);
    uint32_t n1, n2, f, p, chunks[3] = {1, 7, 1000};
    int ok, c;
    CHECK(tdec_open(&t, &tm));
    g_rng = 12345;
    /* Noisy background with keywords sprinkled in. */
    for (f = 0; f < NF; f++)
        for (p = 0; p < N_PHONES; p++) x[(size_t)f * N_PHONES + p] = -8.0f * rnd_unit();
    for (f = 50; f + 40 < NF; f += 40 + rnd_u32() % 150) {
        uint32_t reps = 2 + rnd_u32() % 3;
        stream_put(x, f, (rnd_u32() & 1) ? seq_abc : seq_ded, 3, reps);
        x[(size_t)(f + rnd_u32() % (3 * reps)) * N_PHONES + rnd_u32() % N_PHONES] = 0.0f; /* noise */
    }
    n1 = decode_all(t.dec, x, NF, N_PHONES, 2, NF, MAXD, 1, d1, MAXD, s1, &ok);
    CHECK(ok);
    CHECK(n1 > 20);
    for (c = 0; c < 3; c++) {
        kws_decoder_reset(t.dec);
        memset(s2, 0, sizeof(float) * NF * 2);
        n2 = decode_all(t.dec, x, NF, N_PHONES, 2, chunks[c], 2, 1, d2, MAXD, s2, &ok);
        CHECK(ok);
        CHECK_EQ(n2, n1);
        CHECK(memcmp(d1, d2, sizeof(kws_detection) * (n1 < n2 ? n1 : n2)) == 0);
        CHECK(memcmp(s1, s2, sizeof(float) * NF * 2) == 0);
    }
    /* Early stop: with out[] holding exactly n_keywords, a call returns right
     * after a frame that produced detections only if the next could overflow. */
    {
        kws_detection out[2];
        uint32_t done, n_out, total = 0, pos = 0;
        kws_decoder_reset(t.dec);
        while (pos < NF) {
            CHECK_STATUS(kws_decoder_process(t.dec, x + (size_t)pos * N_PHONES, NF - pos, out, 2,
                                             &done, &n_out, NULL), KWS_OK);
            if (done == 0) break;
            if (pos + done < NF) CHECK(n_out > 0);
            pos += done;
            total += n_out;
        }
        CHECK_EQ(pos, NF);
        CHECK_STATUS(kws_decoder_flush(t.dec, out, 2, &n_out), KWS_OK);
        CHECK_EQ(total + n_out, n1);
    }
    tdec_close(&t);
    free(x);
    free(s1);
    free(s2);
    free(d1);
    free(d2);
}

/* 1e6 frames of random input (NaN, +-inf included): scores stay bounded. */
static void test_random_bounds(void)
{
    static const tkeyword kws2[2] = {
        {"abc", "a b c", -2.5f, 20, 6, chain_states},
        {"dee", "d e d", -3.0f, 65535, 3, skip_states},
    };
    tmodel tm = two_kw_model();
    tdec t;
    enum { CHUNK = 1000, TOTAL = 1000000 };
    float *x = (float *)malloc(sizeof(float) * CHUNK * N_PHONES);
    float *sc = (float *)malloc(sizeof(float) * CHUNK * 2);
    kws_detection out[2];
    uint32_t pos, f, p, k, done, n_out, n_det = 0, n_scored[2] = {0, 0};
    int bad = 0;
    float lo[2];
    tm.keywords = kws2;
    CHECK(tdec_open(&t, &tm));
    lo[0] = 20.0f * FLOOR;
    lo[1] = 65535.0f * FLOOR;
    g_rng = 777;
    for (pos = 0; pos < TOTAL && !bad; pos += CHUNK) {
        uint32_t off = 0;
        for (f = 0; f < CHUNK; f++) {
            for (p = 0; p < N_PHONES; p++) {
                uint32_t r = rnd_u32() % 1000;
                float v = -10.0f * rnd_unit() * rnd_unit();
                if (r == 0) v = NAN;
                else if (r == 1) v = -INFINITY;
                else if (r == 2 && (rnd_u32() & 15) == 0) v = INFINITY;
                else if (r == 3) v = -1e38f;
                x[(size_t)f * N_PHONES + p] = v;
            }
            if ((rnd_u32() & 7) == 0) /* stretches that look like a keyword */
                x[(size_t)f * N_PHONES + 1 + (f / 3) % 5] = 1.0f;
        }
        if (pos == 5000) /* a whole frame of NaN */
            for (p = 0; p < N_PHONES; p++) x[p] = NAN;
        while (off < CHUNK) {
            if (kws_decoder_process(t.dec, x + (size_t)off * N_PHONES, CHUNK - off, out, 2, &done,
                                    &n_out, sc + (size_t)off * 2) != KWS_OK || done == 0) {
                bad = 1;
                break;
            }
            for (f = 0; f < n_out; f++) {
                if (!(isfinite(out[f].score) && out[f].score <= 0.0f &&
                      out[f].score >= kws_decoder_get_threshold(t.dec, out[f].keyword) &&
                      out[f].end_frame >= out[f].start_frame &&
                      out[f].end_frame < kws_decoder_frames(t.dec)))
                    bad = 2;
            }
            n_det += n_out;
            off += done;
        }
        for (f = 0; f < CHUNK * 2 && !bad; f++) {
            float s = sc[f];
            k = f & 1u;
            if (s == KWS_NO_SCORE) continue;
            n_scored[k]++;
            /* the mean of per-frame emissions in [floor, 0] (float rounding slack) */
            if (!(isfinite(s) && s <= 0.0f && s >= lo[k] && s >= FLOOR * 1.0001f)) {
                fprintf(stderr, "  frame %u keyword %u: score %g\n", (unsigned)(pos + f / 2), (unsigned)k, (double)s);
                bad = 3;
            }
        }
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ(kws_decoder_frames(t.dec), TOTAL);
    CHECK(n_det > 0);
    CHECK(n_scored[0] > TOTAL / 2 && n_scored[1] > TOTAL / 2);
    tdec_close(&t);
    free(x);
    free(sc);
}

/* Random corruption with the CRC fixed up: the parser never reads out of
 * bounds, and whatever it accepts the decoder can run. */
static void test_fuzz(void)
{
    model_buf mb;
    tmodel tm = two_kw_model();
    tlayout lay;
    uint32_t size = build_model(&tm, mb.b, MODEL_CAP, &lay), it, n_ok = 0;
    float x[16 * N_PHONES];
    uint32_t f;
    g_rng = 4242;
    for (f = 0; f < 16 * N_PHONES; f++) x[f] = -6.0f * rnd_unit();
    for (it = 0; it < 20000; it++) {
        uint8_t *h = (uint8_t *)malloc(size);
        uint32_t n_mut = 1 + rnd_u32() % 3, j;
        kws_model m;
        memcpy(h, mb.b, size);
        for (j = 0; j < n_mut; j++) {
            uint32_t pos = 16 + rnd_u32() % (size - 16);
            switch (rnd_u32() % 4) {
            case 0: h[pos] ^= (uint8_t)(1u << (rnd_u32() % 8)); break;
            case 1: h[pos] = (uint8_t)rnd_u32(); break;
            case 2: h[pos] = (uint8_t)(h[pos] + 1u); break;
            default:
                pos &= ~3u;
                if (pos + 4 <= size) put_u32(h + pos, rnd_u32() % 3 == 0 ? 0xFFFFFFFFu : rnd_u32() % 128);
                break;
            }
        }
        fix_crc(h, size);
        if (kws_model_parse(h, size, 0, &m) == KWS_OK) {
            size_t sz = kws_decoder_size(&m);
            void *mem = malloc(sz);
            kws_decoder *dec;
            n_ok++;
            if (kws_decoder_init(&m, mem, sz, &dec) == KWS_OK) {
                kws_detection *out = (kws_detection *)malloc(sizeof(kws_detection) * m.n_keywords);
                uint32_t done, n_out;
                CHECK_STATUS(kws_decoder_process(dec, x, 16 * N_PHONES / m.n_phones, out, m.n_keywords,
                                                 &done, &n_out, NULL), KWS_OK);
                CHECK_STATUS(kws_decoder_flush(dec, out, m.n_keywords, &n_out), KWS_OK);
                (void)kws_model_keyword_name(&m, m.n_keywords - 1u);
                free(out);
            }
            free(mem);
        }
        free(h);
    }
    CHECK(n_ok > 0);
}

/* Scoring by phone (format 1.1, KWS_KW_PHONE_MEAN): a path of 6 perfect frames of
 * phone 1 and 2 frames of phone 2 at -2 scores -4/8 = -0.5 by frame but
 * (0 + -2)/2 = -1 by phone; a pause of silence between the words is no phone. */
#define PS_ KWS_STATE_PHONE_START
static const tstate pm_states[5] = {
    {1, S_ | E_ | PS_, 0, {0}},
    {1, S_, 1, {0}},
    {0, S_ | PS_, 1, {1}},  /* optional pause (sil) */
    {2, S_ | PS_, 2, {1, 2}},
    {2, S_ | F_, 1, {3}},
};
static const tkeyword pm_keyword[1] = {{"ab", "a | b", -3.0f, 100, 5, pm_states}};

/* Last frame's score of pm_keyword over x[0..nf), from a file of format major.0 with
 * header field 58 set to field58; *w_out gets the uncertainty weight the parser read. */
static float pm_score_as(int phone_mean, uint16_t major, uint16_t field58, uint8_t add_flags,
                         const float *x, uint32_t nf, float *w_out)
{
    tmodel tm = two_kw_model();
    tdec t;
    float sc[16];
    kws_detection out[1];
    uint32_t done = 0, n_out = 0, size;
    tm.n_keywords = 1;
    tm.keywords = pm_keyword;
    size = build_model(&tm, t.mb.b, MODEL_CAP, NULL);
    put_u16(t.mb.b + 4, major);
    put_u16(t.mb.b + 58, field58);
    put_u16(t.mb.b + 64 + 26, phone_mean ? KWS_KW_PHONE_MEAN : 0u);
    {   /* add_flags on every state whose phone is not the pause (0) */
        const uint32_t st_off = get_u32(t.mb.b + 36), n_states = get_u32(t.mb.b + 24);
        uint32_t i;
        for (i = 0; i < n_states; i++) {
            uint8_t *sr = t.mb.b + st_off + i * 8u;
            if ((sr[0] | sr[1]) != 0u) sr[2] |= add_flags;
        }
    }
    fix_crc(t.mb.b, size);
    CHECK_STATUS(kws_model_parse(t.mb.b, size, 0, &t.model), KWS_OK);
    CHECK(t.model.keywords[0].flags == (phone_mean ? KWS_KW_PHONE_MEAN : 0u));
    *w_out = t.model.uncertainty_weight;
    t.mem = malloc(kws_decoder_size(&t.model));
    CHECK_STATUS(kws_decoder_init(&t.model, t.mem, kws_decoder_size(&t.model), &t.dec), KWS_OK);
    CHECK(nf <= 16u);
    CHECK_STATUS(kws_decoder_process(t.dec, x, nf, out, 1, &done, &n_out, sc), KWS_OK);
    CHECK(done == nf);
    tdec_close(&t);
    return sc[nf - 1u];
}

static float pm_last_score(int phone_mean, const float *x, uint32_t nf)
{
    float w;
    return pm_score_as(phone_mean, 1, 0, 0, x, nf, &w);
}

static void pm_frame(float *x, uint32_t best, uint32_t other, float other_v)
{
    uint32_t p;
    for (p = 0; p < N_PHONES; p++) x[p] = -8.0f;
    x[best] = 0.0f;
    x[other] = other_v;
}

static void test_phone_mean(void)
{
    float x[16 * N_PHONES];
    uint32_t f;
    /* 6 frames of phone 1 (best), then 2 frames where phone 5 is best and phone 2 is at -2 */
    for (f = 0; f < 6; f++) pm_frame(x + f * N_PHONES, 1, 2, -8.0f);
    for (f = 6; f < 8; f++) pm_frame(x + f * N_PHONES, 5, 2, -2.0f);
    CHECK(pm_last_score(0, x, 8) == -0.5f);
    CHECK(pm_last_score(1, x, 8) == -1.0f);
    /* phone 1 x2, 3 frames of silence (the pause: neutral), phone 2 at -1 x4 */
    for (f = 0; f < 2; f++) pm_frame(x + f * N_PHONES, 1, 2, -8.0f);
    for (f = 2; f < 5; f++) pm_frame(x + f * N_PHONES, 0, 2, -8.0f);
    for (f = 5; f < 9; f++) pm_frame(x + f * N_PHONES, 5, 2, -1.0f);
    CHECK(pm_last_score(0, x, 9) == -4.0f / 6.0f);
    CHECK(pm_last_score(1, x, 9) == -0.5f);
}

/* The frames of the weight tests: 6 of phone 1 best at -1, then 2 where phone 5
 * is best at -1 and phone 2 at -3 (ratio -2); every other phone far below. */
static void uw_frames(float *x)
{
    uint32_t f, p;
    for (f = 0; f < 8; f++) {
        for (p = 0; p < N_PHONES; p++) x[f * N_PHONES + p] = -30.0f;
        x[f * N_PHONES + (f < 6 ? 1u : 5u)] = -1.0f;
        if (f >= 6) x[f * N_PHONES + 2] = -3.0f;
    }
}

/* Uncertainty weight (format 2.x): a phone that is not the frame's best pays w
 * times the best phone's log-posterior on top of its ratio; the best phone pays
 * nothing. Frames: 6 of phone 1 best at -1, then 2 where phone 5 is best at -1
 * and phone 2 at -3 (ratio -2). By phone: (0 + (-2 + 0.5 * -1)) / 2 = -1.25 with
 * w = 0.5; a 1.x file's field 58 is reserved and changes nothing. */
static void test_uncertainty_weight(void)
{
    float x[16 * N_PHONES], w = -1.0f;
    uint32_t f;
    uw_frames(x);
    CHECK(pm_score_as(1, 2, 128, 0, x, 8, &w) == -1.25f);
    CHECK(w == 0.5f);
    CHECK(pm_score_as(1, 2, 0, 0, x, 8, &w) == -1.0f);
    CHECK(w == 0.0f);
    CHECK(pm_score_as(1, 1, 128, 0, x, 8, &w) == -1.0f); /* 1.x: field 58 reserved, ignored */
    CHECK(w == 0.0f);
    /* the floor still bounds a frame: phone 2 at -6.5 (ratio -5.5, -6 with the penalty)
     * costs -6 whatever the weight adds beyond it */
    for (f = 6; f < 8; f++) x[f * N_PHONES + 2] = -6.5f;
    CHECK(pm_score_as(1, 2, 256, 0, x, 8, &w) == -3.0f); /* w = 1: -5.5 - 1 -> floor -6 */
    CHECK(w == 1.0f);
}

/* BEST_PAYS (format 2.1): a state's phone pays w * m also where it is the best
 * phone. Same frames as above: phone 1 best at -1 for 6 frames (-0.5 each with
 * w = 0.5, 0 without the flag), then phone 2 at ratio -2 (-2.5): by phone
 * (-0.5 + -2.5) / 2 = -1.5. With w = 0 the flag changes nothing; a best phone at
 * m = -20 with w = 1 pays the floor, not -20. */
static void test_best_pays(void)
{
    float x[16 * N_PHONES], w = -1.0f;
    uint32_t f;
    uw_frames(x);
    CHECK(pm_score_as(1, 2, 128, KWS_STATE_BEST_PAYS, x, 8, &w) == -1.5f);
    CHECK(pm_score_as(1, 2, 128, 0, x, 8, &w) == -1.25f);
    CHECK(pm_score_as(1, 2, 0, KWS_STATE_BEST_PAYS, x, 8, &w) == -1.0f);
    for (f = 0; f < 6; f++) x[f * N_PHONES + 1] = -20.0f;
    CHECK(pm_score_as(1, 2, 256, KWS_STATE_BEST_PAYS, x, 8, &w) == (-6.0f + -3.0f) / 2.0f);
}

int main(void)
{
    RUN(test_crc32);
    RUN(test_status_str);
    RUN(test_valid_model);
    RUN(test_truncated);
    RUN(test_bad_magic_version);
    RUN(test_crc_flips);
    RUN(test_phoneset_align);
    RUN(test_corrupt);
    RUN(test_decoder_size_init);
    RUN(test_detect_exact);
    RUN(test_absent_and_skip);
    RUN(test_refractory);
    RUN(test_peak_picking);
    RUN(test_chunking_invariance);
    RUN(test_random_bounds);
    RUN(test_fuzz);
    RUN(test_phone_mean);
    RUN(test_uncertainty_weight);
    RUN(test_best_pays);
    printf("%d passed, %d failed\n", g_tests_passed, g_tests_failed);
    return g_tests_failed == 0 ? 0 : 1;
}
