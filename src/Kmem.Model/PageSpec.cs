using System.Buffers;
using System.Runtime.InteropServices;

namespace Kmem.Model;

/// <summary>A broken rule: the invariant's stable name (docs/semantics.md) and what happened.</summary>
public readonly record struct Violation(string Invariant, string Message);

/// <summary>Who holds a run of frames: memblock, alloc_pages, or another allocator through the page allocator.</summary>
public enum AllocKind { Memblock, Pages, Slab, LargeKmalloc, Vmalloc, Dma }

/// <summary>A live allocation of frames. Owner: cache handle (Slab) or area start (Vmalloc); ObjectSize: slab objects' size.</summary>
public readonly record struct Allocation(int Id, AllocKind Kind, long FirstPfn, long Pages, int Order, ulong Owner = 0, ulong ObjectSize = 0);

/// <summary>
/// The specification of physical memory: the abstract state (what every frame is, which
/// allocations are live) and, for each operation, which outcomes are allowed. Each method takes
/// what the target answered, returns the first rule it broke (or null), and when the answer was
/// allowed advances the state with it. Plain per-frame state; the only speed-ups are span scans and
/// fills over runs of frames (same meaning as a loop) and counters kept beside the state.
/// </summary>
public sealed class PageSpec
{
    public Layout Layout { get; }
    public Machine Machine { get; }
    private readonly FrameKind[] kind;
    private readonly Dictionary<long, Allocation> liveByFirstPfn = new();
    private readonly List<(long Start, long End)> dirty = new();
    // Frames held per (kind, owner): one dictionary per kind (a tuple key hashes slowly, and this
    // runs for every backing page of a vmalloc).
    private readonly Dictionary<ulong, long>[] pagesByOwner = Enum.GetValues<AllocKind>().Select(_ => new Dictionary<ulong, long>()).ToArray();
    private bool allDirty = true;

    /// <summary>
    /// The frame ranges whose state changed since <see cref="ClearDirty"/> (null: everything, as after
    /// boot and mem_init). The incremental checks look only at the free blocks overlapping the region
    /// each one could have touched (<see cref="CheckFreeBlocksIncremental"/>).
    /// </summary>
    public IReadOnlyList<(long Start, long End)>? Dirty => allDirty ? null : dirty;
    public void ClearDirty() { dirty.Clear(); allDirty = false; }
    private void MarkDirty(long start, long end)
    {
        if (allDirty) return;
        // Runs of pages taken one after another (vmalloc's backing pages) mostly touch: one range.
        if (dirty.Count > 0 && dirty[^1].End == start) dirty[^1] = (dirty[^1].Start, end);
        else if (dirty.Count > 0 && dirty[^1].Start == end) dirty[^1] = (start, dirty[^1].End);
        else dirty.Add((start, end));
    }
    private int nextId = 1;

    public bool InitDone { get; private set; }
    // The frame kinds of the two tests below, once: used frame by frame and over runs of frames
    // (an ioremap or request_mem_region can name a gigabyte, a quarter of a million frames).
    private static readonly SearchValues<byte> SystemRamKinds =
        SearchValues.Create([(byte)FrameKind.Free, (byte)FrameKind.Unmanaged, (byte)FrameKind.Reserved]);
    private static readonly SearchValues<byte> ManagedKinds = SearchValues.Create([(byte)FrameKind.Free, (byte)FrameKind.Allocated]);

    /// <summary>Whether the frame was System RAM in the firmware map (after memmap= and mem=): usable, or low-reserved.</summary>
    public bool IsSystemRam(long pfn) => pfn >= 0 && pfn < kind.Length && SystemRamKinds.Contains((byte)Layout.Initial[(int)pfn]);
    /// <summary>Whether the buddy allocator manages the frame (free or handed out through it).</summary>
    public bool IsManaged(long pfn) => InitDone && pfn >= 0 && pfn < kind.Length && ManagedKinds.Contains((byte)kind[pfn]);

    /// <summary>The first frame of [start, end) that <see cref="IsSystemRam"/>, or -1 (clipped to the map).</summary>
    public long FirstSystemRam(long start, long end) => Clip(ref start, ref end) ? -1 : Found(start, Bytes(Layout.Initial, start, end).IndexOfAny(SystemRamKinds));

    /// <summary>The last frame of [start, end) that <see cref="IsSystemRam"/>, or -1 (clipped to the map).</summary>
    public long LastSystemRam(long start, long end) => Clip(ref start, ref end) ? -1 : Found(start, Bytes(Layout.Initial, start, end).LastIndexOfAny(SystemRamKinds));

    /// <summary>The first frame of [start, end) that <see cref="IsManaged"/>, or -1 (clipped to the map).</summary>
    public long FirstManaged(long start, long end) =>
        !InitDone || Clip(ref start, ref end) ? -1 : Found(start, Bytes(kind, start, end).IndexOfAny(ManagedKinds));

