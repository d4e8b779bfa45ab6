/*
 * main.c - keyword spotting on a Cortex-M4F (QEMU mps2-an386).
 *
 * Pipeline, the same kws_core sources as the Python extension:
 *   16 kHz int16 PCM -> kws_frontend (log-mel) -> network (fw_net.h, int8)
 *   -> kws_decoder (Viterbi keyword-vs-filler) -> "DET ..." lines.
 *
 * Commands come from the semihosting command line (tests, benchmarks) or, after
 * the `uart` command, as text lines on UART0 (the streaming path a real I2S/DMA
 * driver would feed). On the command line SRC is a host file read through
 * semihosting; on the UART it is a byte count and that many bytes follow the line.
 *
 *   phoneset ID      expected phone-set id for later model loads (0 = any;
 *                    default: the network's phone set when one is loaded)
 *   model SRC        load a keyword model (.kwm); a bad one is refused with
 *                    "ERR ... code=N" and the device goes on without a model
 *   net SRC          load a network blob (.kwn) into the emulator's test area
 *                    (replaces the one in flash; drops the keyword model)
 *   post SRC         decode float32 log-posteriors (frames x n_phones)
 *   detect SRC       PCM -> front end -> network -> decoder
 *   feat SRC OUT     PCM -> front end; log-mel frames (float32) to host file OUT
 *   logpost SRC OUT  PCM -> front end -> network; log-posteriors to host file OUT
 *   calib N          time a loop of exactly 2*N instructions (checks the timer's
 *                    instructions-per-tick factor under QEMU -icount)
 *   netinfo          the network: "NETINFO phones=N phone_set=ID", then
 *                    "LPTAB <hex>": its 256 float32 log-posteriors (bit patterns,
 *                    8 hex digits each, entry v+128 for int8 output v)
 *   stream SRC       (UART only) like detect, and for every network output frame a
 *                    line "P <hex>": n_phones bytes, byte i = int8 output of phone
 *                    i + 128 (its LPTAB index), in order with the DET lines; with
 *                    no keyword model loaded, P lines only (no DET). For a host that
 *                    benchmarks the device (kws/device_link.py)
 *   activate         back to the model in flash (newest valid slot, else the
 *                    built-in one; ACTIVE line): undoes `model`
 *   uart             read further commands from UART0 (output goes there too)
 *   quit             (UART) leave; the program exits
 *
 * On the UART, protocol frames (SLIP, kws_proto.h) are taken between the text
 * lines: they update the keyword model in flash (fw_flash.c,
 * docs/flash-protocol.md). At boot, and when the phone set changes (net,
 * phoneset), the device runs the newest valid model in flash, else the one
 * compiled in (ACTIVE line); `model` replaces it in RAM until the next change.
 *
 * Memory: no allocation anywhere. Every object lives in a static arena whose size
 * is checked against what the core reports (kws_*_size) when it is built.
 * Output lines: BOOT, MODEL, NET, DET, END, TIME, ERR, SUMMARY, NETINFO, LPTAB, P
 * (docs/firmware.md).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "fw_flash.h"
#include "fw_net.h"
#include "kws.h"
#include "kws_frontend.h"
#include "kws_proto.h"

#ifndef FW_MODEL_MAX
#define FW_MODEL_MAX 6144u /* bytes of keyword model (< 1 KB per keyword) */
#endif
/* One arena for the run-time objects, carved at boot and at each load:
 *   [front end][network stream + its float output][decoder]
 * Each part is sized by the core's *_size() call and checked against what is
 * left; a model or network that does not fit is refused (KWS_ERR_NOMEM). */
#ifndef FW_ARENA
/* 48.75 KB: eight typical keywords with each phone its measured minimum duration
 * (about 515 states, 20-byte tokens, format 1.1) need about 11 KB of decoder beside
 * the English network; the stack gave 1 KB of it (3 KB reserved, 956 B used) */
#define FW_ARENA 49920u
#endif
#ifndef FW_MAX_KEYWORDS
#define FW_MAX_KEYWORDS 32u
#endif
#define FW_POST_READ_MAX 4096u /* post: bytes of posteriors read per call */
#define FW_PCM_CHUNK 480u    /* samples per read: 30 ms */
#define FW_FE_FRAMES 4u      /* front-end frames per call (>= 480/160 + 1) */
#define FW_NET_TEST_MAX (2u * 1024u * 1024u)

