using System.Numerics;
using Kmem.Scenarios;
using Kmem.Target;
using static Kmem.Reference.Intervals;

namespace Kmem.Reference;

/// <summary>How far below its watermark a request may take a zone (6.8 <c>gfp_to_alloc_flags</c>).</summary>
public enum WatermarkReserves
{
    /// <summary>The mark as computed (every mask without GFP_ATOMIC, and the fast path).</summary>
    None,
    /// <summary>GFP_ATOMIC with a mask that can sleep: <c>mark - mark/2</c> (ALLOC_MIN_RESERVE / 4.19 ALLOC_HIGH).</summary>
    MinReserve,
    /// <summary>Plain GFP_ATOMIC: halved, then a further quarter off (adds ALLOC_NON_BLOCK / 4.19 ALLOC_HARDER).</summary>
    MinReserveNonBlock,
}

/// <summary>
/// The reference allocator: memblock at boot, then the Linux buddy page allocator with zones,
/// watermarks and coalescing, implementing docs/semantics.md. It shares no code with the model.
/// </summary>
/// <remarks>
/// <para>Per-frame state is one byte (<see cref="_frame"/>): a 3-bit kind (hole, reserved, usable,
/// memblock, or the head of a live block: alloc_pages, slab, large kmalloc, vmalloc page or DMA
/// buffer) and, for a live block head, its order in the top five bits. Frames inside live blocks
/// other than the head, and frames on the free lists, stay "usable": whether a usable frame is free
/// is read from the free lists, never stored per frame.</para>
/// <para>Free lists: one <see cref="BitTree"/> per order over the whole frame range (bit
/// <c>pfn &gt;&gt; order</c> set while that block is free; about a quarter of a byte per frame for all
/// orders together), plus per zone and order a block count and a bitmask of non-empty orders, and per
/// zone the free page count. Insert, remove and "lowest free block of order k in zone z" are
/// O(log64 n); nothing scans memory per operation.</para>
/// <para>Frames at and above <see cref="FrameCount"/> (one past the highest usable frame) are not
/// stored: RAM above <c>mem=</c>, RAM above the 2.0 lowmem limit and holes up there all lie beyond it,
/// and are never free or allocatable.</para>
/// <para>The allocators built on the page allocator (slab and kmalloc, vmalloc, ioremap, the resource
/// tree, DMA) live in the other partial files; every page they take goes through the same
/// <see cref="AllocBlock"/> path as alloc_pages and is reported as a <see cref="PageEvent"/>.</para>
/// <para>Known-buggy variants subclass this and override the protected virtual seams; the class
/// itself carries no bug switches.</para>
/// </remarks>
public partial class ReferenceAllocator : ITarget, IBuddyIntrospection
{
    /// <summary>The largest frame map the reference accepts (256 GiB of 4 KiB frames): the tool's limit.</summary>
    public const int MaxFrames = 1 << 26;

    /// <summary>
    /// Orders for which free lists exist. Far above any real largest order (15), so a variant whose
    /// <see cref="OrderAllowed"/> lets blocks grow past the limit keeps running (and gets caught)
    /// instead of indexing out of range.
    /// </summary>
    private const int OrderSlots = 31;
    private const int ZoneCount = 4;
    private const ulong KernelSpace32 = 1UL << 30; // i386 3G/1G split: -PAGE_OFFSET

    // Per-frame kinds (low three bits of _frame). Anything at or above FrameCount is not RAM the
    // allocator may use (hole, above mem=, or the 2.0 RAM above its lowmem limit).
    private const byte KindHole = 0;
    private const byte KindReserved = 1;   // RAM, but memmap-reserved or below the profile's LowReserved
    private const byte KindUsable = 2;     // before mem_init: memblock-free; after: free or inside a live block
    private const byte KindMemblock = 3;   // owned by a live memblock allocation
    private const byte KindAllocHead = 4;  // first frame of a live alloc_pages block; order in bits 3..7
    private const byte KindSlabHead = 5;   // first frame of a slab (kmalloc or kmem_cache); order in bits 3..7
    private const byte KindLargeHead = 6;  // first frame of a large kmalloc block (SLUB); order in bits 3..7
    private const byte KindOtherHead = 7;  // first frame of a vmalloc backing page or a DMA buffer; order in bits 3..7
    private const byte KindMask = 7;
    private const int OrderShift = 3;

