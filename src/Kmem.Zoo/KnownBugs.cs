using Kmem.Reference;
using Kmem.Scenarios;
using Kmem.Target;

namespace Kmem.Zoo;

// Each known-buggy target is the reference allocator with exactly one planted bug, through one of
// its protected seams. The reference itself carries no bug switch.

/// <summary>Freeing never merges with the upper buddy (buddy pfn above the block's): half of all merges are lost.</summary>
public sealed class NoUpperCoalesce : ReferenceAllocator
{
    public override string Name => "buggy:no-upper-coalesce";
    protected override bool PageIsBuddy(uint pfn, uint buddyPfn, int order) =>
        buddyPfn < pfn && base.PageIsBuddy(pfn, buddyPfn, order);
}

/// <summary>page_is_buddy without the zone test: buddies merge across a zone boundary that is not
/// aligned to the largest block (2.6.17 "zone allow unaligned zone boundaries").</summary>
public sealed class CrossZoneMerge : ReferenceAllocator
{
    public override string Name => "buggy:cross-zone-merge";
    protected override bool PageIsBuddy(uint pfn, uint buddyPfn, int order) =>
        buddyPfn < FrameCount && !IsHole(buddyPfn) && IsFreeHead(buddyPfn, order);
}

/// <summary>Under the exclusive MAX_ORDER convention (before v6.4), order == MAX_ORDER is accepted
/// as if the constant were inclusive: the off-by-one that 23baf831a32c's redefinition invited.</summary>
public sealed class MaxOrderOffByOne : ReferenceAllocator
{
    private bool inclusive;
    public override string Name => "buggy:max-order-off-by-one";
    public override void Boot(MachineConfig machine)
    {
        inclusive = machine.Profile.MaxOrderInclusive;
        base.Boot(machine);
    }
    protected override bool OrderAllowed(int order) =>
        order >= 0 && order <= (inclusive ? LargestOrder : LargestOrder + 1);
}

/// <summary>`mem=` applied one frame too high: the frame at the limit is handed to the allocator.</summary>
public sealed class FrameAboveMem : ReferenceAllocator
{
    public override string Name => "buggy:frame-above-mem";
    protected override ulong MemLimitAddress(MachineConfig m) =>
        m.MemLimit is { } limit ? limit + m.Profile.PageSize : ulong.MaxValue;
}

// ---------------------------------------------------------------- issue 3: the other allocators

/// <summary>The slab allocator hands out a slot that is still live: one object, two owners.</summary>
public sealed class SlabDoubleHandout : ReferenceAllocator
{
    public override string Name => "buggy:slab-double-handout";
    private ulong last;
    // Answers "free" for the most recently handed-out slot once more: the next allocation gets it again.
    protected override bool ObjectSlotFree(ulong cache, ulong objectAddress, bool inUse)
    {
        if (inUse && objectAddress == last) { last = 0; return true; }
        if (!inUse) last = objectAddress;
        return !inUse;
    }
}

/// <summary>vmalloc and ioremap areas without the guard page after them.</summary>
public sealed class VmallocNoGuard : ReferenceAllocator
{
    public override string Name => "buggy:vmalloc-no-guard";
    protected override ulong VmallocGuardSize => 0;
}

/// <summary>ioremap accepts RAM the page allocator manages (x86's "ioremap on RAM" check missing).</summary>
public sealed class IoremapOverRam : ReferenceAllocator
{
    public override string Name => "buggy:ioremap-over-ram";
    protected override bool IoremapAllowed(ulong startPfn, ulong endPfn) => true;
}

/// <summary>The kmalloc limit one page too high.</summary>
public sealed class KmallocLimitPlusPage : ReferenceAllocator
{
    public override string Name => "buggy:kmalloc-limit-plus-page";
    protected override ulong KmallocMaxSize => base.KmallocMaxSize + 4096;
}

/// <summary>vfree forgets the area's backing pages.</summary>
public sealed class VfreeLeak : ReferenceAllocator
{
    public override string Name => "buggy:vfree-leak";
    protected override void VfreeBackingPages(ulong areaStart, ReadOnlySpan<uint> pfns) { }
}

// ---------------------------------------------------------------- issue 6: bugs from Linux's history

/// <summary>A buddy in a hole below the block counts as free (787af64d05cd: a buddy pfn below the first valid pfn).</summary>
public sealed class HoleBuddy : ReferenceAllocator
{
    public override string Name => "buggy:hole-buddy";
    protected override bool PageIsBuddy(uint pfn, uint buddyPfn, int order) =>
        (buddyPfn < pfn && IsHole(buddyPfn)) || base.PageIsBuddy(pfn, buddyPfn, order);
}

