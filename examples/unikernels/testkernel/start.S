/*
 * xenlab's test kernel: entry points and the Xen ELF notes.
 *
 * PVH (the default build) stands in for a Solo5/MirageOS 4 unikernel: Xen starts it at the
 * PHYS32_ENTRY note in 32-bit protected mode with paging off and %ebx pointing at the
 * hvm_start_info; like Solo5 it builds its own identity page tables over 5 GiB (the guest's
 * 4 GiB and one more, 2 MiB pages), enters long mode and fills its hypercall page through the
 * MSR Xen names in CPUID. PV (-DPV) stands in for a MirageOS 3 unikernel on Mini-OS: Xen
 * starts it in long mode at the ELF entry with %rsi pointing at start_info, its hypercall page
 * already written (HYPERCALL_PAGE note).
 */

#define XEN_ELFNOTE_ENTRY          1
#define XEN_ELFNOTE_HYPERCALL_PAGE 2
#define XEN_ELFNOTE_VIRT_BASE      3
#define XEN_ELFNOTE_PADDR_OFFSET   4
#define XEN_ELFNOTE_XEN_VERSION    5
#define XEN_ELFNOTE_GUEST_OS       6
#define XEN_ELFNOTE_LOADER         8
#define XEN_ELFNOTE_PHYS32_ENTRY   18

/* A Xen ELF note: the "Xen" owner, the type, then the descriptor a macro below writes. */
.macro NOTE_BEGIN type
    .p2align 2
    .long 2f - 1f
    .long 4f - 3f
    .long \type
1:  .asciz "Xen"
2:  .p2align 2
3:
.endm

.macro NOTE_END
4:  .p2align 2
.endm

.macro ELFNOTE type, directive, value
    NOTE_BEGIN \type
    \directive \value
    NOTE_END
.endm

/* Strings apart: a quoted macro argument loses its quotes on the way through. */
.macro ELFNOTE_STR type, text
    NOTE_BEGIN \type
    .asciz "\text"
    NOTE_END
.endm

    .section .note.Xen, "a", @note
#ifdef PV
    ELFNOTE_STR XEN_ELFNOTE_GUEST_OS, Mini-OS
    ELFNOTE_STR XEN_ELFNOTE_XEN_VERSION, xen-3.0
    ELFNOTE_STR XEN_ELFNOTE_LOADER, generic
    ELFNOTE XEN_ELFNOTE_VIRT_BASE, .quad, 0
    ELFNOTE XEN_ELFNOTE_PADDR_OFFSET, .quad, 0
    ELFNOTE XEN_ELFNOTE_ENTRY, .quad, _start
    ELFNOTE XEN_ELFNOTE_HYPERCALL_PAGE, .quad, hypercall_page
#else
    ELFNOTE XEN_ELFNOTE_PHYS32_ENTRY, .long, pvh_start
#endif

/* Poisoned with RET, as Solo5 does: a page Xen never wrote returns at once (and is detected). */
    .section .text.hypercall, "ax"
    .p2align 12
    .globl hypercall_page
hypercall_page:
    .fill 4096, 1, 0xc3

    .section .text.boot, "ax"
#ifdef PV
    .code64
    .globl _start
_start:
    cld
    lea stack_top(%rip), %rsp
    mov %rsi, %rdi
    call kmain
1:  hlt
    jmp 1b
#else
    .code32
    .globl pvh_start, _start
_start:
pvh_start:
    cli
    cld
    mov %ebx, %esi
    mov $stack_top, %esp

    /* PD entries: 2560 x 2 MiB, identity, present + writable + large. */
    mov $pd, %edi
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax
    mov %eax, (%edi)
    mov %ecx, %eax
    shr $11, %eax
    mov %eax, 4(%edi)
    add $8, %edi
    inc %ecx
    cmp $(5 * 512), %ecx
    jne 1b
    /* PDPT entries 0-4 point at the five PD pages. */
    mov $pdpt, %edi
    mov $pd + 0x3, %eax
    mov $5, %ecx
2:  mov %eax, (%edi)
    movl $0, 4(%edi)
    add $0x1000, %eax
    add $8, %edi
    loop 2b
    movl $pdpt + 0x3, pml4
    movl $0, pml4 + 4

    mov $pml4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $0x20, %eax              /* PAE */
    mov %eax, %cr4
    mov $0xc0000080, %ecx       /* EFER: long mode */
    rdmsr
    or $0x100, %eax
    wrmsr
    mov %cr0, %eax
    or $0x80000001, %eax        /* paging, protection */
    mov %eax, %cr0
    lgdt gdt_ptr
    ljmp $0x08, $long_mode

    .code64
long_mode:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs
    mov $stack_top, %rsp
    mov %esi, %edi
    call kmain
1:  hlt
    jmp 1b

    .section .rodata
    .p2align 3
gdt:
    .quad 0
    .quad 0x00af9a000000ffff    /* 64-bit code */
    .quad 0x00cf92000000ffff    /* data */
gdt_end:
gdt_ptr:
    .word gdt_end - gdt - 1
    .long gdt

    .section .bss
    .p2align 12
pml4: .skip 4096
pdpt: .skip 4096
pd:   .skip 5 * 4096
#endif

    .section .bss
    .p2align 4
stack: .skip 16384
stack_top:
