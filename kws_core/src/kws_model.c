/*
 * kws_model.c - status strings, CRC-32 and the keyword-model (.kwm) reader.
 *
 * Strict C99. No allocation, no globals (the CRC table is const), no I/O.
 * The parser validates every length, offset and index against the spec in
 * docs/kwm-format.md so that the decoder can later index the model's arrays
 * without any further checks.
 */
#include "kws.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Compile-time layout checks: the on-file records are used in place.        */
/* ------------------------------------------------------------------------ */

#define KWS_STATIC_ASSERT(cond, name) typedef char kws_static_assert_##name[(cond) ? 1 : -1]

KWS_STATIC_ASSERT(sizeof(kws_state_rec) == 8, state_rec_size);
KWS_STATIC_ASSERT(offsetof(kws_state_rec, phone) == 0, state_phone);
KWS_STATIC_ASSERT(offsetof(kws_state_rec, flags) == 2, state_flags);
KWS_STATIC_ASSERT(offsetof(kws_state_rec, n_preds) == 3, state_n_preds);
KWS_STATIC_ASSERT(offsetof(kws_state_rec, pred_begin) == 4, state_pred_begin);
KWS_STATIC_ASSERT(sizeof(kws_keyword_rec) == 32, keyword_rec_size);
KWS_STATIC_ASSERT(offsetof(kws_keyword_rec, name_offset) == 0, kw_name_offset);
KWS_STATIC_ASSERT(offsetof(kws_keyword_rec, name_len) == 4, kw_name_len);
KWS_STATIC_ASSERT(offsetof(kws_keyword_rec, pron_len) == 6, kw_pron_len);
KWS_STATIC_ASSERT(offsetof(kws_keyword_rec, pron_offset) == 8, kw_pron_offset);
KWS_STATIC_ASSERT(offsetof(kws_keyword_rec, first_state) == 12, kw_first_state);
KWS_STATIC_ASSERT(offsetof(kws_keyword_rec, n_states) == 16, kw_n_states);
KWS_STATIC_ASSERT(offsetof(kws_keyword_rec, threshold) == 20, kw_threshold);
KWS_STATIC_ASSERT(offsetof(kws_keyword_rec, max_frames) == 24, kw_max_frames);
KWS_STATIC_ASSERT(offsetof(kws_keyword_rec, flags) == 26, kw_flags);
KWS_STATIC_ASSERT(offsetof(kws_keyword_rec, expected_fa_per_hour) == 28, kw_efa);
KWS_STATIC_ASSERT(sizeof(float) == 4, float_is_binary32);
KWS_STATIC_ASSERT(sizeof(uint16_t) == 2, u16_size);

/* ------------------------------------------------------------------------ */
/* Status strings                                                            */
/* ------------------------------------------------------------------------ */

const char *kws_status_str(kws_status status)
{
    switch (status) {
    case KWS_OK: return "ok";
    case KWS_ERR_ARG: return "invalid argument";
    case KWS_ERR_TRUNCATED: return "truncated model";
    case KWS_ERR_MAGIC: return "wrong magic: not a keyword model";
    case KWS_ERR_VERSION: return "unsupported format version";
    case KWS_ERR_CRC: return "checksum mismatch";
    case KWS_ERR_CORRUPT: return "corrupt model: value out of range";
    case KWS_ERR_PHONESET: return "model made for another phone set";
    case KWS_ERR_NOMEM: return "buffer too small";
    case KWS_ERR_ALIGN: return "buffer not 4-byte aligned";
    case KWS_ERR_UNSUPPORTED: return "unsupported host (big-endian)";
    }
    return "unknown status";
}

/* ------------------------------------------------------------------------ */
/* CRC-32 (IEEE 802.3 / zlib), reflected polynomial 0xEDB88320.              */
/* Half-byte table: 16 entries, const, no mutable state.                     */
/* ------------------------------------------------------------------------ */

static const uint32_t kws_crc_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu,
    0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
    0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu
};

uint32_t kws_crc32(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = (const uint8_t *)data;
    size_t i;
    if (p == NULL) return crc;
    crc = ~crc;
    for (i = 0; i < len; i++) {
        crc ^= (uint32_t)p[i];
        crc = (crc >> 4) ^ kws_crc_nibble[crc & 0x0Fu];
        crc = (crc >> 4) ^ kws_crc_nibble[crc & 0x0Fu];
    }
    return ~crc;
}

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

/* Little-endian host check at run time (memcpy: no aliasing games). */
static int kws_host_is_little_endian(void)
{
    const uint32_t one = 1u;
    uint8_t b[4];
    memcpy(b, &one, sizeof b);
    return b[0] == 1u;
}