static uint64_t model_buf[FW_MODEL_MAX / 8u];
static uint64_t arena[FW_ARENA / 8u];
static size_t arena_used, mark_fe, mark_net; /* bytes */
static float *post_buf;     /* network output: chunk_frames x n_phones floats */
static uint32_t post_cap;   /* frames it holds */
static float feat_buf[FW_FE_FRAMES * KWS_FRONTEND_N_MELS];
static int16_t pcm_buf[FW_PCM_CHUNK];
static kws_detection det_buf[FW_MAX_KEYWORDS];
/* Emulator-only: a network blob loaded at run time (stands in for flash). */
static uint64_t net_test_buf[FW_NET_TEST_MAX / 8u] __attribute__((section(".testbuf")));

static kws_model model;
static int model_ok;
static int model_source; /* FW_SRC_*: where the running model came from */
static kws_decoder *dec;
static kws_frontend *fe;
static uint32_t expected_phone_set; /* 0: any */
static int phone_set_given;
static uint32_t n_errors, n_detections_total;

/* Stage timers (timer ticks; instructions under -icount, see docs/firmware.md). */
static uint32_t t_fe, t_net, t_dec;

static void *arena_alloc(size_t n)
{
    void *p;
    n = (n + 7u) & ~(size_t)7u;
    if (n > sizeof arena - arena_used) return NULL;
    p = (uint8_t *)arena + arena_used;
    arena_used += n;
    return p;
}

/* ------------------------------------------------------------------------ */
/* Sources: a semihosting file or the next N bytes of UART0                 */
/* ------------------------------------------------------------------------ */

typedef struct src {
    int uart;
    int32_t fd;     /* semihosting */
    uint32_t left;  /* UART: bytes still to come */
} src;

static int32_t src_read(src *s, void *buf, uint32_t n)
{
    if (s->uart) {
        uint8_t *p = (uint8_t *)buf;
        uint32_t i;
        if (n > s->left) n = s->left;
        for (i = 0; i < n; i++) p[i] = uart_getc();
        s->left -= n;
        return (int32_t)n;
    }
    return sh_read(s->fd, buf, n);
}

/* Read until buf is full or the source ends; bytes read or -1. */
static int32_t src_read_full(src *s, void *buf, uint32_t n)
{
    uint32_t got = 0;
    while (got < n) {
        int32_t r = src_read(s, (uint8_t *)buf + got, n - got);
        if (r < 0) return -1;
        if (r == 0) break;
        got += (uint32_t)r;
    }
    return (int32_t)got;
}

/* Drain what is left of a source (UART: so the stream stays in step). */
static void src_close(src *s)
{
    if (s->uart) {
        while (s->left > 0u) {
            (void)uart_getc();
            s->left--;
        }
    } else if (s->fd >= 0) {
        (void)sh_close(s->fd);
    }
}

static uint32_t parse_u32(const char *t, int *ok)
{
    uint64_t v = 0;
    *ok = (*t != 0);
    while (*t) {
        if (*t < '0' || *t > '9' || v > 0xFFFFFFFFull) {
            *ok = 0;
            return 0;
        }
        v = v * 10u + (uint64_t)(*t - '0');
        t++;
    }
    if (v > 0xFFFFFFFFull) *ok = 0;
    return (uint32_t)v;
}

static int src_open(src *s, const char *arg, int uart)
{
    s->uart = uart;
    s->fd = -1;
    s->left = 0;
    if (uart) {
        int ok;
        s->left = parse_u32(arg, &ok);
        return ok;
    }
    s->fd = sh_open(arg, 1 /* rb */);
    return s->fd >= 0;
}

static void err(const char *cmd, int code, const char *msg)
{
    n_errors++;
    out_str("ERR cmd=");
    out_str(cmd);
    out_str(" code=");
    out_i32(code);
    out_str(" msg=");
    out_str(msg);
    out_char('\n');
}

/* ------------------------------------------------------------------------ */
/* Pipeline                                                                 */
/* ------------------------------------------------------------------------ */

