/*
 * kws_net.c - the .kwn net-blob reader, TFLite-reference int8 kernels and the
 * streaming window over the acoustic network.
 *
 * Strict C99. No allocation, no globals, no I/O. The parser validates every
 * length, offset and range against docs/kwn-format.md so that the kernels can
 * index the blob's arrays without further checks and no int32 arithmetic
 * overflows. The kernels follow TFLite's reference int8 kernels
 * (tensorflow/lite/kernels/internal/reference/integer_ops/conv.h,
 * depthwise_conv.h, reference/softmax.h and gemmlowp's fixedpoint.h) operation
 * for operation, with shifts of negative numbers written portably.
 */
#include "kws_net.h"

#include <math.h>
#include <string.h>

#define KWS_STATIC_ASSERT(cond, name) typedef char kws_net_static_assert_##name[(cond) ? 1 : -1]

KWS_STATIC_ASSERT(sizeof(kws_net_layer_rec) == 48, layer_rec_size);
KWS_STATIC_ASSERT(offsetof(kws_net_layer_rec, kernel) == 2, layer_kernel);
KWS_STATIC_ASSERT(offsetof(kws_net_layer_rec, act_min) == 12, layer_act_min);
KWS_STATIC_ASSERT(offsetof(kws_net_layer_rec, input_offset) == 16, layer_input_offset);
KWS_STATIC_ASSERT(offsetof(kws_net_layer_rec, weights_offset) == 24, layer_weights);
KWS_STATIC_ASSERT(offsetof(kws_net_layer_rec, shift_offset) == 36, layer_shift);
KWS_STATIC_ASSERT(offsetof(kws_net_layer_rec, depth_multiplier) == 40, layer_dm);
KWS_STATIC_ASSERT(sizeof(float) == 4, float_is_binary32);

#define KWN_HEADER_SIZE 64u
#define KWN_SOFTMAX_SIZE 16u
#define KWN_TABLE_SIZE (256u * 4u)
/* |acc| <= K * in_ch * 255 * 128 must stay below 2^31 */
#define KWN_MAX_DOT 65536u
/* gemmlowp's softmax accumulates in Q12.19: at most 4096 classes */
#define KWN_MAX_PHONES 4096u
/* largest tensor (frames x channels), so that sizes fit a 32-bit size_t */
#define KWN_MAX_TENSOR (1u << 28)

static const uint8_t kwn_magic[4] = { 0x4Bu, 0x57u, 0x53u, 0x4Eu }; /* "KWSN" */

static int host_is_little_endian(void)
{
    const uint32_t one = 1u;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1u;
}

static uint16_t rd_u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t rd_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static int32_t rd_i32(const uint8_t *p) { int32_t v; memcpy(&v, p, 4); return v; }
static float rd_f32(const uint8_t *p) { float v; memcpy(&v, p, 4); return v; }

/* [off, off + size) 4-aligned, after the header, inside the file. */
static int section_ok(uint32_t off, uint64_t size, uint32_t file_size)
{
    if ((off & 3u) != 0u || off < KWN_HEADER_SIZE) return 0;
    return (uint64_t)off + size <= (uint64_t)file_size;
}

static int finite_pos(float x) { return x == x && x > 0.0f && x < 3.0e38f; }

kws_status kws_net_parse(const uint8_t *blob, size_t len, uint32_t expected_phone_set_id,
                         kws_net *net)
{
    uint32_t file_size, crc, i, j, layers_off, softmax_off, table_off;
    uint32_t frames, ch, max_act = 0, max_ch = 0;
    static const uint8_t zero4[4] = { 0, 0, 0, 0 };
    kws_net n;

    if (blob == NULL || net == NULL) return KWS_ERR_ARG;
    if (len < KWN_HEADER_SIZE) return KWS_ERR_TRUNCATED;
    if (((uintptr_t)blob & 3u) != 0u) return KWS_ERR_ALIGN;
    if (!host_is_little_endian()) return KWS_ERR_UNSUPPORTED;
    if (memcmp(blob, kwn_magic, 4) != 0) return KWS_ERR_MAGIC;
    memset(&n, 0, sizeof n);
    n.version_major = rd_u16(blob + 4);
    n.version_minor = rd_u16(blob + 6);
    if (n.version_major != KWS_NET_FORMAT_MAJOR) return KWS_ERR_VERSION;
    file_size = rd_u32(blob + 8);
    if ((uint64_t)file_size > (uint64_t)len) return KWS_ERR_TRUNCATED;
    if (file_size < KWN_HEADER_SIZE || (file_size & 3u) != 0u) return KWS_ERR_CORRUPT;
    crc = kws_crc32(0u, blob, 12);
    crc = kws_crc32(crc, zero4, 4);
    crc = kws_crc32(crc, blob + 16, (size_t)file_size - 16u);
    if (crc != rd_u32(blob + 12)) return KWS_ERR_CRC;

    n.data = blob;
    n.size = file_size;
    n.phone_set_id = rd_u32(blob + 16);
    n.n_phones = rd_u16(blob + 20);
    n.n_feat = rd_u16(blob + 22);
    n.chunk_frames = rd_u16(blob + 24);
    n.context_frames = rd_u16(blob + 26);
    n.lookahead_frames = rd_u16(blob + 28);
    n.in_frames = rd_u16(blob + 30);
    n.input_scale = rd_f32(blob + 32);
    n.input_zero_point = rd_i32(blob + 36);
    n.output_scale = rd_f32(blob + 40);
    n.output_zero_point = rd_i32(blob + 44);
    n.n_layers = rd_u16(blob + 48);
    layers_off = rd_u32(blob + 52);
    softmax_off = rd_u32(blob + 56);
    table_off = rd_u32(blob + 60);
    if (expected_phone_set_id != 0u && n.phone_set_id != expected_phone_set_id)
        return KWS_ERR_PHONESET;
    if (rd_u16(blob + 50) != 0u) return KWS_ERR_UNSUPPORTED; /* flags */

    if (n.n_phones < 1u || n.n_feat < 1u || n.chunk_frames < 1u || n.context_frames < 1u ||
        n.lookahead_frames >= n.context_frames ||
        (uint32_t)n.in_frames != (uint32_t)n.chunk_frames + n.context_frames - 1u)
        return KWS_ERR_CORRUPT;
    if (n.n_phones > KWN_MAX_PHONES ||
        (uint32_t)n.in_frames * n.n_feat > KWN_MAX_TENSOR)
        return KWS_ERR_UNSUPPORTED;
    if (!finite_pos(n.input_scale) || !finite_pos(n.output_scale)) return KWS_ERR_CORRUPT;
    if (n.input_zero_point < -128 || n.input_zero_point > 127) return KWS_ERR_CORRUPT;
    /* TFLite's int8 softmax writes scale 1/256, zero point -128. */
    if (n.output_zero_point != -128) return KWS_ERR_UNSUPPORTED;
    if (n.n_layers < 1u || n.n_layers > KWS_NET_MAX_LAYERS) return KWS_ERR_CORRUPT;
    if (!section_ok(layers_off, (uint64_t)n.n_layers * sizeof(kws_net_layer_rec), file_size) ||
        !section_ok(softmax_off, KWN_SOFTMAX_SIZE, file_size) ||
        !section_ok(table_off, KWN_TABLE_SIZE, file_size))
        return KWS_ERR_CORRUPT;

    n.softmax_multiplier = rd_i32(blob + softmax_off);
    n.softmax_left_shift = rd_i32(blob + softmax_off + 4);
    n.softmax_diff_min = rd_i32(blob + softmax_off + 8);
    if (n.softmax_multiplier < 0 || n.softmax_left_shift < 0 || n.softmax_left_shift > 31 ||
        n.softmax_diff_min > 0)
        return KWS_ERR_CORRUPT;
    n.logpost = (const float *)(const void *)(blob + table_off);
    for (i = 0; i < 256u; i++) {
        float v = n.logpost[i];
        if (!(v == v) || v > 1.0f || v < -3.0e38f) return KWS_ERR_CORRUPT;
    }

    n.layers = (const kws_net_layer_rec *)(const void *)(blob + layers_off);
    frames = n.in_frames;
    ch = n.n_feat;
    for (i = 0; i < n.n_layers; i++) {
        const kws_net_layer_rec *L = &n.layers[i];
        uint64_t wsize, chsize = (uint64_t)L->out_ch * 4u;
        const int32_t *shift;
        const int32_t *mult;
        if (L->type != KWS_NET_LAYER_CONV && L->type != KWS_NET_LAYER_DEPTHWISE)
            return KWS_ERR_UNSUPPORTED;
        if (L->in_frames != frames || L->in_ch != ch) return KWS_ERR_CORRUPT;
        if (L->kernel < 1u || L->kernel > L->in_frames || L->out_ch < 1u ||
            (uint32_t)L->out_frames != (uint32_t)L->in_frames - L->kernel + 1u)
            return KWS_ERR_CORRUPT;
        if (L->act_min < -128 || L->act_max > 127 || L->act_min > L->act_max) return KWS_ERR_CORRUPT;
        if (L->input_offset < -127 || L->input_offset > 128 ||
            L->output_offset < -128 || L->output_offset > 127)
            return KWS_ERR_CORRUPT;
        if (L->reserved0 != 0u || L->reserved1 != 0u) return KWS_ERR_UNSUPPORTED;
        if (L->type == KWS_NET_LAYER_CONV) {
            if (L->depth_multiplier != 1u) return KWS_ERR_CORRUPT;
            if ((uint32_t)L->kernel * L->in_ch > KWN_MAX_DOT) return KWS_ERR_UNSUPPORTED;
            wsize = (uint64_t)L->out_ch * L->kernel * L->in_ch;
        } else {
            if (L->depth_multiplier < 1u ||
                (uint32_t)L->out_ch != (uint32_t)L->in_ch * L->depth_multiplier)
                return KWS_ERR_CORRUPT;
            wsize = (uint64_t)L->kernel * L->out_ch;
        }
        if (!section_ok(L->weights_offset, wsize, file_size) ||
            !section_ok(L->bias_offset, chsize, file_size) ||
            !section_ok(L->multiplier_offset, chsize, file_size) ||
            !section_ok(L->shift_offset, chsize, file_size))
            return KWS_ERR_CORRUPT;
        mult = (const int32_t *)(const void *)(blob + L->multiplier_offset);
        shift = (const int32_t *)(const void *)(blob + L->shift_offset);
        for (j = 0; j < L->out_ch; j++) {
            if (mult[j] < 0 || shift[j] < -31 || shift[j] > 30) return KWS_ERR_CORRUPT;
        }
        frames = L->out_frames;
        ch = L->out_ch;
        if ((uint32_t)frames * ch > KWN_MAX_TENSOR) return KWS_ERR_UNSUPPORTED;
        if ((uint32_t)frames * ch > max_act) max_act = (uint32_t)frames * ch;
        if (ch > max_ch) max_ch = ch;
    }
    if (frames != n.chunk_frames || ch != n.n_phones) return KWS_ERR_CORRUPT;
    n.max_act = max_act;
    n.max_ch = max_ch;
    *net = n;
    return KWS_OK;
}

