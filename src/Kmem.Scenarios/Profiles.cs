namespace Kmem.Scenarios;

public enum Zone { DMA = 0, DMA32 = 1, Normal = 2, HighMem = 3 }

public enum SlabKind
{
    /// <summary>Linux 2.0 kmalloc: power-of-two blocks that carry a small header.</summary>
    PowerOfTwoWithHeader,
    /// <summary>SLAB (2.6.18): general caches 32, 64, 96, 128, 192, 256 … 131072.</summary>
    Slab,
    /// <summary>SLUB (4.19, 6.8): 8 … 8192 with 96 and 192; larger from the page allocator.</summary>
    Slub,
}

/// <summary>
/// One kernel era's raw facts (linux-semantics.md, "Profiles"). A profile is data: the model and
/// the reference allocator each derive their limits from these figures on their own, so a wrong
/// derivation in one of them shows up as a disagreement instead of hiding in shared code.
/// </summary>
public sealed record Profile
{
    public required string Name { get; init; }
    public required string Title { get; init; }
    /// <summary>Where the figures come from.</summary>
    public required string Source { get; init; }

    public int PageShift { get; init; } = 12;
    public ulong PageSize => 1UL << PageShift;

    /// <summary>The kernel's MAX_ORDER (or MAX_PAGE_ORDER) constant as built.</summary>
    public required int MaxOrder { get; init; }
    /// <summary>
    /// False before v6.4: orders 0..MaxOrder-1 exist (MAX_ORDER is exclusive). True from v6.4
    /// (23baf831a32c, renamed MAX_PAGE_ORDER in v6.8 by 5e0a760b4441): orders 0..MaxOrder.
    /// </summary>
    public required bool MaxOrderInclusive { get; init; }

    /// <summary>RAM when a scenario has no `ram` line.</summary>
    public required ulong DefaultRam { get; init; }
    /// <summary>Holes when a scenario has no `ram` line (x86: the legacy 640 KiB–1 MiB hole).</summary>
    public IReadOnlyList<Range> DefaultHoles { get; init; } = [new Range(0xA0000, 0x60000)];

    /// <summary>
    /// Bytes from physical address 0 that the kernel always reserves at boot, whatever the RAM map
    /// says. 6.8: the first 1 MiB (v5.13 f1d4d47c5851 "x86/setup: always reserve the first 1M of
    /// RAM"); 4.19: 64 KiB (arch/x86/kernel/setup.c trim_low_memory_range, X86_RESERVE_LOW);
    /// 2.6.18 and 2.0 i386: page 0 (the BIOS data area). It also keeps physical address 0 (NULL)
    /// from ever being handed out.
    /// </summary>
    public required ulong LowReserved { get; init; }

    /// <summary>Physical addresses the architecture can name; larger `ram`/`mem=` values are refused.</summary>
    public required int PhysAddressBits { get; init; }

    /// <summary>End of ZONE_DMA (x86: 16 MiB).</summary>
    public ulong DmaZoneEnd { get; init; } = 16UL << 20;
    /// <summary>End of ZONE_DMA32 (x86_64: 4 GiB); null where the zone does not exist.</summary>
    public ulong? Dma32ZoneEnd { get; init; }
    /// <summary>
    /// 32-bit only: the end of directly mapped memory with the default vmalloc reserve
    /// (2.6.18 i386: 896 MiB). RAM above it is ZONE_HIGHMEM where <see cref="HasHighMem"/>,
    /// and unused otherwise. Null on 64-bit profiles.
    /// </summary>
    public ulong? LowmemLimit { get; init; }
    public bool HasHighMem { get; init; }

    /// <summary>Whether zone watermarks (min_free_kbytes) are modelled.</summary>
    public bool Watermarks { get; init; }
    /// <summary>Upper clamp of min_free_kbytes (mm/page_alloc.c init_per_zone_wmark_min).</summary>
    public ulong MinFreeKbytesMax { get; init; }

    // Slab and kmalloc (issue 3 uses these; the foundation only prints them).
    public required SlabKind Slab { get; init; }
    public required IReadOnlyList<ulong> KmallocBuckets { get; init; }
    /// <summary>Largest kmalloc served from a slab cache; larger goes to the page allocator (SLUB), or fails.</summary>
    public required ulong KmallocMaxCacheSize { get; init; }
    /// <summary>
    /// A fixed kmalloc limit where the era has one (2.0, 2.6.18); null where KMALLOC_MAX_SIZE is
    /// derived from MAX_ORDER (4.19, 6.8).
    /// </summary>
    public ulong? KmallocMaxFixed { get; init; }
    /// <summary>Bytes of header in front of every 2.0 kmalloc block.</summary>
    public ulong KmallocHeader { get; init; }
    public bool HasKmemCache { get; init; } = true;
    /// <summary>Largest kmem_cache object; null where a per-cache order limit applies instead.</summary>
    public ulong? SlabObjectLimit { get; init; }
    /// <summary>True where exceeding the object limit BUG()s (2.6.18) rather than failing.</summary>
    public bool SlabObjectLimitIsBug { get; init; }