    /// <summary>Clips [start, end) to the map; true when nothing is left.</summary>
    private bool Clip(ref long start, ref long end)
    {
        start = Math.Max(start, 0);
        end = Math.Min(end, kind.Length);
        return start >= end;
    }

    private static ReadOnlySpan<byte> Bytes(ReadOnlySpan<FrameKind> map, long start, long end) => MemoryMarshal.AsBytes(map.Slice((int)start, (int)(end - start)));
    private static long Found(long start, int i) => i < 0 ? -1 : start + i;

    public long[] Managed { get; } = new long[4];
    public long[] FreeCount { get; } = new long[4];
    public long[] WmarkMin { get; } = new long[4];
    public long[] WmarkLow { get; } = new long[4];
    /// <summary>lowmem_reserve[zone][class zone].</summary>
    public long[,] LowmemReserve { get; } = new long[4, 4];
    public long MinFreeKbytes { get; private set; }

    public PageSpec(Machine machine)
    {
        Machine = machine;
        Layout = Layout.For(machine);
        // Every element is written by the copy: no need for the runtime to zero it first.
        kind = GC.AllocateUninitializedArray<FrameKind>(Layout.Initial.Length);
        Layout.Initial.CopyTo(kind);
    }

    public int LargestOrder => Layout.LargestOrder;
    public long FrameCount => Layout.FrameCount;
    public FrameKind KindOf(long pfn) => pfn >= 0 && pfn < kind.Length ? kind[pfn] : FrameKind.Hole;
    public IReadOnlyCollection<Allocation> Live => liveByFirstPfn.Values;
    private long Pfn(ulong addr) => (long)(addr >> Layout.PageShift);
    private ulong Addr(long pfn) => (ulong)pfn << Layout.PageShift;

    // ---------------------------------------------------------------- memblock

    public Violation? MemblockAlloc(ulong size, ulong align, Result got, ulong addr)
    {
        if (InitDone || size == 0 || (align & (align - 1)) != 0)
        {
            string why = InitDone ? "memblock_alloc after mem_init" : size == 0 ? "memblock_alloc of size 0" : $"alignment {align} is not a power of two";
            return Expect(Result.EINVAL, got, "limits", why);
        }
        long pages = (long)((size >> Layout.PageShift) + ((size & (Layout.PageSize - 1)) != 0 ? 1UL : 0));   // no overflow
        long alignPages = Math.Max(1, (long)(align >> Layout.PageShift));
        if (got == Result.Ok)
        {
            long first = Pfn(addr);
            if (addr % Layout.PageSize != 0 || first % alignPages != 0)
                return new("alignment", $"memblock_alloc returned {Hex(addr)}, not aligned to {Math.Max(align, Layout.PageSize)} bytes");
            if (BadFrames(first, pages) is { } bad) return bad;
            Take(first, pages, FrameKind.Memblock, AllocKind.Memblock, -1);
            return null;
        }
        if (got == Result.ENOMEM)
            return FindRun(0, FrameCount, pages, alignPages) is { } p
                ? new("exactness", $"memblock_alloc of {pages} frames got ENOMEM, but frames {Hex(Addr(p))}..{Hex(Addr(p + pages))} are free")
                : null;
        return Unexpected(got, "Ok or ENOMEM");
    }

    public Violation? MemblockFree(ulong addr, Result got)
    {
        if (InitDone) return Expect(Result.EINVAL, got, "misuse", "memblock_free after mem_init");
        if (!liveByFirstPfn.TryGetValue(Pfn(addr), out var a) || a.Kind != AllocKind.Memblock || addr % Layout.PageSize != 0)
            return Expect(Result.BUG, got, "misuse", $"memblock_free of {Hex(addr)}, which is not a live memblock allocation");
        if (got != Result.Ok) return Unexpected(got, "Ok");
        Release(a);
        return null;
    }

    // ---------------------------------------------------------------- mem_init

    public Violation? MemInit(Result got)
    {
        if (InitDone) return Expect(Result.EINVAL, got, "misuse", "a second mem_init");
        if (got != Result.Ok) return Unexpected(got, "Ok");
        InitDone = true;
        allDirty = true;
        for (int z = 0; z < 4; z++)
            Managed[z] = Count(Layout.Zones[z].Start, Layout.Zones[z].End, FrameKind.Free);
        Array.Copy(Managed, FreeCount, 4);
        if (Machine.Watermarks) ComputeWatermarks();
        return null;
    }