static uint32_t run_detections, run_frames_dec;
static uint64_t run_samples; /* samples received so far in the current audio stream */

static void print_det(const kws_detection *d)
{
    const char *name = kws_model_keyword_name(&model, d->keyword);
    uint32_t bits;
    memcpy(&bits, &d->score, sizeof bits);
    out_str("DET keyword=");
    out_u64(d->keyword);
    out_str(" name=");
    out_str(name ? name : "?");
    out_str(" start=");
    out_u64(d->start_frame);
    out_str(" end=");
    out_u64(d->end_frame);
    out_str(" score=");
    out_f(d->score);
    out_str(" bits=");
    out_hex32(bits);
    out_str(" heard=");
    out_u64(run_samples);
    out_char('\n');
    run_detections++;
    n_detections_total++;
}

static void decode(const float *logpost, uint32_t n_frames)
{
    while (n_frames > 0u) {
        uint32_t done = 0, n_out = 0, i, t0 = timer_now();
        kws_status st = kws_decoder_process(dec, logpost, n_frames, det_buf, FW_MAX_KEYWORDS,
                                            &done, &n_out, NULL);
        t_dec += timer_now() - t0;
        if (st != KWS_OK || done == 0u) return; /* cannot happen: checked at load */
        for (i = 0; i < n_out; i++) print_det(&det_buf[i]);
        logpost += (size_t)done * model.n_phones;
        n_frames -= done;
        run_frames_dec += done;
    }
}

static void decode_flush(void)
{
    uint32_t n_out = 0, i, t0 = timer_now();
    (void)kws_decoder_flush(dec, det_buf, FW_MAX_KEYWORDS, &n_out);
    t_dec += timer_now() - t0;
    for (i = 0; i < n_out; i++) print_det(&det_buf[i]);
}

/* Optional host file for feat/logpost dumps, written through a small buffer. */
static int32_t dump_fd = -1;
static uint8_t dump_buf[1024];
static uint32_t dump_len;

static void dump_flush(void)
{
    if (dump_fd >= 0 && dump_len > 0u) (void)sh_write(dump_fd, dump_buf, dump_len);
    dump_len = 0;
}

static void dump(const void *p, uint32_t n)
{
    const uint8_t *b = (const uint8_t *)p;
    while (n > 0u) {
        uint32_t k = (uint32_t)sizeof dump_buf - dump_len;
        if (k > n) k = n;
        memcpy(dump_buf + dump_len, b, k);
        dump_len += k;
        b += k;
        n -= k;
        if (dump_len == sizeof dump_buf) dump_flush();
    }
}

enum { STAGE_FEAT = 1, STAGE_LOGPOST = 2, STAGE_DETECT = 3, STAGE_STREAM = 4 };

static const char hex_digits[] = "0123456789abcdef";

/* Index of a log-posterior in the network's table (its int8 output + 128). The
 * stream returns table entries only, so the value is there bit for bit: a
 * binary search finds it when the table is ascending (as exported: log of
 * increasing probabilities), a scan otherwise. */
static uint32_t logpost_index(const float *tab, float v)
{
    uint32_t lo = 0, hi = 256u, i, vb, tb;
    memcpy(&vb, &v, sizeof vb);
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2u;
        if (tab[mid] < v) lo = mid + 1u;
        else hi = mid;
    }
    if (lo < 256u) {
        memcpy(&tb, &tab[lo], sizeof tb);
        if (tb == vb) return lo;
    }
    for (i = 0; i < 256u; i++) {
        memcpy(&tb, &tab[i], sizeof tb);
        if (tb == vb) return i;
    }
    return 0u; /* cannot happen: every output is a table entry */
}

/* stream: one "P <hex>" line per posterior frame (2 * n_phones + 3 bytes). */
static void print_post(const float *post, uint32_t n)
{
    const float *tab = fwnet_logpost_table();
    uint32_t n_ph = fwnet_n_phones(), f, i;
    for (f = 0; f < n; f++) {
        out_str("P ");
        for (i = 0; i < n_ph; i++) {
            uint32_t b = logpost_index(tab, post[(size_t)f * n_ph + i]);
            out_char(hex_digits[b >> 4]);
            out_char(hex_digits[b & 0xFu]);
        }
        out_char('\n');
    }
}

