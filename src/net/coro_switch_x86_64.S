/*
 * coro_switch_x86_64.S - the coroutine context switch for x86-64 (SysV ABI).
 *
 * void tern__coro_switch(void **save_sp, void *load_sp)
 *     Pushes the callee-saved state (rbp, rbx, r12-r15, MXCSR and the x87
 *     control word) on the current stack, stores rsp in *save_sp, switches to
 *     load_sp and pops the same frame from there, then returns into whatever
 *     called tern__coro_switch on that stack (pop+jmp; ret under CET IBT).  Caller-saved registers need no
 *     saving: the C caller already assumes the call clobbers them.
 *
 * Frame at a saved stack pointer (low to high):
 *     +0  MXCSR (4 bytes)   +4  x87 control word (2 bytes)   +8  r15
 *     +16 r14   +24 r13   +32 r12   +40 rbx   +48 rbp   +56 return address
 * coro.c builds this frame by hand for a new coroutine (coro_prepare), with
 * the return address pointing at tern__coro_start, rbx = the coro and r12 =
 * the C entry function.
 *
 * void tern__coro_start(void)
 *     First entry: calls r12(rbx) on an aligned stack; the entry never returns.
 *
 * Invariant: both symbols are hidden (internal to libtern), and the object is
 * marked as not needing an executable stack.  Empty on other architectures.
 */
#if defined(__x86_64__)

#if defined(__CET__) && (__CET__ & 1)
#define TERN_ENDBR endbr64
#else
#define TERN_ENDBR
#endif

    .text

    .globl  tern__coro_switch
    .hidden tern__coro_switch
    .type   tern__coro_switch, @function
    .p2align 4
tern__coro_switch:
    .cfi_startproc
    TERN_ENDBR
    pushq   %rbp                /* callee-saved general registers ... */
    .cfi_adjust_cfa_offset 8
    pushq   %rbx
    .cfi_adjust_cfa_offset 8
    pushq   %r12
    .cfi_adjust_cfa_offset 8
    pushq   %r13
    .cfi_adjust_cfa_offset 8
    pushq   %r14
    .cfi_adjust_cfa_offset 8
    pushq   %r15
    .cfi_adjust_cfa_offset 8
    subq    $8, %rsp            /* ... and a slot for the FP control bits */
    .cfi_adjust_cfa_offset 8
    stmxcsr (%rsp)              /* SSE control/status -> +0 */
    fnstcw  4(%rsp)             /* x87 control word -> +4 */
    movq    %rsp, (%rdi)        /* *save_sp = our stack pointer */
    movq    %rsi, %rsp          /* switch to the other stack */
    ldmxcsr (%rsp)              /* restore its SSE control bits */
    fldcw   4(%rsp)             /* and its x87 control word */
    addq    $8, %rsp            /* drop the control-bits slot */
    .cfi_adjust_cfa_offset -8
    popq    %r15                /* restore callee-saved registers, */
    .cfi_adjust_cfa_offset -8
    popq    %r14                /* reverse order of the pushes */
    .cfi_adjust_cfa_offset -8
    popq    %r13
    .cfi_adjust_cfa_offset -8
    popq    %r12
    .cfi_adjust_cfa_offset -8
    popq    %rbx
    .cfi_adjust_cfa_offset -8
    popq    %rbp
    .cfi_adjust_cfa_offset -8
#if defined(__CET__) && (__CET__ & 1)
    ret                         /* IBT: an indirect jmp would need endbr64 */
#else
    /* Return with pop+jmp rather than ret: a switch never returns where the
     * return-stack predictor expects, so ret always mispredicts; the
     * indirect-branch predictor learns the ping-pong (~25% faster). */
    popq    %rcx                /* the other side's return address */
    .cfi_adjust_cfa_offset -8
    .cfi_register rip, rcx
    jmp     *%rcx               /* into its caller (or tern__coro_start) */
#endif
    .cfi_endproc
    .size   tern__coro_switch, .-tern__coro_switch

    .globl  tern__coro_start
    .hidden tern__coro_start
    .type   tern__coro_start, @function
    .p2align 4
tern__coro_start:
    .cfi_startproc
    .cfi_undefined rip          /* outermost frame: unwinders stop here */
    TERN_ENDBR
    movq    %rbx, %rdi          /* argument: the coro */
    andq    $-16, %rsp          /* 16-byte alignment before the call */
    callq   *%r12               /* coro_entry(c); never returns */
    ud2                         /* trap if it ever did */
    .cfi_endproc
    .size   tern__coro_start, .-tern__coro_start

#if defined(__CET__) && (__CET__ & 1)
    /* GNU property note: compatible with IBT (endbr64 above).  Not with
     * shadow stacks: a switch returns to another stack's address. */
    .pushsection .note.gnu.property, "a"
    .p2align 3
    .long   4                   /* name size ("GNU\0") */
    .long   16                  /* descriptor size */
    .long   5                   /* NT_GNU_PROPERTY_TYPE_0 */
    .asciz  "GNU"
    .long   0xc0000002          /* GNU_PROPERTY_X86_FEATURE_1_AND */
    .long   4                   /* data size */
    .long   1                   /* GNU_PROPERTY_X86_FEATURE_1_IBT */
    .long   0                   /* pad to 8 bytes */
    .popsection
#endif

    /* No executable stack needed. */
    .section .note.GNU-stack,"",@progbits

#elif defined(__ELF__)
    /* Empty elsewhere, but still mark the object: '%' works on every ELF gas. */
    .section .note.GNU-stack,"",%progbits
#endif /* __x86_64__ */
