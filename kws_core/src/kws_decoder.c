/*
 * kws_decoder.c - streaming keyword decoder (docs/kwm-format.md, "Decoder
 * semantics").
 *
 * Strict C99. No allocation, no globals, no I/O: everything lives in the
 * caller's buffer, laid out as
 *
 *   [kws_decoder][kws_kw_rt x n_keywords][kws_token x n_states][float x n_phones]
 *
 * each part starting on an 8-byte boundary (kws_decoder_size() gives the
 * exact total). The model arrays are only read, through the pointers the
 * parser validated, so no index here needs a bounds check.
 */
#include "kws.h"

#include <math.h>
#include <string.h>

/* One token per state. dur == 0 means "no token"; its score is then -inf so
 * that a missing token never wins a comparison (every real score is finite).
 * dur counts every frame of the path (<= max_frames <= 65535), n_scored the
 * frames the score is averaged over: all but the neutral pause frames.
 * The last four fields serve keywords scored by phone (KWS_KW_PHONE_MEAN):
 * the sum of the completed phones' mean emissions, their count, and the
 * running emission sum and scored frames of the phone the path is in. */
typedef struct kws_token {
    float score;
    float done_mean;
    float ph_sum;
    uint16_t dur;
    uint16_t n_scored;
    uint16_t ph_n;
    uint16_t n_done;
} kws_token;

/* Per-keyword run-time state. */
typedef struct kws_kw_rt {
    uint64_t pend_start;   /* pending candidate: first frame  */
    uint64_t pend_end;     /* pending candidate: last frame   */
    uint64_t block_until;  /* candidates ending before this are ignored */
    float threshold;       /* this decoder's threshold */
    float pend_score;      /* pending candidate's score */
    uint32_t hold;         /* frames since the pending candidate last improved */
    uint32_t pending;      /* 1 while a candidate waits for its hold time */
} kws_kw_rt;

struct kws_decoder {
    const kws_model *model;
    kws_kw_rt *kw;
    kws_token *tok;
    float *emit;
    uint64_t frame;        /* frames processed since reset = index of the next frame */
    float floor_v;
    float unsure_w;        /* model's uncertainty weight (format 2.x) */
    float best_pen;        /* this frame's max(w * min(m, 0), floor): what a
                            * BEST_PAYS state's phone scores when it is the best */
    uint32_t n_keywords;
    uint32_t n_states;
    uint32_t n_phones;
    uint32_t hold_frames;
    uint32_t refractory;
};

#define KWS_ALIGN8(x) (((x) + 7u) & ~(uint64_t)7u)

/* Byte offsets of each part; 0 total on overflow of size_t. */
typedef struct kws_layout {
    uint64_t kw_off, tok_off, emit_off, total;
} kws_layout;

static void kws_compute_layout(const kws_model *m, kws_layout *l)
{
    l->kw_off = KWS_ALIGN8((uint64_t)sizeof(struct kws_decoder));
    l->tok_off = KWS_ALIGN8(l->kw_off + (uint64_t)m->n_keywords * sizeof(kws_kw_rt));
    l->emit_off = KWS_ALIGN8(l->tok_off + (uint64_t)m->n_states * sizeof(kws_token));
    l->total = l->emit_off + (uint64_t)m->n_phones * sizeof(float);
}

size_t kws_decoder_size(const kws_model *model)
{
    kws_layout l;
    if (model == NULL) return 0;
    kws_compute_layout(model, &l);
    if (l.total > (uint64_t)SIZE_MAX) return 0;
    return (size_t)l.total;
}

static void kws_drop_tokens(kws_token *t, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; i++) {
        t[i].score = -INFINITY;
        t[i].dur = 0;
        t[i].n_scored = 0;
        t[i].done_mean = 0.0f;
        t[i].ph_sum = 0.0f;
        t[i].ph_n = 0;
        t[i].n_done = 0;
    }
}

void kws_decoder_reset(kws_decoder *dec)
{
    uint32_t k;
    if (dec == NULL) return;
    kws_drop_tokens(dec->tok, dec->n_states);
    for (k = 0; k < dec->n_keywords; k++) {
        kws_kw_rt *r = &dec->kw[k];
        r->pend_start = 0;
        r->pend_end = 0;
        r->block_until = 0;
        r->threshold = dec->model->keywords[k].threshold;
        r->pend_score = 0.0f;
        r->hold = 0;
        r->pending = 0;
    }
    dec->frame = 0;
}