/* ------------------------------------------------------------------------ */
/* TFLite / gemmlowp fixed-point arithmetic                                  */
/* ------------------------------------------------------------------------ */

/* Arithmetic shift right of a signed value (floor division by 2^e), portable. */
static int32_t asr32(int32_t x, int e)
{
    return x >= 0 ? (int32_t)((uint32_t)x >> e) : (int32_t)~(~(uint32_t)x >> e);
}

/* int32 from an int64 known to be in range (or wrap like two's complement). */
static int32_t wrap32(int64_t v)
{
    uint32_t u = (uint32_t)((uint64_t)v & 0xFFFFFFFFu);
    return u <= 0x7FFFFFFFu ? (int32_t)u : (int32_t)(int64_t)((int64_t)u - 4294967296LL);
}

/* SaturatingRoundingDoublingHighMul. gemmlowp computes trunc((ab + nudge) / 2^31)
 * with nudge = 2^30 for ab >= 0 and 1 - 2^30 below; both cases equal
 * floor((ab + 2^30) / 2^31) (for s < 0, trunc(s / M) = floor((s + M - 1) / M)),
 * which is bits 31..62 of the sum and fits int32 unless a = b = INT32_MIN:
 * no 64-bit division (a library call on 32-bit targets). */
static int32_t srdhm(int32_t a, int32_t b)
{
    uint64_t u;
    uint32_t r;
    if (a == b && a == INT32_MIN) return INT32_MAX;
    u = (uint64_t)((int64_t)a * (int64_t)b) + ((uint64_t)1 << 30);
    r = (uint32_t)(u >> 31);
    return r <= 0x7FFFFFFFu ? (int32_t)r : (int32_t)(r - 0x80000000u) - INT32_MAX - 1;
}

static int32_t rdbpot(int32_t x, int e) /* RoundingDivideByPOT, 0 <= e <= 31 */
{
    int32_t mask, remainder, threshold;
    if (e == 0) return x;
    mask = (int32_t)(((int64_t)1 << e) - 1);
    remainder = (int32_t)((uint32_t)x & (uint32_t)mask);
    threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return asr32(x, e) + (remainder > threshold ? 1 : 0);
}

static int32_t shl_wrap(int32_t x, int e) /* x * 2^e as int32 arithmetic would (wrapping) */
{
    return wrap32((int64_t)((uint64_t)(uint32_t)x << e));
}

/* MultiplyByQuantizedMultiplier (TFLite, double rounding). */
static int32_t mbqm(int32_t x, int32_t mult, int32_t shift)
{
    int left = shift > 0 ? (int)shift : 0;
    int right = shift > 0 ? 0 : (int)-shift;
    return rdbpot(srdhm(shl_wrap(x, left), mult), right);
}

/* gemmlowp SaturatingRoundingMultiplyByPOT<e> for e > 0 */
static int32_t sat_shl(int32_t x, int e)
{
    const int32_t threshold = (int32_t)(((int64_t)1 << (31 - e)) - 1);
    if (x > threshold) return INT32_MAX;
    if (x < -threshold) return INT32_MIN;
    return shl_wrap(x, e);
}

/* gemmlowp exp_on_interval_between_negative_one_quarter_and_0_excl, Q0.31 */
static int32_t exp_quarter(int32_t a)
{
    const int32_t constant_term = 1895147668;   /* exp(-1/8) */
    const int32_t constant_1_over_3 = 715827883;
    int32_t x = a + (1 << 28);
    int32_t x2 = srdhm(x, x);
    int32_t x3 = srdhm(x2, x);
    int32_t x4 = srdhm(x2, x2);
    int32_t x4_over_4 = rdbpot(x4, 2);
    int32_t poly = rdbpot(srdhm(x4_over_4 + x3, constant_1_over_3) + x2, 1);
    return constant_term + srdhm(constant_term, x + poly);
}

/* gemmlowp exp_on_negative_values for FixedPoint<int32, 5> -> Q0.31 */
static int32_t exp_neg_q5(int32_t a)
{
    static const int32_t mults[7] = { 1672461947, 1302514674, 790015084, 290630308,
                                      39332535, 720401, 242 };
    const int32_t one_quarter = 1 << 24;
    const int32_t mask = one_quarter - 1;
    int32_t a_mod = (int32_t)((uint32_t)a & (uint32_t)mask) - one_quarter;
    int32_t result = exp_quarter(sat_shl(a_mod, 5)); /* Rescale<0> from 5 integer bits */
    int32_t remainder = wrap32((int64_t)a_mod - (int64_t)a);
    int k;
    for (k = 0; k < 7; k++) { /* exponents -2 .. +4: bit 26 + exponent */
        if (((uint32_t)remainder & ((uint32_t)1 << (24 + k))) != 0u)
            result = srdhm(result, mults[k]);
    }
    if (a == 0) result = INT32_MAX;
    return result;
}

