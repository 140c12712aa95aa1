using System.Numerics;
using Kmem.Scenarios;
using Kmem.Target;

namespace Kmem.Reference;

// vmalloc/vfree and ioremap/iounmap (docs/semantics.md "vmalloc", "request_mem_region and ioremap"):
// areas in the profile's vmalloc area, first fit at the lowest address, each followed by a guard page.
public partial class ReferenceAllocator
{
    /// <summary>
    /// A live vmalloc or ioremap area: <see cref="Size"/> includes the guard page. vmalloc: the
    /// backing frames, in the order they were taken, are the first <see cref="PageCount"/> entries of
    /// <see cref="Pages"/>, an array taken from the allocator's spares and given back by vfree (a value
    /// and a reused array: a class was an allocation on every vmalloc and ioremap, and a fresh array on
    /// every vmalloc).
    /// </summary>
    private readonly record struct VmArea(ulong Start, ulong Size, bool Ioremap, uint[]? Pages = null, int PageCount = 0);

    private readonly VmSpace _vm = new();
    private readonly Dictionary<ulong, VmArea> _vmAreas = [];
    private readonly Spares<uint> _pageLists = new();
    private ulong _vmStart, _vmEnd;

    private void BootVmalloc(MachineConfig machine, ulong? lowmemPfn)
    {
        // lowmem_end: the end of the highest System RAM frame below the lowmem limit (32-bit only).
        ulong lowmemEnd = 0;
        if (lowmemPfn is { } limit)
        {
            for (int i = _systemRam.Count - 1; i >= 0; i--)
            {
                var (s, e) = _systemRam[i];
                if (s >= limit) continue;
                lowmemEnd = Math.Min(e, limit) << _shift;
                break;
            }
        }
        (_vmStart, _vmEnd) = VmallocBounds(machine, lowmemEnd);
        if (_vmEnd < _vmStart) _vmEnd = _vmStart;
        _vm.Reset(_vmStart, _vmEnd);
        _vmAreas.Clear();
    }

    // ------------------------------------------------------------------ seams

    /// <summary>
    /// The vmalloc area <c>[Start, End)</c>. x86_64: VMALLOC_START and 32 TiB (vmalloc= ignored).
    /// 32-bit: <c>VMALLOC_START = roundup(PAGE_OFFSET + lowmem end + VMALLOC_OFFSET, VMALLOC_OFFSET)</c>,
    /// <c>VMALLOC_END</c> fixed (2.6.18: 0xFF7FE000; 2.0: 0x100000000); empty when start passes end.
    /// </summary>
    /// <param name="machine">The machine being booted.</param>
    /// <param name="lowmemEnd">32-bit: the end (bytes) of the highest usable RAM frame below the lowmem limit.</param>
    protected virtual (ulong Start, ulong End) VmallocBounds(MachineConfig machine, ulong lowmemEnd)
    {
        var p = machine.Profile;
        if (p.LowmemLimit is null) return (p.VmallocStart64, p.VmallocStart64 + p.VmallocTotal64);
        ulong off = p.VmallocOffset32;
        ulong high = p.PageOffset32 + lowmemEnd;
        ulong start = (high + off + off - 1) / off * off;
        return (Math.Min(start, p.VmallocEnd32), p.VmallocEnd32);
    }

    private Func<ulong, ulong, bool>? _gapFits;

    /// <summary>
    /// Whether a free range of <paramref name="gap"/> bytes (from its first aligned address) can hold
    /// an area of <paramref name="need"/> bytes: <c>gap &gt;= need</c>. A variant that answers
    /// <c>gap &gt; need</c> skips exactly fitting ranges and gives spurious ENOMEM.
    /// </summary>
    protected virtual bool VmallocGapFits(ulong gap, ulong need) => gap >= need;

    /// <summary>The guard after every vmalloc and ioremap area: one page. A variant returns 0.</summary>
    protected virtual ulong VmallocGuardSize => PageSize;

    /// <summary>
    /// What vfree does with an area's backing pages: give each back to the page allocator
    /// (<see cref="FreeVmallocPage"/>), in the order they were taken. A variant leaks them.
    /// </summary>
    protected virtual void VfreeBackingPages(ulong areaStart, ReadOnlySpan<uint> pfns)
    {
        foreach (uint pfn in pfns) FreeVmallocPage(pfn, areaStart);
    }

    /// <summary>
    /// Whether ioremap may map frames <c>[startPfn, endPfn)</c>: not when any of them was handed to the
    /// buddy allocator at mem_init (x86 "ioremap on RAM"; reserved, memblock, holes, RAM above mem= are
    /// fine). A variant allows managed RAM.
    /// </summary>
    protected virtual bool IoremapAllowed(ulong startPfn, ulong endPfn) => !Overlaps(_managedRuns, startPfn, endPfn);

    /// <summary>
    /// The alignment of an ioremap area of <paramref name="frames"/> frames (guard not counted):
    /// <c>2^clamp(e, PAGE_SHIFT, IOREMAP_MAX_ORDER)</c> with e = get_count_order(size) on 4.19/6.8 and
    /// fls(size) on 2.x.
    /// </summary>
    protected virtual ulong IoremapAlignment(ulong frames)
    {
        int log = BitOperations.Log2(frames);
        int e = _profile.IoremapAlignFls
            ? _shift + log + 1                                              // fls(frames << shift)
            : _shift + log + (BitOperations.IsPow2(frames) ? 0 : 1);        // get_count_order
        e = Math.Clamp(e, _shift, Math.Max(_shift, _profile.IoremapMaxOrder));
        return 1UL << e;
    }