    private Profile _profile = Profiles.Default;
    private int _shift = 12;
    private int _largest;
    private int _frameCount;
    private byte[] _frame = [];
    private BitTree[] _free = [];
    private readonly long[] _blockCount = new long[ZoneCount * OrderSlots];
    private readonly uint[] _orderMask = new uint[ZoneCount];
    private readonly long[] _freePages = new long[ZoneCount];
    private readonly long[] _managed = new long[ZoneCount];
    private readonly bool[] _zoneExists = new bool[ZoneCount];
    private readonly int[] _zoneStart = new int[ZoneCount];
    private readonly int[] _zoneEnd = new int[ZoneCount];
    private int _dmaEnd, _dma32End, _normalEnd;
    private bool _hasHighMem;
    private readonly long[] _wmMin = new long[ZoneCount];
    private readonly long[] _wmLow = new long[ZoneCount];
    private readonly long[] _lowmemReserve = new long[ZoneCount * ZoneCount];

    // Zone lists, highest zone first, zones the profile has (managed pages are checked per request).
    private int[] _listDma = [], _listDma32 = [], _listHighUser = [], _listNormal = [];

    // memblock: maximal runs of usable frames, sorted; live allocations by address.
    private readonly List<(int Start, int End)> _runs = [];
    private readonly Dictionary<ulong, (int Pfn, int Count)> _memblock = [];

    private bool _booted;
    private bool _memInitDone;

    public virtual string Name => "reference";

    // ------------------------------------------------------------------ boot

    /// <summary>
    /// Builds the frame map (docs/semantics.md "Physical layout") and empty free lists. Throws
    /// <see cref="ArgumentException"/> for input the parser should have refused: a max_order outside
    /// the profile's accepted range, or usable memory beyond <see cref="MaxFrames"/> frames.
    /// </summary>
    public virtual void Boot(MachineConfig machine)
    {
        ArgumentNullException.ThrowIfNull(machine);
        _booted = false; // until this boot completes (bad input throws ArgumentException)
        var p = machine.Profile;
        _profile = p;
        _shift = p.PageShift;
        _largest = LargestOrderFor(p, machine.MaxOrderValue);

        // 1. Firmware map: RAM banks minus holes (bytes).
        var ram = Subtract(
            machine.Ram.Select(r => new Run(r.Start, End(r.Start, r.Size))),
            machine.Holes.Select(h => new Run(h.Start, End(h.Start, h.Size))));
        // 2. memmap: usable entries add RAM; reserved kinds remove it, whatever the order.
        var added = machine.Memmap.Where(e => e.Kind == MemmapKind.Usable)
            .Select(e => new Run(e.Start, End(e.Start, e.Size)));
        var reserved = machine.Memmap
            .Where(e => e.Kind is MemmapKind.Reserved or MemmapKind.Acpi or MemmapKind.Persistent)
            .Select(e => new Run(e.Start, End(e.Start, e.Size))).ToList();
        var ramAll = Union(ram, added);
        var usableBytes = Subtract(ramAll, reserved);
        // 3. mem= last.
        ulong memLimit = MemLimitAddress(machine);
        if (memLimit != ulong.MaxValue) usableBytes = Subtract(usableBytes, [new Run(memLimit, ulong.MaxValue)]);
        // 4. Whole frames only (a reserved byte range thereby covers every frame it touches).
        var usable = FramesInside(usableBytes, _shift);
        var systemRam = usable; // System RAM for request_mem_region: before the low reservation and lowmem cut
        // 5. Low reservation.
        ulong pageMask = (1UL << _shift) - 1;
        ulong lowPfn = (p.LowReserved >> _shift) + ((p.LowReserved & pageMask) != 0 ? 1UL : 0UL);
        if (lowPfn > 0) usable = Subtract(usable, [new Run(0, lowPfn)]);
        // 6. The 32-bit lowmem limit; on 2.0 RAM above it is not used at all.
        ulong? lowmemPfn = LowmemLimitPfn(machine);
        if (lowmemPfn is { } lp && !p.HasHighMem) usable = Subtract(usable, [new Run(lp, ulong.MaxValue)]);

        ulong top = usable.Count == 0 ? 0 : usable[^1].End;
        if (top > MaxFrames)
            throw new ArgumentException(
                $"usable memory ends at frame {top}, beyond the limit of {MaxFrames} frames ({(ulong)MaxFrames << _shift >> 30} GiB)");
        _frameCount = (int)top;

        // Frame map: holes, then RAM that is not usable as reserved, then the usable runs.
        _frame = new byte[_frameCount];
        foreach (var r in FramesInside(ramAll, _shift)) Paint(r.Start, r.End, KindReserved);
        _runs.Clear();
        foreach (var r in usable)
        {
            Paint(r.Start, r.End, KindUsable);
            _runs.Add(((int)r.Start, (int)r.End));
        }
        _memblock.Clear();

        // Zones by address.
        _dmaEnd = ClampPfn(p.DmaZoneEnd >> _shift);
        if (lowmemPfn is { } lm) _dmaEnd = Math.Min(_dmaEnd, ClampPfn(lm));
        bool hasDma32 = p.Dma32ZoneEnd is not null;
        _dma32End = hasDma32 ? Math.Max(_dmaEnd, ClampPfn(p.Dma32ZoneEnd!.Value >> _shift)) : _dmaEnd;
        _normalEnd = lowmemPfn is { } nl ? Math.Max(_dma32End, ClampPfn(nl)) : int.MaxValue;
        _hasHighMem = p.HasHighMem;
        _zoneExists[(int)Zone.DMA] = true;
        _zoneExists[(int)Zone.DMA32] = hasDma32;
        _zoneExists[(int)Zone.Normal] = true;
        _zoneExists[(int)Zone.HighMem] = _hasHighMem;
        _zoneStart[0] = 0; _zoneEnd[0] = _dmaEnd;
        _zoneStart[1] = _dmaEnd; _zoneEnd[1] = _dma32End;
        _zoneStart[2] = _dma32End; _zoneEnd[2] = _normalEnd;
        _zoneStart[3] = _hasHighMem ? _normalEnd : int.MaxValue; _zoneEnd[3] = int.MaxValue;

        _listDma = [(int)Zone.DMA];
        _listDma32 = hasDma32 ? [(int)Zone.DMA32, (int)Zone.DMA] : [(int)Zone.Normal, (int)Zone.DMA];
        _listNormal = hasDma32 ? [(int)Zone.Normal, (int)Zone.DMA32, (int)Zone.DMA] : [(int)Zone.Normal, (int)Zone.DMA];
        _listHighUser = _hasHighMem ? [(int)Zone.HighMem, .. _listNormal] : _listNormal;

        // Free lists (empty until mem_init).
        _free = new BitTree[OrderSlots];
        for (int o = 0; o < OrderSlots; o++)
            _free[o] = new BitTree(_frameCount == 0 ? 1 : ((long)(_frameCount - 1) >> o) + 1);
        Array.Clear(_blockCount);
        Array.Clear(_orderMask);
        Array.Clear(_freePages);
        Array.Clear(_managed);
        Array.Clear(_wmMin);
        Array.Clear(_wmLow);
        Array.Clear(_lowmemReserve);

        _memInitDone = false;
        BootOthers(machine, systemRam, lowmemPfn);
        _booted = true;
    }

