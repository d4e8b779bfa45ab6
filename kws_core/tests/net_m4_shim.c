/*
 * net_m4_shim.c - runs test_net.c on a Cortex-M4F in QEMU (make -f net.mk net-m4).
 *
 * test_net.c is compiled with -Dmain=test_main; this file provides main() (opens
 * the semihosting console and files), a bump-allocator _sbrk over the emulator-only
 * PSRAM (.testbuf) for the tests' malloc, and fw_exit() for firmware/src/startup.c.
 */
#include <errno.h>
#include <stddef.h>

extern void initialise_monitor_handles(void);
void sh_exit(int code);
int test_main(void);
void fw_exit(int code);
void *_sbrk(ptrdiff_t incr);
int main(void);

static char heap[8u << 20] __attribute__((section(".testbuf"), aligned(8)));
static size_t heap_used;

void *_sbrk(ptrdiff_t incr)
{
    char *p = heap + heap_used;
    if (incr < 0 || heap_used + (size_t)incr > sizeof heap) {
        errno = ENOMEM;
        return (void *)-1;
    }
    heap_used += (size_t)incr;
    return p;
}

void fw_exit(int code) { sh_exit(code); }

int main(void)
{
    int rc;
    initialise_monitor_handles();
    rc = test_main();
    fw_exit(rc);
    return rc;
}