    /// <summary>mm/page_alloc.c: init_per_zone_wmark_min, setup_per_zone_wmarks, setup_per_zone_lowmem_reserve.</summary>
    private void ComputeWatermarks()
    {
        long lowmemPages = Managed[0] + Managed[1] + Managed[2];
        long lowmemKb = lowmemPages * (long)(Layout.PageSize / 1024);
        // int_sqrt is the floor of the square root; guard the double rounding at the edges.
        long r = (long)Math.Sqrt((double)(lowmemKb * 16));
        while (r * r > lowmemKb * 16) r--;
        while ((r + 1) * (r + 1) <= lowmemKb * 16) r++;
        MinFreeKbytes = Math.Clamp(r, 128, (long)Machine.MinFreeKbytesMax);
        long pagesMin = MinFreeKbytes >> (Layout.PageShift - 10);
        for (int z = 0; z < 4; z++)
        {
            if (z == (int)MZone.HighMem || lowmemPages == 0) continue;
            long min = (long)((ulong)pagesMin * (ulong)Managed[z] / (ulong)lowmemPages);
            WmarkMin[z] = min;
            WmarkLow[z] = min + Math.Max(min / 4, Managed[z] * 10 / 10000);
        }
        int[] ratio = [256, 256, 32, 0];
        for (int z = 0; z < 4; z++)
        {
            long above = 0;
            for (int c = z + 1; c < 4; c++)
            {
                above += Managed[c];
                LowmemReserve[z, c] = ratio[z] == 0 || Managed[z] == 0 ? 0 : above / ratio[z];
            }
        }
    }

    // ---------------------------------------------------------------- page allocator

    // One per combination of the mask's zone bits (Dma, Dma32, HighUser), computed once each.
    private readonly MZone[]?[] zoneLists = new MZone[]?[8];

    /// <summary>The zone list of a GFP mask, highest zone first, restricted to zones the profile has.</summary>
    public MZone[] ZoneList(GfpBits gfp)
    {
        int key = ((gfp & GfpBits.Dma) != 0 ? 1 : 0) | ((gfp & GfpBits.Dma32) != 0 ? 2 : 0) | ((gfp & GfpBits.HighUser) != 0 ? 4 : 0);
        if (zoneLists[key] is { } cached) return cached;
        MZone[] list = (gfp & GfpBits.Dma) != 0 ? [MZone.DMA]
            : (gfp & GfpBits.Dma32) != 0 ? (Layout.ZoneExists[(int)MZone.DMA32] ? [MZone.DMA32, MZone.DMA] : [MZone.Normal, MZone.DMA])
            : (gfp & GfpBits.HighUser) != 0 ? [MZone.HighMem, MZone.Normal, MZone.DMA32, MZone.DMA]
            : [MZone.Normal, MZone.DMA32, MZone.DMA];
        return zoneLists[key] = list.Where(z => Layout.ZoneExists[(int)z]).ToArray();
    }

    public static bool MayBlock(GfpBits gfp) =>
        (gfp & (GfpBits.Kernel | GfpBits.HighUser)) != 0
        || ((gfp & (GfpBits.Dma | GfpBits.Dma32)) != 0 && (gfp & (GfpBits.Atomic | GfpBits.NoWait)) == 0);

    /// <summary>
    /// What alloc_pages must do: EINVAL, BUG, ENOMEM, or Ok from a given zone. The returned text
    /// explains the decision for traces and messages.
    /// </summary>
    public (Result Result, MZone Zone, string Why) DecideAllocPages(int order, GfpBits gfp, bool atomic, MZone? knownRunZone = null)
    {
        var (result, zone) = Decide(order, gfp, atomic, knownRunZone, out string? why, explain: true);
        return (result, zone, why!);
    }

    /// <summary>
    /// The decision of <see cref="DecideAllocPages"/>; the explanation is built only when asked for,
    /// because this runs for every page another allocator takes.
    /// </summary>
    public (Result Result, MZone Zone) Decide(int order, GfpBits gfp, bool atomic, MZone? knownRunZone, out string? why, bool explain = false)
    {
        why = null;
        if (order < 0 || order > LargestOrder)
        {
            if (explain) why = $"order {order} is above the largest order {LargestOrder} ({MaxOrderText()})";
            return (Result.EINVAL, default);
        }
        int zoneFlags = ((gfp & GfpBits.Dma) != 0 ? 1 : 0) + ((gfp & GfpBits.Dma32) != 0 ? 1 : 0) + ((gfp & GfpBits.HighUser) != 0 ? 1 : 0);
        if (zoneFlags > 1) { if (explain) why = "more than one zone modifier in the GFP mask (GFP_ZONE_BAD)"; return (Result.BUG, default); }
        if (atomic && MayBlock(gfp)) { if (explain) why = "a GFP mask that may sleep, in atomic context"; return (Result.BUG, default); }

        var list = ZoneList(gfp);
        var classZone = list[0];
        // (Plain loops and no local functions: the message's Where(Usable) turned them into a closure
        // object allocated on every call, and this runs for every page another allocator takes.)
        if (!Machine.Watermarks)
        {
            foreach (var z in list)
                if (Usable(z) && HasRun(z, order, knownRunZone))
                {
                    if (explain) why = $"first zone in the list with a free order-{order} block: {z}";
                    return (Result.Ok, z);
                }
            if (explain) why = $"no free order-{order} block in {string.Join(", ", list.Where(Usable))}";
            return (Result.ENOMEM, default);
        }
        foreach (var z in list)
            if (Usable(z) && WatermarkOk(z, order, WmarkLow[(int)z], classZone) && HasRun(z, order, knownRunZone))
            {
                if (explain) why = $"{z} passes the low watermark";
                return (Result.Ok, z);
            }
        foreach (var z in list)
            if (Usable(z) && WatermarkOk(z, order, ReducedMark(WmarkMin[(int)z], gfp), classZone) && HasRun(z, order, knownRunZone))
            {
                if (explain) why = $"{z} passes the min watermark{((gfp & GfpBits.Atomic) != 0 ? " with the atomic reserves" : "")}";
                return (Result.Ok, z);
            }
        if (explain) why = $"no zone in {string.Join(", ", list.Where(Usable))} has a free order-{order} block that the watermarks allow";
        return (Result.ENOMEM, default);
    }