static void net_out(const float *post, uint32_t n, int stage)
{
    if (n == 0u) return;
    if (stage == STAGE_LOGPOST) {
        dump(post, n * fwnet_n_phones() * (uint32_t)sizeof(float));
        return;
    }
    if (stage == STAGE_STREAM) {
        print_post(post, n); /* the P lines of a chunk, then its DET lines */
        if (!model_ok) return;
    }
    decode(post, n);
}

static void one_frame(const float *feat, int stage)
{
    uint32_t n, t0;
    if (stage == STAGE_FEAT) {
        dump(feat, KWS_FRONTEND_N_MELS * (uint32_t)sizeof(float));
        return;
    }
    t0 = timer_now();
    n = fwnet_push(feat, post_buf, post_cap);
    t_net += timer_now() - t0;
    net_out(post_buf, n, stage);
}

static void print_time(uint64_t samples, uint32_t frames)
{
    out_str("TIME fe=");
    out_u64(t_fe);
    out_str(" net=");
    out_u64(t_net);
    out_str(" dec=");
    out_u64(t_dec);
    out_str(" samples=");
    out_u64(samples);
    out_str(" frames=");
    out_u64(frames);
    out_char('\n');
}

static void run_audio(src *s, int stage)
{
    uint64_t samples = 0;
    uint32_t frames = 0;
    uint8_t carry = 0;
    int have_carry = 0;
    int decoding = stage == STAGE_DETECT || (stage == STAGE_STREAM && model_ok);
    kws_frontend_reset(fe);
    if (stage != STAGE_FEAT) fwnet_reset();
    if (decoding) kws_decoder_reset(dec);
    t_fe = t_net = t_dec = 0;
    run_detections = 0;
    run_frames_dec = 0;
    run_samples = 0;
    for (;;) {
        uint8_t *bytes = (uint8_t *)pcm_buf;
        uint32_t nb = 0, n, off = 0;
        int32_t r;
        if (have_carry) {
            bytes[0] = carry;
            nb = 1;
            have_carry = 0;
        }
        /* UART: take what one hop needs so that detections come out as the audio
         * arrives; semihosting: a whole chunk per call. */
        r = src_read(s, bytes + nb, (s->uart ? 2u * KWS_FRONTEND_FRAME_SHIFT : sizeof pcm_buf) - nb);
        if (r < 0) {
            err("audio", -1, "read failed");
            break;
        }
        if (r == 0 && nb == 0u) break;
        nb += (uint32_t)r;
        if (r == 0) break; /* odd trailing byte: dropped */
        if (nb & 1u) {
            carry = bytes[nb - 1u];
            have_carry = 1;
            nb--;
        }
        n = nb / 2u;
        samples += n;
        run_samples = samples;
        while (off < n) {
            uint32_t used = 0, nf = 0, i, t0 = timer_now();
            (void)kws_frontend_process(fe, pcm_buf + off, n - off, feat_buf, FW_FE_FRAMES, &used, &nf);
            t_fe += timer_now() - t0;
            off += used;
            for (i = 0; i < nf; i++) one_frame(feat_buf + (size_t)i * KWS_FRONTEND_N_MELS, stage);
            frames += nf;
        }
    }
    if (stage != STAGE_FEAT) {
        for (;;) {
            uint32_t t0 = timer_now(), n = fwnet_flush(post_buf, post_cap);
            t_net += timer_now() - t0;
            if (n == 0u) break;
            net_out(post_buf, n, stage);
        }
    }
    if (decoding) decode_flush();
    out_str("END frames=");
    out_u64(frames);
    out_str(" detections=");
    out_u64(run_detections);
    out_char('\n');
    print_time(samples, frames);
}

/* ------------------------------------------------------------------------ */
/* Commands                                                                 */
/* ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------ */
/* The running keyword model (also for fw_flash.c)                          */
/* ------------------------------------------------------------------------ */

