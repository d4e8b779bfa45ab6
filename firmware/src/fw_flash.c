/*
 * fw_flash.c - two keyword-model slots in (emulated) flash and the device side of
 * the serial flashing protocol. See fw_flash.h and docs/flash-protocol.md.
 *
 * Flash. The slots live in a region the linker script reserves (FLASHSLOTS,
 * 0x21F00000, the top MB of the board's PSRAM) that the firmware treats as NOR
 * flash: pages of FW_FLASH_PAGE bytes are erased to 0xFF, and a 32-bit word may
 * only be programmed while it is erased (programming a word twice is refused, as
 * the ECC flash of most Cortex-M parts does). Under QEMU the PSRAM is backed by a
 * file (-machine memory-backend=..., memory-backend-file share=on; see
 * tools/run_firmware.py), so every completed write is in the file at once and
 * survives a guest reset (SYSRESETREQ) and the emulator being killed; the linker
 * script puts no section there, so the ELF loader never overwrites it.
 *
 * Slot layout: [64-byte header][model bytes]. The header is
 *   u32 magic "KWSS", u32 layout version 1, u32 seq, u32 size, u32 crc32 of the
 *   model bytes, u32 phone-set id, 36 reserved bytes (0), u32 crc32 of bytes 0..59.
 * A transfer erases the inactive slot (header included), programs the model
 * bytes behind the header, checks them (CRC of what is in flash, kws_model_parse
 * against the device's phone set, keyword count, decoder size) and only then
 * programs the header with seq = newest + 1: the header's own CRC makes that
 * one step. A slot is valid when magic, version, header CRC, size and data CRC
 * all hold; at boot the newest valid slot that runs here is used, then the
 * other, then the model compiled into the firmware.
 */
#include "fw_flash.h"

#include <string.h>

#include "board.h"

#define FW_FLASH_PAGE 4096u
#define FW_SLOT_PAGES 17u
#define FW_SLOT_BYTES (FW_FLASH_PAGE * FW_SLOT_PAGES) /* 68 KB */
#define FW_SLOT_HDR 64u
#define FW_SLOT_CAP (FW_SLOT_BYTES - FW_SLOT_HDR) /* 69,568 model bytes */
#define FW_SLOT_MAGIC 0x53535753u                 /* "KWSS" */
#define FW_SLOT_LAYOUT 1u

extern uint32_t __flash_slots_start__[], __flash_slots_end__[];

/* ------------------------------------------------------------------------ */
/* Emulated NOR flash                                                        */
/* ------------------------------------------------------------------------ */

static volatile uint32_t *flash_word(uint32_t off)
{
    return (volatile uint32_t *)((uint8_t *)__flash_slots_start__ + off);
}

static int flash_fits(uint32_t off, uint32_t n)
{
    uint32_t size = (uint32_t)((uintptr_t)__flash_slots_end__ - (uintptr_t)__flash_slots_start__);
    return off <= size && n <= size - off;
}

static int flash_erase_page(uint32_t off)
{
    uint32_t i;
    if ((off % FW_FLASH_PAGE) != 0u || !flash_fits(off, FW_FLASH_PAGE)) return 0;
    for (i = 0; i < FW_FLASH_PAGE; i += 4u) *flash_word(off + i) = 0xFFFFFFFFu;
    return 1;
}

/* Program n bytes at off (word-aligned); the last word is padded with 0xFF.
 * Every target word must be erased. */