/* Field readers; valid only on a little-endian host (checked first). */
static uint16_t rd_u16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint32_t rd_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static float rd_f32(const uint8_t *p)
{
    float v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Section [off, off + size) must be 4-aligned and inside [64, file_size).
 * size is a 64-bit byte count (no overflow: inputs are < 2^32 * 32). */
static int section_ok(uint32_t off, uint64_t size, uint32_t file_size)
{
    if ((off & 3u) != 0u) return 0;
    if (off < 64u) return 0;
    if ((uint64_t)off + size > (uint64_t)file_size) return 0;
    return 1;
}

/* A string [off, off + len) followed by a NUL, all inside the string section. */
static int string_ok(const uint8_t *strings, uint32_t strings_size, uint32_t off, uint32_t len)
{
    uint64_t end = (uint64_t)off + (uint64_t)len; /* index of the NUL */
    if (end >= (uint64_t)strings_size) return 0;
    return strings[end] == 0u;
}

#define KWS_HEADER_SIZE 64u
#if KWS_FORMAT_MAJOR > 2 || (KWS_FORMAT_MAJOR == 2 && KWS_FORMAT_MINOR >= 1)
#define KWS_STATE_KNOWN_FLAGS (KWS_STATE_SELF | KWS_STATE_ENTRY | KWS_STATE_FINAL | KWS_STATE_PHONE_START | \
                               KWS_STATE_BEST_PAYS)
#else /* a reader built as one from before 2.1 */
#define KWS_STATE_KNOWN_FLAGS (KWS_STATE_SELF | KWS_STATE_ENTRY | KWS_STATE_FINAL | KWS_STATE_PHONE_START)
#endif

/* ------------------------------------------------------------------------ */
/* Parser                                                                    */
/* ------------------------------------------------------------------------ */