    private bool Usable(MZone z) => Managed[(int)z] > 0;
    private bool HasRun(MZone z, int order, MZone? knownRunZone) => knownRunZone == z || HasRunInZone(z, order);

    /// <summary>__zone_watermark_ok: free - (2^order - 1) &gt; mark + lowmem_reserve[zone][class].</summary>
    public bool WatermarkOk(MZone z, int order, long mark, MZone classZone)
        => FreeCount[(int)z] - ((1L << order) - 1) > mark + LowmemReserve[(int)z, (int)classZone];

    public Violation? AllocPages(int order, GfpBits gfp, bool atomic, Result got, ulong addr) =>
        AllocBlock(order, gfp, atomic, got, addr, AllocKind.Pages, "alloc_pages");

    /// <summary>
    /// A block from the page allocator, asked for by the scenario (alloc_pages) or by another allocator
    /// on its behalf (a page event): the same rules either way.
    /// </summary>
    public Violation? AllocBlock(int order, GfpBits gfp, bool atomic, Result got, ulong addr, AllocKind kind, Call what,
        ulong owner = 0, ulong objectSize = 0)
    {
        if (!InitDone) throw new InvalidOperationException("page allocation before mem_init: the runner must insert mem_init");
        long first = Pfn(addr), pages = 1L << Math.Clamp(order, 0, 62);
        MZone? blockZone = null;
        if (got == Result.Ok && order >= 0 && order <= LargestOrder)
        {
            if (BadFrames(first, pages) is { } bad) return bad;
            if (addr % Layout.PageSize != 0 || first % pages != 0)
                return new("alignment", $"{what}: order-{order} block at {Hex(addr)} is not aligned to {pages} frames");
            blockZone = Layout.ZoneOf(first);
            if (Layout.ZoneOf(first + pages - 1) != blockZone)
                return new("free-blocks", $"{what}: order-{order} block at {Hex(addr)} spans two zones");
        }
        var (want, zone) = Decide(order, gfp, atomic, blockZone, out _);
        string why = "";
        if (want != got || (got == Result.Ok && blockZone != zone))
            why = DecideAllocPages(order, gfp, atomic, blockZone).Why;
        if (want != got)
        {
            string inv = want == Result.EINVAL || got == Result.EINVAL ? "limits"
                : want == Result.BUG || got == Result.BUG ? "misuse"
                : got == Result.ENOMEM ? "exactness"
                : Machine.Watermarks && blockZone is { } bz && ZoneList(gfp).Contains(bz) ? "watermarks"
                : blockZone is { } bz2 && !ZoneList(gfp).Contains(bz2) ? "limits"
                : "exactness";
            string detail = got == Result.Ok && blockZone is { } b ? $" (it returned an order-{order} block at {Hex(addr)} in {b})" : "";
            return new(inv, $"{what} order {order} {gfp} must give {want}: {why}; the target answered {got}{detail}");
        }
        if (got != Result.Ok) return null;
        if (blockZone != zone)
        {
            string inv = ZoneList(gfp).Contains(blockZone!.Value) ? "zone" : "limits";
            return new(inv, $"{what} order {order} {gfp} must come from {zone} ({why}), but the block at {Hex(addr)} is in {blockZone}");
        }
        Take(first, pages, FrameKind.Allocated, kind, order, owner, objectSize);
        FreeCount[(int)zone] -= pages;
        return null;
    }