kws_status kws_decoder_init(const kws_model *model, void *mem, size_t len,
                            kws_decoder **out)
{
    kws_layout l;
    uint8_t *base = (uint8_t *)mem;
    kws_decoder *dec;

    if (out != NULL) *out = NULL;
    if (model == NULL || mem == NULL || out == NULL) return KWS_ERR_ARG;
    if (model->keywords == NULL || model->states == NULL || model->n_keywords == 0 ||
        model->n_states == 0 || model->n_phones == 0)
        return KWS_ERR_ARG;
    if (((uintptr_t)mem & 7u) != 0u) return KWS_ERR_ALIGN;
    kws_compute_layout(model, &l);
    if (l.total > (uint64_t)SIZE_MAX || (uint64_t)len < l.total) return KWS_ERR_NOMEM;

    dec = (kws_decoder *)(void *)base;
    dec->model = model;
    dec->kw = (kws_kw_rt *)(void *)(base + l.kw_off);
    dec->tok = (kws_token *)(void *)(base + l.tok_off);
    dec->emit = (float *)(void *)(base + l.emit_off);
    dec->floor_v = model->emission_floor;
    dec->unsure_w = model->uncertainty_weight;
    dec->best_pen = 0.0f;
    dec->n_keywords = model->n_keywords;
    dec->n_states = model->n_states;
    dec->n_phones = model->n_phones;
    dec->hold_frames = model->hold_frames;
    dec->refractory = model->refractory_frames;
    kws_decoder_reset(dec);
    *out = dec;
    return KWS_OK;
}

kws_status kws_decoder_set_threshold(kws_decoder *dec, uint32_t k, float threshold)
{
    if (dec == NULL || k >= dec->n_keywords || threshold != threshold) return KWS_ERR_ARG;
    dec->kw[k].threshold = threshold;
    return KWS_OK;
}

float kws_decoder_get_threshold(const kws_decoder *dec, uint32_t k)
{
    if (dec == NULL || k >= dec->n_keywords) return NAN;
    return dec->kw[k].threshold;
}

uint64_t kws_decoder_frames(const kws_decoder *dec)
{
    return dec == NULL ? 0u : dec->frame;
}

/* Emission scores of one frame: e[p] = max(x[p] - m + [x[p] < m] w min(m, 0),
 * floor) with m = max_q x[q] over the non-NaN x: the log-ratio to the best
 * phone, and for a phone that is not the best, w times the best phone's own
 * log-posterior on top (format 2.x; w = 0 for 1.x), so that on a frame where
 * even the best phone is unlikely (noise, mumbling) being second costs more.
 * Any NaN (x[p] itself, or x[p] - max when the max is infinite: inf - inf)
 * counts as the floor. All-NaN frame: all floor. */
static float kws_emissions(const float *x, uint32_t n, float floor_v, float w, float *e)
{
    float m = -INFINITY;
    int any = 0;
    uint32_t p;
    for (p = 0; p < n; p++) {
        float v = x[p];
        if (v == v) { /* not NaN */
            if (!any || v > m) m = v;
            any = 1;
        }
    }
    if (!any) {
        for (p = 0; p < n; p++) e[p] = floor_v;
        return floor_v;
    }
    {
        const float pen = (m < 0.0f) ? w * m : 0.0f; /* <= 0; -inf when m is */
        for (p = 0; p < n; p++) {
            float r = x[p] - m;
            if (r < 0.0f) r += pen;              /* NaN stays NaN */
            e[p] = (r >= floor_v) ? r : floor_v; /* NaN -> floor */
        }
        return (pen >= floor_v) ? pen : floor_v; /* the best phone's emission under BEST_PAYS */
    }
}

/* Update one keyword's tokens for the frame (in place, last state first).
 * Returns its score in *score (best over FINAL states; ties: longer dur) and
 * that token's dur in *dur (0 = no complete path). The score is the path's
 * mean emission per scored frame, or, with phone_mean, the mean over its
 * phones of each phone's mean emission. Paths are chosen by their summed
 * emission either way (Viterbi); phone_mean only changes how the chosen
 * path is scored. */