    // vmalloc
    /// <summary>Whether `vmalloc=` is honoured (32-bit) or ignored (64-bit, said in the trace).</summary>
    public bool VmallocParamHonoured { get; init; }
    /// <summary>32-bit: the default vmalloc reserve (__VMALLOC_RESERVE).</summary>
    public ulong VmallocReserveDefault { get; init; }
    /// <summary>64-bit: the size of the vmalloc area.</summary>
    public ulong VmallocTotal64 { get; init; }

    // ---- issue 3, reference-side additions (additive, with defaults).
    /// <summary>The smallest kmem_cache_create size (2.6.18 BYTES_PER_WORD 4, BUG below; SLUB 8, EINVAL below).</summary>
    public ulong KmemCacheMinSize { get; init; } = 8;
    /// <summary>IOREMAP_MAX_ORDER in bits (7 + PAGE_SHIFT = 19): the largest ioremap alignment.</summary>
    public int IoremapMaxOrder { get; init; } = 19;

    public ulong PhysAddressLimit => 1UL << PhysAddressBits;

    /// <summary>kmalloc(0) returns ZERO_SIZE_PTR (16): from 2.6.22; before, an object of the smallest bucket.</summary>
    public bool KmallocZeroSizePtr { get; init; }

    // The vmalloc area (docs/semantics.md "Addresses"). 32-bit: VMALLOC_START = roundup(PAGE_OFFSET +
    // lowmem end + VMALLOC_OFFSET, VMALLOC_OFFSET), VMALLOC_END fixed. 64-bit: fixed start and size.
    /// <summary>32-bit PAGE_OFFSET (0xC0000000).</summary>
    public ulong PageOffset32 { get; init; } = 0xC0000000;
    /// <summary>32-bit VMALLOC_OFFSET, the gap above lowmem (8 MiB).</summary>
    public ulong VmallocOffset32 { get; init; } = 8UL << 20;
    /// <summary>32-bit VMALLOC_END (2.6.18 HIGHMEM non-PAE: PKMAP_BASE - 2 * PAGE_SIZE = 0xFF7FE000).</summary>
    public ulong VmallocEnd32 { get; init; }
    /// <summary>64-bit VMALLOC_START (4-level paging: 0xffffc90000000000).</summary>
    public ulong VmallocStart64 { get; init; }
    /// <summary>ioremap area alignment from fls(size) (2.x) rather than get_count_order(size) (4.19, 6.8).</summary>
    public bool IoremapAlignFls { get; init; }

    /// <summary>
    /// SECTION_SIZE_BITS: a buddy block may not exceed a memory section, which caps `max_order=`
    /// (x86_64: 27, 128 MiB; i386 without PAE: 26, 64 MiB; docs/kernel-facts.md #11).
    /// </summary>
    public required int SectionSizeBits { get; init; }
    /// <summary>The largest order any `max_order=` may give: SECTION_SIZE_BITS - PAGE_SHIFT.</summary>
    public int LargestOrderCap => SectionSizeBits - PageShift;
    /// <summary>The accepted range of `max_order=` in this profile's convention.</summary>
    public (int Lo, int Hi) MaxOrderParamRange => MaxOrderInclusive ? (0, LargestOrderCap) : (1, LargestOrderCap + 1);
    public IEnumerable<Zone> Zones =>
        new[] { Zone.DMA }
            .Concat(Dma32ZoneEnd is null ? [] : new[] { Zone.DMA32 })
            .Append(Zone.Normal)
            .Concat(HasHighMem ? new[] { Zone.HighMem } : []);
}

public static class Profiles
{
    public const string DefaultName = "linux-6.8-x86_64";

    private static readonly ulong[] SlubBuckets =
        [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192];