    /// <summary>A page event that gives a block back: it must be a live block of that kind, owner and order.</summary>
    public Violation? FreeBlock(ulong addr, int order, AllocKind kind, ulong owner, Call what)
    {
        if (!liveByFirstPfn.TryGetValue(Pfn(addr), out var a) || a.Kind != kind || a.Owner != owner || a.Order != order || addr % Layout.PageSize != 0)
            return new("ownership", $"{what} gave back an order-{order} block at {Hex(addr)} it does not own ({Describe(Pfn(addr))})");
        Release(a);
        FreeCount[(int)Layout.ZoneOf(a.FirstPfn)] += a.Pages;
        return null;
    }

    /// <summary>How many order-0 pages the page allocator can hand out now for this mask (the min-watermark pass).</summary>
    public long ObtainableOrder0(GfpBits gfp)
    {
        var list = ZoneList(gfp);
        if (list.Length == 0) return 0;
        var classZone = list[0];
        long total = 0;
        foreach (var z in list)
        {
            if (Managed[(int)z] == 0) continue;
            long floor = Machine.Watermarks ? ReducedMark(WmarkMin[(int)z], gfp) + LowmemReserve[(int)z, (int)classZone] : 0;
            total += Math.Max(0, FreeCount[(int)z] - floor);
        }
        return total;
    }

    /// <summary>The min mark after the reserves a GFP mask may use (docs/semantics.md, page allocator rule 6).</summary>
    public static long ReducedMark(long m, GfpBits gfp)
    {
        if ((gfp & GfpBits.Atomic) == 0) return m;
        m -= m / 2;
        bool canReclaim = (gfp & (GfpBits.Kernel | GfpBits.HighUser)) != 0;
        if (!canReclaim) m -= m / 4;
        return m;
    }

    /// <summary>Room for `more` allocations, made at once: a vmalloc's thousands of page events then grow the table once.</summary>
    public void ExpectAllocations(int more)
    {
        // EnsureCapacity(n) sizes the table to n exactly: asked for a little more on every vmalloc,
        // it rehashed on every one (review: 649k entries rehashed over 2,000 vmallocs of 65 pages,
        // 145k without it). So grow at least by doubling, as adding would.
        int need = liveByFirstPfn.Count + more, capacity = liveByFirstPfn.EnsureCapacity(0);
        if (need > capacity) liveByFirstPfn.EnsureCapacity(Math.Max(need, 2 * capacity));
    }

    /// <summary>The live allocation that starts at a frame, or null.</summary>
    public Allocation? AllocationAt(long pfn) => liveByFirstPfn.TryGetValue(pfn, out var a) ? a : null;

    /// <summary>The live allocation holding a frame, or null.</summary>
    public Allocation? OwnerOf(long pfn)
    {
        if (KindOf(pfn) is not (FrameKind.Allocated or FrameKind.Memblock)) return null;
        // Blocks from the page allocator start at a multiple of their size: try each order's start.
        for (int order = 0; order <= LargestOrder; order++)
            if (liveByFirstPfn.TryGetValue(pfn & ~((1L << order) - 1), out var b) && pfn < b.FirstPfn + b.Pages) return b;
        // Anything else (memblock runs): look through them all.
        foreach (var a in liveByFirstPfn.Values)
            if (pfn >= a.FirstPfn && pfn < a.FirstPfn + a.Pages) return a;
        return null;
    }

    /// <summary>Frames held by live allocations of a kind and owner (kept as a count; <see cref="OwnedBy"/> is the slow listing).</summary>
    public long PagesOwnedBy(AllocKind kind, ulong owner) => pagesByOwner[(int)kind].TryGetValue(owner, out long n) ? n : 0;

    /// <summary>Every live allocation of a kind and owner (slow; for messages).</summary>
    public IEnumerable<Allocation> OwnedBy(AllocKind kind, ulong owner) =>
        liveByFirstPfn.Values.Where(a => a.Kind == kind && a.Owner == owner);

    public Violation? FreePages(ulong addr, int order, Result got)
    {
        if (!InitDone) throw new InvalidOperationException("free_pages before mem_init: the runner must insert mem_init");
        if (addr == 0) return Expect(Result.Ok, got, "misuse", "free_pages(0) is a no-op");
        if (!liveByFirstPfn.TryGetValue(Pfn(addr), out var a) || a.Kind != AllocKind.Pages)
            return Expect(Result.BUG, got, "misuse", $"free_pages of {Hex(addr)}, which is not the start of a live alloc_pages block ({Describe(Pfn(addr))})");
        if (!InitDone) throw new InvalidOperationException("free_pages before mem_init");
        if (a.Order != order)
            return Expect(Result.BUG, got, "misuse", $"free_pages of {Hex(addr)} with order {order}, but it was allocated with order {a.Order}");
        if (got != Result.Ok) return Unexpected(got, "Ok");
        Release(a);
        FreeCount[(int)Layout.ZoneOf(a.FirstPfn)] += a.Pages;
        return null;
    }

    // ---------------------------------------------------------------- structure of the target's free lists