    /// <summary>Gives one vmalloc backing page back to the page allocator (with its page event). No checks.</summary>
    protected void FreeVmallocPage(uint pfn, ulong areaStart)
    {
        if (pfn >= (uint)_frameCount || KindAt(pfn) != KindOtherHead) return;
        ReleaseBlock((int)pfn, 0);
        RecordFree((int)pfn, 0, PageUse.Vmalloc, areaStart);
    }

    // ------------------------------------------------------------------ vmalloc / vfree

    public virtual TargetResult Vmalloc(ulong size, bool atomicContext)
    {
        EnsureMemInit();
        if (size == 0 || atomicContext) return TargetResult.Inval;
        ulong pages = (size >> _shift) + ((size & PageMask) != 0 ? 1UL : 0UL);
        if (pages > (ulong)TotalManagedPages) return TargetResult.NoMem; // size >> PAGE_SHIFT > totalram_pages()
        ulong bytes = (pages << _shift) + VmallocGuardSize;
        if (!_vm.TryPlace(bytes, PageSize, out ulong start, _gapFits ??= VmallocGapFits)) return TargetResult.NoMem;
        // Not enough order-0 pages to be had: fail before taking any (same answer as taking them and
        // giving them back, without the churn).
        if (VmallocPagesAvailable(pages) < (long)pages)
        {
            _vm.Release(start, bytes);
            return TargetResult.NoMem;
        }
        var pfns = _pageLists.Rent((int)pages);   // pages <= managed pages (Spares.Rent)
        _events.EnsureCapacity(_events.Count + (int)pages);   // one page event a page: grow once, not by doubling
        for (ulong i = 0; i < pages; i++)
        {
            var outcome = AllocBlock(0, VmallocGfp, false, out int pfn);
            if (outcome != Outcome.Ok)
            {
                // Ran out anyway: give back what was taken.
                for (ulong j = 0; j < i; j++) FreeVmallocPage(pfns[j], start);
                _pageLists.Return(pfns);
                _vm.Release(start, bytes);
                return TargetResult.NoMem;
            }
            MarkHead(pfn, KindOtherHead, 0);
            RecordAlloc(pfn, 0, VmallocGfp, PageUse.Vmalloc, start);
            pfns[i] = (uint)pfn;
        }
        _vmAreas[start] = new VmArea(start, bytes, Ioremap: false, pfns, (int)pages);
        return TargetResult.Ok(start);
    }

    /// <summary>
    /// Order-0 pages GFP_KERNEL|__GFP_HIGHMEM can take now, counted up to <paramref name="enough"/>:
    /// over the zone list, <c>max(0, free - min - lowmem_reserve[zone][class])</c> with watermarks,
    /// the free pages without.
    /// </summary>
    private long VmallocPagesAvailable(ulong enough)
    {
        long sum = 0;
        var classZone = (Zone)_listHighUser[0];
        foreach (int z in _listHighUser)
        {
            if (_managed[z] == 0) continue;
            long free = _freePages[z];
            if (_profile.Watermarks) free -= _wmMin[z] + LowmemReserve((Zone)z, classZone);
            if (free > 0) sum += free;
            if ((ulong)sum >= enough) break;
        }
        return sum;
    }

    public virtual TargetResult Vfree(ulong address)
    {
        EnsureMemInit();
        if (address == 0) return TargetResult.Ok();
        if (!_vmAreas.TryGetValue(address, out var area) || area.Ioremap) return TargetResult.Bug;
        _vmAreas.Remove(address);
        VfreeBackingPages(area.Start, area.Pages.AsSpan(0, area.PageCount));
        if (area.Pages is { } rented) _pageLists.Return(rented);
        _vm.Release(area.Start, area.Size);
        return TargetResult.Ok();
    }

    // ------------------------------------------------------------------ ioremap / iounmap

    public virtual TargetResult Ioremap(ulong start, ulong size, bool atomicContext)
    {
        EnsureMemInit();
        if (atomicContext) return TargetResult.Bug;
        if (size == 0 || size > ulong.MaxValue - start) return TargetResult.Inval; // start + size must not pass 2^64
        ulong last = start + size - 1;
        ulong startPfn = start >> _shift, endPfn = (last >> _shift) + 1;
        if (!IoremapAllowed(startPfn, endPfn)) return new TargetResult(Outcome.EBUSY);
        ulong frames = endPfn - startPfn;
        ulong guard = VmallocGuardSize;
        ulong areaBytes = _vmEnd - _vmStart;
        if (frames > (areaBytes >> _shift)) return TargetResult.NoMem;
        ulong mapped = frames << _shift;
        if (mapped > ulong.MaxValue - guard) return TargetResult.NoMem;
        if (!_vm.TryPlace(mapped + guard, IoremapAlignment(frames), out ulong areaStart)) return TargetResult.NoMem;
        _vmAreas[areaStart] = new VmArea(areaStart, mapped + guard, Ioremap: true);
        return TargetResult.Ok(areaStart + (start & PageMask));
    }

    public virtual TargetResult Iounmap(ulong address, bool atomicContext)
    {
        EnsureMemInit();
        if (atomicContext) return TargetResult.Bug;
        if (address == 0) return TargetResult.Ok(); // iounmap(NULL): returns at once (at or below high_memory)
        ulong key = address & ~PageMask;
        if (!_vmAreas.TryGetValue(key, out var area) || !area.Ioremap) return TargetResult.Bug;
        _vmAreas.Remove(key);
        _vm.Release(area.Start, area.Size);
        return TargetResult.Ok();
    }
}
