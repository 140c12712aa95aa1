namespace Kmem.Scenarios;

/// <summary>GFP flags as written in a scenario (scenario-format.md). Bit values are ours, not the kernel's.</summary>
[Flags]
public enum Gfp
{
    None = 0,
    Kernel = 1 << 0,     // GFP_KERNEL
    Atomic = 1 << 1,     // GFP_ATOMIC
    NoWait = 1 << 2,     // GFP_NOWAIT
    Dma = 1 << 3,        // GFP_DMA
    Dma32 = 1 << 4,      // GFP_DMA32
    HighUser = 1 << 5,   // GFP_HIGHUSER
    Zero = 1 << 6,       // __GFP_ZERO
    NoWarn = 1 << 7,     // __GFP_NOWARN
}

/// <summary>What an operation did. See scenario-format.md, "Expectations".</summary>
public enum Outcome { Ok, ENOMEM, EINVAL, EBUSY, BUG }

public enum OpKind
{
    MemblockAlloc,      // NAME = memblock_alloc SIZE [align=N]
    MemblockFree,       // memblock_free REF
    MemInit,            // mem_init
    AllocPages,         // NAME = alloc_pages ORDER [GFP]   (Number = order)
    FreePages,          // free_pages REF [order=N]          (Order = explicit order or null)
    Kmalloc,            // NAME = kmalloc SIZE [GFP]
    Kfree,              // kfree REF
    KmemCacheCreate,    // NAME = kmem_cache_create SIZE [align=N] [name=TEXT]
    KmemCacheAlloc,     // NAME = kmem_cache_alloc CACHE [GFP]   (Ref = cache)
    KmemCacheFree,      // kmem_cache_free CACHE REF             (Ref = cache, Ref2 = object)
    KmemCacheDestroy,   // kmem_cache_destroy CACHE              (Ref = cache)
    Vmalloc,            // NAME = vmalloc SIZE
    Vfree,              // vfree REF
    RequestMemRegion,   // NAME = request_mem_region START SIZE  (Number = start, Number2 = size)
    ReleaseMemRegion,   // release_mem_region REF
    Ioremap,            // NAME = ioremap START SIZE             (Number = start, Number2 = size)
    Iounmap,            // iounmap REF
    DmaAllocCoherent,   // NAME = dma_alloc_coherent SIZE [GFP]
    DmaFreeCoherent,    // dma_free_coherent REF
    Context,            // context atomic|process                (Atomic)
    Meminfo,            // meminfo
    Expect,             // expect FIELD CMP VALUE                (Field, Cmp, Number = value)
}

public enum Cmp { Eq, Ne, Lt, Le, Gt, Ge }

/// <summary>
/// A reference to an earlier result: a bound name, or a raw address (`@0x1000`) for wild frees.
/// </summary>
public readonly record struct Ref(string? Name, ulong Address)
{
    public static Ref To(string name) => new(name, 0);
    public static Ref At(ulong address) => new(null, address);
    public bool IsName => Name is not null;
    public override string ToString() => Name ?? "@0x" + Address.ToString("x");
}

/// <summary>
/// One statement of a scenario. A flat record (rather than a class per operation) keeps the
/// printer, the binary codec and the shrinker simple: every field has one meaning per kind,
/// documented on <see cref="OpKind"/>.
/// </summary>
public sealed record Op
{
    public required OpKind Kind { get; init; }
    /// <summary>`NAME =` for operations that produce something; null otherwise.</summary>
    public string? Bind { get; init; }
    public Ref? Ref { get; init; }
    public Ref? Ref2 { get; init; }
    /// <summary>Size, order or start address, by kind.</summary>
    public ulong Number { get; init; }
    /// <summary>Second number: the size of request_mem_region / ioremap.</summary>
    public ulong Number2 { get; init; }
    /// <summary>`order=N` on free_pages; null means "the order NAME was allocated with".</summary>
    public int? Order { get; init; }
    /// <summary>`align=N` on memblock_alloc and kmem_cache_create; null when absent.</summary>
    public ulong? Align { get; init; }
    /// <summary>GFP flags; <see cref="Gfp.None"/> means absent (GFP_KERNEL is the default).</summary>
    public Gfp Gfp { get; init; }
    /// <summary>`name=TEXT` on kmem_cache_create.</summary>
    public string? Text { get; init; }
    /// <summary>For `context`: true for atomic.</summary>
    public bool Atomic { get; init; }
    /// <summary>For `expect`.</summary>
    public string? Field { get; init; }
    public Cmp Cmp { get; init; }
    /// <summary>`=> OUTCOME` if present.</summary>
    public Outcome? Expected { get; init; }
    /// <summary>1-based source line, 0 when the op did not come from text.</summary>
    public int Line { get; init; }

