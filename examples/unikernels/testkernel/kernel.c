/*
 * xenlab's test kernel: a freestanding guest that takes the paths a unikernel takes through Xen,
 * so that the lab is tested on what the hypervisor sees of real unikernels, in well under a
 * second of boot. No libc; built with Debian's gcc and binutils (Makefile beside it).
 *
 * What it does, and what each step stands in for:
 *   - PVH build (Solo5, MirageOS 4): the PVH entry and its own identity page tables over 5 GiB
 *     (start.S, as Solo5 maps it); the hypercall page through the CPUID-named MSR; the console
 *     ring from HVM params; the command line from hvm_start_info; Xen's E820 memory map
 *     (XENMEM_memory_map); the shared_info page added to the physmap over a page of its own
 *     image (XENMEM_add_to_physmap), the call that fails for 32 MiB Solo5 guests under
 *     shadow paging, and the page read back.
 *   - PV build (MirageOS 3 on Mini-OS, -DPV): start_info for the console ring and the command
 *     line, shared_info mapped with update_va_mapping, and Mini-OS's banner, by which xenlab
 *     tells a MirageOS 3 kernel.
 *   - Both: a CPU feature check, as Unikraft refuses to boot without RDRAND/RDSEED and
 *     mirage-crypto uses AES-NI, executing what it checks; the end through SCHEDOP_shutdown:
 *     poweroff with Solo5's `solo5_exit(N) called` line (Solo5 reports every status but the
 *     abort as a poweroff), crash for an abort, or reboot.
 * What a real unikernel does that this does not: interrupts, timers and event channel upcalls
 * (it never enables them), xenstore, grant tables, block and network devices, and a heap.
 *
 * Its behaviour comes from its command line, words as Solo5 hands them over:
 *   exit=N        end with status N (default 0); 255 is Solo5's abort: a crash
 *   abort         fail an assertion as Solo5 does, then crash
 *   reboot        ask Xen for a reboot
 *   hang          never end (block for events that never come)
 *   require=F,..  check the CPU for each feature F (rdrand rdseed aes pclmulqdq ssse3 sse4_1
 *                 sse4_2 popcnt avx avx2); a missing one ends in a crash, as Unikraft does
 *   print=WORD    print WORD on a line of its own (a way to see arguments arrive)
 *   shinfo=high   PVH: add shared_info at a free frame just under 4 GiB instead of over a page of
 *                 its own image (Solo5's way): Xen then needs new paging-pool pages for the p2m,
 *                 the pool that is too small for 32 MiB guests under shadow paging
 *   --solo5:quiet|error|warn   hide Solo5's INFO lines (the exit line among them)
 */

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long u64;

#define PAGE_SHIFT 12
#define PAGE_SIZE 4096UL
#define DOMID_SELF 0x7ff0

enum {
    HC_update_va_mapping = 14, HC_memory_op = 12, HC_xen_version = 17, HC_sched_op = 29,
    HC_event_channel_op = 32, HC_hvm_op = 34,
};
enum { SCHEDOP_yield = 0, SCHEDOP_block = 1, SCHEDOP_shutdown = 2 };
enum { SHUTDOWN_poweroff = 0, SHUTDOWN_reboot = 1, SHUTDOWN_crash = 3 };
enum { XENMEM_add_to_physmap = 7, XENMEM_memory_map = 9, XENMAPSPACE_shared_info = 0 };
enum { HVMOP_get_param = 1, HVM_PARAM_CONSOLE_PFN = 17, HVM_PARAM_CONSOLE_EVTCHN = 18 };
enum { EVTCHNOP_send = 4 };

extern u8 hypercall_page[PAGE_SIZE];

static long hypercall(unsigned nr, u64 a1, u64 a2, u64 a3)
{
    register u64 r1 __asm__("rdi") = a1;
    register u64 r2 __asm__("rsi") = a2;
    register u64 r3 __asm__("rdx") = a3;
    long ret;
    __asm__ __volatile__("call *%[entry]"
                         : "=a"(ret), "+r"(r1), "+r"(r2), "+r"(r3)
                         : [entry] "r"(hypercall_page + nr * 32)
                         : "memory", "rcx", "r8", "r9", "r10", "r11");
    return ret;
}

void *memset(void *d, int c, u64 n)
{
    u8 *p = d;
    while (n--)
        *p++ = (u8)c;
    return d;
}

void *memcpy(void *d, const void *s, u64 n)
{
    u8 *p = d;
    const u8 *q = s;
    while (n--)
        *p++ = *q++;
    return d;
}

static u64 strlen(const char *s)
{
    u64 n = 0;
    while (s[n])
        n++;
    return n;
}