/* gemmlowp one_over_one_plus_x_for_x_in_0_1, Q0.31 in and out */
static int32_t one_over_one_plus_x(int32_t a)
{
    const int32_t c48_17 = 1515870810;     /* Q2.29 */
    const int32_t cneg32_17 = -1010580540; /* Q2.29 */
    int64_t sum = (int64_t)a + INT32_MAX;
    int32_t half_den = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2); /* RoundingHalfSum */
    int32_t x = c48_17 + srdhm(half_den, cneg32_17);
    int i;
    for (i = 0; i < 3; i++) {
        int32_t hdx = srdhm(half_den, x);
        int32_t one_minus = (1 << 29) - hdx;
        x = x + sat_shl(srdhm(x, one_minus), 2);
    }
    return sat_shl(x, 1);
}

static int clz32(uint32_t x)
{
    int n = 0;
    if (x == 0u) return 32;
    while ((x & 0x80000000u) == 0u) { x <<= 1; n++; }
    return n;
}

/* reference_ops::Softmax, int8 in, int8 out (scale 1/256, zero point -128) */
static void softmax_row(const kws_net *net, const int8_t *in, int8_t *out, uint32_t depth)
{
    const int32_t mult = net->softmax_multiplier;
    const int left = (int)net->softmax_left_shift;
    const int32_t diff_min = net->softmax_diff_min;
    int32_t max_in = -128, sum = 0, shifted_scale;
    int headroom, bits_over_unit, out_shift;
    uint32_t c;
    for (c = 0; c < depth; c++)
        if (in[c] > max_in) max_in = in[c];
    for (c = 0; c < depth; c++) {
        int32_t diff = (int32_t)in[c] - max_in;
        if (diff >= diff_min) {
            int32_t e = exp_neg_q5(srdhm(shl_wrap(diff, left), mult));
            sum = wrap32((int64_t)sum + rdbpot(e, 12)); /* Rescale<12> */
        }
    }
    headroom = clz32((uint32_t)sum);
    bits_over_unit = 12 - headroom;
    shifted_scale = one_over_one_plus_x(
        wrap32((int64_t)(((uint64_t)(uint32_t)sum << headroom) & 0xFFFFFFFFu) - ((int64_t)1 << 31)));
    out_shift = bits_over_unit + 31 - 8;
    for (c = 0; c < depth; c++) {
        int32_t diff = (int32_t)in[c] - max_in;
        int32_t v = -128;
        if (diff >= diff_min) {
            int32_t e = exp_neg_q5(srdhm(shl_wrap(diff, left), mult));
            int32_t p = srdhm(shifted_scale, e);
            int32_t u = out_shift >= 32 ? 0 : (out_shift <= 0 ? p : rdbpot(p, out_shift));
            v = u - 128;
            if (v > 127) v = 127;
            if (v < -128) v = -128;
        }
        out[c] = (int8_t)v;
    }
}

/* ------------------------------------------------------------------------ */
/* Layers                                                                    */
/* ------------------------------------------------------------------------ */

static int8_t requant(int32_t acc, int32_t bias, int32_t mult, int32_t shift,
                      const kws_net_layer_rec *L)
{
    int64_t a = (int64_t)acc + bias;
    int32_t v;
    if (a > INT32_MAX) a = INT32_MAX;
    if (a < INT32_MIN) a = INT32_MIN;
    v = mbqm((int32_t)a, mult, shift);
    if (v > INT32_MAX - 128) v = INT32_MAX - 128; /* keep v + offset in range */
    if (v < INT32_MIN + 128) v = INT32_MIN + 128;
    v += L->output_offset;
    if (v < L->act_min) v = L->act_min;
    if (v > L->act_max) v = L->act_max;
    return (int8_t)v;
}

/* acc = sum w * (x + ioff) is computed as sum w * x + ioff * sum w: the same
 * integer exactly (the parser bounds it below 2^31), but the inner loop becomes
 * a plain int8 dot product that compilers vectorise (SMLAD on Cortex-M4). */
static void run_layer(const kws_net *net, const kws_net_layer_rec *L, const int8_t *in, int8_t *out,
                      int32_t *acc, int32_t *wsum)
{
    const uint8_t *d = net->data;
    const int8_t *w = (const int8_t *)(const void *)(d + L->weights_offset);
    const int32_t *bias = (const int32_t *)(const void *)(d + L->bias_offset);
    const int32_t *mult = (const int32_t *)(const void *)(d + L->multiplier_offset);
    const int32_t *shift = (const int32_t *)(const void *)(d + L->shift_offset);
    const uint32_t K = L->kernel, cin = L->in_ch, cout = L->out_ch, T = L->out_frames;
    const int32_t ioff = L->input_offset;
    uint32_t t, o, k, c;
    if (L->type == KWS_NET_LAYER_CONV) {
        const uint32_t n = K * cin; /* K consecutive frames = K*cin contiguous bytes */
        for (o = 0; o < cout; o++) {
            const int8_t *wo = w + (size_t)o * n;
            int32_t sw = 0;
            for (k = 0; k < n; k++) sw += wo[k];
            wsum[o] = sw;
        }
        for (t = 0; t < T; t++) {
            const int8_t *x = in + (size_t)t * cin;
            for (o = 0; o < cout; o++) {
                const int8_t *wo = w + (size_t)o * n;
                int32_t dot = 0;
                for (k = 0; k < n; k++) dot += (int32_t)wo[k] * (int32_t)x[k];
                out[(size_t)t * cout + o] =
                    requant((int32_t)((int64_t)dot + (int64_t)ioff * wsum[o]), bias[o], mult[o], shift[o], L);
            }
        }
    } else {
        const uint32_t dm = L->depth_multiplier;
        for (c = 0; c < cout; c++) {
            int32_t sw = 0;
            for (k = 0; k < K; k++) sw += w[(size_t)k * cout + c];
            wsum[c] = sw;
        }
        for (t = 0; t < T; t++) {
            for (o = 0; o < cout; o++) acc[o] = 0;
            for (k = 0; k < K; k++) {
                const int8_t *x = in + ((size_t)t + k) * cin;
                const int8_t *wk = w + (size_t)k * cout;
                if (dm == 1u) {
                    for (c = 0; c < cout; c++) acc[c] += (int32_t)wk[c] * (int32_t)x[c];
                } else {
                    for (o = 0; o < cout; o++) acc[o] += (int32_t)wk[o] * (int32_t)x[o / dm];
                }
            }
            for (o = 0; o < cout; o++)
                out[(size_t)t * cout + o] =
                    requant((int32_t)((int64_t)acc[o] + (int64_t)ioff * wsum[o]), bias[o], mult[o], shift[o], L);
        }
    }
}

size_t kws_net_scratch_bytes(const kws_net *net)
{
    if (net == NULL) return 0;
    return 8u * (size_t)net->max_ch + 2u * (((size_t)net->max_act + 3u) & ~(size_t)3u);
}

