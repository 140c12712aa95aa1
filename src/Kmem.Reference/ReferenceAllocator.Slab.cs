using Kmem.Scenarios;
using Kmem.Target;

namespace Kmem.Reference;

// Slab caches and kmalloc (docs/semantics.md "Slab and kmalloc"), per era: SLUB (4.19, 6.8), SLAB
// (2.6.18), the 2.0 power-of-two allocator with its 8-byte block header.
//
// Slab order policy (SLUB-like, the target's choice): a cache's objects have a stride S (the bucket,
// the 2.0 block, or the kmem_cache size rounded up to its alignment). Its smallest order is
// get_order(S), the order of a block holding one object. The order tried first is the smallest order
// from there up to max(get_order(S), min(3, largest order)) whose block holds at least 4 objects, else
// that cap (PAGE_ALLOC_COSTLY_ORDER 3 is SLUB's default slub_max_order; 4 objects stands in for its
// min_objects). When the page allocator refuses that order, each lower order down to get_order(S) is
// tried in turn (SLUB's fallback to s->min), so a cache gets ENOMEM exactly when
// alloc_pages(get_order(S), gfp) fails, which is the model's exactness rule.
//
// Lookup from an address: a slab's first frame is marked KindSlabHead with the slab's order; the head
// of the slab holding a frame is found by trying each alignment up to the largest slab order in use
// (at most 16 probes of the frame map), then one dictionary lookup. Empty slabs go back to the page
// allocator at once.
public partial class ReferenceAllocator
{
    private const int SlabMinObjects = 4;
    private const int SlabCostlyOrder = 3;
    private const ulong KmallocHandleBit = 1UL << 63;
    private const ulong KmallocDmaHandleBit = 1UL << 62;

    private readonly Dictionary<int, Slab> _slabs = [];
    private readonly Dictionary<ulong, SlabCache> _caches = [];
    // Released slabs and destroyed caches, reused by the next new one: no allocation per operation
    // once the workload has released as many as it later needs (the kernel keeps them in struct page
    // and in a kmem_cache of kmem_caches).
    private readonly Stack<Slab> _spareSlabs = new();
    // Lowest handle first: the handles then depend only on which handles are live (the lowest free
    // one is taken), not on the order of the destroys (last-destroyed-first, as SLUB's LIFO freelist
    // would reuse them (mm/slub.c), swapped two handles on every run of a workload, so runs never repeated exactly).
    private readonly PriorityQueue<SlabCache, ulong> _spareCaches = new();
    private readonly Spares<ulong> _slabBitmaps = new();
    private SlabCache?[] _kmallocNormal = [];
    private SlabCache?[] _kmallocDma = [];
    private ulong[] _buckets = [];
    private ulong _nextCacheHandle = 1;
    private int _maxSlabOrder;

    private void BootSlab()
    {
        _slabs.Clear();
        _caches.Clear();
        _spareCaches.Clear();   // their handles start again at 1
        _nextCacheHandle = 1;
        _maxSlabOrder = 0;
        // SLUB: caches only up to min(KMALLOC_MAX_CACHE_SIZE, KMALLOC_MAX_SIZE); SLAB and 2.0: all.
        ulong cacheLimit = _profile.Slab == SlabKind.Slub
            ? Math.Min(_profile.KmallocMaxCacheSize, KmallocMaxSize)
            : _profile.KmallocMaxCacheSize;
        _buckets = _profile.KmallocBuckets.Where(b => b <= cacheLimit).Order().ToArray();
        _kmallocNormal = new SlabCache?[_buckets.Length];
        _kmallocDma = new SlabCache?[_buckets.Length];
    }

    // ------------------------------------------------------------------ seams