static int starts(const char *s, const char *prefix)
{
    while (*prefix)
        if (*s++ != *prefix++)
            return 0;
    return 1;
}

/* ---- console: the ring xenconsoled reads (and logs to guest-NAME.log) ---- */

struct xencons {
    char in[1024];
    char out[2048];
    u32 in_cons, in_prod;
    u32 out_cons, out_prod;
};

static volatile struct xencons *ring;
static u32 ring_port;
static int quiet;

static void notify(void)
{
    u32 port = ring_port;
    hypercall(HC_event_channel_op, EVTCHNOP_send, (u64)&port, 0);
}

static void put(char c)
{
    while (ring->out_prod - ring->out_cons >= sizeof(ring->out)) {
        notify();
        hypercall(HC_sched_op, SCHEDOP_yield, 0, 0);
    }
    ring->out[ring->out_prod & (sizeof(ring->out) - 1)] = c;
    __asm__ __volatile__("" ::: "memory");  /* x86 keeps stores in order; the compiler must too */
    ring->out_prod++;
}

static void write(const char *s)
{
    if (!ring)
        return;
    for (; *s; s++) {
        if (*s == '\n')
            put('\r');  /* as Solo5 and Mini-OS write their consoles */
        put(*s);
    }
    notify();
}

static void drain(void)
{
    /* Before the domain ends: xenconsoled must have read every byte, or the log misses the end. */
    for (int i = 0; ring && ring->out_cons != ring->out_prod && i < 100000; i++)
        hypercall(HC_sched_op, SCHEDOP_yield, 0, 0);
}