    /// <summary>GFP flags in force: GFP_KERNEL when none were written.</summary>
    public Gfp EffectiveGfp => Gfp == Gfp.None ? Gfp.Kernel : Gfp;
}

public enum MemmapKind
{
    Usable,      // nn@ss
    Reserved,    // nn$ss
    Acpi,        // nn#ss
    Persistent,  // nn!ss (e820 type 12)
    MemLimit,    // nn alone: the same as mem=nn
}

public readonly record struct MemmapEntry(MemmapKind Kind, ulong Size, ulong Start);

public enum BootParamKind { Mem, Memmap, Vmalloc, MaxOrder }

/// <summary>One parameter from the `boot` line, as written (its value already parsed).</summary>
public sealed record BootParam
{
    public required BootParamKind Kind { get; init; }
    /// <summary>mem= and vmalloc=: the size; max_order=: the number.</summary>
    public ulong Value { get; init; }
    /// <summary>memmap=: the comma-separated entries.</summary>
    public IReadOnlyList<MemmapEntry> Entries { get; init; } = [];
    /// <summary>1-based column of the parameter on the boot line, 0 when not from text.</summary>
    public int Column { get; init; }
}

public readonly record struct Range(ulong Start, ulong Size)
{
    public ulong End => Start + Size;
}

public sealed record Header
{
    public int Version { get; init; } = 1;
    /// <summary>Profile name; null when absent (the default profile).</summary>
    public string? Profile { get; init; }
    public IReadOnlyList<Range> Ram { get; init; } = [];
    public IReadOnlyList<Range> Holes { get; init; } = [];
    public IReadOnlyList<BootParam> Boot { get; init; } = [];
    /// <summary>Comment lines at the top of the file (without `#`), kept by the printer.</summary>
    public IReadOnlyList<string> Comments { get; init; } = [];
    /// <summary>Line of the `boot` statement (for error messages about its parameters), 0 if none.</summary>
    public int BootLine { get; init; }
}

public sealed record Scenario(Header Header, IReadOnlyList<Op> Ops)
{
    public string ProfileName => Header.Profile ?? Profiles.DefaultName;
}

public static class OpKindNames
{
    /// <summary>The operation's keyword as written in `.kmem` text.</summary>
    public static string Keyword(this OpKind kind) => kind switch
    {
        OpKind.MemblockAlloc => "memblock_alloc",
        OpKind.MemblockFree => "memblock_free",
        OpKind.MemInit => "mem_init",
        OpKind.AllocPages => "alloc_pages",
        OpKind.FreePages => "free_pages",
        OpKind.Kmalloc => "kmalloc",
        OpKind.Kfree => "kfree",
        OpKind.KmemCacheCreate => "kmem_cache_create",
        OpKind.KmemCacheAlloc => "kmem_cache_alloc",
        OpKind.KmemCacheFree => "kmem_cache_free",
        OpKind.KmemCacheDestroy => "kmem_cache_destroy",
        OpKind.Vmalloc => "vmalloc",
        OpKind.Vfree => "vfree",
        OpKind.RequestMemRegion => "request_mem_region",
        OpKind.ReleaseMemRegion => "release_mem_region",
        OpKind.Ioremap => "ioremap",
        OpKind.Iounmap => "iounmap",
        OpKind.DmaAllocCoherent => "dma_alloc_coherent",
        OpKind.DmaFreeCoherent => "dma_free_coherent",
        OpKind.Context => "context",
        OpKind.Meminfo => "meminfo",
        OpKind.Expect => "expect",
        _ => kind.ToString(),
    };
}