/// <summary>Under the inclusive convention (v6.4+), the largest order MAX_PAGE_ORDER is refused as if exclusive.</summary>
public sealed class MaxPageOrderRefused : ReferenceAllocator
{
    private bool inclusive;
    public override string Name => "buggy:max-page-order-refused";
    public override void Boot(MachineConfig machine)
    {
        inclusive = machine.Profile.MaxOrderInclusive;
        base.Boot(machine);
    }
    protected override bool OrderAllowed(int order) => order >= 0 && order <= (inclusive ? LargestOrder - 1 : LargestOrder);
}

/// <summary>
/// KMALLOC_MAX_SIZE computed as 1 &lt;&lt; (MAX_ORDER + PAGE_SHIFT) under the exclusive convention, one
/// order beyond the largest block (bb1107f7c605). A request in between passes kmalloc's check and
/// reaches the page allocator, which WARNs (order &gt;= MAX_ORDER) and returns NULL: the splat syzkaller saw.
/// </summary>
public sealed class KmallocMaxBeyondMaxOrder : ReferenceAllocator
{
    public override string Name => "buggy:kmalloc-max-beyond-max-order";
    public override TargetResult Kmalloc(ulong size, Gfp gfp, bool atomicContext)
    {
        ulong real = KmallocMaxSize;
        if (size > real && size <= real * 2) return TargetResult.Bug;
        return base.Kmalloc(size, gfp, atomicContext);
    }
}

/// <summary>
/// The size rounding of a huge request overflows to 0, and kmalloc then answers like kmalloc(0):
/// ZERO_SIZE_PTR, a success (8446a4deb6b6, kmalloc_size_roundup with huge sizes).
/// </summary>
public sealed class KmallocHugeRoundsToZero : ReferenceAllocator
{
    public override string Name => "buggy:kmalloc-huge-rounds-to-zero";
    public override TargetResult Kmalloc(ulong size, Gfp gfp, bool atomicContext)
    {
        ulong rounded = (size + 4095) & ~4095UL;   // PAGE_ALIGN without an overflow check
        if (size != 0 && rounded == 0) return TargetResult.Ok(16);
        return base.Kmalloc(size, gfp, atomicContext);
    }
}

/// <summary>request_mem_region ignores other claims (only System RAM still conflicts).</summary>
public sealed class OverlappingClaims : ReferenceAllocator
{
    public override string Name => "buggy:overlapping-claims";
    protected override bool ResourceConflicts(ulong start, ulong last) => SystemRamConflicts(start, last);
}

/// <summary>The vmalloc free-area search skips a range that fits exactly (`&gt;` for `&gt;=`): spurious ENOMEM (the v5.3 vm area search fix class).</summary>
public sealed class VmallocGapOffByOne : ReferenceAllocator
{
    public override string Name => "buggy:vmalloc-gap-off-by-one";
    protected override bool VmallocGapFits(ulong gap, ulong need) => gap > need;
}

/// <summary>kmem_cache_destroy goes ahead with live objects (the "objects remaining" check missing).</summary>
public sealed class DestroyWithLiveObjects : ReferenceAllocator
{
    public override string Name => "buggy:destroy-with-live-objects";
    protected override bool DestroyAllowed(ulong cache, long liveObjects) => true;
}

/// <summary>free_pages with the wrong order is accepted: the block is freed with its real order instead of BUG.</summary>
public sealed class WrongOrderFreeAccepted : ReferenceAllocator
{
    public override string Name => "buggy:wrong-order-free";
    public override TargetResult FreePages(ulong address, int order)
    {
        int live = address == 0 ? -1 : LiveOrderAt((uint)Math.Min(address >> 12, uint.MaxValue));
        return base.FreePages(address, live >= 0 ? live : order);
    }
}

/// <summary>memblock_free after mem_init is accepted (and does nothing) instead of being refused.</summary>
public sealed class MemblockFreeAfterInit : ReferenceAllocator
{
    public override string Name => "buggy:memblock-free-after-init";
    public override TargetResult MemblockFree(ulong address) =>
        MemInitDone ? TargetResult.Ok() : base.MemblockFree(address);
}