kws_status kws_net_invoke(const kws_net *net, const int8_t *input, int8_t *output,
                          void *scratch, size_t scratch_bytes)
{
    int8_t *buf[2];
    int32_t *acc, *wsum;
    const int8_t *cur = input;
    uint32_t i, t;
    if (net == NULL || input == NULL || output == NULL || scratch == NULL) return KWS_ERR_ARG;
    if (((uintptr_t)scratch & 3u) != 0u) return KWS_ERR_ALIGN;
    if (scratch_bytes < kws_net_scratch_bytes(net)) return KWS_ERR_NOMEM;
    acc = (int32_t *)scratch;
    wsum = acc + net->max_ch;
    buf[0] = (int8_t *)(wsum + net->max_ch);
    buf[1] = buf[0] + ((net->max_act + 3u) & ~3u);
    for (i = 0; i < net->n_layers; i++) {
        run_layer(net, &net->layers[i], cur, buf[i & 1u], acc, wsum);
        cur = buf[i & 1u];
    }
    for (t = 0; t < net->chunk_frames; t++)
        softmax_row(net, cur + (size_t)t * net->n_phones, output + (size_t)t * net->n_phones,
                    net->n_phones);
    return KWS_OK;
}

void kws_net_quantize_frame(const kws_net *net, const float *x, int8_t *q)
{
    uint32_t i;
    const float zp = (float)net->input_zero_point;
    for (i = 0; i < net->n_feat; i++) {
        float v = x[i] / net->input_scale;
        if (!(v == v)) {
            q[i] = (int8_t)net->input_zero_point;
            continue;
        }
        /* round half to even, as numpy's round: for |v| < 2^22, v + 1.5 * 2^23
         * lies in [2^23, 2^24), where the float spacing is 1, so the sum rounds
         * v to an integer, ties to even (1.5 * 2^23 is even), and the
         * subtraction is exact (nearbyintf's result, in the default rounding
         * mode, without a library call); larger |v| clip below anyway */
        if (v >= 4194304.0f) v = 127.0f;
        else if (v <= -4194304.0f) v = -128.0f;
        else v = ((v + 12582912.0f) - 12582912.0f) + zp;
        if (v >= 127.0f) q[i] = 127;
        else if (v <= -128.0f) q[i] = -128;
        else q[i] = (int8_t)(int32_t)v;
    }
}

/* ------------------------------------------------------------------------ */
/* Incremental streaming                                                      */
/* ------------------------------------------------------------------------ */
/*
 * Every layer is a 'valid' convolution over time with stride 1, so network
 * output frame p depends only on (padded) input frames p .. p + context - 1,
 * whatever window it is computed in. The stream therefore computes each
 * layer's output frame once: layer l keeps its last kernel - 1 input frames
 * (history) and, whenever up to KWS_NET_BLOCK new frames have reached layer 0
 * (or an output chunk is due), runs every layer over just the new frames.
 * The padded input sequence is the window approach's: left padding with
 * copies of the first frame (each pushed through layer 0 like a real frame),
 * and at flush copies of the last frame, as many as the owed rows need. The
 * integer arithmetic is the same as kws_net_invoke's (sum w * x + ioff * sum w
 * + bias, the first two folded into one per-channel constant when that
 * cannot overflow int32), so outputs are bit-identical to the window.
 * With the Arm DSP extension the kernels use SMLAD on sign-extended byte
 * pairs (SXTB16); the portable loops elsewhere.
 */