    public static readonly IReadOnlyList<Profile> All =
    [
        new Profile
        {
            Name = "linux-2.0-i386",
            Title = "Linux 2.0 on i386 (1996 LKML FAQ era)",
            Source = "Linux 2.0 mm/page_alloc.c NR_MEM_LISTS 6; mm/kmalloc.c; LKML FAQ 1996",
            MaxOrder = 6, MaxOrderInclusive = false,         // free lists of orders 0..5: 128 KiB blocks
            LowReserved = 4096,
            DefaultRam = 16UL << 20,
            PhysAddressBits = 32, SectionSizeBits = 26,
            LowmemLimit = 960UL << 20, HasHighMem = false,
            Watermarks = false,
            Slab = SlabKind.PowerOfTwoWithHeader,
            KmallocBuckets = [32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072],
            KmallocMaxCacheSize = 131072,
            KmallocMaxFixed = 131048,   // 131072 - 16-byte page descriptor - 8-byte block header (docs/kernel-facts.md #10)
            KmallocHeader = 8,          // per object; each page group also carries a 16-byte page descriptor (docs/kernel-facts.md #10)
            HasKmemCache = false,
            VmallocParamHonoured = false,
            VmallocReserveDefault = 64UL << 20,
            VmallocEnd32 = 0x1_0000_0000,   // the end of the 1 GiB kernel space; 2.0's own bound is not pinned down
            IoremapAlignFls = true,
        },
        new Profile
        {
            Name = "linux-2.6.18-i386",
            Title = "Linux 2.6.18 on i386 (SLAB, HighMem)",
            Source = "Linux 2.6.18 include/linux/mmzone.h MAX_ORDER 11; mm/slab.c MAX_OBJ_ORDER 5; arch/i386 __VMALLOC_RESERVE 128M",
            MaxOrder = 11, MaxOrderInclusive = false,
            LowReserved = 4096,
            DefaultRam = 384UL << 20,
            PhysAddressBits = 32, SectionSizeBits = 26,
            LowmemLimit = 896UL << 20, HasHighMem = true,
            Watermarks = false,
            Slab = SlabKind.Slab,
            KmallocBuckets = [32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072],
            KmallocMaxCacheSize = 131072,
            KmallocMaxFixed = 131072,
            SlabObjectLimit = 128UL << 10, SlabObjectLimitIsBug = true,
            VmallocParamHonoured = true,
            VmallocReserveDefault = 128UL << 20,
            KmemCacheMinSize = 4,
            VmallocEnd32 = 0xFF7FE000,      // PKMAP_BASE 0xFF800000 - 2 pages (docs/kernel-facts.md #6)
            IoremapAlignFls = true,
        },
        new Profile
        {
            Name = "linux-4.19-x86_64",
            Title = "Linux 4.19 on x86_64 (SLUB)",
            Source = "Linux 4.19 include/linux/mmzone.h MAX_ORDER 11; include/linux/slab.h KMALLOC_SHIFT_MAX; mm/page_alloc.c watermarks",
            MaxOrder = 11, MaxOrderInclusive = false,
            LowReserved = 64UL << 10,
            DefaultRam = 1UL << 30,
            PhysAddressBits = 46, SectionSizeBits = 27,
            Dma32ZoneEnd = 4UL << 30,
            Watermarks = true, MinFreeKbytesMax = 65536,
            Slab = SlabKind.Slub,
            KmallocBuckets = SlubBuckets,
            KmallocMaxCacheSize = 8192,
            VmallocParamHonoured = false,
            VmallocTotal64 = 32UL << 40,
            VmallocStart64 = 0xffffc90000000000,
            KmallocZeroSizePtr = true,
        },
        new Profile
        {
            Name = DefaultName,
            Title = "Linux 6.8 on x86_64 (SLUB, MAX_PAGE_ORDER)",
            Source = "Linux 6.8 include/linux/mmzone.h MAX_PAGE_ORDER 10 (5e0a760b4441); include/linux/slab.h; mm/page_alloc.c",
            MaxOrder = 10, MaxOrderInclusive = true,
            LowReserved = 1UL << 20,
            DefaultRam = 1UL << 30,
            PhysAddressBits = 46, SectionSizeBits = 27,
            Dma32ZoneEnd = 4UL << 30,
            Watermarks = true, MinFreeKbytesMax = 262144,
            Slab = SlabKind.Slub,
            KmallocBuckets = SlubBuckets,
            KmallocMaxCacheSize = 8192,
            VmallocParamHonoured = false,
            VmallocTotal64 = 32UL << 40,
            VmallocStart64 = 0xffffc90000000000,
            KmallocZeroSizePtr = true,
        },
    ];

    public static Profile Default => Get(DefaultName)!;

    public static Profile? Get(string name) => All.FirstOrDefault(p => p.Name == name);
}