    private static int LargestOrderFor(Profile p, int n)
    {
        var (lo, hi) = p.MaxOrderParamRange;
        bool ok = n >= lo && n <= hi;
        if (!ok)
            throw new ArgumentException(
                $"max_order={n} is out of range for {p.Name} ({lo}..{hi})");
        return p.MaxOrderInclusive ? n : n - 1;
    }

    /// <summary>The 32-bit lowmem limit as a frame number (rounded down); null on 64-bit profiles.</summary>
    private ulong? LowmemLimitPfn(MachineConfig m)
    {
        var p = m.Profile;
        if (p.LowmemLimit is not { } fixedLimit) return null;
        ulong limit = fixedLimit;
        if (p.VmallocParamHonoured)
        {
            // 2.6.18 arch/i386/kernel/setup.c: MAXMEM = -PAGE_OFFSET - __VMALLOC_RESERVE.
            ulong reserve = m.Vmalloc ?? p.VmallocReserveDefault;
            limit = reserve >= KernelSpace32 ? 0 : KernelSpace32 - reserve;
        }
        return limit >> _shift;
    }

    private static int ClampPfn(ulong pfn) => pfn > int.MaxValue ? int.MaxValue : (int)pfn;

    private void Paint(ulong start, ulong end, byte kind)
    {
        ulong s = Math.Min(start, (ulong)_frameCount), e = Math.Min(end, (ulong)_frameCount);
        if (s < e) _frame.AsSpan((int)s, (int)(e - s)).Fill(kind);
    }

    private void EnsureBooted()
    {
        if (!_booted) throw new InvalidOperationException("Boot must be called first");
    }

    // ------------------------------------------------------------------ memblock