KWS_STATIC_ASSERT(KWS_NET_BLOCK >= 1u && KWS_NET_BLOCK <= 1024u, block_size);

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__GNUC__)
#include <arm_acle.h>
#define KWS_NET_DSP 1
/* SXTB16 of the operand rotated right by 8: bytes 1 and 3, sign-extended. */
static inline uint32_t sxtb16_ror8(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
static uint32_t ld32(const void *p) { uint32_t v; memcpy(&v, p, 4); return v; }
/* two words from a word-aligned pointer in one instruction, pointer += 2 */
static inline void ldrd_inc(const int32_t **p, int32_t *a, int32_t *b)
{
    __asm__("ldrd %0, %1, [%2], #8" : "=r"(*a), "=r"(*b), "+r"(*p) : : "memory");
}
#else
#define KWS_NET_DSP 0
#endif

typedef struct stream_layer {
    const int8_t *w;
    const int32_t *bias, *mult, *shift;
    int32_t *fb;          /* folded constant per output channel */
    int8_t *in;           /* input frames: [rows][in_ch] (conv), [in_ch][rows] (depthwise) */
    uint32_t have;        /* input rows held */
    uint32_t rows;        /* capacity: kernel - 1 + KWS_NET_BLOCK */
    uint16_t K, cin, cout, dm;
    uint32_t n;           /* conv: K * cin */
    int32_t ooff, amin, amax;
    uint32_t fast;        /* bit 0: fb includes the bias and fb + dot fits int32; bit 1: see init */
    uint32_t type;
} stream_layer;

struct kws_net_stream {
    const kws_net *net;
    uint32_t left;        /* context - 1 - lookahead: frames of left padding */
    uint32_t ctx;
    uint32_t started;
    uint32_t n_real;      /* real frames pushed */
    uint32_t n_x;         /* padded frames fed to layer 0 */
    uint32_t y_total;     /* output frames computed */
    uint32_t emitted;     /* output frames returned */
    int8_t *last;         /* [n_feat] last quantised frame */
    int8_t *out_in;       /* logits rows of the last layer [BLOCK][n_phones] */
    int8_t *qout;         /* [chunk][n_phones] softmax output not yet returned */
    int32_t *exp_tab;     /* [256]: softmax exp term of diff = -d */
    int32_t *xexp;        /* DSP: eight input windows unpacked to int16 pairs */
    stream_layer *L;      /* [n_layers] */
};

static size_t align8(size_t x) { return (x + 7u) & ~(size_t)7u; }

/* Memory plan, shared by size and init: returns the bytes needed and, when s is
 * given, points its buffers into mem. */
static size_t stream_plan(const kws_net *net, kws_net_stream *s, uint8_t *mem)
{
    size_t off = align8(sizeof(kws_net_stream)), tsize = 0, max_n = 0, toff[2];
    uint32_t i;
    /* transient buffers: inputs of kernel-1 layers after the first (and the
     * logits), which are consumed completely in the pass that fills them;
     * consecutive ones alternate between two buffers */
    for (i = 1; i <= net->n_layers; i++) {
        uint32_t ch = net->layers[i - 1].out_ch;
        if (i == net->n_layers || net->layers[i].kernel == 1u) {
            size_t b = (size_t)KWS_NET_BLOCK * ch;
            if (b > tsize) tsize = b;
        }
    }
    for (i = 0; i < net->n_layers; i++) {
        const kws_net_layer_rec *R = &net->layers[i];
        if (R->type == KWS_NET_LAYER_CONV && (size_t)R->kernel * R->in_ch > max_n)
            max_n = (size_t)R->kernel * R->in_ch;
    }
    if (s) {
        s->L = (stream_layer *)(void *)(mem + off);
        memset(s->L, 0, (size_t)net->n_layers * sizeof(stream_layer));
    }
    off += align8((size_t)net->n_layers * sizeof(stream_layer));
    toff[0] = off; off += align8(tsize);
    toff[1] = off; off += align8(tsize);
    if (s) {
        s->last = (int8_t *)(mem + off);
        s->exp_tab = (int32_t *)(void *)(mem + off + align8(net->n_feat));
        s->qout = (int8_t *)(mem + off + align8(net->n_feat) + 1024u);
    }
    off += align8(net->n_feat) + 1024u + align8((size_t)net->chunk_frames * net->n_phones);
    if (s) s->xexp = (int32_t *)(void *)(mem + off);
    off += KWS_NET_DSP ? align8(16u * max_n) : 0u; /* 8 windows x n int16 */
    for (i = 0; i < net->n_layers; i++) {
        const kws_net_layer_rec *R = &net->layers[i];
        size_t rows = (size_t)R->kernel - 1u + KWS_NET_BLOCK;
        int transient = i > 0 && R->kernel == 1u;
        if (s) {
            stream_layer *P = &s->L[i];
            P->rows = (uint32_t)rows;
            P->in = transient ? (int8_t *)(mem + toff[i & 1u]) : (int8_t *)(mem + off);
            P->fb = (int32_t *)(void *)(mem + off + (transient ? 0u : align8(rows * R->in_ch)));
        }
        if (!transient) off += align8(rows * R->in_ch);
        off += align8((size_t)R->out_ch * 4u);
    }
    if (s) s->out_in = (int8_t *)(mem + toff[net->n_layers & 1u]);
    return off;
}

size_t kws_net_stream_size(const kws_net *net)
{
    if (net == NULL) return 0;
    return stream_plan(net, NULL, NULL);
}

kws_status kws_net_stream_init(const kws_net *net, void *mem, size_t len, kws_net_stream **out)
{
    kws_net_stream *s;
    uint32_t i, o, k, d;
    if (net == NULL || mem == NULL || out == NULL) return KWS_ERR_ARG;
    if (((uintptr_t)mem & 7u) != 0u) return KWS_ERR_ALIGN;
    if (len < kws_net_stream_size(net)) return KWS_ERR_NOMEM;
    s = (kws_net_stream *)mem;
    memset(s, 0, sizeof *s);
    s->net = net;
    stream_plan(net, s, (uint8_t *)mem);
    s->left = (uint32_t)net->context_frames - 1u - net->lookahead_frames;
    s->ctx = net->context_frames;
    for (i = 0; i < net->n_layers; i++) {
        const kws_net_layer_rec *R = &net->layers[i];
        stream_layer *P = &s->L[i];
        const uint8_t *dd = net->data;
        int64_t maxdot;
        int fast = 1;
        P->w = (const int8_t *)(const void *)(dd + R->weights_offset);
        P->bias = (const int32_t *)(const void *)(dd + R->bias_offset);
        P->mult = (const int32_t *)(const void *)(dd + R->multiplier_offset);
        P->shift = (const int32_t *)(const void *)(dd + R->shift_offset);
        P->K = R->kernel;
        P->cin = R->in_ch;
        P->cout = R->out_ch;
        P->dm = R->depth_multiplier;
        P->type = R->type;
        P->n = R->type == KWS_NET_LAYER_CONV ? (uint32_t)R->kernel * R->in_ch : (uint32_t)R->kernel;
        P->ooff = R->output_offset;
        P->amin = R->act_min;
        P->amax = R->act_max;
        maxdot = (int64_t)P->n * 128 * 128;
        /* fb[o] = input_offset * sum of the channel's weights (+ bias when the
         * total cannot overflow int32, so TFLite's int32 sum equals ours) */
        for (o = 0; o < P->cout; o++) {
            int64_t sw = 0, f;
            if (R->type == KWS_NET_LAYER_CONV) {
                const int8_t *wo = P->w + (size_t)o * P->n;
                for (k = 0; k < P->n; k++) sw += wo[k];
            } else {
                for (k = 0; k < P->K; k++) sw += P->w[(size_t)k * P->cout + o];
            }
            P->fb[o] = (int32_t)(sw * R->input_offset); /* |.| <= 2^30 */
            f = (int64_t)P->fb[o] + P->bias[o];
            if (f > (int64_t)INT32_MAX - maxdot || f < (int64_t)INT32_MIN + maxdot) fast = 0;
        }
        if (fast)
            for (o = 0; o < P->cout; o++) P->fb[o] += P->bias[o];
        /* bit 1: outputs span int8 (act_min -128, act_max 127): SSAT clamps */
        P->fast = (uint32_t)fast | (fast && P->amin == -128 && P->amax == 127 ? 2u : 0u);
    }
    /* softmax: exp term of every possible difference to the row maximum */
    for (d = 0; d < 256u; d++) {
        int32_t diff = -(int32_t)d;
        s->exp_tab[d] = diff >= net->softmax_diff_min
            ? exp_neg_q5(srdhm(shl_wrap(diff, (int)net->softmax_left_shift), net->softmax_multiplier))
            : 0;
    }
    kws_net_stream_reset(s);
    *out = s;
    return KWS_OK;
}

void kws_net_stream_reset(kws_net_stream *s)
{
    uint32_t i;
    if (s == NULL) return;
    s->started = 0;
    s->n_real = 0;
    s->n_x = 0;
    s->y_total = 0;
    s->emitted = 0;
    for (i = 0; i < s->net->n_layers; i++) s->L[i].have = 0;
}

/* reference_ops::Softmax as softmax_row, with the exp terms from the table */
static void softmax_row_tab(const kws_net_stream *s, const int8_t *in, int8_t *out, uint32_t depth)
{
    const int32_t diff_min = s->net->softmax_diff_min;
    int32_t max_in = -128, sum = 0, shifted_scale;
    int headroom, out_shift;
    uint32_t c;
    for (c = 0; c < depth; c++)
        if (in[c] > max_in) max_in = in[c];
    for (c = 0; c < depth; c++) {
        int32_t diff = (int32_t)in[c] - max_in;
        if (diff >= diff_min) sum = wrap32((int64_t)sum + rdbpot(s->exp_tab[-diff], 12));
    }
    headroom = clz32((uint32_t)sum);
    shifted_scale = one_over_one_plus_x(
        wrap32((int64_t)(((uint64_t)(uint32_t)sum << headroom) & 0xFFFFFFFFu) - ((int64_t)1 << 31)));
    out_shift = 12 - headroom + 31 - 8;
    for (c = 0; c < depth; c++) {
        int32_t diff = (int32_t)in[c] - max_in;
        int32_t v = -128;
        if (diff >= diff_min) {
            int32_t p = srdhm(shifted_scale, s->exp_tab[-diff]);
            int32_t u = out_shift >= 32 ? 0 : (out_shift <= 0 ? p : rdbpot(p, out_shift));
            v = u - 128;
            if (v > 127) v = 127;
            if (v < -128) v = -128;
        }
        out[c] = (int8_t)v;
    }
}

/* SaturatingRoundingDoublingHighMul for b >= 0 (never saturates): srdhm's
 * formula without the saturation test. */
static int32_t srdhm_pos(int32_t a, int32_t b)
{
    uint64_t u = (uint64_t)((int64_t)a * (int64_t)b) + ((uint64_t)1 << 30);
    uint32_t r = (uint32_t)(u >> 31);
    return r <= 0x7FFFFFFFu ? (int32_t)r : (int32_t)(r - 0x80000000u) - INT32_MAX - 1;
}

/* Requantisation of one output channel (MultiplyByQuantizedMultiplier with
 * TFLite's double rounding, output offset, activation clamp), its constants
 * loaded once for the frames computed together. */
typedef struct rq_chan {
    int32_t mult, bias;
    int left;
    int right;
    int32_t mask, half; /* RoundingDivideByPOT: mask = 2^right - 1, half = mask >> 1 */
    int32_t lo, hi, ooff;
    uint32_t fast;
} rq_chan;

#if defined(__GNUC__)
#define KWS_INLINE static inline __attribute__((always_inline))
#else
#define KWS_INLINE static inline
#endif

KWS_INLINE rq_chan rq_load(const stream_layer *P, uint32_t o)
{
    rq_chan q;
    int32_t sh = P->shift[o];
    q.mult = P->mult[o];
    q.bias = P->bias[o];
    q.left = sh > 0 ? (int)sh : 0;
    q.right = sh > 0 ? 0 : (int)-sh;
    q.mask = (int32_t)(((uint32_t)1 << q.right) - 1u);
    q.half = q.mask >> 1;
    q.lo = P->amin - P->ooff;
    q.hi = P->amax - P->ooff;
    q.ooff = P->ooff;
    q.fast = P->fast;
    return q;
}

#if KWS_NET_DSP
#define KWS_ASR(x, e) ((x) >> (e)) /* GCC: arithmetic */
#else
#define KWS_ASR(x, e) asr32((x), (e))
#endif

/* Output value for acc = fb[o] + dot (exact). */
KWS_INLINE int8_t rq_apply(const rq_chan *q, int32_t acc, const uint32_t fast)
{
    int32_t v, rem;
    if (!fast) { /* bias not folded: add it saturating, as requant() */
        int64_t a = (int64_t)acc + q->bias;
        if (a > INT32_MAX) a = INT32_MAX;
        if (a < INT32_MIN) a = INT32_MIN;
        acc = (int32_t)a;
    }
    v = srdhm_pos(q->left ? shl_wrap(acc, q->left) : acc, q->mult);
    rem = (int32_t)((uint32_t)v & (uint32_t)q->mask);
    v = KWS_ASR(v, q->right) + (rem > q->half + (v < 0 ? 1 : 0) ? 1 : 0);
    /* = clamp(v + output_offset, act_min, act_max) without overflow */
    if (v < q->lo) v = q->lo;
    if (v > q->hi) v = q->hi;
    return (int8_t)(v + q->ooff);
}

#if KWS_NET_DSP
/* The M4 requantisation of a = fb[o] + dot for fast == 3 and shift = -e,
 * e >= 2 (see rq_out): chi = 2^(e - 2), e1 = e - 1. */
KWS_INLINE int8_t rq_hot(int32_t a, int32_t mult, uint32_t chi, int e1, int32_t ooff)
{
    const uint32_t lo0 = 0x40000000u | ((uint32_t)a & 0x80000000u);
    const uint32_t hi0 = chi - ((uint32_t)a >> 31);
    const uint64_t u = ((((uint64_t)hi0) << 32) | lo0) + (uint64_t)((int64_t)a * mult);
    return (int8_t)__ssat(((int32_t)(uint32_t)(u >> 32) >> e1) + ooff, 8);
}
#endif

/* m outputs of channel o from their dot products (fb[o] not included), to
 * dst[0], dst[step], ... (a function of its own: the kernels keep their
 * registers for the dot products) */
static void rq_out(const stream_layer *P, uint32_t o, const int32_t *dot, uint32_t m, int8_t *dst,
                   size_t step)
{
    uint32_t i;
#if KWS_NET_DSP
    const int32_t sh = P->shift[o];
    if (P->fast == 3u && sh <= -2) {
        /* the common case on the M4 (see below), e = -shift >= 2: the
         * constant 2^30 + 2^(30 + e) - [a < 0] 2^31 is, as two words,
         * (2^(e - 2) - [a < 0], 2^30 | (a & 2^31)), so N takes an AND, an
         * ORR, a SUB and one SMLAL; the clamp to int8 is one SSAT */
        const int32_t f = P->fb[o], mult = P->mult[o], ooff = P->ooff;
        const uint32_t chi = (uint32_t)1 << (-sh - 2);
        const int e1 = -sh - 1;
        for (i = 0; i < m; i++) {
            *dst = rq_hot(f + dot[i], mult, chi, e1, ooff);
            dst += step;
        }
        return;
    }
#endif
    const rq_chan q = rq_load(P, o);
    const int32_t f = P->fb[o];
    if (q.fast && q.left == 0 && q.right >= 1) {
        /* the usual case: bias folded, multiplier < 1, a right shift e >= 1.
         * TFLite's double rounding, RoundingDivideByPOT(SRDHM(a, m), e), is
         * floor(N / 2^(31 + e)) with N = a m + 2^30 + 2^(30 + e) - [a < 0] 2^31
         * (nested floors; the rounding tie test on the sign of SRDHM(a, m) may
         * use the sign of a, as they differ only where SRDHM gives 0, which is
         * never a tie): one 32x32->64 multiply-accumulate (SMLAL) and an
         * arithmetic shift of its high word. |N| < 2^63; the result's
         * magnitude is <= 2^30, so adding the output offset cannot overflow. */
        const uint64_t c = ((uint64_t)1 << 30) + ((uint64_t)1 << (30 + q.right));
        const int32_t mult = q.mult, lo = q.lo + q.ooff, hi = q.hi + q.ooff, ooff = q.ooff;
        const int e1 = q.right - 1;
#if KWS_NET_DSP
        if (lo == -128 && hi == 127) {
            for (i = 0; i < m; i++) {
                const int32_t a = f + dot[i];
                const uint64_t u = (uint64_t)((int64_t)a * mult) + c - ((uint64_t)((uint32_t)a >> 31) << 31);
                const int32_t v = ((int32_t)(uint32_t)(u >> 32) >> e1) + ooff;
                *dst = (int8_t)__ssat(v, 8);
                dst += step;
            }
            return;
        }
#endif
        for (i = 0; i < m; i++) {
            const int32_t a = f + dot[i];
            const uint64_t u = (uint64_t)((int64_t)a * mult) + c - ((uint64_t)((uint32_t)a >> 31) << 31);
            const uint32_t h = (uint32_t)(u >> 32);
            int32_t v = KWS_ASR(h <= 0x7FFFFFFFu ? (int32_t)h : (int32_t)(h - 0x80000000u) - INT32_MAX - 1, e1) + ooff;
            v = v < lo ? lo : v;
            v = v > hi ? hi : v;
            *dst = (int8_t)v;
            dst += step;
        }
    } else if (q.fast && q.left == 0) { /* right shift 0 */
        const int32_t mult = q.mult, mask = q.mask, half = q.half, lo = q.lo, hi = q.hi;
        const int right = q.right;
        for (i = 0; i < m; i++) {
            int32_t v = srdhm_pos(f + dot[i], mult);
            int32_t rem = (int32_t)((uint32_t)v & (uint32_t)mask);
            v = KWS_ASR(v, right) + (rem > half + (v < 0 ? 1 : 0) ? 1 : 0);
            v = v < lo ? lo : v;
            v = v > hi ? hi : v;
            *dst = (int8_t)(v + q.ooff);
            dst += step;
        }
    } else if (q.fast) {
        for (i = 0; i < m; i++) dst[i * step] = rq_apply(&q, f + dot[i], 1u);
    } else {
        for (i = 0; i < m; i++) dst[i * step] = rq_apply(&q, f + dot[i], 0u);
    }
}

/* Ascending copy of whole rows to a lower address (possibly overlapping). */
static void copy_down(int8_t *dst, const int8_t *src, size_t n)
{
    size_t i = 0;
    if ((((uintptr_t)dst | (uintptr_t)src) & 3u) == 0u) {
        for (; i + 4u <= n; i += 4u) {
            uint32_t v;
            memcpy(&v, src + i, 4);
            memcpy(dst + i, &v, 4);
        }
    }
    for (; i < n; i++) dst[i] = src[i];
}

/* Where a layer's output (frame t, channel o) goes: the next layer's input,
 * frame-major [t][ch] (conv) or channel-major [ch][rows] (depthwise). */
typedef struct out_map {
    int8_t *base;
    size_t ts, os;
} out_map;

#if KWS_NET_DSP
/* Expand m input windows (frames t0 .. t0 + m - 1, n bytes each, a frame
 * apart) to int16 pairs for SMLAD: group j of 4 bytes b0..b3 of window f
 * becomes SXTB16(b) = (b0, b2) and SXTB16(b ror 8) = (b1, b3), stored
 * [j][f][2]; the weights are unpacked the same way, so the pairs match. */
static void expand_windows(int32_t *e, const int8_t *x, uint32_t cin, uint32_t g, uint32_t m)
{
    uint32_t j, f;
    for (j = 0; j < g; j++)
        for (f = 0; f < m; f++) {
            uint32_t v = ld32(x + (size_t)f * cin + 4u * j);
            *e++ = (int32_t)__sxtb16(v);
            *e++ = (int32_t)sxtb16_ror8(v);
        }
}
#endif

#if KWS_NET_DSP
/* 8 dot products of one output channel: w (g groups of 4 bytes) with the 8
 * windows expanded in x ([j][f][2]); a function of its own so that the 8
 * accumulators, the unpacked weights and the pointers have the registers */
static __attribute__((noinline)) void gemm8(const int8_t *w, const int32_t *x, uint32_t g, int32_t *d)
{
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
    const int8_t *we = w + 4u * (g & ~1u);
#define KWS_G8(A) ldrd_inc(&x, &p0, &p1); A = __smlad(w0, p0, A); A = __smlad(w1, p1, A);
#define KWS_GROUP8 { \
        uint32_t u = ld32(w); \
        int32_t w0 = (int32_t)__sxtb16(u), w1 = (int32_t)sxtb16_ror8(u), p0, p1; \
        KWS_G8(a0) KWS_G8(a1) KWS_G8(a2) KWS_G8(a3) KWS_G8(a4) KWS_G8(a5) KWS_G8(a6) KWS_G8(a7) \
        w += 4; \
    }
    while (w != we) { /* two groups per iteration */
        KWS_GROUP8
        KWS_GROUP8
    }
    if (g & 1u) KWS_GROUP8
#undef KWS_GROUP8
#undef KWS_G8
    d[0] = a0;
    d[1] = a1;
    d[2] = a2;
    d[3] = a3;
    d[4] = a4;
    d[5] = a5;
    d[6] = a6;
    d[7] = a7;
}

