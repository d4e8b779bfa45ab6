/*
 * startup.c - vector table and reset handler for the Cortex-M4F on mps2-an386.
 *
 * Reset: enable the FPU (CPACR CP10/CP11 full access) before any floating-point
 * code runs, copy .data from flash, zero .bss, paint the stack with a watermark
 * pattern (fw_stack_used() reads it back), then call main(). Faults print a line
 * through semihosting and exit with status 3, so a crash is never a silent hang.
 */
#include <stdint.h>

#include "board.h"

extern uint32_t __etext, __data_start__, __data_end__, __bss_start__, __bss_end__;
extern uint32_t __stack_limit__, __stack_top__;

int main(void);
void Reset_Handler(void);
void Fault_Handler(void);
void Default_Handler(void);

#define STACK_PAINT 0xC0FFEE5Au

__attribute__((naked, noreturn)) void Reset_Handler(void)
{
    /* Runs on the initial stack (top of .stack) with no frame of its own. */
    __asm volatile(
        /* FPU on: CPACR (0xE000ED88) |= 0xF << 20 */
        "ldr r0, =0xE000ED88\n"
        "ldr r1, [r0]\n"
        "orr r1, r1, #(0xF << 20)\n"
        "str r1, [r0]\n"
        "dsb\n"
        "isb\n"
        /* .data */
        "ldr r0, =__etext\n"
        "ldr r1, =__data_start__\n"
        "ldr r2, =__data_end__\n"
        "1: cmp r1, r2\n"
        "bhs 2f\n"
        "ldr r3, [r0], #4\n"
        "str r3, [r1], #4\n"
        "b 1b\n"
        /* .bss */
        "2: ldr r1, =__bss_start__\n"
        "ldr r2, =__bss_end__\n"
        "movs r3, #0\n"
        "3: cmp r1, r2\n"
        "bhs 4f\n"
        "str r3, [r1], #4\n"
        "b 3b\n"
        /* stack watermark: the whole stack region (nothing is on it yet) */
        "4: ldr r1, =__stack_limit__\n"
        "ldr r2, =__stack_top__\n"
        "ldr r3, =0xC0FFEE5A\n"
        "5: cmp r1, r2\n"
        "bhs 6f\n"
        "str r3, [r1], #4\n"
        "b 5b\n"
        "6: bl main\n"
        "bl fw_exit\n"
        "7: b 7b\n");
}

uint32_t fw_stack_used(void)
{
    const uint32_t *p = &__stack_limit__;
    while (p < &__stack_top__ && *p == STACK_PAINT) p++;
    return (uint32_t)((uintptr_t)&__stack_top__ - (uintptr_t)p);
}

uint32_t fw_stack_size(void)
{
    return (uint32_t)((uintptr_t)&__stack_top__ - (uintptr_t)&__stack_limit__);
}

void Fault_Handler(void)
{
    sh_write0("FATAL hard fault\n");
    sh_exit(3);
}

void Default_Handler(void)
{
    sh_write0("FATAL unexpected interrupt\n");
    sh_exit(3);
}

typedef void (*vector_fn)(void);

__attribute__((section(".vectors"), used)) const vector_fn fw_vectors[16 + 32] = {
    (vector_fn)(uintptr_t)&__stack_top__,
    Reset_Handler,
    Default_Handler, /* NMI */
    Fault_Handler,   /* HardFault */
    Fault_Handler,   /* MemManage */
    Fault_Handler,   /* BusFault */
    Fault_Handler,   /* UsageFault */
    0, 0, 0, 0,
    Default_Handler, /* SVCall */
    Default_Handler, /* DebugMon */
    0,
    Default_Handler, /* PendSV */
    Default_Handler, /* SysTick */
    /* 32 external interrupts (UARTs, timers, ...): none enabled. */
    Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler,
};