    /// <summary>memblock_alloc: top-down, like memblock's default direction.</summary>
    public virtual TargetResult MemblockAlloc(ulong size, ulong align)
    {
        EnsureBooted();
        if (_memInitDone) return TargetResult.Inval;
        if (size == 0) return TargetResult.Inval;
        if (align != 0 && (align & (align - 1)) != 0) return TargetResult.Inval; // 0: no align= given
        ulong pageMask = (1UL << _shift) - 1;
        ulong frames = (size >> _shift) + ((size & pageMask) != 0 ? 1UL : 0UL);
        ulong alignFrames = Math.Max(1UL, align >> _shift);
        for (int i = _runs.Count - 1; i >= 0; i--)
        {
            var (s, e) = _runs[i];
            if ((ulong)(e - s) < frames) continue;
            ulong cand = ((ulong)e - frames) & ~(alignFrames - 1);
            if (cand < (ulong)s) continue;
            int start = (int)cand, end = (int)(cand + frames);
            _runs.RemoveAt(i);
            if (end < e) _runs.Insert(i, (end, e));
            if (s < start) _runs.Insert(i, (s, start));
            _frame.AsSpan(start, end - start).Fill(KindMemblock);
            ulong address = cand << _shift;
            _memblock[address] = (start, end - start);
            return TargetResult.Ok(address);
        }
        return TargetResult.NoMem;
    }

    public virtual TargetResult MemblockFree(ulong address)
    {
        EnsureBooted();
        if (_memInitDone) return TargetResult.Inval;
        if (!_memblock.Remove(address, out var blk)) return TargetResult.Bug;
        int s = blk.Pfn, e = blk.Pfn + blk.Count;
        _frame.AsSpan(s, blk.Count).Fill(KindUsable);
        // Put the run back, merging with its neighbours.
        int i = 0;
        while (i < _runs.Count && _runs[i].Start < s) i++;
        if (i < _runs.Count && _runs[i].Start == e)
        {
            e = _runs[i].End;
            _runs.RemoveAt(i);
        }
        if (i > 0 && _runs[i - 1].End == s)
        {
            s = _runs[i - 1].Start;
            _runs.RemoveAt(i - 1);
            i--;
        }
        _runs.Insert(i, (s, e));
        return TargetResult.Ok();
    }

    // ------------------------------------------------------------------ mem_init

    /// <summary>
    /// Hands every usable frame to the buddy allocator through the ordinary free path, in chunks as
    /// mm/memblock.c <c>__free_pages_memory</c> does, clipped to zones, then computes watermarks.
    /// </summary>
    public virtual TargetResult MemInit()
    {
        EnsureBooted();
        if (_memInitDone) return TargetResult.Inval;
        _memInitDone = true;
        _managedRuns.Clear();
        foreach (var (start, end) in _runs) _managedRuns.Add(((ulong)start, (ulong)end));
        foreach (var (start, end) in _runs)
        {
            int pos = start;
            while (pos < end)
            {
                int z = ZoneIndex(pos);
                int stop = Math.Min(end, _zoneEnd[z]);
                if (stop <= pos) stop = end; // no zone boundary ahead (2.0 above its lowmem limit: never usable)
                _managed[z] += stop - pos;
                while (pos < stop)
                {
                    int align = pos == 0 ? 31 : BitOperations.TrailingZeroCount(pos);
                    int fits = BitOperations.Log2((uint)(stop - pos));
                    int order = Math.Min(_largest, Math.Min(align, fits));
                    FreeOne(pos, order);
                    pos += 1 << order;
                }
            }
        }
        _runs.Clear();
        if (_profile.Watermarks) ComputeWatermarks();
        return TargetResult.Ok();
    }

    private void EnsureMemInit()
    {
        EnsureBooted();
        if (!_memInitDone) MemInit();
    }

    private void ComputeWatermarks()
    {
        long lowmemPages = 0;
        for (int z = 0; z < ZoneCount; z++)
            if (z != (int)Zone.HighMem) lowmemPages += _managed[z];
        ulong lowmemKb = (ulong)lowmemPages * _profile.PageSize / 1024;
        ulong minFreeKb = Math.Clamp(IntSqrt(lowmemKb * 16), 128UL, Math.Max(128UL, _profile.MinFreeKbytesMax));
        long pagesMin = (long)(minFreeKb >> (_shift - 10));
        for (int z = 0; z < ZoneCount; z++)
        {
            long min = lowmemPages == 0 ? 0 : pagesMin * _managed[z] / lowmemPages;
            _wmMin[z] = min;
            _wmLow[z] = min + Math.Max(min / 4, _managed[z] * 10 / 10000);
        }
        for (int z = 0; z < ZoneCount; z++)
        {
            long ratio = z == (int)Zone.Normal ? 32 : 256; // HighMem is never below a class zone
            for (int c = 0; c < ZoneCount; c++)
            {
                long sum = 0;
                if (_managed[z] > 0)
                    for (int u = z + 1; u <= c; u++) sum += _managed[u];
                _lowmemReserve[z * ZoneCount + c] = sum / ratio;
            }
        }
    }

