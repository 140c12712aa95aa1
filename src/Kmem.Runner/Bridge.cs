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
    };

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
