namespace Kmem.Model;

// The model references nothing else in the solution (architecture.md, rules of the house), so it
// has its own small vocabulary. The runner translates scenarios and target answers into it.

/// <summary>What the model says an operation may return.</summary>
public enum Result { Ok, ENOMEM, EINVAL, EBUSY, BUG }

/// <summary>Zones by index; the order is the kernel's (ZONE_DMA &lt; ZONE_DMA32 &lt; ZONE_NORMAL &lt; ZONE_HIGHMEM).</summary>
public enum MZone { DMA = 0, DMA32 = 1, Normal = 2, HighMem = 3 }

/// <summary>The GFP bits the model cares about.</summary>
[Flags]
public enum GfpBits
{
    None = 0, Kernel = 1, Atomic = 2, NoWait = 4, Dma = 8, Dma32 = 16, HighUser = 32,
}

/// <summary>What every page frame is (docs/semantics.md: exactly one of these).</summary>
public enum FrameKind : byte
{
    Hole,       // not RAM
    AboveMem,   // RAM at or above mem=
    Unmanaged,  // RAM above the lowmem limit of a profile without HighMem (2.0)
    Reserved,   // the profile's low reservation (System RAM the kernel keeps)
    MemmapReserved, // reserved by memmap= (not System RAM)
    Memblock,   // boot-allocated
    Free,       // usable and not handed out (memblock's free memory before mem_init, the buddy free lists after)
    Allocated,  // owned by one live allocation
}

public enum MemmapType { Usable, Reserved }

/// <summary>Which kmalloc the era has.</summary>
public enum SlabFlavour { Blocks20, Slab, Slub }

/// <summary>
/// The machine in raw facts: the profile's figures and the boot line's effective settings. The
/// model derives every limit from these itself (the reference allocator does the same on its own).
/// </summary>
public sealed record Machine
{
    public required int PageShift { get; init; }
    public required IReadOnlyList<(ulong Start, ulong Size)> Ram { get; init; }
    public required IReadOnlyList<(ulong Start, ulong Size)> Holes { get; init; }
    public IReadOnlyList<(MemmapType Type, ulong Start, ulong Size)> Memmap { get; init; } = [];
    public ulong? MemLimit { get; init; }
    public required ulong LowReserved { get; init; }

    /// <summary>The MAX_ORDER constant in force (max_order= or the profile's).</summary>
    public required int MaxOrderValue { get; init; }
    public required bool MaxOrderInclusive { get; init; }

    public required ulong DmaEnd { get; init; }
    public ulong? Dma32End { get; init; }
    /// <summary>32-bit: end of lowmem with the default vmalloc reserve.</summary>
    public ulong? LowmemLimit { get; init; }
    public bool HasHighMem { get; init; }
    /// <summary>32-bit: whether vmalloc= moves the lowmem limit (to 1 GiB - vmalloc=).</summary>
    public bool VmallocHonoured { get; init; }
    public ulong? VmallocParam { get; init; }

    public bool Watermarks { get; init; }
    public ulong MinFreeKbytesMax { get; init; }

    // Slab and kmalloc
    public SlabFlavour Slab { get; init; } = SlabFlavour.Slub;
    public IReadOnlyList<ulong> KmallocBuckets { get; init; } = [];
    public ulong KmallocMaxCacheSize { get; init; }
    public ulong? KmallocMaxFixed { get; init; }
    public ulong KmallocHeader { get; init; }
    public bool KmallocZeroSizePtr { get; init; }
    public bool HasKmemCache { get; init; } = true;
    public ulong? SlabObjectLimit { get; init; }
    public bool SlabObjectLimitIsBug { get; init; }

    // The vmalloc area
    public ulong PageOffset32 { get; init; }
    public ulong VmallocOffset32 { get; init; }
    public ulong VmallocEnd32 { get; init; }
    public ulong VmallocStart64 { get; init; }
    public ulong VmallocSize64 { get; init; }
    public bool IoremapAlignFls { get; init; }
}
