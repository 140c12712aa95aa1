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
    ];
}
