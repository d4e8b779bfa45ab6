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

static int32_t srdhm(int32_t a, int32_t b) /* SaturatingRoundingDoublingHighMul */
{
    int64_t ab;
    int64_t nudge;
    if (a == b && a == INT32_MIN) return INT32_MAX;
    ab = (int64_t)a * (int64_t)b;
    nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31)); /* C99: truncates toward 0 */
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
        v = nearbyintf(v) + zp; /* round half to even, as numpy's round */
        if (v >= 127.0f) q[i] = 127;
        else if (v <= -128.0f) q[i] = -128;
        else q[i] = (int8_t)(int32_t)v;
    }
}

/* ------------------------------------------------------------------------ */
/* Streaming                                                                  */
/* ------------------------------------------------------------------------ */

struct kws_net_stream {
    const kws_net *net;
    uint32_t left;     /* context - 1 - lookahead: frames of left padding */
    uint32_t n_buf;    /* frames in buf */
    int32_t pending;   /* real frames in buf without a posterior */
    uint32_t started;
    int8_t *buf;       /* [in_frames][n_feat] */
    int8_t *qout;      /* [chunk][n_phones] */
    void *scratch;
    size_t scratch_bytes;
};

static size_t align8(size_t x) { return (x + 7u) & ~(size_t)7u; }

size_t kws_net_stream_size(const kws_net *net)
{
    if (net == NULL) return 0;
    return align8(sizeof(kws_net_stream)) + align8((size_t)net->in_frames * net->n_feat) +
           align8((size_t)net->chunk_frames * net->n_phones) + align8(kws_net_scratch_bytes(net));
}

kws_status kws_net_stream_init(const kws_net *net, void *mem, size_t len, kws_net_stream **out)
{
    kws_net_stream *s;
    uint8_t *p;
    if (net == NULL || mem == NULL || out == NULL) return KWS_ERR_ARG;
    if (((uintptr_t)mem & 7u) != 0u) return KWS_ERR_ALIGN;
    if (len < kws_net_stream_size(net)) return KWS_ERR_NOMEM;
    s = (kws_net_stream *)mem;
    p = (uint8_t *)mem + align8(sizeof(kws_net_stream));
    s->net = net;
    s->left = (uint32_t)net->context_frames - 1u - net->lookahead_frames;
    s->buf = (int8_t *)p;
    p += align8((size_t)net->in_frames * net->n_feat);
    s->qout = (int8_t *)p;
    p += align8((size_t)net->chunk_frames * net->n_phones);
    s->scratch = p;
    s->scratch_bytes = kws_net_scratch_bytes(net);
    kws_net_stream_reset(s);
    *out = s;
    return KWS_OK;
}

void kws_net_stream_reset(kws_net_stream *s)
{
    if (s == NULL) return;
    s->n_buf = 0;
    s->pending = 0;
    s->started = 0;
}

static void append(kws_net_stream *s, const int8_t *q)
{
    memcpy(s->buf + (size_t)s->n_buf * s->net->n_feat, q, s->net->n_feat);
    s->n_buf++;
}

/* Run the window if full; writes chunk rows of float log-posteriors. */
static kws_status drain(kws_net_stream *s, float *out, uint32_t *n_rows)
{
    const kws_net *net = s->net;
    size_t i, n, keep;
    kws_status st;
    *n_rows = 0;
    if (s->n_buf < net->in_frames) return KWS_OK;
    st = kws_net_invoke(net, s->buf, s->qout, s->scratch, s->scratch_bytes);
    if (st != KWS_OK) return st;
    n = (size_t)net->chunk_frames * net->n_phones;
    for (i = 0; i < n; i++) out[i] = net->logpost[(int32_t)s->qout[i] + 128];
    keep = (size_t)(s->n_buf - net->chunk_frames) * net->n_feat;
    memmove(s->buf, s->buf + (size_t)net->chunk_frames * net->n_feat, keep);
    s->n_buf -= net->chunk_frames;
    s->pending -= (int32_t)net->chunk_frames;
    *n_rows = net->chunk_frames;
    return KWS_OK;
}

kws_status kws_net_stream_push(kws_net_stream *s, const float *logmel, float *out, uint32_t *n_out)
{
    int8_t *q;
    if (s == NULL || logmel == NULL || out == NULL || n_out == NULL) return KWS_ERR_ARG;
    *n_out = 0;
    /* quantise straight into the buffer's next slot (n_buf < in_frames always holds here) */
    if (!s->started) {
        uint32_t i;
        q = s->buf; /* n_buf == 0 */
        kws_net_quantize_frame(s->net, logmel, q);
        s->n_buf = 1;
        for (i = 0; i < s->left; i++) append(s, q); /* left pad: copies of the first frame */
        s->started = 1;
    } else {
        q = s->buf + (size_t)s->n_buf * s->net->n_feat;
        kws_net_quantize_frame(s->net, logmel, q);
        s->n_buf++;
    }
    s->pending += 1;
    return drain(s, out, n_out);
}

kws_status kws_net_stream_flush(kws_net_stream *s, float *out, uint32_t *n_out)
{
    const kws_net *net;
    kws_status st;
    uint32_t rows;
    int32_t owed;
    if (s == NULL || out == NULL || n_out == NULL) return KWS_ERR_ARG;
    net = s->net;
    *n_out = 0;
    owed = s->pending;
    if (owed <= 0 || s->n_buf == 0) {
        kws_net_stream_reset(s);
        return KWS_OK;
    }
    /* pad with copies of the last frame up to a whole window */
    while (s->n_buf < net->in_frames)
        memcpy(s->buf + (size_t)s->n_buf * net->n_feat,
               s->buf + (size_t)(s->n_buf - 1u) * net->n_feat, net->n_feat), s->n_buf++;
    st = drain(s, out, &rows);
    if (st != KWS_OK) return st;
    *n_out = (uint32_t)owed < rows ? (uint32_t)owed : rows;
    if (s->pending <= 0) {
        kws_net_stream_reset(s);
    }
    return KWS_OK;
}