    /// <summary>
    /// KMALLOC_MAX_SIZE: the largest kmalloc. SLUB: the largest page block (<c>PAGE_SIZE &lt;&lt; largest
    /// order</c>, moving with max_order=); SLAB and 2.0: the era's fixed limit (131072, 131048). A
    /// variant adds one page (visible on 2.0, where the extra bytes still fit the 131072 block; on
    /// SLUB the page allocator's order limit refuses the block anyway).
    /// </summary>
    protected virtual ulong KmallocMaxSize =>
        _profile.Slab == SlabKind.Slub || _profile.KmallocMaxFixed is null
            ? PageSize << _largest
            : _profile.KmallocMaxFixed.Value;

    /// <summary>
    /// Whether a slot may be handed out by the slab allocator. Called, in slot order, for each slot of
    /// the first slab word that is not full, with whether the slot is live now; the first slot for
    /// which it answers true is handed out. The reference answers <c>!inUse</c>; a variant that answers
    /// true for a live slot hands that object out twice.
    /// </summary>
    /// <param name="cache">The cache's handle (the page events' owner).</param>
    /// <param name="objectAddress">The address the slot would be handed out as.</param>
    /// <param name="inUse">Whether the slot is live (handed out and not freed).</param>
    protected virtual bool ObjectSlotFree(ulong cache, ulong objectAddress, bool inUse) => !inUse;

    /// <summary>
    /// kmem_cache_destroy: may a live cache with <paramref name="liveObjects"/> objects still handed
    /// out be destroyed? The reference: only when none are (6.8 "Slab cache still has objects" is BUG).
    /// A variant that answers true frees every slab of the cache with its objects still live.
    /// </summary>
    protected virtual bool DestroyAllowed(ulong cache, long liveObjects) => liveObjects == 0;

    /// <summary>
    /// The GFP mask a new slab's pages are requested with: the request's mask (GFP_DMA included for a
    /// DMA cache, and for a kmem_cache_alloc that passes it, as SLUB's allocate_slab does). A variant
    /// can drop GFP_DMA to take DMA-cache slabs from the wrong zone.
    /// </summary>
    protected virtual Gfp SlabPageGfp(Gfp requestGfp, bool dmaCache) => requestGfp;

    // ------------------------------------------------------------------ kmalloc / kfree

    public virtual TargetResult Kmalloc(ulong size, Gfp gfp, bool atomicContext)
    {
        EnsureMemInit();
        // The GFP rules first, then the size limits, then memory (docs/semantics.md, order of the checks).
        gfp = Effective(gfp);
        var check = CheckSlabGfp(gfp, atomicContext);
        if (check != Outcome.Ok) return new TargetResult(check);
        if (size == 0 && _profile.KmallocZeroSizePtr) return TargetResult.Ok(ZeroSizePtr);
        if (size > KmallocMaxSize) return TargetResult.Inval;
        ulong header = _profile.KmallocHeader;
        int bucket = BucketFor(size > ulong.MaxValue - header ? ulong.MaxValue : size + header);
        if (bucket < 0 && _profile.Slab != SlabKind.Slub) return TargetResult.Inval; // no bucket holds it
        // A block the page allocator cannot supply (bucket on 2.0/2.6.18 with a small max_order=, or a
        // large kmalloc above the largest order): EINVAL, as alloc_pages answers.
        int order = bucket >= 0 ? GetOrder(_buckets[bucket]) : GetOrder(size);
        if (!OrderAllowed(order)) return TargetResult.Inval;
        bool dma = (gfp & Gfp.Dma) != 0;
        if (bucket < 0)
        {
            // SLUB large kmalloc: straight from the page allocator.
            var outcome = AllocBlock(order, gfp, atomicContext, out int pfn);
            if (outcome != Outcome.Ok) return new TargetResult(outcome);
            MarkHead(pfn, KindLargeHead, order);
            RecordAlloc(pfn, order, gfp, PageUse.LargeKmalloc, 0);
            return TargetResult.Ok((ulong)pfn << _shift);
        }
        var cache = KmallocCache(bucket, dma);
        return CacheAlloc(cache, gfp, atomicContext);
    }