    /// <summary>floor(sqrt(x)), exactly (the kernel's int_sqrt).</summary>
    private static ulong IntSqrt(ulong x)
    {
        ulong r = (ulong)Math.Sqrt(x);
        while (r > 0 && r * r > x) r--;
        while ((r + 1) * (r + 1) <= x) r++;
        return r;
    }

    // ------------------------------------------------------------------ alloc_pages

    public virtual TargetResult AllocPages(int order, Gfp gfp, bool atomicContext)
    {
        EnsureMemInit();
        var outcome = AllocBlock(order, gfp, atomicContext, out int pfn);
        if (outcome != Outcome.Ok) return new TargetResult(outcome);
        _frame[pfn] = (byte)(KindAllocHead | (order << OrderShift));
        return TargetResult.Ok((ulong)pfn << _shift);
    }

    /// <summary>
    /// The page allocator proper (docs/semantics.md "Page allocator", rules 1-7): every allocation,
    /// alloc_pages and the pages other allocators take, goes through here. On success the block is off
    /// the free lists and <paramref name="pfn"/> is its head; the caller marks the head frame.
    /// </summary>
    private Outcome AllocBlock(int order, Gfp gfp, bool atomicContext, out int pfn)
    {
        pfn = -1;
        // 1. __alloc_pages: WARN_ON_ONCE(order > MAX_PAGE_ORDER) and NULL.
        if (order < 0 || !OrderAllowed(order)) return Outcome.EINVAL;
        if (gfp == Gfp.None) gfp = Gfp.Kernel;
        // 2. GFP_ZONE_BAD.
        if (BitOperations.PopCount((uint)(gfp & (Gfp.Dma | Gfp.Dma32 | Gfp.HighUser))) > 1) return Outcome.BUG;
        // 3. Sleeping allocation in atomic context.
        bool mayBlock = MayBlock(gfp);
        if (atomicContext && mayBlock) return Outcome.BUG;
        // 4. Zone list; the class zone is its first zone.
        int[] list = (gfp & Gfp.Dma) != 0 ? _listDma
            : (gfp & Gfp.Dma32) != 0 ? _listDma32
            : (gfp & Gfp.HighUser) != 0 ? _listHighUser
            : _listNormal;
        if (order >= OrderSlots) return Outcome.ENOMEM;
        int chosen = -1;
        if (!_profile.Watermarks)
        {
            // 5. No watermarks: the first zone with a block big enough.
            foreach (int z in list)
                if (_managed[z] > 0 && HasBlock(z, order)) { chosen = z; break; }
        }
        else
        {
            // 6. Fast path at the low mark without reserves, then the slow path at min with them.
            var classZone = (Zone)list[0];
            foreach (int z in list)
                if (_managed[z] > 0 && WatermarkOk((Zone)z, order, _wmLow[z], WatermarkReserves.None, classZone))
                { chosen = z; break; }
            if (chosen < 0)
            {
                var reserves = (gfp & Gfp.Atomic) == 0 ? WatermarkReserves.None
                    : mayBlock ? WatermarkReserves.MinReserve
                    : WatermarkReserves.MinReserveNonBlock;
                foreach (int z in list)
                    if (_managed[z] > 0 && WatermarkOk((Zone)z, order, _wmMin[z], reserves, classZone))
                    { chosen = z; break; }
            }
        }
        if (chosen < 0) return Outcome.ENOMEM;
        pfn = TakeBlock(chosen, order);
        return pfn < 0 ? Outcome.ENOMEM : Outcome.Ok;
    }

    /// <summary>
    /// Whether the mask may sleep (docs/semantics.md, alloc_pages rule 3): GFP_KERNEL, GFP_HIGHUSER,
    /// or GFP_DMA / GFP_DMA32 without GFP_ATOMIC or GFP_NOWAIT.
    /// </summary>
    private static bool MayBlock(Gfp gfp) =>
        (gfp & (Gfp.Kernel | Gfp.HighUser)) != 0
        || ((gfp & (Gfp.Dma | Gfp.Dma32)) != 0 && (gfp & (Gfp.Atomic | Gfp.NoWait)) == 0);

