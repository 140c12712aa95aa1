using Kmem.Model;
using Kmem.Scenarios;
using Kmem.Target;

namespace Kmem.Runner;

/// <summary>Translates the scenario's vocabulary into the model's (the model references nothing).</summary>
public static class Bridge
{
    public static Machine ToModel(MachineConfig m) => new()
    {
        PageShift = m.Profile.PageShift,
        Ram = m.Ram.Select(r => (r.Start, r.Size)).ToArray(),
        Holes = m.Holes.Select(r => (r.Start, r.Size)).ToArray(),
        Memmap = m.Memmap.Select(e => (e.Kind == MemmapKind.Usable ? MemmapType.Usable : MemmapType.Reserved, e.Start, e.Size)).ToArray(),
        MemLimit = m.MemLimit,
        LowReserved = m.Profile.LowReserved,
        MaxOrderValue = m.MaxOrderValue,
        MaxOrderInclusive = m.Profile.MaxOrderInclusive,
        DmaEnd = m.Profile.DmaZoneEnd,
        Dma32End = m.Profile.Dma32ZoneEnd,
        LowmemLimit = m.Profile.LowmemLimit,
        HasHighMem = m.Profile.HasHighMem,
        VmallocHonoured = m.Profile.VmallocParamHonoured,
        VmallocParam = m.Vmalloc,
        Watermarks = m.Profile.Watermarks,
        MinFreeKbytesMax = m.Profile.MinFreeKbytesMax,
        Slab = m.Profile.Slab switch
        {
            SlabKind.PowerOfTwoWithHeader => SlabFlavour.Blocks20,
            SlabKind.Slab => SlabFlavour.Slab,
            _ => SlabFlavour.Slub,
        },
        KmallocBuckets = m.Profile.KmallocBuckets,
        KmallocMaxCacheSize = m.Profile.KmallocMaxCacheSize,
        KmallocMaxFixed = m.Profile.KmallocMaxFixed,
        KmallocHeader = m.Profile.KmallocHeader,
        KmallocZeroSizePtr = m.Profile.KmallocZeroSizePtr,
        HasKmemCache = m.Profile.HasKmemCache,
        SlabObjectLimit = m.Profile.SlabObjectLimit,
        SlabObjectLimitIsBug = m.Profile.SlabObjectLimitIsBug,
        PageOffset32 = m.Profile.PageOffset32,
        VmallocOffset32 = m.Profile.VmallocOffset32,
        VmallocEnd32 = m.Profile.VmallocEnd32,
        VmallocStart64 = m.Profile.VmallocStart64,
        VmallocSize64 = m.Profile.VmallocTotal64,
        IoremapAlignFls = m.Profile.IoremapAlignFls,
    };

    public static ModelEvent ToModel(PageEvent e) => new(
        e.Alloc, (long)e.Pfn, e.Order, e.Use switch
        {
            PageUse.Slab => AllocKind.Slab,
            PageUse.LargeKmalloc => AllocKind.LargeKmalloc,
            PageUse.Vmalloc => AllocKind.Vmalloc,
            _ => AllocKind.Dma,
        }, e.Owner, e.ObjectSize);

    public static GfpBits ToModel(Gfp g)
    {
        var b = GfpBits.None;
        if ((g & Gfp.Kernel) != 0) b |= GfpBits.Kernel;
        if ((g & Gfp.Atomic) != 0) b |= GfpBits.Atomic;
        if ((g & Gfp.NoWait) != 0) b |= GfpBits.NoWait;
        if ((g & Gfp.Dma) != 0) b |= GfpBits.Dma;
        if ((g & Gfp.Dma32) != 0) b |= GfpBits.Dma32;
        if ((g & Gfp.HighUser) != 0) b |= GfpBits.HighUser;
        return b;
    }

    public static Result ToModel(Outcome o) => o switch
    {
        Outcome.Ok => Result.Ok,
        Outcome.ENOMEM => Result.ENOMEM,
        Outcome.EINVAL => Result.EINVAL,
        Outcome.EBUSY => Result.EBUSY,
        _ => Result.BUG,
    };

    public static Outcome ToOutcome(Result r) => r switch
    {
        Result.Ok => Outcome.Ok,
        Result.ENOMEM => Outcome.ENOMEM,
        Result.EINVAL => Outcome.EINVAL,
        Result.EBUSY => Outcome.EBUSY,
        _ => Outcome.BUG,
    };
}
