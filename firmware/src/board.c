/* board.c - semihosting, CMSDK UART0 and timer 0, text output (see board.h). */
#include "board.h"

#include <string.h>

/* ------------------------------------------------------------------------ */
/* Semihosting                                                              */
/* ------------------------------------------------------------------------ */

#define SYS_OPEN 0x01
#define SYS_CLOSE 0x02
#define SYS_WRITE0 0x04
#define SYS_WRITE 0x05
#define SYS_READ 0x06
#define SYS_FLEN 0x0C
#define SYS_GET_CMDLINE 0x15
#define SYS_EXIT 0x18
#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

static int32_t sh_call(uint32_t op, void *arg)
{
    register uint32_t r0 __asm("r0") = op;
    register void *r1 __asm("r1") = arg;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return (int32_t)r0;
}

int32_t sh_open(const char *path, uint32_t mode)
{
    uint32_t a[3];
    a[0] = (uint32_t)(uintptr_t)path;
    a[1] = mode;
    a[2] = (uint32_t)strlen(path);
    return sh_call(SYS_OPEN, a);
}

int32_t sh_close(int32_t fd)
{
    uint32_t a[1];
    a[0] = (uint32_t)fd;
    return sh_call(SYS_CLOSE, a);
}

int32_t sh_read(int32_t fd, void *buf, uint32_t len)
{
    uint32_t a[3];
    int32_t left;
    a[0] = (uint32_t)fd;
    a[1] = (uint32_t)(uintptr_t)buf;
    a[2] = len;
    left = sh_call(SYS_READ, a); /* bytes NOT read */
    if (left < 0 || (uint32_t)left > len) return -1;
    return (int32_t)(len - (uint32_t)left);
}

int32_t sh_write(int32_t fd, const void *buf, uint32_t len)
{
    uint32_t a[3];
    a[0] = (uint32_t)fd;
    a[1] = (uint32_t)(uintptr_t)buf;
    a[2] = len;
    return sh_call(SYS_WRITE, a) == 0 ? 0 : -1;
}

int32_t sh_flen(int32_t fd)
{
    uint32_t a[1];
    a[0] = (uint32_t)fd;
    return sh_call(SYS_FLEN, a);
}

void sh_write0(const char *s) { (void)sh_call(SYS_WRITE0, (void *)(uintptr_t)s); }

int32_t sh_cmdline(char *buf, uint32_t len)
{
    uint32_t a[2];
    a[0] = (uint32_t)(uintptr_t)buf;
    a[1] = len;
    if (sh_call(SYS_GET_CMDLINE, a) != 0) return -1;
    return (int32_t)a[1];
}

void sh_exit(uint32_t code)
{
    uint32_t a[2];
    a[0] = ADP_STOPPED_APPLICATION_EXIT;
    a[1] = code;
    (void)sh_call(SYS_EXIT_EXTENDED, a);
    /* A host without SYS_EXIT_EXTENDED: plain exit (status 0 or 1). */
    (void)sh_call(SYS_EXIT, (void *)(uintptr_t)(code == 0 ? ADP_STOPPED_APPLICATION_EXIT : 0x20024u));
    for (;;) {
    }
}

/* ------------------------------------------------------------------------ */
/* CMSDK UART0                                                              */
/* ------------------------------------------------------------------------ */

#define UART0_BASE 0x40004000u
#define UART_DATA (*(volatile uint32_t *)(UART0_BASE + 0x00u))
#define UART_STATE (*(volatile uint32_t *)(UART0_BASE + 0x04u))
#define UART_CTRL (*(volatile uint32_t *)(UART0_BASE + 0x08u))
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0_BASE + 0x10u))
#define UART_STATE_TXFULL 0x1u
#define UART_STATE_RXFULL 0x2u

void uart_init(void)
{
    UART_BAUDDIV = 25000000u / 115200u; /* 25 MHz APB clock; >= 16 required */
    UART_CTRL = 0x3u;                   /* TX and RX enable, no interrupts */
}

void uart_putc(uint8_t c)
{
    while (UART_STATE & UART_STATE_TXFULL) {
    }
    UART_DATA = c;
}

uint8_t uart_getc(void)
{
    while (!(UART_STATE & UART_STATE_RXFULL)) {
    }
    return (uint8_t)UART_DATA;
}

/* ------------------------------------------------------------------------ */
/* CMSDK APB timer 0                                                        */
/* ------------------------------------------------------------------------ */

#define TIMER0_BASE 0x40000000u
#define TIMER_CTRL (*(volatile uint32_t *)(TIMER0_BASE + 0x00u))
#define TIMER_VALUE (*(volatile uint32_t *)(TIMER0_BASE + 0x04u))
#define TIMER_RELOAD (*(volatile uint32_t *)(TIMER0_BASE + 0x08u))

void timer_init(void)
{
    TIMER_CTRL = 0u;
    TIMER_RELOAD = 0xFFFFFFFFu;
    TIMER_VALUE = 0xFFFFFFFFu;
    TIMER_CTRL = 1u; /* enable, pclk, no interrupt */
}

uint32_t timer_now(void) { return 0xFFFFFFFFu - TIMER_VALUE; }

/* ------------------------------------------------------------------------ */
/* Output                                                                   */
/* ------------------------------------------------------------------------ */

static int out_sink = OUT_SEMIHOST;
static char out_buf[128];
static uint32_t out_len;

void out_flush(void)
{
    if (out_len == 0u) return;
    if (out_sink == OUT_UART) {
        uint32_t i;
        for (i = 0; i < out_len; i++) uart_putc((uint8_t)out_buf[i]);
    } else {
        /* The debug console is the special file ":tt" (mode 4 = "w"). */
        static int32_t tt = -1;
        if (tt < 0) tt = sh_open(":tt", 4);
        if (tt >= 0) (void)sh_write(tt, out_buf, out_len);
    }
    out_len = 0;
}

void out_set(int sink)
{
    out_flush();
    out_sink = sink;
}

void out_char(char c)
{
    if (out_len == sizeof out_buf) out_flush();
    out_buf[out_len++] = c;
    if (c == '\n') out_flush();
}

void out_str(const char *s)
{
    while (*s) out_char(*s++);
}

void out_u64(uint64_t v)
{
    char t[24];
    int n = 0;
    do {
        t[n++] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v != 0u);
    while (n > 0) out_char(t[--n]);
}

void out_i32(int32_t v)
{
    if (v < 0) {
        out_char('-');
        out_u64((uint64_t)(-(int64_t)v));
    } else {
        out_u64((uint64_t)v);
    }
}

void out_hex32(uint32_t v)
{
    static const char hx[] = "0123456789abcdef";
    int i;
    out_str("0x");
    for (i = 7; i >= 0; i--) out_char(hx[(v >> (4 * i)) & 0xFu]);
}

void out_f(float v)
{
    uint64_t ip, fp;
    double d = (double)v;
    if (v != v) {
        out_str("nan");
        return;
    }
    if (d < 0.0) {
        out_char('-');
        d = -d;
    }
    if (d > 1e15) {
        out_str("inf");
        return;
    }
    d += 5e-7;
    ip = (uint64_t)d;
    fp = (uint64_t)((d - (double)ip) * 1e6);
    out_u64(ip);
    out_char('.');
    {
        char t[6];
        int i;
        for (i = 5; i >= 0; i--) {
            t[i] = (char)('0' + (int)(fp % 10u));
            fp /= 10u;
        }
        for (i = 0; i < 6; i++) out_char(t[i]);
    }
}