uint32_t fw_phone_set(void) { return expected_phone_set; }
uint32_t fw_n_phones(void) { return fwnet_loaded() ? fwnet_n_phones() : 0u; }
uint32_t fw_max_keywords(void) { return FW_MAX_KEYWORDS; }
uint32_t fw_decoder_room(void) { return (uint32_t)(sizeof arena - mark_net); }

kws_status fw_model_check(const void *data, size_t n, const char **why)
{
    kws_model m;
    size_t need;
    kws_status st = kws_model_parse(data, n, expected_phone_set, &m);
    if (st != KWS_OK) {
        *why = kws_status_str(st);
        return st;
    }
    if (fwnet_loaded() && m.n_phones != fwnet_n_phones()) {
        *why = "model's phone count differs from the network's";
        return KWS_ERR_PHONESET;
    }
    if (m.n_keywords > FW_MAX_KEYWORDS) {
        *why = "too many keywords for the firmware";
        return KWS_ERR_NOMEM;
    }
    need = kws_decoder_size(&m);
    if (need == 0u || ((need + 7u) & ~(size_t)7u) > sizeof arena - mark_net) {
        *why = "arena too small for this model's decoder";
        return KWS_ERR_NOMEM;
    }
    *why = "ok";
    return KWS_OK;
}

kws_status fw_model_use(const void *data, size_t n, int source, const char **why)
{
    kws_model m;
    size_t need;
    void *mem;
    kws_status st;
    if (data == NULL) { /* no model */
        model_ok = 0;
        dec = NULL;
        model_source = FW_SRC_NONE;
        *why = "ok";
        return KWS_OK;
    }
    st = fw_model_check(data, n, why);
    if (st != KWS_OK) return st;
    (void)kws_model_parse(data, n, expected_phone_set, &m);
    need = kws_decoder_size(&m);
    model_ok = 0;
    dec = NULL;
    model = m;
    arena_used = mark_net;
    mem = arena_alloc(need);
    st = mem ? kws_decoder_init(&model, mem, need, &dec) : KWS_ERR_NOMEM;
    if (st != KWS_OK) {
        *why = kws_status_str(st);
        return st;
    }
    model_ok = 1;
    model_source = source;
    return KWS_OK;
}

const kws_model *fw_model_current(int *source)
{
    *source = model_ok ? model_source : FW_SRC_NONE;
    return model_ok ? &model : NULL;
}

static void cmd_model(src *s)
{
    int32_t n;
    kws_status st;
    uint8_t extra;
    const char *why = "";
    model_ok = 0;
    dec = NULL;
    n = src_read_full(s, model_buf, FW_MODEL_MAX);
    if (n < 0) {
        err("model", -1, "read failed");
        return;
    }
    if ((uint32_t)n == FW_MODEL_MAX && src_read(s, &extra, 1) == 1) {
        err("model", KWS_ERR_NOMEM, "model larger than the firmware's model buffer");
        return;
    }
    st = fw_model_use(model_buf, (size_t)n, FW_SRC_RAM, &why);
    if (st != KWS_OK) {
        err("model", (int)st, why);
        return;
    }
    out_str("MODEL ok keywords=");
    out_u64(model.n_keywords);
    out_str(" phones=");
    out_u64(model.n_phones);
    out_str(" states=");
    out_u64(model.n_states);
    out_str(" bytes=");
    out_u64(model.size);
    out_str(" decoder_bytes=");
    out_u64(kws_decoder_size(&model));
    out_str(" phone_set=");
    out_u64(model.phone_set_id);
    out_str(" arena_used=");
    out_u64(arena_used);
    out_char('\n');
}

static void net_loaded_msg(const char *how)
{
    out_str("NET ok phones=");
    out_u64(fwnet_n_phones());
    out_str(" phone_set=");
    out_u64(fwnet_phone_set_id());
    out_str(" ram_bytes=");
    out_u64(fwnet_ram_bytes());
    out_str(" arena_used=");
    out_u64(arena_used);
    out_str(" from=");
    out_str(how);
    out_char('\n');
    if (!phone_set_given) expected_phone_set = fwnet_phone_set_id();
}

/* Carve the network's stream and output buffer out of the arena (after the
 * front end; any decoder is dropped). */