/// <summary>Every request gets the atomic reserves: GFP_KERNEL dips below the min watermark.</summary>
public sealed class KernelUsesAtomicReserves : ReferenceAllocator
{
    public override string Name => "buggy:kernel-uses-atomic-reserves";
    protected override bool WatermarkOk(Zone zone, int order, long mark, WatermarkReserves reserves, Zone classZone) =>
        base.WatermarkOk(zone, order, mark, WatermarkReserves.MinReserveNonBlock, classZone);
}

public static class KnownBugs
{
    public static readonly IReadOnlyList<TargetInfo> All =
    [
        new("buggy:no-upper-coalesce",
            "free_pages never merges a block with its upper buddy",
            "bug class: __free_one_page / page_is_buddy merge loop",
            [
                new("coalescing/free_pages", 2,
                    "mem_init frees each free range in maximal aligned chunks (__free_pages_memory), which need no merge, " +
                    "so the bug cannot show before a free; a free needs an allocation first, and alloc_pages 0 leaves " +
                    "the freed page's upper buddy free: 2 operations."),
                new("coalescing/kfree", 2, "kmalloc takes a slab page (splitting a block), kfree empties the slab and gives it back: 2 operations."),
                new("coalescing/dma_free_coherent", 2, "dma_alloc_coherent, then dma_free_coherent: 2 operations."),
                new("coalescing/vfree", 2, "vmalloc takes order-0 pages, vfree gives them back: 2 operations."),
                new("coalescing/kmem_cache_free", 3, "kmem_cache_create, kmem_cache_alloc, kmem_cache_free (the emptied slab goes back): 3 operations."),
            ],
            () => new NoUpperCoalesce()),
        new("buggy:cross-zone-merge",
            "page_is_buddy does not check that the buddy is in the same zone",
            "Linux 2.6.17 \"zone allow unaligned zone boundaries\" (page_zone_id check in page_is_buddy)",
            [
                new("free-blocks/mem_init", 0,
                    "vmalloc= moves the 2.6.18 lowmem limit off a 4 MiB boundary; mem_init frees the chunks on both sides " +
                    "of it, and their merge across the boundary is on the free lists right after mem_init: 0 operations."),
            ],
            () => new CrossZoneMerge(), "linux-2.6.18-i386"),
        new("buggy:max-order-off-by-one",
            "order == MAX_ORDER accepted under the exclusive convention (blocks one order too large)",
            "v6.4 23baf831a32c \"mm, treewide: redefine MAX_ORDER sanely\" (the off-by-one class it addresses)",
            [
                new("free-blocks/mem_init", 0,
                    "with orders up to MAX_ORDER allowed, mem_init merges two maximal blocks into one of order MAX_ORDER " +
                    "wherever RAM has an aligned free run that large, visible before any operation: 0 operations."),
                new("limits/alloc_pages", 1,
                    "on a machine too small or too fragmented for such a run, the free lists stay legal; only a request " +
                    "of order MAX_ORDER, which must be EINVAL, shows it: 1 operation."),
            ],
            () => new MaxOrderOffByOne(), "linux-4.19-x86_64"),
        new("buggy:frame-above-mem",
            "mem= cuts usable RAM one frame too high",
            "bug class: off-by-one in mem= handling (e820__range_remove)",
            [
                new("limits/mem_init", 0,
                    "mem_init hands the frame at the mem= limit to the buddy allocator, on the free lists before any operation: 0 operations."),
                new("limits/memblock_alloc", 1,
                    "memblock allocates top-down, so a boot-time allocation right below the (wrong) top of memory takes " +
                    "the frame at the limit before mem_init can show it: 1 operation."),
            ],
            () => new FrameAboveMem()),

        // ---------------------------------------------------------------- issue 3
        new("buggy:slab-double-handout",
            "the slab allocator hands out a live object a second time",
            "bug class: freelist corruption / double allocation (SLUB freelist pointer checks)",
            [
                new("no-double-mapping/kmalloc", 2, "the first kmalloc makes an object live; the second gets the same slot: 2 operations."),
                new("no-double-mapping/kmem_cache_alloc", 3, "kmem_cache_create, then two kmem_cache_alloc: 3 operations."),
            ],
            () => new SlabDoubleHandout()),
        new("buggy:vmalloc-no-guard",
            "vmalloc and ioremap areas are placed without the guard page after them",
            "bug class: missing guard (mm/vmalloc.c always adds one guard page unless VM_NO_GUARD)",
            [
                new("no-double-mapping/vmalloc", 2, "a second area placed right after the first lands in the first's guard page: 2 operations."),
                new("no-double-mapping/ioremap", 2, "the same with ioremap after vmalloc or ioremap: 2 operations."),
                new("meminfo/vmalloc", 1, "VmallocUsed counts areas with their guard pages, so even one area disagrees: 1 operation."),
                new("meminfo/ioremap", 1, "the same for one ioremap: 1 operation."),
            ],
            () => new VmallocNoGuard()),
        new("buggy:ioremap-over-ram",
            "ioremap maps RAM that the page allocator manages",
            "x86 __ioremap_caller's \"ioremap on RAM\" refusal missing",
            [new("no-double-mapping/ioremap", 1, "one ioremap of any managed frame: 1 operation.")],
            () => new IoremapOverRam()),
        new("buggy:kmalloc-limit-plus-page",
            "the kmalloc limit is one page too high",
            "bug class: off-by-one in KMALLOC_MAX_SIZE (on SLUB the page allocator's order limit hides it; 2.0 shows it)",
            [new("limits/kmalloc", 1, "one kmalloc just above the limit that still fits the largest block: 1 operation.")],
            () => new KmallocLimitPlusPage(), "linux-2.0-i386"),
        new("buggy:vfree-leak",
            "vfree releases the area but not its backing pages",
            "bug class: leaked vmalloc pages (__vunmap's page freeing)",
            [new("ownership/vfree", 2, "vmalloc, then vfree of it: 2 operations.")],
            () => new VfreeLeak()),

        // ---------------------------------------------------------------- issue 6: bugs from Linux's history
        new("buggy:hole-buddy",
            "a buddy that lies in a hole below the block is taken as a free buddy and merged",
            "787af64d05cd (buddy pfn below the first valid pfn treated as mergeable)",
            [new("free-blocks/mem_init", 0, "mem_init frees a chunk right after a hole at an address aligned to the chunk; its lower buddy is in the hole, so the merged block covers hole frames before any operation: 0 operations.")],
            () => new HoleBuddy()),
        new("buggy:max-page-order-refused",
            "under the inclusive convention (v6.4+), order MAX_PAGE_ORDER is refused and never formed",
            "v6.4 23baf831a32c redefined MAX_ORDER as inclusive; code keeping the exclusive reading loses the top order",
            [
                new("limits/alloc_pages", 1, "mem_init frees top-order chunks directly, so the free lists look right; one request of order MAX_PAGE_ORDER (which must work) is refused: 1 operation."),
                new("limits/dma_alloc_coherent", 1, "a 4 MiB coherent buffer needs the top order: 1 operation."),
                new("limits/kmalloc", 1, "a large kmalloc of more than half the largest block needs the top order: 1 operation."),
                new("coalescing/free_pages", 2, "an order-(MAX-1) allocation freed next to its free buddy cannot merge to the top order: 2 operations."),
                new("coalescing/kfree", 2, "any allocation splits a top-order block; when it is given back (kmalloc 64 then kfree, found by bench --engine fuzz) the halves cannot merge to the top order again: the allocation and the free, 2 operations."),
                new("coalescing/vfree", 2, "the same through vmalloc's backing pages: vmalloc and vfree, 2 operations."),
                new("coalescing/kmem_cache_free", 3, "the same through a cache's slab: freeing its only object gives the slab back, whose halves cannot merge to the top order (found by bench --engine fuzz): kmem_cache_create, kmem_cache_alloc, kmem_cache_free, 3 operations."),
                new("exactness/vmalloc", 1, "with max_order=0 every page comes from order 0, which this target refuses: one vmalloc gets ENOMEM with pages free (vmalloc 8K on 3 GiB, found by bench): 1 operation."),
                new("limits/kmem_cache_create", 1, "with max_order=0 the only order is 0, which this target refuses: a cache whose slabs need an order-0 page (kmem_cache_create 1533, found by bench --engine fuzz) is refused, 1 operation."),
            ],
            () => new MaxPageOrderRefused()),
        new("buggy:kmalloc-max-beyond-max-order",
            "KMALLOC_MAX_SIZE is one order beyond the largest block; such a kmalloc reaches the page allocator, which WARNs",
            "bb1107f7c605 \"mm, slab: make sure that KMALLOC_MAX_SIZE will fit into MAX_ORDER\" (syzkaller)",
            [new("limits/kmalloc", 1, "one kmalloc between the largest block and twice it: 1 operation.")],
            () => new KmallocMaxBeyondMaxOrder(), "linux-4.19-x86_64"),
        new("buggy:kmalloc-huge-rounds-to-zero",
            "a kmalloc size near 2^64 rounds to 0 and returns ZERO_SIZE_PTR as a success",
            "8446a4deb6b6 (kmalloc size rounding overflow for huge sizes)",
            [
                new("limits/kmalloc", 1, "one kmalloc of a size within a page of 2^64: 1 operation."),
                new("misuse/kmalloc", 1,
                    "a huge kmalloc with a zone modifier a slab allocation must refuse (GFP_DMA32 or GFP_HIGHUSER, " +
                    "GFP_SLAB_BUG_MASK) must be BUG before its size is looked at; the overflow answers ZERO_SIZE_PTR first: " +
                    "`kmalloc 0xfffffffffffff509 GFP_DMA32`, 1 operation. (A GFP_KERNEL one in atomic context is misuse too, " +
                    "but needs `context atomic` first: 2.)"),
            ],
            () => new KmallocHugeRoundsToZero()),
        new("buggy:vmalloc-gap-off-by-one",
            "the vmalloc free-area search skips a range that fits exactly, giving spurious ENOMEM",
            "v5.3 vmalloc/percpu vm area search fix (a usable range skipped)",
            [new("exactness/vmalloc", 1, "on i386 one vmalloc that exactly fills the area with its guard page: 1 operation.")],
            () => new VmallocGapOffByOne(), "linux-2.6.18-i386"),
        new("buggy:overlapping-claims",
            "request_mem_region accepts a range overlapping a live claim",
            "bug class: __request_region conflict check (kernel/resource.c)",
            [new("no-double-mapping/request_mem_region", 2, "two overlapping claims outside System RAM: 2 operations.")],
            () => new OverlappingClaims()),
        new("buggy:destroy-with-live-objects",
            "kmem_cache_destroy goes ahead while objects are live",
            "6.8 \"kmem_cache_destroy: Slab cache still has objects\" check missing",
            [new("misuse/kmem_cache_destroy", 3, "kmem_cache_create, kmem_cache_alloc, kmem_cache_destroy: 3 operations.")],
            () => new DestroyWithLiveObjects()),
        new("buggy:wrong-order-free",
            "free_pages with the wrong order is accepted (and frees the real order)",
            "bug class: __free_pages with a mismatched order (bad_page / VM_BUG_ON_PAGE)",
            [new("misuse/free_pages", 2, "alloc_pages, then free_pages of it with another order: 2 operations.")],
            () => new WrongOrderFreeAccepted()),
        new("buggy:memblock-free-after-init",
            "memblock_free after mem_init is accepted instead of refused",
            "bug class: memblock use after the buddy allocator took over (the 1996 FAQ: boot memory cannot be freed)",
            [new("misuse/memblock_free", 2, "any operation that starts the buddy allocator (mem_init is implicit), then memblock_free: 2 operations.")],
            () => new MemblockFreeAfterInit()),
        new("buggy:kernel-uses-atomic-reserves",
            "every request gets GFP_ATOMIC's reserves: GFP_KERNEL dips below the min watermark",
            "bug class: ALLOC_HARDER/ALLOC_MIN_RESERVE applied to blocking requests (mm/page_alloc.c gfp_to_alloc_flags)",
            [
                new("zone/vmalloc", 1, "with the reserves applied in the low-watermark pass too, a vmalloc page comes from a zone that pass must skip: 1 operation (no signature other than mem_init's can take fewer)."),
                new("zone/alloc_pages", 1,
                    "one block that leaves DMA32 at its low watermark: the low pass must skip DMA32 for DMA, the reduced " +
                    "mark lets the target take DMA32 (`ram 20608K`, `alloc_pages 10`): 1 operation."),
                new("zone/kmalloc", 1, "the same for a large kmalloc's pages (`ram 20608K`, `kmalloc 4M`), or a slab page: 1 operation."),
                new("zone/kmem_cache_alloc", 2, "kmem_cache_create, then an allocation whose slab page comes from the wrong zone: 2 operations."),
                new("zone/dma_alloc_coherent", 1, "the same for a DMA buffer: 1 operation."),
                new("watermarks/alloc_pages", 1,
                    "on a machine whose free pages, less one request, land between the reduced and the real min watermark " +
                    "of its last zone, with no zone to fall back on, one alloc_pages must fail and does not " +
                    "(`ram 2176K`, `alloc_pages 8`): 1 operation."),
                new("watermarks/vmalloc", 1, "the same for a vmalloc page: 1 operation."),
                new("watermarks/kmalloc", 1, "the same for a large kmalloc's pages (`ram 2176K`, `kmalloc 1M`), or a slab page: 1 operation."),
            ],
            () => new KernelUsesAtomicReserves()),
    ];
}