static void kws_update_keyword(const kws_state_rec *st, const uint16_t *arcs,
                               kws_token *tk, uint32_t n, uint32_t max_frames,
                               int phone_mean, const float *e, float best_pen,
                               float *score, uint32_t *dur)
{
    float best_r = -INFINITY;
    uint32_t best_d = 0;
    uint32_t i = n;
    while (i-- > 0u) {
        const kws_state_rec s = st[i];
        float bs = -INFINITY;
        uint32_t bd = 0;
        uint32_t bn = 0;
        uint32_t src = n; /* n: own token (self-loop) or none; else the winning predecessor */
        uint32_t nd;
        /* Candidates that would outgrow max_frames are passed over (not taken and
         * then dropped), so a younger candidate still fills the state. */
        if ((s.flags & KWS_STATE_SELF) && tk[i].dur < max_frames) {
            bs = tk[i].score;
            bd = tk[i].dur;
            bn = tk[i].n_scored;
        }
        if (s.n_preds) {
            const uint16_t *pp = arcs + s.pred_begin;
            uint32_t j, np = s.n_preds;
            for (j = 0; j < np; j++) {
                const kws_token *c = &tk[pp[j]];
                /* (s > S) || (s == S && d > D), written without a branch */
                const int take = ((c->score > bs) | ((c->score == bs) & (c->dur > bd))) &
                                 (c->dur < max_frames);
                bs = take ? c->score : bs;
                bd = take ? c->dur : bd;
                bn = take ? c->n_scored : bn;
                src = take ? (uint32_t)pp[j] : src;
            }
        }
        /* Fresh token (0, 0): beats (S, D) iff 0 > S (0 == S with 0 > D never holds). */
        if ((s.flags & KWS_STATE_ENTRY) && bs < 0.0f) {
            bs = 0.0f;
            bd = 0;
            bn = 0;
            src = n + 1u;
        }
        nd = bd + 1u;
        if (bs > -INFINITY && nd <= max_frames) {
            /* e[p] == 0 only where p is the frame's best phone (every other phone
             * is below it, and the weight only lowers it further). */
            const float em = ((s.flags & KWS_STATE_BEST_PAYS) && e[s.phone] == 0.0f) ? best_pen : e[s.phone];
            /* A pause frame (phone 0 = sil) where sil is the best phone (em == 0)
             * is neutral: it adds nothing and is not averaged over, so silence
             * between words neither helps nor hurts a keyword. */
            const uint32_t scored = (s.phone == 0u && em == 0.0f) ? 0u : 1u;
            const uint32_t nn = bn + scored;
            const float ns = bs + em;
            float r;
            if (phone_mean) {
                float dm, ps;
                uint32_t pn, ndone;
                if (src == n + 1u) { /* fresh */
                    dm = 0.0f;
                    ps = 0.0f;
                    pn = 0;
                    ndone = 0;
                } else {
                    const kws_token *c = &tk[src < n ? src : i];
                    dm = c->done_mean;
                    ps = c->ph_sum;
                    pn = c->ph_n;
                    ndone = c->n_done;
                    if (src < n && (s.flags & KWS_STATE_PHONE_START)) {
                        /* the path enters a new phone: close the one it leaves (a
                         * pause made only of neutral frames is no phone at all) */
                        if (pn) {
                            dm += ps / (float)pn;
                            ndone++;
                        }
                        ps = 0.0f;
                        pn = 0;
                    }
                }
                if (scored) {
                    ps += em;
                    pn++;
                }
                tk[i].done_mean = dm;
                tk[i].ph_sum = ps;
                tk[i].ph_n = (uint16_t)pn;
                tk[i].n_done = (uint16_t)ndone;
            }
            tk[i].score = ns;
            tk[i].dur = (uint16_t)nd;
            tk[i].n_scored = (uint16_t)nn;
            if (s.flags & KWS_STATE_FINAL) { /* the divisions only where a path ends */
                if (phone_mean) {
                    const kws_token *t = &tk[i];
                    r = t->ph_n ? (t->done_mean + t->ph_sum / (float)t->ph_n) / (float)(t->n_done + 1u)
                                : (t->n_done ? t->done_mean / (float)t->n_done : 0.0f);
                } else {
                    r = ns / (float)(nn ? nn : 1u);
                }
                if (r > best_r || (r == best_r && nd > best_d)) {
                    best_r = r;
                    best_d = nd;
                }
            }
        } else {
            tk[i].score = -INFINITY;
            tk[i].dur = 0;
            tk[i].n_scored = 0;
        }
    }
    *score = best_d ? best_r : KWS_NO_SCORE;
    *dur = best_d;
}

