/*
 * kws_frontend.c - streaming log-mel filterbank (see kws_frontend.h for the
 * definition; kws/features.py is its numpy twin).
 *
 * Strict C99, also valid C++. No allocation, no globals, no I/O: everything
 * lives in the caller's buffer, laid out as
 *
 *   [kws_frontend]
 *   [float window x frame_length]
 *   [float cos x fft_size/2][float sin x fft_size/2]     twiddles, 2 pi k / N
 *   [uint16 bitrev x fft_size/2]                       bit-reversal swap pairs
 *   [float re x fft_size/2][float im x fft_size/2]       FFT work area
 *   [float power x (fft_size/2 + 1)]
 *   [kws_fe_band x n_mels]                               sparse mel filters
 *   [float weight x n_weights]                           their non-zero weights
 *   [int16 samples x frame_length]                       pending samples
 *
 * each part starting on an 8-byte boundary (kws_frontend_size() gives the
 * exact total). Tables are computed in double at init and stored as float;
 * per frame everything is single precision.
 *
 * The real FFT of N = fft_size points is done as an M = N/2-point complex
 * radix-2 FFT of z[n] = x[2n] + i x[2n+1], followed by the split step
 *   X[k] = (Z[k] + conj Z[M-k]) / 2 + e^{-2 pi i k/N} (Z[k] - conj Z[M-k]) / 2i.
 * The complex FFT's twiddles e^{-2 pi i j/len} are entries j*N/len of the same
 * cos/sin table the split step uses, so one table of N/2 entries serves both.
 */
#include "kws_frontend.h"

#include <math.h>
#include <string.h>

#define KWS_FE_PI 3.14159265358979323846

/* One mel filter: weights weight[off .. off+len) apply to power bins
 * [start .. start+len). len may be 0 (a filter that covers no bin). */
typedef struct kws_fe_band {
    uint32_t off;
    uint16_t start;
    uint16_t len;
} kws_fe_band;

struct kws_frontend {
    const float *window;
    const float *cos_t;
    const float *sin_t;
    const uint16_t *bitrev; /* swap pairs (i, r), ended by (0, 0) */
    float *re;
    float *im;
    float *power;
    const kws_fe_band *band;
    const float *weight;
    int16_t *pending;
    kws_frontend_config cfg;
    float log_floor;       /* (float)log(energy_floor), the output at or below the floor */
    float inv_scale;       /* 1 / (32768 * frame_length): the DC mean from the integer sum */
    uint32_t fill;         /* samples in pending[], always < frame_length between calls */
    uint32_t half;         /* M = fft_size / 2 */
    uint32_t log2_half;
    /* Level control (see kws_frontend.h): the tracked noise floor and speech
     * level of the stream, in nats of summed mel energy. */
    float lc_noise;
    float lc_speech;
    uint32_t lc_started;   /* 1 once the stream's first frame set the noise floor */
    uint32_t lc_known;     /* 1 once the stream's first speech onset was seen */
    uint32_t lc_run;       /* consecutive onset frames while the speech level is unknown */
    float lc_run_max;      /* the loudest of them */
};

/* Level-control constants, in nats of power (1 dB = 0.2302585 nats); the
 * rates are per frame. Values in dB in kws_frontend.h. */
#define KWS_LC_DB 0.23025851f
#define KWS_LC_TARGET (20.0f * KWS_LC_DB)
#define KWS_LC_MAX_GAIN (30.0f * KWS_LC_DB)
#define KWS_LC_ONSET (15.0f * KWS_LC_DB)
#define KWS_LC_MIN_LEVEL (-25.0f * KWS_LC_DB)
#define KWS_LC_HEADROOM (10.0f * KWS_LC_DB)
#define KWS_LC_ONSET_FRAMES 5u
#define KWS_LC_WINDOW (10.0f * KWS_LC_DB)
#define KWS_LC_NOISE_RISE (0.03f * KWS_LC_DB)
#define KWS_LC_LEAK (0.005f * KWS_LC_DB)
#define KWS_LC_ATTACK 0.3f
#define KWS_LC_RELEASE 0.02f

#define KWS_FE_ALIGN8(x) (((x) + 7u) & ~(uint64_t)7u)