    /// <summary>
    /// The watermark test for one zone (<c>__zone_watermark_ok</c>): after the request the zone keeps
    /// more than the (reserve-adjusted) mark plus its lowmem reserve against the class zone, and it has
    /// a free block of at least <paramref name="order"/>.
    /// </summary>
    /// <param name="zone">The zone being tried.</param>
    /// <param name="order">The request's order (within the largest order).</param>
    /// <param name="mark">The zone's low (fast path) or min (slow path) watermark in pages, before reserves.</param>
    /// <param name="reserves">How far the GFP mask may dip below <paramref name="mark"/>.</param>
    /// <param name="classZone">The first zone of the GFP's zone list (<c>highest_zoneidx</c>).</param>
    protected virtual bool WatermarkOk(Zone zone, int order, long mark, WatermarkReserves reserves, Zone classZone)
    {
        long m = mark;
        if (reserves != WatermarkReserves.None)
        {
            m -= m / 2;
            if (reserves == WatermarkReserves.MinReserveNonBlock) m -= m / 4;
        }
        long free = _freePages[(int)zone] - ((1L << order) - 1);
        return free > m + LowmemReserve(zone, classZone) && HasFreeBlock(zone, order);
    }

    /// <summary>Removes the lowest free block of the smallest sufficient order in zone z and splits it (<c>expand</c>).</summary>
    private int TakeBlock(int z, int order)
    {
        uint mask = _orderMask[z] >> order;
        while (mask != 0)
        {
            int o = order + BitOperations.TrailingZeroCount(mask);
            mask &= mask - 1;
            int head = FindInZone(z, o);
            if (head < 0) continue;
            RemoveFree(head, o);
            while (o > order)
            {
                o--;
                AddFree(head + (1 << o), o); // the upper half goes back
            }
            return head;
        }
        return -1;
    }

    /// <summary>The lowest free block of order o whose head lies in zone z, or -1.</summary>
    private int FindInZone(int z, int o)
    {
        int zs = _zoneStart[z], ze = _zoneEnd[z];
        var tree = _free[o];
        long slot = tree.Next((long)zs >> o);
        // A block whose head is below the zone can share the first slot only if something merged
        // across the boundary; skip it.
        while (slot >= 0 && (slot << o) < zs) slot = tree.Next(slot + 1);
        if (slot < 0 || (slot << o) >= ze) return -1;
        return (int)(slot << o);
    }

    // ------------------------------------------------------------------ free_pages

    public virtual TargetResult FreePages(ulong address, int order)
    {
        EnsureMemInit();
        if (address == 0) return TargetResult.Ok();
        ulong pfnL = address >> _shift;
        if (pfnL >= (ulong)_frameCount || order < 0 || order >= 32) return TargetResult.Bug;
        int pfn = (int)pfnL;
        byte f = _frame[pfn];
        if ((f & KindMask) != KindAllocHead || (f >> OrderShift) != order) return TargetResult.Bug;
        _frame[pfn] = KindUsable;
        FreeOne(pfn, order);
        return TargetResult.Ok();
    }

    /// <summary><c>__free_one_page</c>: merge with the buddy while it is free, then put the block on its list.</summary>
    private void FreeOne(int pfn, int order)
    {
        while (order + 1 < OrderSlots && OrderAllowed(order + 1))
        {
            int buddy = pfn ^ (1 << order);
            if (!PageIsBuddy((uint)pfn, (uint)buddy, order)) break;
            RemoveFree(buddy, order);
            pfn &= buddy;
            order++;
        }
        AddFree(pfn, order);
    }

    private void AddFree(int pfn, int order)
    {
        if ((uint)pfn >= (uint)_frameCount) return;
        if (!_free[order].Set(pfn >> order)) return;
        int z = ZoneIndex(pfn);
        if (_blockCount[z * OrderSlots + order]++ == 0) _orderMask[z] |= 1u << order;
        _freePages[z] += 1L << order;
    }

    private void RemoveFree(int pfn, int order)
    {
        if ((uint)pfn >= (uint)_frameCount) return;
        if (!_free[order].Clear(pfn >> order)) return;
        int z = ZoneIndex(pfn);
        if (--_blockCount[z * OrderSlots + order] == 0) _orderMask[z] &= ~(1u << order);
        _freePages[z] -= 1L << order;
    }