/* conv frames in eights (t = 0, 8, ...): eight frames share each weight load
 * and each channel's requantisation constants; returns the frames done */
static uint32_t conv8(const kws_net_stream *s, const stream_layer *P, uint32_t nout, out_map om)
{
    const uint32_t n = P->n, cin = P->cin, cout = P->cout, g = n / 4u;
    uint32_t t = 0, o, j, f;
    for (; t + 8u <= nout; t += 8u) {
        const int8_t *x0 = P->in + (size_t)t * cin;
        expand_windows(s->xexp, x0, cin, g, 8u);
        for (o = 0; o < cout; o++) {
            const int8_t *w = P->w + (size_t)o * n;
            int8_t *dst = om.base + t * om.ts + o * om.os;
            const int32_t sh = P->shift[o];
            int32_t d[8];
            gemm8(w, s->xexp, g, d);
            for (j = 4u * g; j < n; j++)
                for (f = 0; f < 8u; f++) d[f] += (int32_t)w[j] * x0[j + f * cin];
            if (P->fast == 3u && sh <= -2) { /* rq_out's common case, inline */
                const int32_t fb = P->fb[o], mult = P->mult[o], ooff = P->ooff;
                const uint32_t chi = (uint32_t)1 << (-sh - 2);
                const int e1 = -sh - 1;
                for (f = 0; f < 8u; f++) dst[f * om.ts] = rq_hot(fb + d[f], mult, chi, e1, ooff);
            } else {
                rq_out(P, o, d, 8u, dst, om.ts);
            }
        }
    }
    return t;
}