static kws_status net_install(const void *blob, size_t len)
{
    kws_status st;
    size_t need = fwnet_need(blob, len, &st), out_bytes;
    void *mem;
    arena_used = mark_fe;
    mark_net = mark_fe;
    post_buf = NULL;
    post_cap = 0;
    model_ok = 0;
    dec = NULL;
    if (st != KWS_OK) return st;
    mem = arena_alloc(need);
    if (mem == NULL) return KWS_ERR_NOMEM;
    st = fwnet_load(blob, len, mem, need);
    if (st != KWS_OK) {
        arena_used = mark_fe;
        return st;
    }
    out_bytes = (size_t)fwnet_max_out() * fwnet_n_phones() * sizeof(float);
    post_buf = (float *)arena_alloc(out_bytes);
    if (post_buf == NULL) {
        arena_used = mark_fe;
        (void)fwnet_load(NULL, 0, NULL, 0); /* unload */
        return KWS_ERR_NOMEM;
    }
    post_cap = fwnet_max_out();
    mark_net = arena_used;
    return KWS_OK;
}

static void cmd_net(src *s)
{
    int32_t n;
    kws_status st;
    if (!fwnet_compiled()) {
        src_close(s);
        err("net", KWS_ERR_UNSUPPORTED, "firmware built without the network");
        return;
    }
    /* The old model may not match the new network. */
    model_ok = 0;
    n = src_read_full(s, net_test_buf, FW_NET_TEST_MAX);
    if (n < 0) {
        err("net", -1, "read failed");
        return;
    }
    st = net_install(net_test_buf, (size_t)n);
    if (st != KWS_OK) {
        err("net", (int)st, kws_status_str(st));
        return;
    }
    net_loaded_msg("file");
    fw_slots_activate(); /* the flash model for the new phone set */
}

/* A loop of a known instruction count, to check timer ticks against
 * instructions under -icount: 2 instructions per iteration (subs, bne). */
static void cmd_calib(uint32_t n)
{
    uint32_t t0 = timer_now(), t1;
    __asm volatile("1: subs %0, %0, #1\n bne 1b\n" : "+r"(n) : : "cc");
    t1 = timer_now();
    out_str("CALIB ticks=");
    out_u64(t1 - t0);
    out_char('\n');
}

/* netinfo: what a host needs to read P lines back into log-posteriors. */
static void cmd_netinfo(void)
{
    const float *tab = fwnet_logpost_table();
    uint32_t i;
    if (!fwnet_loaded() || tab == NULL) {
        err("netinfo", KWS_ERR_ARG, "no network loaded");
        return;
    }
    out_str("NETINFO phones=");
    out_u64(fwnet_n_phones());
    out_str(" phone_set=");
    out_u64(fwnet_phone_set_id());
    out_str("\nLPTAB ");
    for (i = 0; i < 256u; i++) {
        uint32_t bits;
        int k;
        memcpy(&bits, &tab[i], sizeof bits);
        for (k = 7; k >= 0; k--) out_char(hex_digits[(bits >> (4 * k)) & 0xFu]);
    }
    out_char('\n');
}

static void run_command(int argc, char **argv, int uart);

#define FW_LINE_MAX 160

static void uart_loop(void)
{
    static char line[FW_LINE_MAX];
    static kws_proto_rx rx;
    char *argv[4];
    uart_init();
    out_set(OUT_UART);
    out_str("READY\n");
    kws_proto_rx_init(&rx);
    for (;;) {
        uint32_t n = 0, i;
        int argc = 0;
        char *p;
        kws_proto_frame f;
        kws_proto_event ev = kws_proto_rx_push(&rx, uart_getc(), &f);
        if (ev == KWS_PROTO_FRAME) {
            (void)fw_proto_handle(&f); /* BYE: back to text lines, nothing to do */
            continue;
        }
        if (ev != KWS_PROTO_TEXT) continue; /* a byte of a frame, or a bad frame dropped */
        for (i = 0; i < f.len && n + 1u < FW_LINE_MAX; i++) {
            if (f.payload[i] != '\r') line[n++] = (char)f.payload[i];
        }
        line[n] = 0;
        p = line;
        while (*p && argc < 4) {
            while (*p == ' ') *p++ = 0;
            if (!*p) break;
            argv[argc++] = p;
            while (*p && *p != ' ') p++;
        }
        if (argc == 0) continue;
        if (strcmp(argv[0], "quit") == 0) break;
        run_command(argc, argv, 1);
        out_str("OK\n"); /* every command ends with OK, errors included */
    }
    out_str("BYE\n");
    out_set(OUT_SEMIHOST);
}