kws_frontend_config kws_frontend_default_config(void)
{
    kws_frontend_config c;
    c.sample_rate = KWS_FRONTEND_SAMPLE_RATE;
    c.frame_length = KWS_FRONTEND_FRAME_LENGTH;
    c.frame_shift = KWS_FRONTEND_FRAME_SHIFT;
    c.fft_size = KWS_FRONTEND_FFT_SIZE;
    c.n_mels = KWS_FRONTEND_N_MELS;
    c.low_freq = 20.0f;
    c.high_freq = 7600.0f;
    c.energy_floor = 1e-10f;
    c.level_control = 1u;
    return c;
}

static int kws_fe_config_ok(const kws_frontend_config *c)
{
    if (c == NULL) return 0;
    if (c->sample_rate < 1000u || c->sample_rate > 192000u) return 0;
    if (c->fft_size < 16u || c->fft_size > 8192u || (c->fft_size & (c->fft_size - 1u)) != 0u)
        return 0;
    if (c->frame_length < 2u || c->frame_length > c->fft_size) return 0;
    if (c->frame_shift < 1u || c->frame_shift > c->frame_length) return 0;
    if (c->n_mels < 1u || c->n_mels > 256u) return 0;
    /* Written so that NaN fails every test. */
    if (!(c->low_freq >= 0.0f)) return 0;
    if (!(c->high_freq > c->low_freq)) return 0;
    if (!((double)c->high_freq <= 0.5 * (double)c->sample_rate)) return 0;
    if (!(c->energy_floor > 0.0f) || !(c->energy_floor < INFINITY)) return 0;
    if (c->level_control > 1u) return 0;
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Mel filters                                                              */
/* ------------------------------------------------------------------------ */

static double kws_fe_hz_to_mel(double hz) { return 2595.0 * log10(1.0 + hz / 700.0); }
static double kws_fe_mel_to_hz(double mel) { return 700.0 * (pow(10.0, mel / 2595.0) - 1.0); }

/* Hz of mel point j (0 .. n_mels+1), equally spaced in mel. */
static double kws_fe_point(const kws_frontend_config *c, uint32_t j)
{
    double lo = kws_fe_hz_to_mel((double)c->low_freq);
    double hi = kws_fe_hz_to_mel((double)c->high_freq);
    return kws_fe_mel_to_hz(lo + (hi - lo) * (double)j / (double)(c->n_mels + 1u));
}

/* Weight of bin frequency f in the triangle (l, c, r): max(0, min(up, down)),
 * the same arithmetic as the numpy twin. */
static double kws_fe_tri(double f, double l, double c, double r)
{
    double up, down, w;
    if (!(c > l) || !(r > c)) return 0.0; /* degenerate triangle: empty filter */
    up = (f - l) / (c - l);
    down = (r - f) / (r - c);
    w = up < down ? up : down;
    return w > 0.0 ? w : 0.0;
}

/* Filter m's non-zero range [*start, *start + *len) over bins 0..N/2. The
 * support of a triangle is an interval, so this is every non-zero weight. */
static void kws_fe_band_extent(const kws_frontend_config *c, uint32_t m, uint32_t *start,
                               uint32_t *len)
{
    double l = kws_fe_point(c, m), ce = kws_fe_point(c, m + 1u), r = kws_fe_point(c, m + 2u);
    double bin_hz = (double)c->sample_rate / (double)c->fft_size;
    uint32_t k, first = 0, n = 0;
    for (k = 0; k <= c->fft_size / 2u; k++) {
        if (kws_fe_tri((double)k * bin_hz, l, ce, r) > 0.0) {
            if (n == 0) first = k;
            n = k - first + 1u;
        }
    }
    *start = first;
    *len = n;
}

/* ------------------------------------------------------------------------ */
/* Layout                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct kws_fe_layout {
    uint64_t window, cos_t, sin_t, bitrev, re, im, power, band, weight, pending, total;
} kws_fe_layout;

static void kws_fe_compute_layout(const kws_frontend_config *c, kws_fe_layout *l)
{
    uint64_t half = c->fft_size / 2u, n_weights = 0, off;
    uint32_t m, start, len;
    for (m = 0; m < c->n_mels; m++) {
        kws_fe_band_extent(c, m, &start, &len);
        n_weights += len;
    }
    off = KWS_FE_ALIGN8((uint64_t)sizeof(struct kws_frontend));
    l->window = off;  off = KWS_FE_ALIGN8(off + (uint64_t)c->frame_length * sizeof(float));
    l->cos_t = off;   off = KWS_FE_ALIGN8(off + half * sizeof(float));
    l->sin_t = off;   off = KWS_FE_ALIGN8(off + half * sizeof(float));
    l->bitrev = off;  off = KWS_FE_ALIGN8(off + half * sizeof(uint16_t));
    l->re = off;      off = KWS_FE_ALIGN8(off + half * sizeof(float));
    l->im = off;      off = KWS_FE_ALIGN8(off + half * sizeof(float));
    l->power = off;   off = KWS_FE_ALIGN8(off + (half + 1u) * sizeof(float));
    l->band = off;    off = KWS_FE_ALIGN8(off + (uint64_t)c->n_mels * sizeof(kws_fe_band));
    l->weight = off;  off = KWS_FE_ALIGN8(off + n_weights * sizeof(float));
    l->pending = off; off = off + (uint64_t)c->frame_length * sizeof(int16_t);
    l->total = off;
}

size_t kws_frontend_size(const kws_frontend_config *cfg)
{
    kws_fe_layout l;
    if (!kws_fe_config_ok(cfg)) return 0;
    kws_fe_compute_layout(cfg, &l);
    if (l.total > (uint64_t)SIZE_MAX) return 0;
    return (size_t)l.total;
}

/* ------------------------------------------------------------------------ */
/* Init / reset                                                             */
/* ------------------------------------------------------------------------ */

kws_status kws_frontend_init(const kws_frontend_config *cfg, void *mem, size_t len,
                             kws_frontend **out)
{
    kws_fe_layout l;
    uint8_t *base = (uint8_t *)mem;
    kws_frontend *fe;
    float *window, *cos_t, *sin_t, *weight;
    uint16_t *bitrev;
    kws_fe_band *band;
    uint32_t i, m, half, bits, n_weights = 0;
    double bin_hz;

    if (out != NULL) *out = NULL;
    if (cfg == NULL || mem == NULL || out == NULL) return KWS_ERR_ARG;
    if (!kws_fe_config_ok(cfg)) return KWS_ERR_ARG;
    if (((uintptr_t)mem & 7u) != 0u) return KWS_ERR_ALIGN;
    kws_fe_compute_layout(cfg, &l);
    if (l.total > (uint64_t)SIZE_MAX || (uint64_t)len < l.total) return KWS_ERR_NOMEM;

    fe = (kws_frontend *)(void *)base;
    window = (float *)(void *)(base + l.window);
    cos_t = (float *)(void *)(base + l.cos_t);
    sin_t = (float *)(void *)(base + l.sin_t);
    bitrev = (uint16_t *)(void *)(base + l.bitrev);
    band = (kws_fe_band *)(void *)(base + l.band);
    weight = (float *)(void *)(base + l.weight);

    fe->cfg = *cfg;
    half = cfg->fft_size / 2u;
    for (bits = 0; (1u << bits) < half; bits++) {
    }
    fe->half = half;
    fe->log2_half = bits;

    /* Periodic Hann window. */
    for (i = 0; i < cfg->frame_length; i++)
        window[i] = (float)(0.5 - 0.5 * cos(2.0 * KWS_FE_PI * (double)i / (double)cfg->frame_length));

    /* cos/sin of 2 pi k / N, k < N/2. */
    for (i = 0; i < half; i++) {
        double a = 2.0 * KWS_FE_PI * (double)i / (double)cfg->fft_size;
        cos_t[i] = (float)cos(a);
        sin_t[i] = (float)sin(a);
    }

    /* Bit reversal of log2(M)-bit indices, as the list of the pairs (i, r)
     * with i < r that the permutation swaps, ended by (0, 0): 0 and M - 1
     * are their own reversals, so at most (M - 2) / 2 pairs, which with the
     * end mark fit the M entries. */
    m = 0;
    for (i = 0; i < half; i++) {
        uint32_t r = 0, v = i, b;
        for (b = 0; b < bits; b++) {
            r = (r << 1) | (v & 1u);
            v >>= 1;
        }
        if (r > i) {
            bitrev[m++] = (uint16_t)i;
            bitrev[m++] = (uint16_t)r;
        }
    }
    bitrev[m] = 0;
    bitrev[m + 1u] = 0;

    /* Sparse mel filters. */
    bin_hz = (double)cfg->sample_rate / (double)cfg->fft_size;
    for (m = 0; m < cfg->n_mels; m++) {
        double lo = kws_fe_point(cfg, m), ce = kws_fe_point(cfg, m + 1u),
               hi = kws_fe_point(cfg, m + 2u);
        uint32_t start, n, k;
        kws_fe_band_extent(cfg, m, &start, &n);
        band[m].off = n_weights;
        band[m].start = (uint16_t)start;
        band[m].len = (uint16_t)n;
        for (k = 0; k < n; k++)
            weight[n_weights + k] = (float)kws_fe_tri((double)(start + k) * bin_hz, lo, ce, hi);
        n_weights += n;
    }

    fe->window = window;
    fe->cos_t = cos_t;
    fe->sin_t = sin_t;
    fe->bitrev = bitrev;
    fe->re = (float *)(void *)(base + l.re);
    fe->im = (float *)(void *)(base + l.im);
    fe->power = (float *)(void *)(base + l.power);
    fe->band = band;
    fe->weight = weight;
    fe->pending = (int16_t *)(void *)(base + l.pending);
    fe->log_floor = (float)log((double)cfg->energy_floor);
    fe->inv_scale = (float)(1.0 / (32768.0 * (double)cfg->frame_length));
    kws_frontend_reset(fe);
    *out = fe;
    return KWS_OK;
}

void kws_frontend_reset(kws_frontend *fe)
{
    if (fe == NULL) return;
    fe->fill = 0;
    fe->lc_noise = 0.0f;
    fe->lc_speech = 0.0f;
    fe->lc_started = 0u;
    fe->lc_known = 0u;
    fe->lc_run = 0u;
    fe->lc_run_max = 0.0f;
    memset(fe->pending, 0, (size_t)fe->cfg.frame_length * sizeof(int16_t));
}

/* ------------------------------------------------------------------------ */
/* One frame                                                                */
/* ------------------------------------------------------------------------ */

/* In-place M-point complex FFT (forward, e^{-i}), radix 2, decimation in
 * time: bit-reversal permutation, then log2(M) butterfly passes. */
static void kws_fe_fft(const kws_frontend *fe)
{
    float *re = fe->re, *im = fe->im;
    const float *cs = fe->cos_t, *sn = fe->sin_t;
    uint32_t m = fe->half, i, j, len;

    {
        const uint16_t *p = fe->bitrev; /* pairs (i, r), i < r, then (0, 0) */
        for (;;) {
            uint32_t a = p[0], r = p[1];
            float t;
            if (a == r) break;
            t = re[a]; re[a] = re[r]; re[r] = t;
            t = im[a]; im[a] = im[r]; im[r] = t;
            p += 2;
        }
    }
    /* Twiddle for butterfly j of a span of `len` points: e^{-2 pi i j/len}
     * = table entry j * (N/len) = j * (2M/len). */
    /* The passes run in pairs (len, 2 len), fused: the four points i, i + h,
     * i + len, i + len + h (h = len / 2) go through their two butterflies of
     * pass len and their two of pass 2 len in registers, with the three
     * twiddles loaded once per j. Every butterfly is the same operations, on
     * the same values, as in one pass at a time (those of a pass are
     * independent), so the result is bit-identical; only loads and stores
     * are saved. An odd pass count starts with the len = 2 pass alone. */
    len = 2;
    if ((fe->log2_half & 1u) != 0u) {
        for (i = 0; i < m; i += 2) {
            float wr = cs[0], wi = -sn[0];
            float tr = wr * re[i + 1] - wi * im[i + 1];
            float ti = wr * im[i + 1] + wi * re[i + 1];
            re[i + 1] = re[i] - tr;
            im[i + 1] = im[i] - ti;
            re[i] += tr;
            im[i] += ti;
        }
        len = 4;
    }
    for (; len < m; len <<= 2) {
        const uint32_t h = len >> 1, s1 = (2u * m) / len, s2 = m / len, step = 2u * len;
        for (j = 0; j < h; j++) {
            const float w1r = cs[j * s1], w1i = -sn[j * s1];
            const float w2r = cs[j * s2], w2i = -sn[j * s2];
            const float w3r = cs[(j + h) * s2], w3i = -sn[(j + h) * s2];
            /* the four points through pointers (VLDR/VSTR take no register
             * offset), each advanced by step */
            float *r0 = re + j, *r1 = r0 + h, *r2 = r0 + len, *r3 = r2 + h;
            float *i0 = im + j, *i1 = i0 + h, *i2 = i0 + len, *i3 = i2 + h;
            for (i = j; i < m; i += step) {
                float x0r = *r0, x0i = *i0, x1r = *r1, x1i = *i1;
                float x2r = *r2, x2i = *i2, x3r = *r3, x3i = *i3;
                float tr, ti;
                /* pass len: (0, 1) and (2, 3), twiddle j */
                tr = w1r * x1r - w1i * x1i;
                ti = w1r * x1i + w1i * x1r;
                x1r = x0r - tr;
                x1i = x0i - ti;
                x0r = x0r + tr;
                x0i = x0i + ti;
                tr = w1r * x3r - w1i * x3i;
                ti = w1r * x3i + w1i * x3r;
                x3r = x2r - tr;
                x3i = x2i - ti;
                x2r = x2r + tr;
                x2i = x2i + ti;
                /* pass 2 len: (0, 2), twiddle j, and (1, 3), twiddle j + h */
                tr = w2r * x2r - w2i * x2i;
                ti = w2r * x2i + w2i * x2r;
                *r2 = x0r - tr;
                *i2 = x0i - ti;
                *r0 = x0r + tr;
                *i0 = x0i + ti;
                tr = w3r * x3r - w3i * x3i;
                ti = w3r * x3i + w3i * x3r;
                *r3 = x1r - tr;
                *i3 = x1i - ti;
                *r1 = x1r + tr;
                *i1 = x1i + ti;
                r0 += step; r1 += step; r2 += step; r3 += step;
                i0 += step; i1 += step; i2 += step; i3 += step;
            }
        }
    }
}

/* ln(x) for a positive normal float, to within 0.06 (0.26 dB): x = m 2^e with
 * m in [0.5, 1), and log2(m) taken as the chord 2m - 2. Exact at powers of two and
 * continuous; the level control needs no more, and it keeps the device's front end
 * within its instruction budget (a libm logf per frame would not). */
static float kws_fe_rough_ln(float x)
{
    uint32_t b;
    int32_t e;
    float m;
    memcpy(&b, &x, sizeof b);
    e = (int32_t)((b >> 23) & 0xffu) - 126;
    b = (b & 0x007fffffu) | 0x3f000000u;
    memcpy(&m, &b, sizeof m);
    return ((float)e + 2.0f * m - 2.0f) * 0.693147181f;
}

/* Level control of one frame of log energies, in place (kws_frontend.h).
 * sum = the frame's mel energies added up; floored bands stay at the floor. */
static void kws_fe_level(kws_frontend *fe, float sum, float *out)
{
    const uint32_t n = fe->cfg.n_mels;
    const float lf = fe->log_floor;
    const float level = kws_fe_rough_ln(sum > fe->cfg.energy_floor ? sum : fe->cfg.energy_floor);
    float noise, gain = 0.0f;
    uint32_t k;
    int onset;

    noise = fe->lc_started ? fe->lc_noise + KWS_LC_NOISE_RISE : level;
    fe->lc_started = 1u;
    if (level < noise) noise = level;
    if (noise < KWS_LC_MIN_LEVEL - KWS_LC_ONSET) noise = KWS_LC_MIN_LEVEL - KWS_LC_ONSET;
    fe->lc_noise = noise;
    onset = level > noise + KWS_LC_ONSET && level > KWS_LC_MIN_LEVEL;
    if (!fe->lc_known) {
        /* The first onset that lasts KWS_LC_ONSET_FRAMES frames (a click does not). */
        if (onset) {
            fe->lc_run_max = fe->lc_run == 0u || level > fe->lc_run_max ? level : fe->lc_run_max;
            if (++fe->lc_run >= KWS_LC_ONSET_FRAMES) {
                fe->lc_speech = fe->lc_run_max + KWS_LC_HEADROOM;
                fe->lc_known = 1u;
            }
        } else {
            fe->lc_run = 0u;
        }
    } else if (level > fe->lc_speech) {
        fe->lc_speech += KWS_LC_ATTACK * (level - fe->lc_speech);
    } else if (level > fe->lc_speech - KWS_LC_WINDOW && onset) {
        fe->lc_speech += KWS_LC_RELEASE * (level - fe->lc_speech);
    } else {
        fe->lc_speech -= KWS_LC_LEAK;
        if (fe->lc_speech < KWS_LC_MIN_LEVEL) fe->lc_speech = KWS_LC_MIN_LEVEL;
    }
    if (fe->lc_known) {
        gain = KWS_LC_TARGET - fe->lc_speech;
        if (gain < 0.0f) gain = 0.0f;
        if (gain > KWS_LC_MAX_GAIN) gain = KWS_LC_MAX_GAIN;
    }
    if (gain > 0.0f)
        for (k = 0; k < n; k++)
            if (out[k] > lf) out[k] += gain;
}

/* The frame in fe->pending (frame_length samples) -> n_mels log energies. */
static void kws_fe_frame(kws_frontend *fe, float *out)
{
    const uint32_t len = fe->cfg.frame_length, m = fe->half;
    const int16_t *s = fe->pending;
    const float *w = fe->window, *cs = fe->cos_t, *sn = fe->sin_t;
    float *re = fe->re, *im = fe->im, *pw = fe->power;
    const float scale = 1.0f / 32768.0f; /* exact */
    float mean, floor_v = fe->cfg.energy_floor, sum_e = 0.0f;
    int32_t sum = 0;
    uint32_t i, k;

    /* DC mean from the exact integer sum (|sum| <= 8192 * 32768 < 2^31). */
    for (i = 0; i < len; i++) sum += s[i];
    mean = (float)sum * fe->inv_scale;

    /* Window, zero-pad and pack: z[n] = x[2n] + i x[2n+1]. */
    for (i = 0; 2u * i + 1u < len; i++) {
        re[i] = ((float)s[2u * i] * scale - mean) * w[2u * i];
        im[i] = ((float)s[2u * i + 1u] * scale - mean) * w[2u * i + 1u];
    }
    for (; i < m; i++) {
        uint32_t e = 2u * i, o = e + 1u;
        re[i] = e < len ? ((float)s[e] * scale - mean) * w[e] : 0.0f;
        im[i] = o < len ? ((float)s[o] * scale - mean) * w[o] : 0.0f;
    }

    kws_fe_fft(fe);

    /* Split into the real signal's spectrum; keep only the power. */
    pw[0] = (re[0] + im[0]) * (re[0] + im[0]);
    pw[m] = (re[0] - im[0]) * (re[0] - im[0]);
    for (k = 1; k < m; k++) {
        float ar = re[k], ai = im[k], br = re[m - k], bi = im[m - k];
        float er = 0.5f * (ar + br), ei = 0.5f * (ai - bi); /* even part */
        float or_ = 0.5f * (ai + bi), oi = -0.5f * (ar - br); /* odd part */
        float c = cs[k], sv = sn[k];
        float xr = er + c * or_ + sv * oi;
        float xi = ei + c * oi - sv * or_;
        pw[k] = xr * xr + xi * xi;
    }

    /* Sparse mel filters, log with floor. */
    for (k = 0; k < fe->cfg.n_mels; k++) {
        const kws_fe_band *b = &fe->band[k];
        const float *wt = fe->weight + b->off;
        const float *p = pw + b->start;
        float e = 0.0f;
        for (i = 0; i < b->len; i++) e += wt[i] * p[i];
        out[k] = e > floor_v ? logf(e) : fe->log_floor;
        sum_e += e;
    }
    if (fe->cfg.level_control != 0u) kws_fe_level(fe, sum_e, out);
}

/* ------------------------------------------------------------------------ */
/* Streaming                                                                */
/* ------------------------------------------------------------------------ */

kws_status kws_frontend_process(kws_frontend *fe, const int16_t *pcm, uint32_t n_samples,
                                float *feats, uint32_t max_frames, uint32_t *n_consumed,
                                uint32_t *n_frames)
{
    uint32_t used = 0, frames = 0, len, shift, n_mels;

    if (n_consumed != NULL) *n_consumed = 0;
    if (n_frames != NULL) *n_frames = 0;
    if (fe == NULL || n_consumed == NULL || n_frames == NULL) return KWS_ERR_ARG;
    if ((pcm == NULL && n_samples > 0u) || (feats == NULL && max_frames > 0u)) return KWS_ERR_ARG;

    len = fe->cfg.frame_length;
    shift = fe->cfg.frame_shift;
    n_mels = fe->cfg.n_mels;
    for (;;) {
        uint32_t need = len - fe->fill; /* >= 1 */
        uint32_t avail = n_samples - used;
        if (avail < need || frames == max_frames) {
            /* Buffer what we can without completing a frame. */
            uint32_t take = avail < need ? avail : need - 1u;
            if (take > 0u) memcpy(fe->pending + fe->fill, pcm + used, (size_t)take * sizeof(int16_t));
            fe->fill += take;
            used += take;
            break;
        }
        memcpy(fe->pending + fe->fill, pcm + used, (size_t)need * sizeof(int16_t));
        used += need;
        kws_fe_frame(fe, feats + (size_t)frames * n_mels);
        frames++;
        memmove(fe->pending, fe->pending + shift, (size_t)(len - shift) * sizeof(int16_t));
        fe->fill = len - shift;
    }
    *n_consumed = used;
    *n_frames = frames;
    return KWS_OK;
}
