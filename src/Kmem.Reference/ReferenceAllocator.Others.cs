using System.Numerics;
using Kmem.Scenarios;
using Kmem.Target;
using static Kmem.Reference.Intervals;

namespace Kmem.Reference;

// State and helpers shared by the allocators built on the page allocator (docs/semantics.md
// "Beyond the page allocator"): the page events, meminfo, and what Boot/mem_init set up for them.
public partial class ReferenceAllocator : IPageEvents, IMeminfo
{
    /// <summary>ZERO_SIZE_PTR: what kmalloc(0) returns on SLUB profiles; kfree of it is a no-op.</summary>
    public const ulong ZeroSizePtr = 16;

    /// <summary>vmalloc backing pages: GFP_KERNEL | __GFP_HIGHMEM (zone list HighMem, Normal, DMA32, DMA).</summary>
    private const Gfp VmallocGfp = Gfp.Kernel | Gfp.HighUser;

    private readonly List<PageEvent> _events = [];

    // System RAM (request_mem_region) and the runs handed to the buddy allocator at mem_init
    // (ioremap), both as sorted, disjoint frame ranges [Start, End).
    private readonly List<(ulong Start, ulong End)> _systemRam = [];
    private readonly List<(ulong Start, ulong End)> _managedRuns = [];

    /// <summary>The page allocator's block that another allocator took: one more event.</summary>
    private void RecordAlloc(int pfn, int order, Gfp gfp, PageUse use, ulong owner, ulong objectSize = 0) =>
        _events.Add(new PageEvent(true, (ulong)pfn, order, gfp, use, owner, objectSize));

    private void RecordFree(int pfn, int order, PageUse use, ulong owner, ulong objectSize = 0) =>
        _events.Add(new PageEvent(false, (ulong)pfn, order, Gfp.None, use, owner, objectSize));

    /// <summary>Marks the head frame of a block another allocator now owns.</summary>
    private void MarkHead(int pfn, byte kind, int order) => _frame[pfn] = (byte)(kind | (order << OrderShift));

    /// <summary>The kind of the frame (KindHole beyond the map).</summary>
    private byte KindAt(ulong pfn) => pfn < (ulong)_frameCount ? (byte)(_frame[pfn] & KindMask) : KindHole;

    /// <summary>The order stored in a head frame.</summary>
    private int HeadOrder(int pfn) => _frame[pfn] >> OrderShift;

    /// <summary>Gives a block another allocator owned back to the buddy allocator (with merging).</summary>
    private void ReleaseBlock(int pfn, int order)
    {
        _frame[pfn] = KindUsable;
        FreeOne(pfn, order);
    }

    /// <summary>get_order(bytes): the smallest order whose block holds <paramref name="bytes"/> (bytes &gt; 0).</summary>
    private int GetOrder(ulong bytes)
    {
        ulong pages = (bytes >> _shift) + ((bytes & PageMask) != 0 ? 1UL : 0UL);
        return pages <= 1 ? 0 : 64 - BitOperations.LeadingZeroCount(pages - 1);
    }

    private ulong PageSize => 1UL << _shift;
    private ulong PageMask => (1UL << _shift) - 1;

    /// <summary>Normalises a GFP mask as alloc_pages does: no flags at all means GFP_KERNEL.</summary>
    private static Gfp Effective(Gfp gfp) => gfp == Gfp.None ? Gfp.Kernel : gfp;

    /// <summary>Whether the sorted, disjoint frame runs overlap [start, end).</summary>
    private static bool Overlaps(List<(ulong Start, ulong End)> runs, ulong start, ulong end)
    {
        if (start >= end) return false;
        int lo = 0, hi = runs.Count; // first run with End > start
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (runs[mid].End > start) hi = mid; else lo = mid + 1;
        }
        return lo < runs.Count && runs[lo].Start < end;
    }

    /// <summary>
    /// Called at the end of <see cref="Boot"/>: resets every allocator built on the page allocator and
    /// derives the vmalloc area. <paramref name="systemRam"/> is the firmware map's usable RAM after
    /// memmap= and mem=, in whole frames, before the low reservation and the lowmem cut.
    /// </summary>
    private void BootOthers(MachineConfig machine, List<Run> systemRam, ulong? lowmemPfn)
    {
        _events.Clear();
        _systemRam.Clear();
        foreach (var r in systemRam) _systemRam.Add((r.Start, r.End));
        _managedRuns.Clear();
        BootSlab();
        BootVmalloc(machine, lowmemPfn);
        _claims.Clear();
        _dmaBuffers.Clear();
    }

    // ------------------------------------------------------------------ IPageEvents, IMeminfo

    public void DrainPageEvents(List<PageEvent> into)
    {
        ArgumentNullException.ThrowIfNull(into);
        into.AddRange(_events);
        _events.Clear();
    }

    /// <summary>
    /// /proc/meminfo in bytes (docs/semantics.md "meminfo"). Reading it never triggers mem_init:
    /// before it, MemTotal and MemFree are 0.
    /// </summary>
    public MeminfoFigures Meminfo()
    {
        EnsureBooted();
        ulong page = PageSize;
        return new MeminfoFigures(
            MemTotal: (ulong)TotalManagedPages * page,
            MemFree: (ulong)TotalFreePages * page,
            VmallocTotal: _vmEnd - _vmStart,
            VmallocUsed: _vm.Used,
            VmallocChunk: _vm.LargestFree,
            FreeDma: (ulong)_freePages[(int)Zone.DMA] * page,
            FreeDma32: (ulong)_freePages[(int)Zone.DMA32] * page,
            FreeNormal: (ulong)_freePages[(int)Zone.Normal] * page,
            FreeHighMem: (ulong)_freePages[(int)Zone.HighMem] * page);
    }
}