    // ------------------------------------------------------------------ seams and helpers

    /// <summary>
    /// <c>page_is_buddy</c>: may the block at <paramref name="pfn"/> of <paramref name="order"/> merge
    /// with <paramref name="buddyPfn"/>? The real check: the buddy is a frame of the map, not in a
    /// hole, the head of a free block of exactly that order, in the same zone.
    /// </summary>
    protected virtual bool PageIsBuddy(uint pfn, uint buddyPfn, int order) =>
        buddyPfn < FrameCount
        && !IsHole(buddyPfn)
        && IsFreeHead(buddyPfn, order)
        && ZoneOf(buddyPfn) == ZoneOf(pfn);

    /// <summary>
    /// Whether blocks of <paramref name="order"/> exist: <c>0 &lt;= order &lt;= LargestOrder</c>. Used for
    /// the alloc_pages limit (above it: EINVAL) and to stop merging (a merged block never exceeds it).
    /// </summary>
    protected virtual bool OrderAllowed(int order) => order >= 0 && order <= LargestOrder;

    /// <summary>
    /// The effective <c>mem=</c> cap in bytes: usable RAM at or above it is removed after every memmap
    /// entry. <see cref="ulong.MaxValue"/> when there is none. Used once, when building the frame map.
    /// </summary>
    protected virtual ulong MemLimitAddress(MachineConfig m) => m.MemLimit ?? ulong.MaxValue;

    /// <summary>The largest block order: MAX_ORDER - 1 before v6.4, MAX_PAGE_ORDER from v6.4 (after max_order=).</summary>
    protected int LargestOrder => _largest;

    /// <summary>Frames in the map: one past the highest usable frame. Nothing at or above it is ever free.</summary>
    protected uint FrameCount => (uint)_frameCount;

    /// <summary>The zone a frame lies in, by address. Frames above the 2.0 lowmem limit (no zone) report Normal.</summary>
    protected Zone ZoneOf(uint pfn) => (Zone)ZoneIndex(pfn > int.MaxValue ? int.MaxValue : (int)pfn);

    /// <summary>Whether <paramref name="pfn"/> heads a block of exactly <paramref name="order"/> on the free lists.</summary>
    protected bool IsFreeHead(uint pfn, int order) =>
        order is >= 0 and < OrderSlots
        && pfn < FrameCount
        && (pfn & ((1u << order) - 1)) == 0
        && _free[order].Test(pfn >> order);

    /// <summary>Whether the frame is not RAM (a firmware hole, or anything beyond the map).</summary>
    protected bool IsHole(uint pfn) => pfn >= FrameCount || (_frame[pfn] & KindMask) == KindHole;

    /// <summary>Whether the zone has a free block of order <paramref name="order"/> or larger.</summary>
    protected bool HasFreeBlock(Zone zone, int order) => HasBlock((int)zone, order);

    /// <summary>The order of the live alloc_pages block whose head is <paramref name="pfn"/>, or -1.</summary>
    protected int LiveOrderAt(uint pfn)
    {
        if (pfn >= FrameCount) return -1;
        byte f = _frame[pfn];
        return (f & KindMask) == KindAllocHead ? f >> OrderShift : -1;
    }

    /// <summary>The live memblock allocation that starts at <paramref name="address"/>, if any.</summary>
    protected (uint Pfn, uint Frames)? MemblockAllocationAt(ulong address) =>
        _memblock.TryGetValue(address, out var b) ? ((uint)b.Pfn, (uint)b.Count) : null;

    /// <summary>
    /// The ordinary free path with no validation (<c>__free_one_page</c>, merging through
    /// <see cref="PageIsBuddy"/>): for variants that skip a check. Frames of the block that were a live
    /// block head (of any allocator) or memblock-owned become plain usable frames first; the memblock
    /// and slab bookkeeping is not touched. A block outside the frame map, or of an order without free
    /// lists, is ignored.
    /// </summary>
    protected void FreeToBuddy(uint pfn, int order)
    {
        if (pfn >= FrameCount || order < 0 || order >= OrderSlots) return;
        int start = (int)pfn;
        int end = (int)Math.Min((long)start + (1L << order), _frameCount);
        for (int i = start; i < end; i++)
        {
            int kind = _frame[i] & KindMask;
            if (kind is KindMemblock or >= KindAllocHead) _frame[i] = KindUsable;
        }
        FreeOne(start, order);
    }