/* conv frames in fours from frame t: four frames share each weight load;
 * returns the frames done */
static uint32_t conv4(const kws_net_stream *s, const stream_layer *P, uint32_t t, uint32_t nout,
                      out_map om)
{
    const uint32_t n = P->n, cin = P->cin, cout = P->cout, g = n / 4u;
    uint32_t o, j;
    for (; t + 4u <= nout; t += 4u) { /* four frames share each weight load */
        const int8_t *x0 = P->in + (size_t)t * cin;
        expand_windows(s->xexp, x0, cin, g, 4u);
        for (o = 0; o < cout; o++) {
            const int8_t *w = P->w + (size_t)o * n;
            const int32_t *x = s->xexp;
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, d[4];
#define KWS_G4(A) ldrd_inc(&x, &p0, &p1); A = __smlad(w0, p0, A); A = __smlad(w1, p1, A);
#define KWS_GROUP4 { \
                uint32_t u = ld32(w); \
                int32_t w0 = (int32_t)__sxtb16(u), w1 = (int32_t)sxtb16_ror8(u), p0, p1; \
                KWS_G4(a0) KWS_G4(a1) KWS_G4(a2) KWS_G4(a3) \
                w += 4; \
            }
            for (j = g / 2u; j != 0u; j--) { /* two groups per iteration */
                KWS_GROUP4
                KWS_GROUP4
            }
            if (g & 1u) KWS_GROUP4
#undef KWS_GROUP4
#undef KWS_G4
            for (j = 4u * g; j < n; j++, w++) {
                a0 += (int32_t)*w * x0[j];
                a1 += (int32_t)*w * x0[j + cin];
                a2 += (int32_t)*w * x0[j + 2u * cin];
                a3 += (int32_t)*w * x0[j + 3u * cin];
            }
            {
                const int32_t sh = P->shift[o];
                if (P->fast == 3u && sh <= -2) { /* rq_out's common case, inline */
                    const int32_t f = P->fb[o], mult = P->mult[o], ooff = P->ooff;
                    const uint32_t chi = (uint32_t)1 << (-sh - 2);
                    const int e1 = -sh - 1;
                    int8_t *dst = om.base + t * om.ts + o * om.os;
                    dst[0] = rq_hot(f + a0, mult, chi, e1, ooff);
                    dst[om.ts] = rq_hot(f + a1, mult, chi, e1, ooff);
                    dst[2u * om.ts] = rq_hot(f + a2, mult, chi, e1, ooff);
                    dst[3u * om.ts] = rq_hot(f + a3, mult, chi, e1, ooff);
                    continue;
                }
            }
            d[0] = a0;
            d[1] = a1;
            d[2] = a2;
            d[3] = a3;
            rq_out(P, o, d, 4u, om.base + t * om.ts + o * om.os, om.ts);
        }
    }
    return t;
}
#endif

/* conv layer: nout frames from P->in (frame-major) */
static void conv_block(const kws_net_stream *s, const stream_layer *P, uint32_t nout, out_map om)
{
    const uint32_t n = P->n, cin = P->cin, cout = P->cout;
    uint32_t t = 0, o, j;
#if KWS_NET_DSP
    const uint32_t g = n / 4u;
    t = conv4(s, P, conv8(s, P, nout, om), nout, om);
    for (; t < nout; t++) {
        const int8_t *x0 = P->in + (size_t)t * cin;
        expand_windows(s->xexp, x0, cin, g, 1u);
        for (o = 0; o < cout; o++) {
            const int8_t *w = P->w + (size_t)o * n;
            const int32_t *x = s->xexp;
            int32_t a0 = 0;
            for (j = g; j != 0u; j--) {
                uint32_t u = ld32(w);
                a0 = __smlad((int32_t)__sxtb16(u), x[0], a0);
                a0 = __smlad((int32_t)sxtb16_ror8(u), x[1], a0);
                w += 4;
                x += 2;
            }
            for (j = 4u * g; j < n; j++, w++) a0 += (int32_t)*w * x0[j];
            rq_out(P, o, &a0, 1u, om.base + t * om.ts + o * om.os, om.ts);
        }
    }
#else
    (void)s;
    for (; t < nout; t++) {
        const int8_t *x = P->in + (size_t)t * cin;
        for (o = 0; o < cout; o++) {
            const int8_t *wo = P->w + (size_t)o * n;
            int32_t dot = 0;
            for (j = 0; j < n; j++) dot += (int32_t)wo[j] * (int32_t)x[j];
            rq_out(P, o, &dot, 1u, om.base + t * om.ts + o * om.os, om.ts);
        }
    }
#endif
}

#if KWS_NET_DSP
/* One depthwise channel over nout frames, G groups of 4 taps + R single taps
 * (constants after inlining, so the packed weights stay in registers).
 * x: the input channel's row (time-major), w: tap 0 of the channel, taps a
 * stride apart. Taps (k, k + 2) pair up with SXTB16 of the 4 bytes at t + k. */