static void kws_report(kws_decoder *dec, uint32_t k, kws_detection *o)
{
    kws_kw_rt *r = &dec->kw[k];
    o->keyword = k;
    o->score = r->pend_score;
    o->start_frame = r->pend_start;
    o->end_frame = r->pend_end;
    r->pending = 0;
    r->hold = 0;
    r->block_until = r->pend_end + dec->refractory;
}

kws_status kws_decoder_process(kws_decoder *dec, const float *logpost,
                               uint32_t n_frames, kws_detection *out,
                               uint32_t cap, uint32_t *n_done, uint32_t *n_out,
                               float *scores)
{
    const kws_model *m;
    const kws_keyword_rec *kws;
    const kws_state_rec *states;
    const uint16_t *arcs;
    uint32_t nk, np, f, n_det = 0;

    if (n_done != NULL) *n_done = 0;
    if (n_out != NULL) *n_out = 0;
    if (dec == NULL || n_done == NULL || n_out == NULL) return KWS_ERR_ARG;
    if (n_frames == 0u) return KWS_OK;
    if (logpost == NULL || out == NULL || cap < dec->n_keywords) return KWS_ERR_ARG;

    m = dec->model;
    kws = m->keywords;
    states = m->states;
    arcs = m->arcs;
    nk = dec->n_keywords;
    np = dec->n_phones;

    for (f = 0; f < n_frames; f++) {
        const uint64_t t = dec->frame;
        uint32_t k;
        if (cap - n_det < nk) break; /* this frame could overflow out[] */

        dec->best_pen = kws_emissions(logpost + (size_t)f * np, np, dec->floor_v, dec->unsure_w, dec->emit);

        for (k = 0; k < nk; k++) {
            const kws_keyword_rec *kw = &kws[k];
            kws_kw_rt *r = &dec->kw[k];
            kws_token *tk = dec->tok + kw->first_state;
            float sc;
            uint32_t dur;

            kws_update_keyword(states + kw->first_state, arcs, tk, kw->n_states,
                               kw->max_frames, (kw->flags & KWS_KW_PHONE_MEAN) != 0u,
                               dec->emit, dec->best_pen, &sc, &dur);
            if (scores != NULL) scores[(size_t)f * nk + k] = sc;

            /* Peak picking. */
            if (dur != 0u && t >= r->block_until && sc >= r->threshold &&
                (!r->pending || sc >= r->pend_score)) {
                r->pending = 1;
                r->pend_score = sc;
                r->pend_start = t + 1u - dur; /* dur <= t + 1 since the last reset/drop */
                r->pend_end = t;
                r->hold = 0;
            } else if (r->pending) {
                r->hold++;
            }
            if (r->pending && r->hold >= dec->hold_frames) {
                kws_report(dec, k, &out[n_det++]);
                kws_drop_tokens(tk, kw->n_states);
            }
        }
        dec->frame = t + 1u;
        *n_done = f + 1u;
    }
    *n_out = n_det;
    return KWS_OK;
}

kws_status kws_decoder_flush(kws_decoder *dec, kws_detection *out, uint32_t cap,
                             uint32_t *n_out)
{
    uint32_t k, n = 0;
    if (n_out != NULL) *n_out = 0;
    if (dec == NULL || n_out == NULL || out == NULL || cap < dec->n_keywords) return KWS_ERR_ARG;
    for (k = 0; k < dec->n_keywords; k++) {
        if (dec->kw[k].pending) kws_report(dec, k, &out[n++]);
    }
    *n_out = n;
    return KWS_OK;
}