    public virtual TargetResult Kfree(ulong address)
    {
        EnsureMemInit();
        // ZERO_SIZE_PTR exists only where kmalloc(0) returns it (2.6.22+); before, 16 is a wild pointer.
        if (address == 0 || (address == ZeroSizePtr && _profile.KmallocZeroSizePtr)) return TargetResult.Ok();
        ulong pfnL = address >> _shift;
        if (pfnL >= (ulong)_frameCount) return TargetResult.Bug;
        int pfn = (int)pfnL;
        if ((address & PageMask) == 0 && KindAt(pfnL) == KindLargeHead)
        {
            int order = HeadOrder(pfn);
            ReleaseBlock(pfn, order);
            RecordFree(pfn, order, PageUse.LargeKmalloc, 0);
            return TargetResult.Ok();
        }
        if (!TryFindObject(address, out var slab, out int slot)) return TargetResult.Bug;
        FreeObject(slab, slot);
        return TargetResult.Ok();
    }

    /// <summary>The smallest bucket holding <paramref name="bytes"/>, or -1.</summary>
    private int BucketFor(ulong bytes)
    {
        var b = _buckets;
        for (int i = 0; i < b.Length; i++)
            if (b[i] >= bytes) return i;
        return -1;
    }

    /// <summary>
    /// GFP rules of a slab allocation, checked up front whether or not a new slab is needed:
    /// GFP_DMA32 or GFP_HIGHUSER is BUG (GFP_SLAB_BUG_MASK), a mask that may sleep in atomic context is
    /// BUG (page allocator rule 3).
    /// </summary>
    private static Outcome CheckSlabGfp(Gfp gfp, bool atomicContext)
    {
        if ((gfp & (Gfp.Dma32 | Gfp.HighUser)) != 0) return Outcome.BUG;
        if (atomicContext && MayBlock(gfp)) return Outcome.BUG;
        return Outcome.Ok;
    }

    private SlabCache KmallocCache(int bucket, bool dma)
    {
        var caches = dma ? _kmallocDma : _kmallocNormal;
        if (caches[bucket] is { } c) return c;
        ulong size = _buckets[bucket];
        int min = GetOrder(size);
        ulong handle = KmallocHandleBit | (dma ? KmallocDmaHandleBit : 0) | size;
        c = new SlabCache(handle, size, _profile.KmallocHeader, min, PreferredSlabOrder(size, min), isKmalloc: true, dma);
        caches[bucket] = c;
        return c;
    }

    /// <summary>The order tried first for a new slab (policy at the top of this file).</summary>
    private int PreferredSlabOrder(ulong stride, int minOrder)
    {
        int cap = Math.Max(minOrder, Math.Min(SlabCostlyOrder, _largest));
        for (int o = minOrder; o < cap; o++)
            if ((PageSize << o) / stride >= SlabMinObjects) return o;
        return cap;
    }

    // ------------------------------------------------------------------ kmem_cache

    public virtual TargetResult KmemCacheCreate(ulong size, ulong align, string? name, bool atomicContext)
    {
        EnsureMemInit();
        if (!_profile.HasKmemCache) return TargetResult.Inval; // 2.0: no such API
        if (atomicContext) return TargetResult.Bug;            // might_sleep (slab_mutex)
        // In the order docs/semantics.md gives them: the size (2.6.18: BUG, the kernel's "Early error
        // in slab"; SLUB: EINVAL, kmem_cache_sanity_check), then the alignment, then objects too large
        // for any block.
        ulong limit = _profile.SlabObjectLimit ?? KmallocMaxSize;
        if (size < _profile.KmemCacheMinSize || size > limit)
            return _profile.SlabObjectLimitIsBug ? TargetResult.Bug : TargetResult.Inval;
        if (align != 0 && (align & (align - 1)) != 0) return TargetResult.Inval;
        ulong a = Math.Max(align, 8UL);
        if (size > ulong.MaxValue - (a - 1)) return TargetResult.Inval;
        ulong stride = (size + a - 1) & ~(a - 1);
        int min = GetOrder(stride);
        if (!OrderAllowed(min)) return TargetResult.Inval; // objects larger than the largest block
        // A destroyed cache's object and handle are reused: the kernel's kmem_cache structs come from
        // a cache of their own (the handle is the struct's address). Lowest handle first: see _spareCaches.
        int preferred = PreferredSlabOrder(stride, min);
        if (_spareCaches.TryDequeue(out var c, out _)) c.Reset(c.Handle, stride, 0, min, preferred, isKmalloc: false, dma: false);
        else c = new SlabCache(_nextCacheHandle++, stride, 0, min, preferred, isKmalloc: false, dma: false);
        ulong handle = c.Handle;
        _caches[handle] = c;
        return TargetResult.Ok(handle);
    }