    /// <summary>
    /// The structural invariants over the target's free blocks (free-blocks, coalescing, ownership):
    /// aligned, disjoint, in one zone, over free frames only, covering every free frame, and no block
    /// whose parent block is wholly free inside one zone within the largest order.
    /// </summary>
    public Violation? CheckFreeBlocks(IEnumerable<(long Pfn, int Order)> blocks)
    {
        var list = SortedByPfn(blocks);
        if (!InitDone && list.Count > 0)
            return new("free-blocks", $"the buddy free lists hold a block at {Hex(Addr(list[0].Pfn))} before mem_init");
        var perZone = new long[4];
        foreach (var (pfn, order) in list)
            if (order >= 0 && order <= LargestOrder && pfn >= 0 && pfn < FrameCount) perZone[(int)Layout.ZoneOf(pfn)] += 1L << order;
        return CheckBlocks(list) ?? CheckZoneCounts(perZone) ?? CheckCoalescing(list);
    }

    /// <summary>
    /// The blocks sorted by pfn, as <c>OrderBy(b => b.Pfn)</c> sorts them. When they are dense (one per
    /// 128 frames or more) and every head is a distinct
    /// frame of the map with an order in 0..LargestOrder (every correct target), by marking the heads
    /// in a frame-sized map and reading it in order: O(frames / 64 + blocks), where a comparison sort
    /// of the 262,144 order-1 blocks of a 2 GiB machine booted with max_order=1 took most of a
    /// fuzzing execution. Otherwise (few blocks, or a buggy target) by OrderBy itself, so ties keep their order.
    /// </summary>
    private List<(long Pfn, int Order)> SortedByPfn(IEnumerable<(long Pfn, int Order)> blocks)
    {
        var input = blocks.ToList();
        // The map costs a frame-sized array (allocated, zeroed, scanned); it pays only when the blocks
        // are dense. Measured (session 4 review): 255 blocks of a booted 1 GiB machine, map 0.155 ms
        // against OrderBy 0.019; 262,143 order-0/1 blocks of 1-2 GiB, map 6-10 ms against 35.
        if (input.Count < 32 || input.Count < FrameCount >> 7) return input.OrderBy(b => b.Pfn).ToList();
        var orderAt = new byte[FrameCount];
        foreach (var (pfn, order) in input)
        {
            if (pfn < 0 || pfn >= FrameCount || order < 0 || order > LargestOrder || orderAt[pfn] != 0)
                return input.OrderBy(b => b.Pfn).ToList();
            orderAt[pfn] = (byte)(order + 1);
        }
        var list = new List<(long Pfn, int Order)>(input.Count);
        var heads = orderAt.AsSpan();
        for (int from = 0; from < heads.Length; from++)
        {
            int at = heads[from..].IndexOfAnyExcept((byte)0);
            if (at < 0) break;
            from += at;
            list.Add((from, heads[from] - 1));
        }
        return list;
    }

    /// <summary>
    /// The fast twin of <see cref="CheckFreeBlocks"/>: the same checks in the same order, over the
    /// target's free blocks that hold a frame of the region each change could have touched, and the
    /// target's per-zone counters. For a run of frames that was taken or given back, that region is
    /// its smallest enclosing block, grown while the rest of the next larger block is free in the
    /// model (up to the largest order): a split takes the block it splits from, and a merge makes the
    /// block it merges into, inside that region; a wrong block the target made there overlaps it.
    /// <paramref name="blocksOver"/>(start, end, into) appends the target's free blocks holding a
    /// frame of [start, end).
    /// </summary>
    public Violation? CheckFreeBlocksIncremental(Action<long, long, List<(long Pfn, int Order)>> blocksOver, long[] targetZoneFree)
    {
        // Regions first, then sorted and merged: a region can reach below an earlier change's region
        // (a merge grows downwards), so merging in the order of the changes would lose that part.
        regions.Clear();
        foreach (var (s, e) in dirty) regions.Add(Region(s, e));
        regions.Sort(ByStart);
        ranges.Clear();
        foreach (var (a, b) in regions)
        {
            if (ranges.Count > 0 && a <= ranges[^1].End) ranges[^1] = (ranges[^1].Start, Math.Max(ranges[^1].End, b));
            else ranges.Add((a, b));
        }
        scratch.Clear();
        foreach (var (a, b) in ranges) blocksOver(a, b, scratch);
        if (scratch.Count > 1)
        {
            scratch.Sort(ByPfn);
            // One block can overlap two regions: keep it once.
            int n = 1;
            for (int k = 1; k < scratch.Count; k++)
                if (scratch[k] != scratch[n - 1]) scratch[n++] = scratch[k];
            scratch.RemoveRange(n, scratch.Count - n);
        }
        return CheckBlocks(scratch) ?? CheckZoneCounts(targetZoneFree) ?? CheckCoalescing(scratch);
    }

