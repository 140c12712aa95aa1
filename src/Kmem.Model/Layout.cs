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
    private readonly (long Start, long End)[] zones = new (long, long)[4];
    private readonly bool[] zoneExists = new bool[4];
    /// <summary>First pfn of each zone and one past its last (empty zones have Start == End).</summary>
    public ReadOnlySpan<(long Start, long End)> Zones => zones;
    public ReadOnlySpan<bool> ZoneExists => zoneExists;
    /// <summary>32-bit: the first frame above directly mapped memory (the lowmem limit); long.MaxValue on 64-bit.</summary>
    public long LowmemLimitPfn { get; }
    private readonly FrameKind[] initial;
    /// <summary>Every frame's kind at boot. Read-only: layouts are shared (<see cref="For"/>).</summary>
    public ReadOnlySpan<FrameKind> Initial => initial;

    /// <summary>
    /// The machine's layout: the one this thread built last when the machine's layout inputs are the
    /// same, else a new one. Fuzzing and `check` boot one machine after another, mostly alike, and
    /// building the frame map was a sixth of an empty run on 1 GiB. A layout depends on nothing but
    /// <see cref="Inputs"/> (the constructor reads nothing else), and those compare by value.
    /// </summary>
    public static Layout For(Machine m)
    {
        var inputs = new Inputs(m);
        if (last is { } l && l.InputsUsed == inputs) return l;
        return last = new Layout(inputs);
    }

    [ThreadStatic] private static Layout? last;
    private Inputs InputsUsed { get; }

    public Layout(Machine m) : this(new Inputs(m)) { }

    /// <summary>What of a machine decides its layout, compared by value (lists item by item).</summary>
    internal sealed record Inputs(
        int PageShift, ByValue<(ulong Start, ulong Size)> Ram, ByValue<(ulong Start, ulong Size)> Holes,
        ByValue<(MemmapType Type, ulong Start, ulong Size)> Memmap, ulong? MemLimit, ulong LowReserved,
        int MaxOrderValue, bool MaxOrderInclusive, ulong DmaEnd, ulong? Dma32End, ulong? LowmemLimit,
        bool HasHighMem, bool VmallocHonoured, ulong? VmallocParam)
    {
        public Inputs(Machine m) : this(m.PageShift, new([.. m.Ram]), new([.. m.Holes]), new([.. m.Memmap]), m.MemLimit, m.LowReserved,
            m.MaxOrderValue, m.MaxOrderInclusive, m.DmaEnd, m.Dma32End, m.LowmemLimit, m.HasHighMem, m.VmallocHonoured, m.VmallocParam) { }
    }

    private Layout(Inputs m)
    {
        InputsUsed = m;
        PageShift = m.PageShift;
        LargestOrder = m.MaxOrderInclusive ? m.MaxOrderValue : m.MaxOrderValue - 1;

        // Firmware RAM = banks minus holes; memmap @ adds usable RAM; memmap reserved wins; mem= last.
        var ram = Intervals.Subtract(Intervals.Union(m.Ram.Items), Intervals.Union(m.Holes.Items));
        var usableAdded = m.Memmap.Items.Where(e => e.Type == MemmapType.Usable).Select(e => (e.Start, e.Size));
        var anyRam = Intervals.Union(ram.Concat(usableAdded));
        var reserved = Intervals.Union(m.Memmap.Items.Where(e => e.Type == MemmapType.Reserved).Select(e => (e.Start, e.Size)));

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
        zones[(int)MZone.DMA] = (0, Clip(dmaEnd));
        zones[(int)MZone.DMA32] = (Clip(dmaEnd), Clip(dma32End));
        zones[(int)MZone.Normal] = (Clip(dma32End), Clip(lowmemEnd));
        zones[(int)MZone.HighMem] = m.HasHighMem ? (Clip(lowmemEnd), FrameCount) : (FrameCount, FrameCount);
        zoneExists[(int)MZone.DMA] = true;
        zoneExists[(int)MZone.DMA32] = m.Dma32End is not null;
        zoneExists[(int)MZone.Normal] = true;
        zoneExists[(int)MZone.HighMem] = m.HasHighMem;

        // Classify every frame.
        initial = new FrameKind[FrameCount];
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
        if (start < end) initial.AsSpan((int)start, (int)(end - start)).Fill(k);
    }

    public MZone ZoneOf(long pfn)
    {
        for (int z = 3; z >= 0; z--)
            if (pfn >= zones[z].Start && pfn < zones[z].End) return (MZone)z;
        return MZone.Normal; // past the end of memory: only reached for wild addresses
    }
}

/// <summary>A list that compares item by item, so that a record holding it compares by value.</summary>
internal readonly struct ByValue<T>(T[] items) : IEquatable<ByValue<T>> where T : IEquatable<T>
{
    private readonly T[] array = items;
    public IReadOnlyList<T> Items => array;
    public bool Equals(ByValue<T> other) => array.AsSpan().SequenceEqual(other.array);
    public override bool Equals(object? obj) => obj is ByValue<T> other && Equals(other);
    public override int GetHashCode() => array.Length;
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