    public virtual TargetResult KmemCacheAlloc(ulong cache, Gfp gfp, bool atomicContext)
    {
        EnsureMemInit();
        if (!_caches.TryGetValue(cache, out var c)) return TargetResult.Bug;
        gfp = Effective(gfp);
        var check = CheckSlabGfp(gfp, atomicContext);
        if (check != Outcome.Ok) return new TargetResult(check);
        return CacheAlloc(c, gfp, atomicContext);
    }

    public virtual TargetResult KmemCacheFree(ulong cache, ulong address)
    {
        EnsureMemInit();
        if (!_caches.TryGetValue(cache, out var c)) return TargetResult.Bug;
        if (!TryFindObject(address, out var slab, out int slot) || slab.Cache != c) return TargetResult.Bug;
        FreeObject(slab, slot);
        return TargetResult.Ok();
    }

    public virtual TargetResult KmemCacheDestroy(ulong cache, bool atomicContext)
    {
        EnsureMemInit();
        if (atomicContext) return TargetResult.Bug;
        if (!_caches.TryGetValue(cache, out var c)) return TargetResult.Bug;
        if (!DestroyAllowed(cache, c.LiveObjects)) return TargetResult.Bug;
        while (c.Slabs.Count > 0) ReleaseSlab(c.Slabs[^1]);
        _caches.Remove(cache);
        _spareCaches.Enqueue(c, c.Handle);   // nothing refers to it any more: its slabs are released
        return TargetResult.Ok();
    }

    // ------------------------------------------------------------------ objects

    /// <summary>Hands out one object of <paramref name="cache"/>, growing it by a slab when no slot is free.</summary>
    private TargetResult CacheAlloc(SlabCache cache, Gfp gfp, bool atomicContext)
    {
        while (true)
        {
            Slab slab;
            if (cache.Partial.Count > 0) slab = cache.Partial[^1];
            else
            {
                var outcome = GrowCache(cache, gfp, atomicContext, out slab);
                if (outcome != Outcome.Ok) return new TargetResult(outcome);
            }
            int slot = PickSlot(slab);
            if (slot < 0)
            {
                cache.RemovePartial(slab); // nothing the seam calls free: treat the slab as full
                continue;
            }
            if (!slab.IsUsed(slot))
            {
                slab.SetUsed(slot);
                slab.InUse++;
                cache.LiveObjects++;
                if (slab.InUse == slab.Objects) cache.RemovePartial(slab);
            }
            return TargetResult.Ok(ObjectAddress(slab, slot));
        }
    }

    private ulong ObjectAddress(Slab slab, int slot) =>
        ((ulong)slab.Pfn << _shift) + slab.Cache.Header + (ulong)slot * slab.Cache.ObjectSize;

    /// <summary>The first slot <see cref="ObjectSlotFree"/> accepts, in the first word that is not full; -1 if none.</summary>
    private int PickSlot(Slab slab)
    {
        var used = slab.Used;
        int words = (slab.Objects + 63) >> 6;   // the bitmap, a spare, may be longer
        for (int w = 0; w < words; w++)
        {
            int valid = Math.Min(64, slab.Objects - (w << 6));
            ulong validMask = valid == 64 ? ulong.MaxValue : (1UL << valid) - 1;
            ulong bits = used[w];
            if ((bits & validMask) == validMask) continue;
            for (int b = 0; b < valid; b++)
            {
                int slot = (w << 6) + b;
                if (ObjectSlotFree(slab.Cache.Handle, ObjectAddress(slab, slot), ((bits >> b) & 1) != 0)) return slot;
            }
        }
        return -1;
    }