kws_status kws_model_parse(const void *data, size_t len,
                           uint32_t expected_phone_set_id, kws_model *model)
{
    const uint8_t *d = (const uint8_t *)data;
    uint32_t file_size, crc_stored, crc;
    uint32_t phone_set_id, n_states, n_arcs;
    uint32_t kw_off, st_off, arc_off, str_off, str_size;
    uint16_t vmaj, vmin, n_phones, n_keywords;
    uint16_t frame_shift_ms, refractory, hold, weight_q;
    float floor_v;
    static const uint8_t zeros[4] = {0u, 0u, 0u, 0u};
    const uint8_t *strings;
    uint64_t expect_first = 0;
    uint32_t k;

    if (d == NULL || model == NULL) return KWS_ERR_ARG;
    if (len < KWS_HEADER_SIZE) return KWS_ERR_TRUNCATED;
    if (((uintptr_t)d & 3u) != 0u) return KWS_ERR_ALIGN;
    if (!kws_host_is_little_endian()) return KWS_ERR_UNSUPPORTED;

    if (d[0] != 0x4Bu || d[1] != 0x57u || d[2] != 0x53u || d[3] != 0x4Du) return KWS_ERR_MAGIC;
    vmaj = rd_u16(d + 4);
    vmin = rd_u16(d + 6);
    if (vmaj < 1u || vmaj > KWS_FORMAT_MAJOR) return KWS_ERR_VERSION;

    file_size = rd_u32(d + 8);
    if ((uint64_t)file_size > (uint64_t)len) return KWS_ERR_TRUNCATED;
    if (file_size < KWS_HEADER_SIZE || (file_size & 3u) != 0u) return KWS_ERR_CORRUPT;

    crc_stored = rd_u32(d + 12);
    crc = kws_crc32(0u, d, 12u);
    crc = kws_crc32(crc, zeros, 4u);
    crc = kws_crc32(crc, d + 16, (size_t)file_size - 16u);
    if (crc != crc_stored) return KWS_ERR_CRC;

    phone_set_id = rd_u32(d + 16);
    if (expected_phone_set_id != 0u && phone_set_id != expected_phone_set_id) return KWS_ERR_PHONESET;

    n_phones = rd_u16(d + 20);
    n_keywords = rd_u16(d + 22);
    n_states = rd_u32(d + 24);
    n_arcs = rd_u32(d + 28);
    kw_off = rd_u32(d + 32);
    st_off = rd_u32(d + 36);
    arc_off = rd_u32(d + 40);
    str_off = rd_u32(d + 44);
    str_size = rd_u32(d + 48);
    frame_shift_ms = rd_u16(d + 52);
    refractory = rd_u16(d + 54);
    hold = rd_u16(d + 56);
    /* d + 58: 1.x: header flags, reserved; 2.x: uncertainty weight in 1/256 units. */
    weight_q = rd_u16(d + 58);
    floor_v = rd_f32(d + 60);

    if (n_phones == 0u || n_keywords == 0u || n_states == 0u) return KWS_ERR_CORRUPT;
    if (!isfinite(floor_v) || !(floor_v < 0.0f)) return KWS_ERR_CORRUPT;

    if (!section_ok(kw_off, (uint64_t)n_keywords * 32u, file_size)) return KWS_ERR_CORRUPT;
    if (!section_ok(st_off, (uint64_t)n_states * 8u, file_size)) return KWS_ERR_CORRUPT;
    if (!section_ok(arc_off, (uint64_t)n_arcs * 2u, file_size)) return KWS_ERR_CORRUPT;
    if (!section_ok(str_off, (uint64_t)str_size, file_size)) return KWS_ERR_CORRUPT;

    strings = d + str_off;

    for (k = 0; k < n_keywords; k++) {
        const uint8_t *kr = d + kw_off + (size_t)k * 32u;
        uint32_t name_off = rd_u32(kr + 0);
        uint16_t name_len = rd_u16(kr + 4);
        uint16_t pron_len = rd_u16(kr + 6);
        uint32_t pron_off = rd_u32(kr + 8);
        uint32_t first = rd_u32(kr + 12);
        uint32_t kn = rd_u32(kr + 16);
        float thr = rd_f32(kr + 20);
        uint16_t max_frames = rd_u16(kr + 24);
        /* kr + 26: keyword flags (bit 0 KWS_KW_PHONE_MEAN; other bits reserved, ignored).
         * kr + 28: expected_fa_per_hour, informative. */
        int has_entry = 0, has_final = 0;
        uint32_t i;

        if ((uint64_t)first != expect_first) return KWS_ERR_CORRUPT;
        if (kn < 1u || kn > 65535u) return KWS_ERR_CORRUPT;
        if ((uint64_t)first + kn > (uint64_t)n_states) return KWS_ERR_CORRUPT;
        expect_first = (uint64_t)first + kn;

        if (name_len < 1u) return KWS_ERR_CORRUPT;
        if (!string_ok(strings, str_size, name_off, name_len)) return KWS_ERR_CORRUPT;
        if (!string_ok(strings, str_size, pron_off, pron_len)) return KWS_ERR_CORRUPT;
        if (!isfinite(thr)) return KWS_ERR_CORRUPT;
        if (max_frames < 1u) return KWS_ERR_CORRUPT;

        for (i = 0; i < kn; i++) {
            const uint8_t *sr = d + st_off + ((size_t)first + i) * 8u;
            uint16_t phone = rd_u16(sr + 0);
            uint8_t flags = sr[2];
            uint8_t n_preds = sr[3];
            uint32_t pred_begin = rd_u32(sr + 4);
            uint32_t j;

            if (phone >= n_phones) return KWS_ERR_CORRUPT;
            if ((flags & (uint8_t)~KWS_STATE_KNOWN_FLAGS) != 0u) return KWS_ERR_CORRUPT;
            if ((uint64_t)pred_begin + n_preds > (uint64_t)n_arcs) return KWS_ERR_CORRUPT;
            for (j = 0; j < n_preds; j++) {
                uint16_t p = rd_u16(d + arc_off + ((size_t)pred_begin + j) * 2u);
                if ((uint32_t)p >= i) return KWS_ERR_CORRUPT;
            }
            if (flags & KWS_STATE_ENTRY) has_entry = 1;
            if (flags & KWS_STATE_FINAL) has_final = 1;
        }
        if (!has_entry || !has_final) return KWS_ERR_CORRUPT;
    }
    if (expect_first != (uint64_t)n_states) return KWS_ERR_CORRUPT;

    /* All good: fill the view (typed arrays in place; alignment checked). */
    model->data = d;
    model->size = file_size;
    model->version_major = vmaj;
    model->version_minor = vmin;
    model->phone_set_id = phone_set_id;
    model->n_phones = n_phones;
    model->n_keywords = n_keywords;
    model->n_states = n_states;
    model->n_arcs = n_arcs;
    model->frame_shift_ms = frame_shift_ms;
    model->refractory_frames = refractory;
    model->hold_frames = hold;
    model->emission_floor = floor_v;
    model->uncertainty_weight = vmaj >= 2u ? (float)weight_q / 256.0f : 0.0f;
    model->keywords = (const kws_keyword_rec *)(const void *)(d + kw_off);
    model->states = (const kws_state_rec *)(const void *)(d + st_off);
    model->arcs = (const uint16_t *)(const void *)(d + arc_off);
    model->strings = (const char *)(d + str_off);
    model->strings_size = str_size;
    return KWS_OK;
}

const char *kws_model_keyword_name(const kws_model *model, uint32_t k)
{
    if (model == NULL || model->keywords == NULL || model->strings == NULL) return NULL;
    if (k >= model->n_keywords) return NULL;
    return model->strings + model->keywords[k].name_offset;
}