static void write_num(u64 v, int base)
{
    char buf[24];
    int i = sizeof(buf) - 1;
    buf[i] = 0;
    do {
        buf[--i] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    write(&buf[i]);
}

static void info(const char *s)
{
    if (!quiet)
        write(s);
}

/* ---- the end ---- */

/* When hypercalls do not work there is no way to tell Xen anything: a triple fault (an empty
 * IDT, then an exception) ends a PVH domain as a reboot, and the privileged LIDT ends a PV one
 * as a crash, both of which `xenlab run` fails. A halt would not do: Xen takes HLT with
 * interrupts off as the vCPU going down, a poweroff, which would pass. */
static __attribute__((noreturn)) void triple_fault(void)
{
    struct { u16 limit; u64 base; } __attribute__((packed)) none = {0, 0};
    __asm__ __volatile__("lidt %0; int3" ::"m"(none));
    __builtin_unreachable();
}

static __attribute__((noreturn)) void shutdown(u32 reason)
{
    drain();
    u32 arg = reason;
    hypercall(HC_sched_op, SCHEDOP_shutdown, (u64)&arg, 0);
    triple_fault();  /* Xen refused the shutdown */
}

static __attribute__((noreturn)) void abort_with(const char *what)
{
    write("Solo5: ABORT: ");
    write(what);
    write("\n");
    shutdown(SHUTDOWN_crash);
}

#define assert(e) ((e) ? (void)0 : abort_with("kernel.c: Assertion `" #e "' failed"))

static void write_num(u64 v, int base);

/* A hypercall that must succeed: its name and Xen's error number when it does not. */
static void ok(long rc, const char *what)
{
    if (rc == 0)
        return;
    write("Solo5: ABORT: kernel.c: ");
    write(what);
    write(" failed: -");
    write_num((u64)-rc, 10);
    write("\n");
    shutdown(SHUTDOWN_crash);
}

static __attribute__((noreturn)) void solo5_exit(u64 status)
{
    if (status == 255) {
        write("Solo5: solo5_abort() called\n");
        shutdown(SHUTDOWN_crash);
    }
    info("Solo5: solo5_exit(");
    if (!quiet)
        write_num(status, 10);
    info(") called\n");
#ifdef PV
    /* Mini-OS's exit: a status other than 0 ends in a crash, the only other way out Xen has. */
    shutdown(status ? SHUTDOWN_crash : SHUTDOWN_poweroff);
#else
    shutdown(SHUTDOWN_poweroff);
#endif
}

/* ---- the CPU ---- */

static void cpuid(u32 leaf, u32 sub, u32 r[4])
{
    __asm__ __volatile__("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

struct feature {
    const char *name;
    u32 leaf, reg, bit;  /* reg: 1 ebx, 2 ecx */
};

static const struct feature FEATURES[] = {
    {"ssse3", 1, 2, 9}, {"sse4_1", 1, 2, 19}, {"sse4_2", 1, 2, 20}, {"popcnt", 1, 2, 23},
    {"aes", 1, 2, 25}, {"pclmulqdq", 1, 2, 1}, {"avx", 1, 2, 28}, {"rdrand", 1, 2, 30},
    {"avx2", 7, 1, 5}, {"rdseed", 7, 1, 18},
};

/* Use what was found, as its user would: a CPUID bit Xen or QEMU shows without the instruction
 * working ends in #UD, a triple fault here, a crash to Xen. */
static void exercise(const char *name)
{
    u64 v;
    u8 ok;
    if (starts(name, "rdrand")) {
        __asm__ __volatile__("rdrand %0; setc %1" : "=r"(v), "=qm"(ok));
        (void)v;
    } else if (starts(name, "rdseed")) {
        __asm__ __volatile__("rdseed %0; setc %1" : "=r"(v), "=qm"(ok));
        (void)v;
    }
}

static void require(const char *list)
{
    while (*list && *list != ' ') {
        const char *end = list;
        while (*end && *end != ',' && *end != ' ')
            end++;
        int known = 0;
        for (u64 i = 0; i < sizeof(FEATURES) / sizeof(FEATURES[0]); i++) {
            const struct feature *f = &FEATURES[i];
            if (strlen(f->name) != (u64)(end - list) || !starts(list, f->name))
                continue;
            known = 1;
            u32 r[4];
            cpuid(f->leaf, 0, r);
            if (!(r[f->reg] & (1u << f->bit))) {
                write("xenlab-testkernel: ERR: the CPU lacks ");
                write(f->name);
                write(" (require=)\n");
                shutdown(SHUTDOWN_crash);
            }
            exercise(f->name);
            info("xenlab-testkernel: CPU has ");
            info(f->name);
            info("\n");
        }
        if (!known)
            abort_with("require=: unknown CPU feature");
        list = *end == ',' ? end + 1 : end;
    }
}

/* ---- the command line ---- */

static char cmdline[1024];

static void take_cmdline(const char *src)
{
    u64 i = 0;
    for (; src && src[i] && i < sizeof(cmdline) - 1; i++)
        cmdline[i] = src[i];
    cmdline[i] = 0;
    for (const char *w = cmdline; *w; w++)
        if ((w == cmdline || w[-1] == ' ') && (starts(w, "--solo5:quiet") || starts(w, "--solo5:warn") ||
                                               starts(w, "--solo5:error")))
            quiet = 1;
}

static void number_after(const char *w, u64 *out)
{
    u64 v = 0;
    while (*w >= '0' && *w <= '9')
        v = v * 10 + (u64)(*w++ - '0');
    *out = v;
}

static __attribute__((noreturn)) void act(void)
{
    u64 status = 0;
    int hang = 0, reboot = 0;
    for (const char *w = cmdline; *w; w++) {
        if (w != cmdline && w[-1] != ' ')
            continue;
        if (starts(w, "exit="))
            number_after(w + 5, &status);
        else if (starts(w, "abort"))
            abort_with("kernel.c: Assertion `abort was asked for' failed");
        else if (starts(w, "reboot"))
            reboot = 1;
        else if (starts(w, "hang"))
            hang = 1;
        else if (starts(w, "require="))
            require(w + 8);
        else if (starts(w, "print=")) {
            for (const char *c = w + 6; *c && *c != ' '; c++) {
                char one[2] = {*c, 0};
                write(one);
            }
            write("\n");
        }
    }
    if (reboot) {
        write("xenlab-testkernel: rebooting\n");
        shutdown(SHUTDOWN_reboot);
    }
    if (hang) {
        info("xenlab-testkernel: waiting for events that never come\n");
        for (;;)
            hypercall(HC_sched_op, SCHEDOP_block, 0, 0);
    }
    solo5_exit(status > 255 ? 255 : status);
}

/* ---- the platform ---- */

static u8 shared_info[PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));

static void banner(void)
{
    long v = hypercall(HC_xen_version, 0, 0, 0);
    info("xenlab-testkernel: on Xen ");
    if (!quiet) {
        write_num((u64)v >> 16, 10);
        write(".");
        write_num((u64)v & 0xffff, 10);
    }
    info("\n");
}

#ifndef PV
static void memory_map(void)
{
    struct { u64 addr, size; u32 type; } __attribute__((packed)) e820[32];
    struct { u32 nr_entries; u32 pad; u64 buffer; } map = {32, 0, (u64)e820};
    ok(hypercall(HC_memory_op, XENMEM_memory_map, (u64)&map, 0), "XENMEM_memory_map");
    assert(map.nr_entries > 0);
    u64 ram = 0;
    for (u32 i = 0; i < map.nr_entries; i++)
        if (e820[i].type == 1)
            ram += e820[i].size;
    info("Solo5: Memory map: ");
    if (!quiet)
        write_num(ram >> 20, 10);
    info(" MB addressable\n");
}
#endif

#ifdef PV
struct start_info {
    char magic[32];
    u64 nr_pages, shared_info;
    u32 flags, pad0;
    u64 store_mfn;
    u32 store_evtchn, pad1;
    u64 console_mfn;
    u32 console_evtchn, pad2;
    u64 pt_base, nr_pt_frames, mfn_list, mod_start, mod_len;
    char cmd_line[1024];
};

#define MACH2PHYS ((const u64 *)0xffff800000000000UL)

void kmain(struct start_info *si)
{
    /* Xen mapped the console page with the rest of the initial allocation: its machine frame
     * through Xen's machine-to-physical table is where it sits in this kernel's memory. */
    ring = (struct xencons *)(MACH2PHYS[si->console_mfn] << PAGE_SHIFT);
    ring_port = si->console_evtchn;
    take_cmdline(si->cmd_line);
    write("Xen Minimal OS! (xenlab test kernel, PV: stands in for a MirageOS 3 unikernel)\n");
    info("  start_info: ");
    if (!quiet)
        write_num((u64)si, 16);
    info("\n    nr_pages: ");
    if (!quiet)
        write_num(si->nr_pages, 10);
    info("\n    cmd_line: ");
    info(cmdline);
    info("\n");
    banner();
    ok(hypercall(HC_update_va_mapping, (u64)shared_info, si->shared_info | 7, 2 /* INVLPG */),
       "update_va_mapping of shared_info");
    act();
}
#else
/* Below the MMIO hole and Xen's special pages, far above a small guest's RAM. */
#define HIGH_SHARED_INFO_PFN 0xf0000UL

struct hvm_start_info {
    u32 magic, version, flags, nr_modules;
    u64 modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
    u32 memmap_entries, reserved;
};

static void hypercall_init(void)
{
    u32 r[4], base;
    for (base = 0x40000000; base < 0x40010000; base += 0x100) {
        cpuid(base, 0, r);
        if (r[1] == 0x566e6558 && r[2] == 0x65584d4d && r[3] == 0x4d4d566e && r[0] - base >= 2)
            break;  /* "XenVMMXenVMM" */
    }
    if (base >= 0x40010000)
        triple_fault();  /* not on Xen */
    cpuid(base + 2, 0, r);
    u64 page = (u64)hypercall_page;
    __asm__ __volatile__("wrmsr" ::"c"(r[1]), "a"((u32)page), "d"((u32)(page >> 32)) : "memory");
}

static long hvm_param(u32 index, u64 *value)
{
    struct { u16 domid, pad; u32 index; u64 value; } p = {DOMID_SELF, 0, index, 0};
    long rc = hypercall(HC_hvm_op, HVMOP_get_param, (u64)&p, 0);
    *value = p.value;
    return rc;
}

void kmain(u32 start_info)
{
    const struct hvm_start_info *si = (const struct hvm_start_info *)(u64)start_info;
    hypercall_init();
    if (hypercall_page[0] == 0xc3)
        triple_fault();  /* Xen did not write the hypercall page */
    u64 pfn, port;
    if (hvm_param(HVM_PARAM_CONSOLE_PFN, &pfn) || hvm_param(HVM_PARAM_CONSOLE_EVTCHN, &port))
        shutdown(SHUTDOWN_crash);
    ring = (struct xencons *)(pfn << PAGE_SHIFT);
    ring_port = (u32)port;
    assert(si->magic == 0x336ec578);
    take_cmdline(si->cmdline_paddr ? (const char *)si->cmdline_paddr : 0);
    info("Solo5: Xen console: xenlab test kernel (PVH: stands in for a Solo5/MirageOS 4 unikernel)\n");
    banner();
    memory_map();
    u64 gpfn = (u64)shared_info >> PAGE_SHIFT;
    for (const char *w = cmdline; *w; w++)
        if ((w == cmdline || w[-1] == ' ') && starts(w, "shinfo=high"))
            gpfn = HIGH_SHARED_INFO_PFN;
    struct { u16 domid, size; u32 space; u64 idx, gpfn; } add = {
        DOMID_SELF, 0, XENMAPSPACE_shared_info, 0, gpfn};
    ok(hypercall(HC_memory_op, XENMEM_add_to_physmap, (u64)&add, 0), "XENMEM_add_to_physmap");
    /* Read it back through the page tables: Xen keeps the wallclock there (nonzero once set). */
    volatile u32 *wc_version = (volatile u32 *)((gpfn << PAGE_SHIFT) + 0xc00);  /* after vcpu_info, evtchn */
    (void)*wc_version;
    act();
}
#endif