    /// <summary>
    /// A new slab for the cache: the preferred order first, then each lower order down to the one that
    /// holds a single object, all with the same GFP mask through the page allocator's own path.
    /// </summary>
    private Outcome GrowCache(SlabCache cache, Gfp gfp, bool atomicContext, out Slab slab)
    {
        slab = null!;
        var pageGfp = SlabPageGfp(gfp, cache.Dma);
        var outcome = Outcome.ENOMEM;
        int pfn = -1, order = cache.Order;
        for (; order >= cache.MinOrder; order--)
        {
            outcome = AllocBlock(order, pageGfp, atomicContext, out pfn);
            if (outcome == Outcome.Ok) break;
        }
        if (outcome != Outcome.Ok) return outcome;
        // The 2.0 header lies inside each block, so blocks tile the slab.
        int objects = (int)Math.Min(int.MaxValue, (PageSize << order) / cache.ObjectSize);
        if (_spareSlabs.TryPop(out slab!)) slab.Reset(cache, pfn, order, Math.Max(1, objects), _slabBitmaps);
        else slab = new Slab(cache, pfn, order, Math.Max(1, objects), _slabBitmaps);
        MarkHead(pfn, KindSlabHead, order);
        _slabs[pfn] = slab;
        if (order > _maxSlabOrder) _maxSlabOrder = order;
        cache.AddSlab(slab);
        cache.AddPartial(slab);
        RecordAlloc(pfn, order, pageGfp, PageUse.Slab, cache.Handle, cache.ObjectSize);
        return Outcome.Ok;
    }

    /// <summary>
    /// The slab and slot of the live object that starts at <paramref name="address"/>; false for a
    /// free slot, an interior pointer, or an address in no slab.
    /// </summary>
    private bool TryFindObject(ulong address, out Slab slab, out int slot)
    {
        slab = null!;
        slot = -1;
        ulong pfnL = address >> _shift;
        if (pfnL >= (ulong)_frameCount) return false;
        int pfn = (int)pfnL;
        Slab? found = null;
        for (int o = 0; o <= _maxSlabOrder; o++)
        {
            int head = pfn & ~((1 << o) - 1);
            byte f = _frame[head];
            if ((f & KindMask) == KindSlabHead && (f >> OrderShift) >= o)
            {
                found = _slabs[head];
                break;
            }
        }
        if (found is null) return false;
        var cache = found.Cache;
        ulong offset = address - ((ulong)found.Pfn << _shift);
        if (offset < cache.Header) return false;
        offset -= cache.Header;
        if (offset % cache.ObjectSize != 0) return false;
        ulong index = offset / cache.ObjectSize;
        if (index >= (ulong)found.Objects || !found.IsUsed((int)index)) return false;
        slab = found;
        slot = (int)index;
        return true;
    }

    private void FreeObject(Slab slab, int slot)
    {
        var cache = slab.Cache;
        bool wasFull = slab.InUse == slab.Objects;
        slab.ClearUsed(slot);
        slab.InUse--;
        cache.LiveObjects--;
        if (slab.InUse <= 0) ReleaseSlab(slab); // empty slabs go back at once
        else if (wasFull) cache.AddPartial(slab);
    }

    private void ReleaseSlab(Slab slab)
    {
        var cache = slab.Cache;
        cache.RemovePartial(slab);
        cache.RemoveSlab(slab);
        cache.LiveObjects -= slab.InUse; // nonzero only when a variant destroys a cache with live objects
        _slabs.Remove(slab.Pfn);
        ReleaseBlock(slab.Pfn, slab.Order);
        RecordFree(slab.Pfn, slab.Order, PageUse.Slab, cache.Handle, cache.ObjectSize);
        slab.Release(_slabBitmaps);
        _spareSlabs.Push(slab);   // nothing refers to it any more
    }
}