    /// <summary>
    /// The region a change of frames [s, e) could have touched in a buddy allocator: the smallest
    /// aligned block holding them, then its parent for as long as the buddy is wholly free here (the
    /// block a split came from, or a merge went to), up to the largest order; clipped to the map.
    /// </summary>
    private (long Start, long End) Region(long s, long e)
    {
        long span = 1L << LargestOrder;
        if (s / span != (e - 1) / span)   // a run over several largest blocks: all of them
            return (s / span * span, Math.Min((e + span - 1) / span * span, FrameCount));
        int order = 0;
        while (order < LargestOrder && (s >> order) != ((e - 1) >> order)) order++;
        long start = s >> order << order;
        while (order < LargestOrder)
        {
            long size = 1L << order, buddy = start ^ size;
            if (buddy < 0 || buddy + size > FrameCount || FirstNotFree(buddy, buddy + size) >= 0) break;
            start &= ~size;
            order++;
        }
        return (start, Math.Min(start + (1L << order), FrameCount));
    }

    private readonly List<(long Start, long End)> ranges = new(), regions = new();
    private readonly List<(long Pfn, int Order)> scratch = new();
    private static readonly Comparison<(long Start, long End)> ByStart = (x, y) => x.Start.CompareTo(y.Start);
    private static readonly Comparison<(long Pfn, int Order)> ByPfn = (x, y) => x.Pfn.CompareTo(y.Pfn);

    /// <summary>Each block aligned, in range, inside one zone, over free frames only, and disjoint (blocks sorted by pfn).</summary>
    private Violation? CheckBlocks(List<(long Pfn, int Order)> list)
    {
        long prevEnd = -1;
        foreach (var (pfn, order) in list)
        {
            if (order < 0 || order > LargestOrder)
                return new("free-blocks", $"a free block at {Hex(Addr(pfn))} has order {order}, outside 0..{LargestOrder}");
            long size = 1L << order;
            if (pfn % size != 0) return new("free-blocks", $"free order-{order} block at {Hex(Addr(pfn))} is not aligned to {size} frames");
            if (pfn < prevEnd) return new("free-blocks", $"free blocks overlap at {Hex(Addr(pfn))}");
            prevEnd = pfn + size;
            if (pfn < 0 || pfn + size > FrameCount || Layout.ZoneOf(pfn) != Layout.ZoneOf(pfn + size - 1))
                return new("free-blocks", $"free order-{order} block at {Hex(Addr(pfn))} does not lie inside one zone");
            if (FirstNotFree(pfn, pfn + size) is var f && f >= 0)
            {
                string inv = kind[f] is FrameKind.AboveMem or FrameKind.MemmapReserved ? "limits"
                    : kind[f] == FrameKind.Allocated ? "no-double-mapping" : "free-blocks";
                return new(inv, $"free order-{order} block at {Hex(Addr(pfn))} contains frame {Hex(Addr(f))}, which is {Describe(f)}");
            }
        }
        return null;
    }

    /// <summary>The free lists of each zone hold exactly the zone's free frames (with disjoint blocks over free frames, this is an exact cover).</summary>
    private Violation? CheckZoneCounts(long[] perZone)
    {
        for (int z = 0; z < 4; z++)
            if (InitDone && perZone[z] != FreeCount[z])
                return new("ownership", $"the free lists of {(MZone)z} hold {perZone[z]} frames, but {FreeCount[z]} frames of it are free");
        return null;
    }

    /// <summary>No free block whose parent block is wholly free inside one zone, within the largest order.</summary>
    private Violation? CheckCoalescing(List<(long Pfn, int Order)> list)
    {
        foreach (var (pfn, order) in list)
        {
            if (order >= LargestOrder) continue;
            long parent = pfn & ~((2L << order) - 1), parentSize = 2L << order;
            if (parent + parentSize > FrameCount || Layout.ZoneOf(parent) != Layout.ZoneOf(parent + parentSize - 1)) continue;
            if (FirstNotFree(parent, parent + parentSize) < 0)
            {
                long buddy = pfn ^ (1L << order);
                return new("coalescing", $"free order-{order} blocks at {Hex(Addr(pfn))} and its buddy {Hex(Addr(buddy))} in {Layout.ZoneOf(pfn)} were left unmerged: their order-{order + 1} parent at {Hex(Addr(parent))} is wholly free");
            }
        }
        return null;
    }

    // ---------------------------------------------------------------- helpers

    /// <summary>The first `alignPages`-aligned run of `pages` free frames in [start, end), or null.</summary>
    public long? FindRun(long start, long end, long pages, long alignPages)
    {
        long b = (start + alignPages - 1) / alignPages * alignPages;
        while (b + pages <= end)
        {
            long f = FirstNotFree(b, b + pages);
            if (f < 0) return b;
            b = (f + alignPages) / alignPages * alignPages;
        }
        return null;
    }