static void run_command(int argc, char **argv, int uart)
{
    const char *c = argv[0];
    src s;
    int ok;
    if (strcmp(c, "phoneset") == 0 && argc >= 2) {
        expected_phone_set = parse_u32(argv[1], &ok);
        phone_set_given = 1;
        if (!ok) err(c, KWS_ERR_ARG, "bad number");
        else fw_slots_activate(); /* the flash model for this phone set */
        return;
    }
    if (strcmp(c, "calib") == 0 && argc >= 2) {
        uint32_t n = parse_u32(argv[1], &ok);
        if (!ok || n == 0u) err(c, KWS_ERR_ARG, "bad number");
        else cmd_calib(n);
        return;
    }
    if (strcmp(c, "uart") == 0) {
        if (uart) err(c, KWS_ERR_ARG, "already on the UART");
        else uart_loop();
        return;
    }
    if (strcmp(c, "netinfo") == 0) {
        cmd_netinfo();
        return;
    }
    if (strcmp(c, "activate") == 0) {
        fw_slots_activate(); /* prints the ACTIVE line */
        return;
    }
    if (argc < 2) {
        err(c, KWS_ERR_ARG, "unknown command or missing argument");
        return;
    }
    if (strcmp(c, "model") != 0 && strcmp(c, "net") != 0 && strcmp(c, "post") != 0 &&
        strcmp(c, "detect") != 0 && strcmp(c, "feat") != 0 && strcmp(c, "logpost") != 0 &&
        strcmp(c, "stream") != 0) {
        err(c, KWS_ERR_ARG, "unknown command");
        return;
    }
    if (strcmp(c, "stream") == 0 && !uart) {
        err(c, KWS_ERR_ARG, "UART only (a host reads its P lines)");
        return;
    }
    if (!src_open(&s, argv[1], uart)) {
        err(c, -1, uart ? "bad byte count" : "cannot open file");
        return;
    }
    if (strcmp(c, "model") == 0) {
        cmd_model(&s);
    } else if (strcmp(c, "net") == 0) {
        cmd_net(&s);
    } else if (strcmp(c, "post") == 0) {
        if (!model_ok) {
            err(c, KWS_ERR_ARG, "no keyword model loaded");
        } else {
            /* Read buffer: the arena's free space after the decoder. */
            uint32_t per = (uint32_t)model.n_phones * (uint32_t)sizeof(float);
            size_t room = sizeof arena - arena_used;
            uint32_t cap = (uint32_t)((room < FW_POST_READ_MAX ? room : FW_POST_READ_MAX) / per) * per;
            float *buf = (float *)(void *)((uint8_t *)arena + arena_used);
            uint32_t frames = 0;
            kws_decoder_reset(dec);
            run_samples = 0;
            t_fe = t_net = t_dec = 0;
            run_detections = 0;
            for (;;) {
                int32_t r = cap ? src_read_full(&s, buf, cap) : 0;
                if (r <= 0) break;
                decode(buf, (uint32_t)r / per);
                frames += (uint32_t)r / per;
                if ((uint32_t)r < cap) break;
            }
            decode_flush();
            out_str("END frames=");
            out_u64(frames);
            out_str(" detections=");
            out_u64(run_detections);
            out_char('\n');
            print_time(0, frames);
        }
    } else if (strcmp(c, "detect") == 0) {
        if (!model_ok) err(c, KWS_ERR_ARG, "no keyword model loaded");
        else if (!fwnet_loaded()) err(c, KWS_ERR_ARG, "no network loaded");
        else run_audio(&s, STAGE_DETECT);
    } else if (strcmp(c, "stream") == 0) {
        if (!fwnet_loaded()) err(c, KWS_ERR_ARG, "no network loaded");
        else run_audio(&s, STAGE_STREAM); /* decodes too when a keyword model is loaded */
    } else { /* feat, logpost: dump to a host file */
        int stage = strcmp(c, "feat") == 0 ? STAGE_FEAT : STAGE_LOGPOST;
        if (uart || argc < 3) err(c, KWS_ERR_ARG, "needs an output file (semihosting only)");
        else if (stage == STAGE_LOGPOST && !fwnet_loaded()) err(c, KWS_ERR_ARG, "no network loaded");
        else if ((dump_fd = sh_open(argv[2], 5 /* wb */)) < 0) err(c, -1, "cannot create output file");
        else {
            dump_len = 0;
            run_audio(&s, stage);
            dump_flush();
            (void)sh_close(dump_fd);
            dump_fd = -1;
        }
    }
    src_close(&s);
}

