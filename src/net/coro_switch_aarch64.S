/*
 * coro_switch_aarch64.S - the coroutine context switch for AArch64 (AAPCS64).
 *
 * void tern__coro_switch(void **save_sp, void *load_sp)
 *     Stores the callee-saved state (x19-x28, the frame pointer x29, the
 *     link register x30 and the low halves d8-d15 of v8-v15) in a 160-byte
 *     frame on the current stack, stores sp in *save_sp, switches to load_sp,
 *     reloads the same frame from there and returns through the reloaded x30.
 *     Caller-saved registers need no saving: the C caller assumes the call
 *     clobbers them.
 *
 * Frame at a saved stack pointer (offsets in bytes; sp stays 16-aligned):
 *     +0 x19  +8 x20  +16 x21 +24 x22 +32 x23 +40 x24 +48 x25 +56 x26
 *     +64 x27 +72 x28 +80 x29 +88 x30 +96 d8 +104 d9 +112 d10 +120 d11
 *     +128 d12 +136 d13 +144 d14 +152 d15
 * coro.c builds this frame by hand for a new coroutine (coro_prepare), with
 * x30 = tern__coro_start, x19 = the coro and x20 = the C entry function.
 *
 * void tern__coro_start(void)
 *     First entry: calls x20(x19); the entry never returns.
 *
 * Invariant: both symbols are hidden (internal to libtern), and the object is
 * marked as not needing an executable stack.  Empty on other architectures.
 */
#if defined(__aarch64__)

#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
#define TERN_BTI_C hint #34         /* bti c: valid target of a call */
#else
#define TERN_BTI_C
#endif

    .text

    .globl  tern__coro_switch
    .hidden tern__coro_switch
    .type   tern__coro_switch, %function
    .p2align 4
tern__coro_switch:
    .cfi_startproc
    TERN_BTI_C
    sub     sp, sp, #160            // room for 20 registers (16-aligned)
    .cfi_adjust_cfa_offset 160
    stp     x19, x20, [sp, #0]      // callee-saved general registers
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]     // frame pointer and return address
    stp     d8, d9, [sp, #96]       // callee-saved FP/SIMD (low 64 bits)
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
    mov     x9, sp                  // sp cannot be stored directly
    str     x9, [x0]                // *save_sp = our stack pointer
    mov     sp, x1                  // switch to the other stack
    ldp     x19, x20, [sp, #0]      // reload the other side's registers
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    ldp     d8, d9, [sp, #96]
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    add     sp, sp, #160            // drop the frame
    .cfi_adjust_cfa_offset -160
    ret                             // to x30: the other side's caller (or start)
    .cfi_endproc
    .size   tern__coro_switch, .-tern__coro_switch

    .globl  tern__coro_start
    .hidden tern__coro_start
    .type   tern__coro_start, %function
    .p2align 4
tern__coro_start:
    .cfi_startproc
    .cfi_undefined x30              // outermost frame: unwinders stop here
    TERN_BTI_C
    mov     x0, x19                 // argument: the coro
    mov     x29, #0                 // end of the frame-pointer chain
    blr     x20                     // coro_entry(c); never returns
    brk     #0                      // trap if it ever did
    .cfi_endproc
    .size   tern__coro_start, .-tern__coro_start

#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
#define TERN_PROP_BTI 1
#else
#define TERN_PROP_BTI 0
#endif
#if defined(__ARM_FEATURE_PAC_DEFAULT) && __ARM_FEATURE_PAC_DEFAULT
#define TERN_PROP_PAC 2
#else
#define TERN_PROP_PAC 0
#endif
#if TERN_PROP_BTI || TERN_PROP_PAC
    /* GNU property note, matching how the C code is built: BTI (landing pads
     * above) and/or PAC-ret (these functions do not sign return addresses;
     * they are merely compatible with code that does). */
    .pushsection .note.gnu.property, "a"
    .p2align 3
    .long   4                       // name size ("GNU\0")
    .long   16                      // descriptor size
    .long   5                       // NT_GNU_PROPERTY_TYPE_0
    .asciz  "GNU"
    .long   0xc0000000              // GNU_PROPERTY_AARCH64_FEATURE_1_AND
    .long   4                       // data size
    .long   TERN_PROP_BTI | TERN_PROP_PAC
    .long   0                       // pad to 8 bytes
    .popsection
#endif

#endif /* __aarch64__ */

#if defined(__ELF__)
    /* No executable stack needed (also when empty). */
    .section .note.GNU-stack,"",%progbits
#endif