    /// <summary>Whether the zone holds an order-aligned run of 2^order free frames (any free frame for order 0).</summary>
    public bool HasRunInZone(MZone z, int order)
    {
        var (s, e) = Layout.Zones[(int)z];
        if (order == 0) return FreeCount[(int)z] > 0;
        return FindRun(s, e, 1L << order, 1L << order) is not null;
    }

    private Violation? BadFrames(long first, long pages)
    {
        // The first frame of the run that is not free; frames outside the map are holes.
        long f = -1;
        if (first < 0) f = first;
        else
        {
            long inMap = Math.Min(first + pages, FrameCount);
            if (first < inMap) f = FirstNotFree(first, inMap);
            if (f < 0 && first + pages > FrameCount) f = Math.Max(first, FrameCount);
        }
        if (f != -1 || first < 0)
        {
            var k = KindOf(f);
            string inv = k == FrameKind.Allocated ? "no-double-mapping"
                : k is FrameKind.AboveMem or FrameKind.MemmapReserved ? "limits"
                : "ownership";
            return new(inv, $"frame {Hex(Addr(f))} was handed out, but it is {Describe(f)}");
        }
        return null;
    }


    // The frame map as bytes, so that scanning and filling a run of frames is one vectorised span
    // operation (IndexOfAnyExcept, Count, Fill) instead of a loop: the same meaning, 10-30x faster.
    private Span<byte> Frames(long start, long end) => MemoryMarshal.AsBytes(kind.AsSpan((int)start, (int)(end - start)));

    /// <summary>The first frame in [start, end) that is not free, or -1 (the range must lie inside the map).</summary>
    private long FirstNotFree(long start, long end)
    {
        int i = Frames(start, end).IndexOfAnyExcept((byte)FrameKind.Free);
        return i < 0 ? -1 : start + i;
    }

    private long Count(long start, long end, FrameKind k) => start >= end ? 0 : Frames(start, end).Count((byte)k);

    public string Describe(long pfn)
    {
        var k = KindOf(pfn);
        return k switch
        {
            FrameKind.Hole => "in a hole (not RAM)",
            FrameKind.AboveMem => $"RAM at or above mem={Hex(Machine.MemLimit ?? 0)}",
            FrameKind.Unmanaged => "RAM above the lowmem limit, not managed",
            FrameKind.Reserved => "reserved at boot (low memory)",
            FrameKind.MemmapReserved => "reserved by memmap=",
            FrameKind.Memblock => "boot-allocated by memblock",
            FrameKind.Free => "free",
            FrameKind.Allocated => $"owned by the live {OwnerOf(pfn)?.Kind.ToString().ToLowerInvariant()} allocation at {Hex(Addr(OwnerOf(pfn)?.FirstPfn ?? 0))}",
            _ => k.ToString(),
        };
    }

    private void Take(long first, long pages, FrameKind k, AllocKind ak, int order, ulong owner = 0, ulong objectSize = 0)
    {
        Frames(first, first + pages).Fill((byte)k);
        MarkDirty(first, first + pages);
        liveByFirstPfn[first] = new Allocation(nextId++, ak, first, pages, order, owner, objectSize);
        CollectionsMarshal.GetValueRefOrAddDefault(pagesByOwner[(int)ak], owner, out _) += pages;
    }

    private void Release(Allocation a)
    {
        Frames(a.FirstPfn, a.FirstPfn + a.Pages).Fill((byte)FrameKind.Free);
        MarkDirty(a.FirstPfn, a.FirstPfn + a.Pages);
        liveByFirstPfn.Remove(a.FirstPfn);
        ref long left = ref CollectionsMarshal.GetValueRefOrAddDefault(pagesByOwner[(int)a.Kind], a.Owner, out _);
        left -= a.Pages;
        if (left == 0) pagesByOwner[(int)a.Kind].Remove(a.Owner);
    }

    private string MaxOrderText() => Machine.MaxOrderInclusive
        ? $"MAX_PAGE_ORDER {Machine.MaxOrderValue}, inclusive"
        : $"MAX_ORDER {Machine.MaxOrderValue}, exclusive";

    private static Violation? Expect(Result want, Result got, string invariant,
        [System.Runtime.CompilerServices.InterpolatedStringHandlerArgument("want", "got")] LazyText why) =>
        Expect(want, got, invariant, why.Text());

    private static Violation? Expect(Result want, Result got, string invariant, string why) =>
        want == got ? null : new(invariant, $"{why}: must give {want}, the target answered {got}");

    private static Violation? Unexpected(Result got, string allowed) =>
        new("misuse", $"a valid request must give {allowed}; the target answered {got}");

    public static string Hex(ulong a) => "0x" + a.ToString("x");
}