    private bool HasBlock(int z, int order) =>
        (uint)order < OrderSlots && (_orderMask[z] >> order) != 0;

    private int ZoneIndex(int pfn) =>
        pfn < _dmaEnd ? 0
        : pfn < _dma32End ? 1
        : pfn < _normalEnd ? 2
        : _hasHighMem ? 3 : 2;

    // ------------------------------------------------------------------ read-only views

    /// <summary>Whether mem_init has run (explicitly or implicitly).</summary>
    public bool MemInitDone => _memInitDone;

    /// <summary>Pages handed to the buddy allocator in this zone at mem_init.</summary>
    public long ManagedPages(Zone zone) => _managed[(int)zone];

    /// <summary>Pages handed to the buddy allocator at mem_init, all zones (meminfo MemTotal).</summary>
    public long TotalManagedPages => _managed[0] + _managed[1] + _managed[2] + _managed[3];

    /// <summary>Pages on the free lists of this zone.</summary>
    public long FreePageCount(Zone zone) => _freePages[(int)zone];

    /// <summary>Pages on the free lists of every zone (meminfo MemFree).</summary>
    public long TotalFreePages => _freePages[0] + _freePages[1] + _freePages[2] + _freePages[3];

    /// <summary>The zone's min watermark in pages (0 on profiles without watermarks).</summary>
    public long WatermarkMin(Zone zone) => _wmMin[(int)zone];

    /// <summary>The zone's low watermark in pages (0 on profiles without watermarks).</summary>
    public long WatermarkLow(Zone zone) => _wmLow[(int)zone];

    /// <summary><c>lowmem_reserve[zone][classZone]</c> in pages.</summary>
    public long LowmemReserve(Zone zone, Zone classZone) => _lowmemReserve[(int)zone * ZoneCount + (int)classZone];

    /// <summary>Whether the profile has this zone at all (DMA32 on x86_64, HighMem on 2.6.18).</summary>
    public bool HasZone(Zone zone) => _zoneExists[(int)zone];

    /// <summary>Heap bytes held by the per-frame map and the free lists (for the efficiency report).</summary>
    public long StateBytes
    {
        get
        {
            long b = _frame.LongLength;
            foreach (var t in _free) b += t.Bytes;
            return b;
        }
    }

    public IEnumerable<FreeBlock> FreeBlocks() => FreeBlocksIn(0, ulong.MaxValue);

    /// <summary>
    /// The free blocks that hold a frame of <c>[startPfn, endPfn)</c>: at each order, the slots from the
    /// one holding startPfn to the one holding endPfn - 1 (a single bit test per order for a small range).
    /// </summary>
    public void AddFreeBlocksOver(ulong startPfn, ulong endPfn, List<FreeBlock> into) => AddFreeBlocks(startPfn, endPfn, into, overlapping: true);

    /// <summary>
    /// Free blocks in <c>[startPfn, endPfn)</c>, grouped by order (ascending) and by address within an
    /// order: those holding a frame of it (<paramref name="overlapping"/>), or those whose head frame
    /// lies in it. Costs O(orders + blocks found + range / 64 / 2^order).
    /// </summary>
    private void AddFreeBlocks(ulong startPfn, ulong endPfn, List<FreeBlock> into, bool overlapping)
    {
        ulong end = Math.Min(endPfn, (ulong)_frameCount);
        if (startPfn >= end) return;
        uint any = _orderMask[0] | _orderMask[1] | _orderMask[2] | _orderMask[3];
        for (int o = 0; o < OrderSlots; o++)
        {
            if ((any & (1u << o)) == 0) continue;
            var tree = _free[o];
            ulong round = overlapping ? 0 : (1UL << o) - 1;   // heads in range: round the first slot up
            long slot = (long)((startPfn + round) >> o);
            long limit = overlapping ? (long)((end - 1) >> o) + 1 : (long)((end + (1UL << o) - 1) >> o);
            while ((slot = tree.Next(slot, limit)) >= 0)
            {
                ulong pfn = (ulong)slot << o;
                into.Add(new FreeBlock(pfn, o, ZoneOf((uint)pfn)));
                slot++;
            }
        }
    }

    /// <summary>The free blocks whose head frame lies in <c>[startPfn, endPfn)</c>.</summary>
    public IEnumerable<FreeBlock> FreeBlocksIn(ulong startPfn, ulong endPfn)
    {
        var list = new List<FreeBlock>();
        AddFreeBlocks(startPfn, endPfn, list, overlapping: false);
        return list;
    }
}