static int flash_program(uint32_t off, const uint8_t *src, uint32_t n)
{
    uint32_t i;
    if ((off & 3u) != 0u || !flash_fits(off, (n + 3u) & ~3u)) return 0;
    for (i = 0; i < n; i += 4u) {
        uint8_t w[4] = {0xFFu, 0xFFu, 0xFFu, 0xFFu};
        uint32_t v, k = n - i < 4u ? n - i : 4u;
        volatile uint32_t *dst = flash_word(off + i);
        memcpy(w, src + i, k);
        memcpy(&v, w, 4);
        if (*dst != 0xFFFFFFFFu) return 0; /* not erased */
        *dst = v;
        if (*dst != v) return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Slots                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct slot_info {
    int valid;
    uint32_t seq, size, crc, phone_set;
} slot_info;

static uint32_t slot_off(int s) { return (uint32_t)s * FW_SLOT_BYTES; }
static const uint8_t *slot_data(int s) { return (const uint8_t *)flash_word(slot_off(s) + FW_SLOT_HDR); }

static slot_info slot_read(int s)
{
    slot_info si;
    uint8_t h[FW_SLOT_HDR];
    memset(&si, 0, sizeof si);
    if (!flash_fits(slot_off(s), FW_SLOT_BYTES)) return si;
    memcpy(h, (const uint8_t *)flash_word(slot_off(s)), sizeof h);
    if (kws_proto_rd32(h) != FW_SLOT_MAGIC || kws_proto_rd32(h + 4) != FW_SLOT_LAYOUT) return si;
    if (kws_crc32(0u, h, 60u) != kws_proto_rd32(h + 60)) return si;
    si.seq = kws_proto_rd32(h + 8);
    si.size = kws_proto_rd32(h + 12);
    si.crc = kws_proto_rd32(h + 16);
    si.phone_set = kws_proto_rd32(h + 20);
    if (si.seq == 0u || si.size < 64u || si.size > FW_SLOT_CAP) return si;
    if (kws_crc32(0u, slot_data(s), si.size) != si.crc) return si;
    si.valid = 1;
    return si;
}

/* What the device runs, as far as the slots go. */
static int run_slot = -1;       /* slot of the running model, -1 if not from a slot */
static uint32_t run_seq;

static const char *src_name(int src)
{
    switch (src) {
    case FW_SRC_SLOT_A: return "slotA";
    case FW_SRC_SLOT_B: return "slotB";
    case FW_SRC_BUILTIN: return "builtin";
    case FW_SRC_RAM: return "ram";
    default: return "none";
    }
}

static void print_active(void)
{
    int src;
    const kws_model *m = fw_model_current(&src);
    out_str("ACTIVE source=");
    out_str(src_name(m ? src : FW_SRC_NONE));
    if (m != NULL) {
        out_str(" seq=");
        out_u64(run_slot >= 0 ? run_seq : 0u);
        out_str(" keywords=");
        out_u64(m->n_keywords);
        out_str(" bytes=");
        out_u64(m->size);
        out_str(" phone_set=");
        out_u64(m->phone_set_id);
    }
    out_char('\n');
}

void fw_slots_activate(void)
{
    slot_info a = slot_read(0), b = slot_read(1);
    int order[2], i;
    const char *why;
    order[0] = (b.valid && (!a.valid || b.seq > a.seq)) ? 1 : 0;
    order[1] = 1 - order[0];
    run_slot = -1;
    run_seq = 0;
    for (i = 0; i < 2; i++) {
        int s = order[i];
        slot_info si = s ? b : a;
        if (!si.valid) continue;
        if (fw_model_use(slot_data(s), si.size, s ? FW_SRC_SLOT_B : FW_SRC_SLOT_A, &why) == KWS_OK) {
            run_slot = s;
            run_seq = si.seq;
            print_active();
            return;
        }
    }
    if (fw_model_use(fw_default_model, fw_default_model_size, FW_SRC_BUILTIN, &why) != KWS_OK) {
        /* Nothing runs here (e.g. the built-in model is for another phone set). */
        (void)fw_model_use(NULL, 0, FW_SRC_NONE, &why);
    }
    print_active();
}

/* The slot a new model goes to: never the running one; otherwise the one that
 * does not hold the newest valid model (which stays as the fallback). */
static int inactive_slot(const slot_info *a, const slot_info *b)
{
    int src;
    if (fw_model_current(&src) != NULL && (src == FW_SRC_SLOT_A || src == FW_SRC_SLOT_B) && run_slot >= 0)
        return 1 - run_slot;
    if (a->valid && (!b->valid || a->seq > b->seq)) return 1;
    if (b->valid) return 0;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Protocol                                                                  */
/* ------------------------------------------------------------------------ */

static struct {
    int active;       /* a BEGIN was accepted */
    int slot;
    uint32_t size, crc, phone_set, next;
} xfer;

/* The last reply to a state-changing request, resent when the host repeats the
 * request (same type and seq) because our reply was lost. */
static uint8_t last_type, last_seq, last_valid;
static uint8_t last_reply[16];
static uint32_t last_len;

static uint8_t reply_buf[KWS_PROTO_MAX_PAYLOAD];

static void uart_put_cb(void *ctx, uint8_t b)
{
    (void)ctx;
    uart_putc(b);
}

static void send_reply(const kws_proto_frame *f, const uint8_t *p, uint32_t n, int cache)
{
    out_flush();
    (void)kws_proto_send((uint8_t)(f->type | KWS_MSG_REPLY), f->seq, p, n, uart_put_cb, NULL);
    if (cache && n <= sizeof last_reply) {
        memcpy(last_reply, p, n);
        last_len = n;
        last_type = f->type;
        last_seq = f->seq;
        last_valid = 1;
    }
}

/* Console log (semihosting) so that the UART carries frames only. */
static void log_begin(const char *what)
{
    out_set(OUT_SEMIHOST);
    out_str("FLASH ");
    out_str(what);
}

static void log_end(void)
{
    out_char('\n');
    out_set(OUT_UART);
}

static uint32_t put_str(uint8_t *p, uint32_t at, uint32_t cap, const char *s)
{
    while (*s && at + 1u < cap) p[at++] = (uint8_t)*s++;
    if (at < cap) p[at++] = 0;
    return at;
}

static void do_hello(const kws_proto_frame *f)
{
    uint16_t ver = 0, host_max = 0;
    uint8_t *r = reply_buf;
    uint32_t n;
    last_valid = 0;
    memset(r, 0, 24);
    if (!kws_proto_get_hello(f, &ver, &host_max)) r[0] = KWS_PST_ARG;
    else if (ver != KWS_PROTO_VERSION) r[0] = KWS_PST_VERSION;
    r[1] = (uint8_t)KWS_PROTO_VERSION;
    kws_proto_wr16(r + 2, (uint16_t)KWS_PROTO_MAX_DATA);
    kws_proto_wr32(r + 4, fw_phone_set());
    kws_proto_wr16(r + 8, (uint16_t)fw_n_phones());
    kws_proto_wr16(r + 10, (uint16_t)fw_max_keywords());
    kws_proto_wr32(r + 12, FW_SLOT_CAP);
    kws_proto_wr32(r + 16, fw_decoder_room());
    kws_proto_wr32(r + 20, FW_FLASH_PAGE);
    n = put_str(r, 24u, sizeof reply_buf, FW_VERSION);
    send_reply(f, r, n, 0);
}

static void do_info(const kws_proto_frame *f)
{
    uint8_t *r = reply_buf;
    int src = FW_SRC_NONE;
    const kws_model *m = fw_model_current(&src);
    slot_info a = slot_read(0), b = slot_read(1);
    uint32_t n = 32u, k;
    memset(r, 0, 32);
    r[0] = KWS_PST_OK;
    r[1] = (uint8_t)(m ? src : FW_SRC_NONE);
    r[2] = (uint8_t)inactive_slot(&a, &b);
    if (m != NULL) {
        kws_proto_wr32(r + 4, run_slot >= 0 ? run_seq : 0u);
        kws_proto_wr32(r + 8, m->size);
        kws_proto_wr32(r + 12, kws_crc32(0u, m->data, m->size)); /* of the whole file */
        kws_proto_wr32(r + 16, m->phone_set_id);
        kws_proto_wr16(r + 20, m->n_keywords);
    }
    kws_proto_wr32(r + 24, a.valid ? a.seq : 0u);
    kws_proto_wr32(r + 28, b.valid ? b.seq : 0u);
    for (k = 0; m != NULL && k < m->n_keywords; k++) {
        const char *name = kws_model_keyword_name(m, k);
        size_t len = name ? strlen(name) : 0u;
        if (n + len + 1u > sizeof reply_buf) {
            r[3] |= 1u; /* names truncated */
            break;
        }
        memcpy(r + n, name, len);
        n += (uint32_t)len;
        r[n++] = 0;
    }
    send_reply(f, r, n, 0);
}

static void do_begin(const kws_proto_frame *f)
{
    uint32_t size = 0, crc = 0, ps = 0, i;
    uint8_t r[12];
    slot_info a, b;
    memset(r, 0, sizeof r);
    xfer.active = 0;
    if (!kws_proto_get_begin(f, &size, &crc, &ps)) {
        r[0] = KWS_PST_ARG;
    } else if (size < 64u || size > FW_SLOT_CAP || (size & 3u) != 0u) {
        r[0] = KWS_PST_SIZE;
    } else if (fw_phone_set() != 0u && ps != fw_phone_set()) {
        r[0] = KWS_PST_PHONESET;
    } else {
        a = slot_read(0);
        b = slot_read(1);
        xfer.slot = inactive_slot(&a, &b);
        xfer.size = size;
        xfer.crc = crc;
        xfer.phone_set = ps;
        xfer.next = 0;
        for (i = 0; i < FW_SLOT_PAGES; i++) {
            if (!flash_erase_page(slot_off(xfer.slot) + i * FW_FLASH_PAGE)) r[0] = KWS_PST_FLASH;
        }
        if (r[0] == KWS_PST_OK) xfer.active = 1;
        r[1] = (uint8_t)xfer.slot;
        log_begin("begin slot=");
        out_char(xfer.slot ? 'B' : 'A');
        out_str(" size=");
        out_u64(size);
        log_end();
    }
    kws_proto_wr16(r + 2, (uint16_t)KWS_PROTO_MAX_DATA);
    kws_proto_wr32(r + 4, FW_SLOT_CAP);
    kws_proto_wr32(r + 8, fw_phone_set());
    send_reply(f, r, sizeof r, 1);
}

static void do_data(const kws_proto_frame *f)
{
    uint32_t off = 0, n = 0;
    const uint8_t *d = NULL;
    uint8_t r[8];
    memset(r, 0, sizeof r);
    if (!kws_proto_get_data(f, &off, &d, &n)) {
        r[0] = KWS_PST_ARG;
    } else if (!xfer.active) {
        r[0] = KWS_PST_STATE;
    } else if (off == xfer.next && n <= xfer.size - off && ((n & 3u) == 0u || off + n == xfer.size)) {
        if (flash_program(slot_off(xfer.slot) + FW_SLOT_HDR + off, d, n)) xfer.next += n;
        else r[0] = KWS_PST_FLASH;
    } else if (off < xfer.next && n <= xfer.next - off) {
        /* A repeat of a chunk already written (our ACK was lost): ACK again. */
    } else {
        r[0] = KWS_PST_OFFSET;
    }
    kws_proto_wr32(r + 4, xfer.next);
    send_reply(f, r, sizeof r, 1);
}

static void do_commit(const kws_proto_frame *f)
{
    uint8_t r[12], h[FW_SLOT_HDR];
    const char *why = "";
    kws_status st = KWS_OK;
    slot_info a, b, si;
    memset(r, 0, sizeof r);
    if (!xfer.active) {
        r[0] = KWS_PST_STATE;
    } else if (xfer.next != xfer.size) {
        r[0] = KWS_PST_INCOMPLETE;
    } else if (kws_crc32(0u, slot_data(xfer.slot), xfer.size) != xfer.crc) {
        r[0] = KWS_PST_CRC;
    } else if ((st = fw_model_check(slot_data(xfer.slot), xfer.size, &why)) != KWS_OK) {
        r[0] = st == KWS_ERR_NOMEM ? KWS_PST_NOMEM : st == KWS_ERR_PHONESET ? KWS_PST_PHONESET : KWS_PST_MODEL;
        r[2] = (uint8_t)st;
    } else {
        a = slot_read(0);
        b = slot_read(1);
        memset(h, 0, sizeof h);
        kws_proto_wr32(h, FW_SLOT_MAGIC);
        kws_proto_wr32(h + 4, FW_SLOT_LAYOUT);
        kws_proto_wr32(h + 8, 1u + (a.valid && a.seq > (b.valid ? b.seq : 0u) ? a.seq : (b.valid ? b.seq : 0u)));
        kws_proto_wr32(h + 12, xfer.size);
        kws_proto_wr32(h + 16, xfer.crc);
        kws_proto_wr32(h + 20, xfer.phone_set);
        kws_proto_wr32(h + 60, kws_crc32(0u, h, 60u));
        /* The one step that makes the new model the newest valid one. */
        if (!flash_program(slot_off(xfer.slot), h, sizeof h)) {
            r[0] = KWS_PST_FLASH;
        } else {
            si = slot_read(xfer.slot);
            if (!si.valid) {
                r[0] = KWS_PST_FLASH;
            } else if ((st = fw_model_use(slot_data(xfer.slot), si.size,
                                          xfer.slot ? FW_SRC_SLOT_B : FW_SRC_SLOT_A, &why)) != KWS_OK) {
                r[0] = KWS_PST_MODEL; /* cannot happen: checked above */
                r[2] = (uint8_t)st;
            } else {
                run_slot = xfer.slot;
                run_seq = si.seq;
            }
        }
    }
    r[1] = (uint8_t)xfer.slot;
    kws_proto_wr32(r + 4, r[0] == KWS_PST_OK ? run_seq : 0u);
    xfer.active = 0;
    if (r[0] == KWS_PST_OK) {
        out_set(OUT_SEMIHOST);
        print_active();
        out_set(OUT_UART);
    } else {
        log_begin("commit refused status=");
        out_u64(r[0]);
        out_str(" detail=");
        out_u64(r[2]);
        out_str(" msg=");
        out_str(why);
        log_end();
    }
    send_reply(f, r, sizeof r, 1);
}

static void do_reset(const kws_proto_frame *f)
{
    uint8_t r[1] = {KWS_PST_OK};
    send_reply(f, r, 1, 0);
    log_begin("reset");
    log_end();
    out_set(OUT_SEMIHOST);
    /* SCB->AIRCR = VECTKEY | SYSRESETREQ */
    __asm volatile("dsb" ::: "memory");
    *(volatile uint32_t *)0xE000ED0Cu = 0x05FA0004u;
    __asm volatile("dsb" ::: "memory");
    for (;;) {
    }
}

int fw_proto_handle(const kws_proto_frame *f)
{
    uint8_t r[1];
    if (last_valid && f->type == last_type && f->seq == last_seq &&
        (f->type == KWS_MSG_BEGIN || f->type == KWS_MSG_DATA || f->type == KWS_MSG_COMMIT)) {
        send_reply(f, last_reply, last_len, 0); /* a repeat: same answer, no second effect */
        return 0;
    }
    switch (f->type) {
    case KWS_MSG_HELLO: do_hello(f); return 0;
    case KWS_MSG_INFO: do_info(f); return 0;
    case KWS_MSG_BEGIN: do_begin(f); return 0;
    case KWS_MSG_DATA: do_data(f); return 0;
    case KWS_MSG_COMMIT: do_commit(f); return 0;
    case KWS_MSG_RESET: do_reset(f); return 0;
    case KWS_MSG_BYE:
        r[0] = KWS_PST_OK;
        last_valid = 0;
        send_reply(f, r, 1, 0);
        return 1;
    default:
        r[0] = KWS_PST_TYPE;
        send_reply(f, r, 1, 0);
        return 0;
    }
}