KWS_INLINE void
dw_chan(const stream_layer *P, uint32_t c, const int8_t *x, const int8_t *w, uint32_t stride,
        uint32_t nout, out_map om, const uint32_t G, const uint32_t R)
{
    int32_t wa[4], wb[4], ws[3], d[KWS_NET_BLOCK];
    uint32_t t, gg, r;
    for (gg = 0; gg < G; gg++) {
        const int8_t *q = w + (size_t)4u * gg * stride;
        wa[gg] = (int32_t)(((uint32_t)(uint16_t)(int16_t)q[0]) | ((uint32_t)(uint16_t)(int16_t)q[2u * stride] << 16));
        wb[gg] = (int32_t)(((uint32_t)(uint16_t)(int16_t)q[stride]) | ((uint32_t)(uint16_t)(int16_t)q[3u * stride] << 16));
    }
    for (r = 0; r < R; r++) ws[r] = w[(size_t)(4u * G + r) * stride];
    for (t = 0; t < nout; t++) {
        const int8_t *xt = x + t;
        int32_t acc = 0;
        for (gg = 0; gg < G; gg++) {
            uint32_t v = ld32(xt + 4u * gg);
            acc = __smlad(wa[gg], (int32_t)__sxtb16(v), acc);
            acc = __smlad(wb[gg], (int32_t)sxtb16_ror8(v), acc);
        }
        for (r = 0; r < R; r++) acc += ws[r] * xt[4u * G + r];
        d[t] = acc;
    }
    rq_out(P, c, d, nout, om.base + c * om.os, om.ts);
}
#endif

/* depthwise layer: nout frames from P->in (channel-major, P->rows a channel) */
static void dw_block(const stream_layer *P, uint32_t nout, out_map om)
{
    const uint32_t K = P->K, cout = P->cout, dm = P->dm, rows = P->rows;
    uint32_t t, c, k;
#if KWS_NET_DSP
    if (K <= 15u) {
        for (c = 0; c < cout; c++) {
            const int8_t *x = P->in + (size_t)(c / dm) * rows;
            const int8_t *w = P->w + c;
#define DW(G, R) dw_chan(P, c, x, w, cout, nout, om, G, R)
            switch (K) { /* K = 4G + R */
            case 1: DW(0, 1); break;
            case 2: DW(0, 2); break;
            case 3: DW(0, 3); break;
            case 4: DW(1, 0); break;
            case 5: DW(1, 1); break;
            case 6: DW(1, 2); break;
            case 7: DW(1, 3); break;
            case 8: DW(2, 0); break;
            case 9: DW(2, 1); break;
            case 10: DW(2, 2); break;
            case 11: DW(2, 3); break;
            case 12: DW(3, 0); break;
            case 13: DW(3, 1); break;
            case 14: DW(3, 2); break;
            default: DW(3, 3); break;
            }
#undef DW
        }
        return;
    }
#endif
    for (c = 0; c < cout; c++) {
        const int8_t *x = P->in + (size_t)(c / dm) * rows;
        const int8_t *w = P->w + c;
        for (t = 0; t < nout; t++) {
            int32_t dot = 0;
            for (k = 0; k < K; k++) dot += (int32_t)w[(size_t)k * cout] * (int32_t)x[t + k];
            rq_out(P, c, &dot, 1u, om.base + t * om.ts + c * om.os, om.ts);
        }
    }
}

/* Run every layer over the frames that have reached it. */
static void advance(kws_net_stream *s)
{
    const kws_net *net = s->net;
    uint32_t i, r, c;
    for (i = 0; i < net->n_layers; i++) {
        stream_layer *P = &s->L[i];
        uint32_t nout;
        out_map om;
        if (P->have < P->K) return; /* later layers have consumed all they got */
        nout = P->have - P->K + 1u;
        if (i + 1u < net->n_layers) {
            stream_layer *Q = &s->L[i + 1u];
            if (Q->type == KWS_NET_LAYER_DEPTHWISE) {
                om.base = Q->in + Q->have;
                om.ts = 1u;
                om.os = Q->rows;
            } else {
                om.base = Q->in + (size_t)Q->have * Q->cin;
                om.ts = Q->cin;
                om.os = 1u;
            }
            Q->have += nout;
        } else {
            om.base = s->out_in;
            om.ts = net->n_phones;
            om.os = 1u;
        }
        if (P->type == KWS_NET_LAYER_CONV) {
            conv_block(s, P, nout, om);
            if (P->K > 1u)
                copy_down(P->in, P->in + (size_t)nout * P->cin, (size_t)(P->K - 1u) * P->cin);
        } else {
            dw_block(P, nout, om);
            if (P->K > 1u)
                for (c = 0; c < P->cin; c++)
                    copy_down(P->in + (size_t)c * P->rows, P->in + (size_t)c * P->rows + nout, P->K - 1u);
        }
        P->have = P->K - 1u;
        if (i + 1u == net->n_layers) {
            for (r = 0; r < nout; r++) {
                uint32_t row = s->y_total - s->emitted;
                softmax_row_tab(s, s->out_in + (size_t)r * net->n_phones,
                                s->qout + (size_t)row * net->n_phones, net->n_phones);
                s->y_total++;
            }
        }
    }
}

/* Output frames held, counting those the frames waiting at layer 0 will give. */
static uint32_t rows_due(const kws_net_stream *s)
{
    uint32_t y = s->n_x >= s->ctx ? s->n_x - s->ctx + 1u : 0u;
    return y - s->emitted;
}

/* Feed one (padded) input frame; runs the layers when layer 0's buffer is
 * full or when `target` output rows are due. */
static void feed(kws_net_stream *s, const int8_t *q, uint32_t target)
{
    stream_layer *P = &s->L[0];
    if (P->type == KWS_NET_LAYER_DEPTHWISE) {
        uint32_t c;
        for (c = 0; c < P->cin; c++) P->in[(size_t)c * P->rows + P->have] = q[c];
    } else {
        memcpy(P->in + (size_t)P->have * P->cin, q, P->cin);
    }
    P->have++;
    s->n_x++;
    if (P->have == P->rows || rows_due(s) >= target) advance(s);
}

static void emit(kws_net_stream *s, uint32_t rows, float *out)
{
    const kws_net *net = s->net;
    size_t i, n = (size_t)rows * net->n_phones;
    for (i = 0; i < n; i++) out[i] = net->logpost[(int32_t)s->qout[i] + 128];
    s->emitted += rows;
}

kws_status kws_net_stream_push(kws_net_stream *s, const float *logmel, float *out, uint32_t *n_out)
{
    const uint32_t C = s != NULL ? s->net->chunk_frames : 0u;
    if (s == NULL || logmel == NULL || out == NULL || n_out == NULL) return KWS_ERR_ARG;
    *n_out = 0;
    kws_net_quantize_frame(s->net, logmel, s->last);
    if (!s->started) {
        uint32_t i;
        for (i = 0; i < s->left; i++) feed(s, s->last, C); /* left pad: copies of the first frame */
        s->started = 1;
    }
    feed(s, s->last, C);
    s->n_real++;
    if (s->y_total - s->emitted >= C) { /* == C: rows are due one at a time */
        emit(s, C, out);
        *n_out = C;
    }
    return KWS_OK;
}

kws_status kws_net_stream_flush(kws_net_stream *s, float *out, uint32_t *n_out)
{
    uint32_t owed, target;
    if (s == NULL || out == NULL || n_out == NULL) return KWS_ERR_ARG;
    *n_out = 0;
    owed = s->started ? s->n_real - s->emitted : 0u;
    if (owed == 0u) {
        kws_net_stream_reset(s);
        return KWS_OK;
    }
    target = owed < s->net->chunk_frames ? owed : s->net->chunk_frames;
    /* pad with copies of the last frame until the owed rows are computed */
    if (rows_due(s) >= target) advance(s);
    while (s->y_total - s->emitted < target) feed(s, s->last, target);
    emit(s, target, out);
    *n_out = target;
    if (s->emitted == s->n_real) kws_net_stream_reset(s);
    return KWS_OK;
}