/* ------------------------------------------------------------------------ */

#define FW_CMDLINE_MAX 1024
#define FW_ARGS_MAX 48

void fw_exit(int code)
{
    out_str("SUMMARY detections=");
    out_u64(n_detections_total);
    out_str(" errors=");
    out_u64(n_errors);
    out_str(" stack_used=");
    out_u64(fw_stack_used());
    out_str(" stack_size=");
    out_u64(fw_stack_size());
    out_char('\n');
    out_flush();
    sh_exit((uint32_t)code);
}

int main(void)
{
    static char cmdline[FW_CMDLINE_MAX];
    char *argv[FW_ARGS_MAX];
    int argc = 0, i;
    int32_t n;
    char *p;
    kws_frontend_config cfg = kws_frontend_default_config();
    size_t fe_need = kws_frontend_size(&cfg);
    kws_status st;
    void *fe_mem = arena_alloc(fe_need);

    timer_init();
    out_set(OUT_SEMIHOST);
    out_str("BOOT kws-fw frontend_bytes=");
    out_u64(fe_need);
    out_str(" arena=");
    out_u64(sizeof arena);
    out_str(" model_max=");
    out_u64(sizeof model_buf);
    out_str(" net=");
    out_u64((uint64_t)fwnet_compiled());
    out_char('\n');
    if (fe_need == 0u || fe_mem == NULL) {
        out_str("FATAL arena too small for the front end\n");
        return 2;
    }
    st = kws_frontend_init(&cfg, fe_mem, fe_need, &fe);
    if (st != KWS_OK) {
        out_str("FATAL front end: ");
        out_str(kws_status_str(st));
        out_char('\n');
        return 2;
    }
    mark_fe = mark_net = arena_used;
    {
        size_t len = 0;
        const void *blob = fwnet_builtin(&len);
        if (blob != NULL) {
            st = net_install(blob, len);
            if (st == KWS_OK) net_loaded_msg("flash");
            else err("net", (int)st, kws_status_str(st));
        }
    }
    fw_slots_activate(); /* newest valid model in flash, else the built-in one */

    n = sh_cmdline(cmdline, sizeof cmdline);
    if (n < 0) n = 0;
    cmdline[n < FW_CMDLINE_MAX ? n : FW_CMDLINE_MAX - 1] = 0;
    p = cmdline;
    while (*p && argc < FW_ARGS_MAX) {
        while (*p == ' ') *p++ = 0;
        if (!*p) break;
        argv[argc++] = p;
        while (*p && *p != ' ') p++;
    }
    /* argv[0] is the program name; commands follow. */
    i = 1;
    while (i < argc) {
        int j = i + 1;
        while (j < argc && !(strcmp(argv[j], "phoneset") == 0 || strcmp(argv[j], "model") == 0 ||
                             strcmp(argv[j], "net") == 0 || strcmp(argv[j], "post") == 0 ||
                             strcmp(argv[j], "detect") == 0 || strcmp(argv[j], "feat") == 0 ||
                             strcmp(argv[j], "logpost") == 0 || strcmp(argv[j], "calib") == 0 ||
                             strcmp(argv[j], "uart") == 0 || strcmp(argv[j], "netinfo") == 0 ||
                             strcmp(argv[j], "stream") == 0 || strcmp(argv[j], "activate") == 0))
            j++;
        run_command(j - i, argv + i, 0);
        i = j;
    }
    return n_errors ? 1 : 0;
}
