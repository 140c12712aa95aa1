using Kmem.Scenarios;

namespace Kmem.Target;

/// <summary>What a target answered: the outcome, and the address it returned when it succeeded.</summary>
public readonly record struct TargetResult(Outcome Outcome, ulong Address = 0)
{
    public static TargetResult Ok(ulong address = 0) => new(Outcome.Ok, address);
    public static readonly TargetResult Bug = new(Outcome.BUG);
    public static readonly TargetResult Inval = new(Outcome.EINVAL);
    public static readonly TargetResult NoMem = new(Outcome.ENOMEM);
}

/// <summary>
/// An allocator under test. The runner and the model never know which one they are checking.
/// Addresses are physical byte addresses (alloc_pages returns the block's first frame's address,
/// as page_to_phys would). Misuse must come back as <see cref="Outcome.BUG"/>, never an exception.
/// </summary>
public interface ITarget
{
    string Name { get; }

    /// <summary>Sets up memblock from the machine: banks, holes, mem=, memmap=, the low reservation.</summary>
    void Boot(MachineConfig machine);

    TargetResult MemblockAlloc(ulong size, ulong align);
    TargetResult MemblockFree(ulong address);
    /// <summary>Hands every usable, unreserved, unallocated frame to the buddy allocator.</summary>
    TargetResult MemInit();

    TargetResult AllocPages(int order, Gfp gfp, bool atomicContext);
    /// <summary>free_pages(addr, order). Address 0 is NULL: a no-op that succeeds.</summary>
    TargetResult FreePages(ulong address, int order);

    // ---- slab and kmalloc (docs/semantics.md "Slab and kmalloc"). Addresses of objects are
    // direct-mapped, reported as physical addresses; ZERO_SIZE_PTR is 16.
    TargetResult Kmalloc(ulong size, Gfp gfp, bool atomicContext);
    TargetResult Kfree(ulong address);
    /// <summary>Returns a non-zero cache handle of the target's choosing as the address.</summary>
    TargetResult KmemCacheCreate(ulong size, ulong align, string? name, bool atomicContext);
    TargetResult KmemCacheAlloc(ulong cache, Gfp gfp, bool atomicContext);
    TargetResult KmemCacheFree(ulong cache, ulong address);
    TargetResult KmemCacheDestroy(ulong cache, bool atomicContext);

    // ---- vmalloc and ioremap: virtual addresses inside the profile's vmalloc area.
    TargetResult Vmalloc(ulong size, bool atomicContext);
    TargetResult Vfree(ulong address);
    /// <summary>Returns the claim's start address as its handle.</summary>
    TargetResult RequestMemRegion(ulong start, ulong size, bool atomicContext);
    TargetResult ReleaseMemRegion(ulong start, bool atomicContext);
    /// <summary>Returns the virtual address mapping `start` (area start plus start's offset in its page).</summary>
    TargetResult Ioremap(ulong start, ulong size, bool atomicContext);
    TargetResult Iounmap(ulong address, bool atomicContext);

    // ---- DMA: a device with a 24-bit coherent mask (ISA-style, as in the seed articles).
    TargetResult DmaAllocCoherent(ulong size, Gfp gfp, bool atomicContext);
    TargetResult DmaFreeCoherent(ulong address);
}

/// <summary>What the page allocator gave out or took back on behalf of another allocator.</summary>
public enum PageUse
{
    /// <summary>A slab page of a cache (kmalloc or kmem_cache); Owner = cache handle.</summary>
    Slab,
    /// <summary>A kmalloc too large for the caches, straight from the page allocator; Owner = 0.</summary>
    LargeKmalloc,
    /// <summary>An order-0 page backing a vmalloc area; Owner = the area's start address.</summary>
    Vmalloc,
    /// <summary>A dma_alloc_coherent buffer; Owner = 0.</summary>
    Dma,
}

/// <summary>
/// One page-allocator call made inside another allocator: the runner feeds it to the model, which
/// checks it as it would check alloc_pages/free_pages with that GFP mask, and records who owns the frames.
/// </summary>
/// <param name="ObjectSize">For slab pages: the size of the objects carved from it (bucket or cache size).</param>
public readonly record struct PageEvent(bool Alloc, ulong Pfn, int Order, Gfp Gfp, PageUse Use, ulong Owner, ulong ObjectSize = 0);

/// <summary>A target that reports the page-allocator calls its other allocators make.</summary>
public interface IPageEvents
{
    /// <summary>Appends the events since the last call, in the order they happened, and forgets them.</summary>
    void DrainPageEvents(List<PageEvent> into);
}

/// <summary>/proc/meminfo figures in bytes (docs/semantics.md "meminfo").</summary>
public readonly record struct MeminfoFigures(
    ulong MemTotal, ulong MemFree, ulong VmallocTotal, ulong VmallocUsed, ulong VmallocChunk,
    ulong FreeDma, ulong FreeDma32, ulong FreeNormal, ulong FreeHighMem);

public interface IMeminfo
{
    MeminfoFigures Meminfo();
}

public readonly record struct FreeBlock(ulong Pfn, int Order, Zone Zone);

/// <summary>
/// Optional view into a buddy allocator, for the structural invariants (alignment, disjointness,
/// maximal coalescing). A target without it is still checked black-box by exactness and ownership.
/// </summary>
public interface IBuddyIntrospection
{
    /// <summary>Every block on the free lists, in any order.</summary>
    IEnumerable<FreeBlock> FreeBlocks();

    /// <summary>The free blocks whose first frame lies in [startPfn, endPfn); cheap for small ranges.</summary>
    IEnumerable<FreeBlock> FreeBlocksIn(ulong startPfn, ulong endPfn);

    /// <summary>
    /// Appends every free block that holds at least one frame of [startPfn, endPfn), whatever its
    /// order and wherever its first frame: the incremental checks ask this after every operation
    /// for the frames it changed. The default goes through <see cref="FreeBlocks"/>; a target
    /// should answer in time independent of memory size.
    /// </summary>
    void AddFreeBlocksOver(ulong startPfn, ulong endPfn, List<FreeBlock> into)
    {
        foreach (var b in FreeBlocks())
            if (b.Pfn < endPfn && b.Order is >= 0 and < 64 && b.Pfn + (1UL << b.Order) > startPfn) into.Add(b);
    }

    /// <summary>Pages on the free lists of a zone (the target's own counter).</summary>
    long FreePageCount(Zone zone);
}
