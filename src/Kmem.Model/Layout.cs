namespace Kmem.Model;

/// <summary>
/// The frame map and zones a machine boots with (docs/semantics.md, "Physical layout"), computed
/// the plain way: byte intervals first, then every frame classified by the same thresholds (filled
/// as runs between them).
/// </summary>
public sealed class Layout
{
    public int PageShift { get; }
    public ulong PageSize => 1UL << PageShift;
    public long FrameCount { get; }
    public int LargestOrder { get; }
    /// <summary>First pfn of each zone and one past its last (empty zones have Start == End).</summary>
    public (long Start, long End)[] Zones { get; } = new (long, long)[4];
    public bool[] ZoneExists { get; } = new bool[4];
    /// <summary>32-bit: the first frame above directly mapped memory (the lowmem limit); long.MaxValue on 64-bit.</summary>
    public long LowmemLimitPfn { get; }
    internal FrameKind[] Initial { get; }

    public Layout(Machine m)
    {
        PageShift = m.PageShift;
        LargestOrder = m.MaxOrderInclusive ? m.MaxOrderValue : m.MaxOrderValue - 1;

        // Firmware RAM = banks minus holes; memmap @ adds usable RAM; memmap reserved wins; mem= last.
        var ram = Intervals.Subtract(Intervals.Union(m.Ram), Intervals.Union(m.Holes));
        var usableAdded = m.Memmap.Where(e => e.Type == MemmapType.Usable).Select(e => (e.Start, e.Size));
        var anyRam = Intervals.Union(ram.Concat(usableAdded));
        var reserved = Intervals.Union(m.Memmap.Where(e => e.Type == MemmapType.Reserved).Select(e => (e.Start, e.Size)));

        // Frames exist up to the end of RAM: a reserved range beyond RAM reserves nothing the
        // allocators could touch, and must not size the map (memmap=64T!0 on 256 MiB).
        ulong top = 0;
        foreach (var (s, z) in anyRam) top = Math.Max(top, s + z);
        FrameCount = (long)((top + PageSize - 1) >> PageShift);

        // Zones by address.
        long dmaEnd = (long)(m.DmaEnd >> PageShift);
        long dma32End = m.Dma32End is { } d32 ? (long)(d32 >> PageShift) : dmaEnd;
        long lowmemEnd = long.MaxValue;
        if (m.LowmemLimit is { } lim)
        {
            ulong limit = m.VmallocHonoured && m.VmallocParam is { } v ? (1UL << 30) - v : lim;
            lowmemEnd = (long)(limit >> PageShift);
        }
        LowmemLimitPfn = lowmemEnd;
        // Lowmem below the end of ZONE_DMA (i386 with vmalloc=1020M) ends ZONE_DMA there, as
        // arch/x86/mm/init.c zone_sizes_init writes it: max_zone_pfns[ZONE_DMA] = min(MAX_DMA_PFN,
        // max_low_pfn) (the reference clips the same way). Without the clip the zone ranges
        // overlapped and mem_init counted frames above lowmem as DMA (a fuzz finding).
        dmaEnd = Math.Min(dmaEnd, lowmemEnd);
        dma32End = Math.Min(dma32End, lowmemEnd);
        long Clip(long x) => Math.Min(x, FrameCount);
        Zones[(int)MZone.DMA] = (0, Clip(dmaEnd));
        Zones[(int)MZone.DMA32] = (Clip(dmaEnd), Clip(dma32End));
        Zones[(int)MZone.Normal] = (Clip(dma32End), Clip(lowmemEnd));
        Zones[(int)MZone.HighMem] = m.HasHighMem ? (Clip(lowmemEnd), FrameCount) : (FrameCount, FrameCount);
        ZoneExists[(int)MZone.DMA] = true;
        ZoneExists[(int)MZone.DMA32] = m.Dma32End is not null;
        ZoneExists[(int)MZone.Normal] = true;
        ZoneExists[(int)MZone.HighMem] = m.HasHighMem;

        // Classify every frame.
        Initial = new FrameKind[FrameCount];
        long lowReservedFrames = (long)((m.LowReserved + PageSize - 1) >> PageShift);
        // Each RAM frame f is, in this order of precedence: AboveMem when its end passes mem=
        // (f >= memLimit / PageSize), Unmanaged at or above the lowmem limit without HighMem, Reserved
        // below the profile's low reservation, else Free. Those are thresholds on f, so each bank is
        // filled as (at most) four runs instead of frame by frame.
        long aboveFrom = m.MemLimit is { } ml ? (long)(ml >> PageShift) : long.MaxValue;
        long unmanagedFrom = m.HasHighMem ? long.MaxValue : lowmemEnd;
        foreach (var (s, z) in anyRam)
        {
            // Only frames wholly inside RAM are RAM (PFN_UP start, PFN_DOWN end).
            long first = (long)((s + PageSize - 1) >> PageShift), end = (long)((s + z) >> PageShift);
            if (first >= end) continue;
            long above = Math.Clamp(aboveFrom, first, end);
            long unmanaged = Math.Clamp(unmanagedFrom, first, above);
            long free = Math.Clamp(lowReservedFrames, first, unmanaged);
            Fill(first, free, FrameKind.Reserved);
            Fill(free, unmanaged, FrameKind.Free);
            Fill(unmanaged, above, FrameKind.Unmanaged);
            Fill(above, end, FrameKind.AboveMem);
        }
        foreach (var (s, z) in reserved)
        {
            // A reserved range covers every frame it touches.
            if (s >= top) continue;
            long first = (long)(s >> PageShift), end = (long)(Math.Min(s + z, top) + PageSize - 1 >> PageShift);
            Fill(first, Math.Min(end, FrameCount), FrameKind.MemmapReserved);
        }
    }

    private void Fill(long start, long end, FrameKind k)
    {
        if (start < end) Initial.AsSpan((int)start, (int)(end - start)).Fill(k);
    }

    public MZone ZoneOf(long pfn)
    {
        for (int z = 3; z >= 0; z--)
            if (pfn >= Zones[z].Start && pfn < Zones[z].End) return (MZone)z;
        return MZone.Normal; // past the end of memory: only reached for wild addresses
    }
}

/// <summary>Sorted, disjoint byte intervals. Small and plain on purpose.</summary>
internal static class Intervals
{
    public static List<(ulong Start, ulong Size)> Union(IEnumerable<(ulong Start, ulong Size)> xs)
    {
        var sorted = xs.Where(x => x.Size > 0).OrderBy(x => x.Start).ToList();
        var result = new List<(ulong Start, ulong Size)>();
        foreach (var (s, z) in sorted)
        {
            if (result.Count > 0 && s <= result[^1].Start + result[^1].Size)
            {
                var (ls, lz) = result[^1];
                result[^1] = (ls, Math.Max(ls + lz, s + z) - ls);
            }
            else result.Add((s, z));
        }
        return result;
    }

    public static List<(ulong Start, ulong Size)> Subtract(List<(ulong Start, ulong Size)> a, List<(ulong Start, ulong Size)> b)
    {
        var result = new List<(ulong Start, ulong Size)>();
        foreach (var (s0, z0) in a)
        {
            ulong s = s0, e = s0 + z0;
            foreach (var (bs, bz) in b)
            {
                ulong be = bs + bz;
                if (be <= s || bs >= e) continue;
                if (bs > s) result.Add((s, bs - s));
                s = Math.Max(s, be);
                if (s >= e) break;
            }
            if (s < e) result.Add((s, e - s));
        }
        return result;
    }
}
