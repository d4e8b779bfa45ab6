/*
 * board.h - the few board services the firmware uses on mps2-an386:
 * ARM semihosting (host file I/O and exit, for tests and benchmarks), the CMSDK
 * UART0 (the streaming audio path), the CMSDK APB timer 0 (stage timing: under
 * QEMU -icount shift=0 it counts instructions), and a tiny text formatter.
 */
#ifndef FW_BOARD_H
#define FW_BOARD_H

#include <stddef.h>
#include <stdint.h>

/* ---- semihosting (bkpt 0xAB) ---- */
int32_t sh_open(const char *path, uint32_t mode); /* mode: 0 "r", 1 "rb", 4 "w", 5 "wb"; -1 on error */
int32_t sh_close(int32_t fd);
/* Bytes read (0 at end of file), or -1. */
int32_t sh_read(int32_t fd, void *buf, uint32_t len);
/* 0 on success. */
int32_t sh_write(int32_t fd, const void *buf, uint32_t len);
int32_t sh_flen(int32_t fd);
void sh_write0(const char *s);
/* Command line (QEMU: -semihosting-config arg=... or -append); length or -1. */
int32_t sh_cmdline(char *buf, uint32_t len);
__attribute__((noreturn)) void sh_exit(uint32_t code);

/* ---- CMSDK UART0 at 0x40004000 (polled) ---- */
void uart_init(void);
void uart_putc(uint8_t c);
uint8_t uart_getc(void); /* blocks */

/* ---- CMSDK APB timer 0 at 0x40000000: free-running 32-bit down counter ---- */
void timer_init(void);
uint32_t timer_now(void);   /* ticks, counting UP (wraps) */

/* ---- output: text goes to the current sink (semihosting console or UART) ---- */
enum { OUT_SEMIHOST = 0, OUT_UART = 1 };
void out_set(int sink);
void out_str(const char *s);
void out_char(char c);
void out_u64(uint64_t v);
void out_i32(int32_t v);
void out_hex32(uint32_t v);
void out_f(float v);        /* fixed point, 6 decimals */
void out_flush(void);

uint32_t fw_stack_used(void);
uint32_t fw_stack_size(void);
__attribute__((noreturn)) void fw_exit(int code);

#endif
