namespace Kmem.Model;

/// <summary>A page-allocator call another allocator made (the model's view of a target's PageEvent).</summary>
public readonly record struct ModelEvent(bool Alloc, long Pfn, int Order, AllocKind Use, ulong Owner, ulong ObjectSize);

/// <summary>
/// A message that is formatted only when it will be read: `$"..."` passed where a method takes this
/// handler is built only if <see cref="Needed"/> holds for the verdict the method is about to give.
/// Refusals the model expects (kfree of a stale pointer answered BUG) are common in generated and
/// fuzzed scenarios, and their explanations were built every time and then dropped.
/// </summary>
[System.Runtime.CompilerServices.InterpolatedStringHandler]
internal ref struct LazyText
{
    private System.Runtime.CompilerServices.DefaultInterpolatedStringHandler text;
    private readonly bool on;

    /// <summary>For KernelSpec.Outcome: the text is read exactly when Outcome returns a violation.</summary>
    public LazyText(int literalLength, int formattedCount, Result got, Result? fixedResult, bool mayFail, out bool shouldAppend)
    {
        on = shouldAppend = Needed(got, fixedResult, mayFail);
        text = on ? new(literalLength, formattedCount, System.Globalization.CultureInfo.InvariantCulture) : default;
    }

    /// <summary>For PageSpec.Expect: read exactly when the answer is not the one wanted.</summary>
    public LazyText(int literalLength, int formattedCount, Result want, Result got, out bool shouldAppend)
        : this(literalLength, formattedCount, got, want, false, out shouldAppend) { }

    /// <summary>Whether Outcome(got, fixedResult, mayFail) is a violation (and so has a message).</summary>
    public static bool Needed(Result got, Result? fixedResult, bool mayFail) =>
        fixedResult is { } f ? got != f : got != Result.Ok && !(got == Result.ENOMEM && mayFail);

    public void AppendLiteral(string s) => text.AppendLiteral(s);
    public void AppendFormatted<T>(T value) => text.AppendFormatted(value);
    public void AppendFormatted<T>(T value, string? format) => text.AppendFormatted(value, format);
    public string Text() => on ? text.ToStringAndClear() : "";
}

/// <summary>
/// The call being judged, as messages name it: `kmalloc(64, Kernel)`. It keeps the arguments and
/// writes the text only when a message is written. Every operation is judged and almost none fails,
/// so formatting the name up front was most of what the model allocated per operation.
/// Format placeholders: {0} A, {1} B, {2} the GFP mask, {3} A in hex, {4} B in hex.
/// </summary>
public readonly record struct Call(string Format, ulong A = 0, ulong B = 0, GfpBits Gfp = default)
{
    /// <summary>A call named without arguments (braces escaped: the name is not a format).</summary>
    public static implicit operator Call(string name) =>
        new(name.AsSpan().IndexOfAny('{', '}') < 0 ? name : name.Replace("{", "{{").Replace("}", "}}"));   // two Replace scans cost 4% of a checked alloc_pages

    public override string ToString() =>
        string.Format(System.Globalization.CultureInfo.InvariantCulture, Format, A, B, Gfp, PageSpec.Hex(A), PageSpec.Hex(B));
}

public readonly record struct MeminfoModel(
    ulong MemTotal, ulong MemFree, ulong VmallocTotal, ulong VmallocUsed, ulong VmallocChunk,
    ulong FreeDma, ulong FreeDma32, ulong FreeNormal, ulong FreeHighMem);

/// <summary>
/// The specification of the whole kernel allocator stack (docs/semantics.md): the page frames
/// (<see cref="PageSpec"/>), slab objects and caches, the vmalloc area with vmalloc and ioremap areas,
/// resource claims and DMA buffers. Each operation is judged on the state before it; then the
/// target's page events are checked one by one like alloc_pages/free_pages; then the result.
/// </summary>
public sealed class KernelSpec
{
    public const ulong ZeroSizePtr = 16;

    public PageSpec Pages { get; }
    private Machine M => Pages.Machine;
    private ulong PageSize => Pages.Layout.PageSize;

    // A value, replaced in the table when it changes: a class allocated one object per kmem_cache_create.
    private readonly record struct Cache(ulong Handle, ulong Size, ulong Align, ulong ObjectSize, bool Live = true, int LiveObjects = 0);

    private enum ObjKind { Kmalloc, CacheObject, Large }
    private readonly record struct Obj(ulong Addr, ulong Extent, ObjKind Kind, ulong Cache);
    private readonly record struct Area(ulong Start, ulong Size, bool Ioremap);

    private readonly Dictionary<ulong, Cache> caches = new();
    private readonly Dictionary<ulong, Obj> objects = new();
    // Sorted by address, in arrays (SortedList, a List kept sorted): the overlap checks look up
    // neighbours by binary search and walk by index, which allocates nothing. (SortedSet's range
    // views and SortedDictionary's enumerators allocated on every operation.)
    private readonly List<ulong> objectStarts = new();
    private readonly AddressTable<Area> areas = new();
    private readonly AddressTable<ulong> claims = new();   // start -> size

    /// <summary>The index of the first live object starting at or above `addr` (objectStarts.Count if none).</summary>
    private int FirstObjectFrom(ulong addr)
    {
        int i = objectStarts.BinarySearch(addr);
        return i >= 0 ? i : ~i;
    }

    /// <summary>The first live object starting in [lo, hi], if any.</summary>
    private bool FirstObjectIn(ulong lo, ulong hi, out ulong start)
    {
        int i = FirstObjectFrom(lo);
        start = i < objectStarts.Count ? objectStarts[i] : 0;
        return i < objectStarts.Count && start <= hi;
    }
    private readonly Dictionary<ulong, int> dmaBuffers = new();       // address -> order

    public ulong VmallocStart { get; }
    public ulong VmallocEnd { get; }

    public KernelSpec(Machine machine)
    {
        Pages = new PageSpec(machine);
        if (machine.VmallocSize64 > 0)
        {
            VmallocStart = machine.VmallocStart64;
            VmallocEnd = machine.VmallocStart64 + machine.VmallocSize64;
        }
        else
        {
            // high_memory = PAGE_OFFSET + the end of the highest System RAM frame below the lowmem limit.
            long top = Math.Min(Pages.FrameCount, Pages.Layout.LowmemLimitPfn);
            top = Pages.LastSystemRam(0, top) + 1;
            ulong high = machine.PageOffset32 + ((ulong)top << machine.PageShift);
            ulong off = machine.VmallocOffset32;
            // A tiny vmalloc= with lots of RAM can push the start past VMALLOC_END: the area is then empty.
            VmallocEnd = machine.VmallocEnd32;
            VmallocStart = Math.Min((high + off + off - 1) / off * off, VmallocEnd);
        }
    }

    // ------------------------------------------------------------------ limits, derived here on their own

    /// <summary>KMALLOC_MAX_SIZE: the era's fixed limit, or the largest page block (SLUB).</summary>
    public ulong KmallocMaxSize => M.KmallocMaxFixed ?? PageSize << Pages.LargestOrder;

    /// <summary>The largest size served from a kmalloc cache (SLUB: never above the largest page block).</summary>
    private ulong LargestCache => M.KmallocMaxFixed is null ? Math.Min(M.KmallocMaxCacheSize, KmallocMaxSize) : M.KmallocMaxCacheSize;

    /// <summary>The bucket (object size) of a kmalloc, or 0 when it is a large kmalloc from the page allocator.</summary>
    public ulong Bucket(ulong size)
    {
        ulong need = M.Slab == SlabFlavour.Blocks20 ? size + M.KmallocHeader : Math.Max(size, 1);
        // An index loop: foreach over the IReadOnlyList allocated an enumerator on every kmalloc.
        var buckets = M.KmallocBuckets;
        for (int i = 0; i < buckets.Count; i++)
            if (buckets[i] >= need && buckets[i] <= LargestCache) return buckets[i];
        return 0;
    }

    /// <summary>get_order: the smallest order whose block holds `size` bytes (64 - PAGE_SHIFT for sizes above 2^63).</summary>
    public int GetOrder(ulong size)
    {
        int order = 0, top = 64 - Pages.Layout.PageShift;
        while (order < top && (PageSize << order) < size) order++;
        return order;
    }

    /// <summary>Pages to hold `size` bytes, rounded up without overflowing.</summary>
    private ulong PagesFor(ulong size) => size / PageSize + (size % PageSize != 0 ? 1UL : 0);

    private static bool PowerOfTwo(ulong x) => x != 0 && (x & (x - 1)) == 0;

    // ------------------------------------------------------------------ the common shape of an allocation

    /// <summary>
    /// Judges an allocation whose only allowed outcomes are `fixedResult` (EINVAL or BUG) when set,
    /// or Ok, with ENOMEM allowed when `mayFail`.
    /// </summary>
    private static Violation? Outcome(Call what, Result got, Result? fixedResult, bool mayFail,
        [System.Runtime.CompilerServices.InterpolatedStringHandlerArgument("got", "fixedResult", "mayFail")] LazyText why) =>
        Outcome(what, got, fixedResult, mayFail, why.Text());

    private static Violation? Outcome(Call what, Result got, Result? fixedResult, bool mayFail, string why)
    {
        if (!LazyText.Needed(got, fixedResult, mayFail)) return null;   // the one statement of when a violation is due
        if (fixedResult is { } f)
        {
            string inv = f == Result.EBUSY && got == Result.Ok ? "no-double-mapping"
                : f == Result.EINVAL || got == Result.EINVAL ? "limits" : "misuse";
            return new(inv, $"{what}: {why}: must give {f}; the target answered {got}");
        }
        if (got == Result.ENOMEM)   // Needed: so not mayFail
            return new("exactness", $"{what} got ENOMEM, but {why}");
        string inv2 = got == Result.EINVAL ? "limits" : "misuse";
        return new(inv2, $"{what} is a valid request within every limit: it must give Ok{(mayFail ? " or ENOMEM" : "")}; the target answered {got}");
    }

    /// <summary>Checks the page events of one operation. `gfp` is the mask the allocator must use for new pages.</summary>
    private Violation? ApplyEvents(IReadOnlyList<ModelEvent> events, GfpBits gfp, Call what, AllocKind allowed, AllocKind? alsoAllowed = null)
    {
        if (events.Count > 64 && events[0].Alloc) Pages.ExpectAllocations(events.Count);   // a vmalloc's pages
        for (int i = 0; i < events.Count; i++)
        {
            var e = events[i];
            ulong addr = (ulong)e.Pfn << M.PageShift;
            if (e.Use != allowed && e.Use != alsoAllowed)
                return new("ownership", $"{what} made a {e.Use} page {(e.Alloc ? "allocation" : "free")} at {PageSpec.Hex(addr)}, which it has no reason to");
            if (e.Alloc)
            {
                if (Pages.AllocBlock(e.Order, gfp, false, Result.Ok, addr, e.Use, what, e.Owner, e.ObjectSize) is { } v)
                    return v with { Message = $"(a {e.Use.ToString().ToLowerInvariant()} page) {v.Message}" };
            }
            else
            {
                if (e.Use == AllocKind.Slab)
                {
                    ulong end = addr + (PageSize << Math.Clamp(e.Order, 0, 40));
                    if (FirstObjectIn(addr, end - 1, out ulong live))
                        return new("no-double-mapping", $"{what} gave a slab page at {PageSpec.Hex(addr)} back to the page allocator while the object at {PageSpec.Hex(live)} in it is live");
                }
                if (Pages.FreeBlock(addr, e.Order, e.Use, e.Owner, what) is { } v) return v;
            }
        }
        return null;
    }

    private static Violation? NoEvents(IReadOnlyList<ModelEvent> events, Call what, string why) =>
        events.Count == 0 ? null : new("misuse", $"{what}: {why}, so nothing may change, but the target made {events.Count} page-allocator calls");

    // ------------------------------------------------------------------ kmalloc and caches

    private static (Result? Fixed, string Why) GfpRules(GfpBits gfp, bool atomic)
    {
        int zoneFlags = ((gfp & GfpBits.Dma) != 0 ? 1 : 0) + ((gfp & GfpBits.Dma32) != 0 ? 1 : 0) + ((gfp & GfpBits.HighUser) != 0 ? 1 : 0);
        if (zoneFlags > 1) return (Result.BUG, "more than one zone modifier (GFP_ZONE_BAD)");
        if ((gfp & (GfpBits.Dma32 | GfpBits.HighUser)) != 0) return (Result.BUG, "__GFP_DMA32/__GFP_HIGHMEM in a slab allocation (GFP_SLAB_BUG_MASK)");
        if (atomic && PageSpec.MayBlock(gfp)) return (Result.BUG, "a GFP mask that may sleep, in atomic context");
        return (null, "");
    }

    public Violation? Kmalloc(ulong size, GfpBits gfp, bool atomic, Result got, ulong addr, IReadOnlyList<ModelEvent> events)
    {
        var what = new Call("kmalloc({0}, {2})", size, Gfp: gfp);
        var (bad, why) = GfpRules(gfp, atomic);
        bool overMax = bad is null && size > KmallocMaxSize;
        if (overMax) (bad, why) = (Result.EINVAL, "it is above KMALLOC_MAX_SIZE");
        string Reason() => overMax ? $"{size} is above KMALLOC_MAX_SIZE {KmallocMaxSize}" : why;   // called only for a message
        if (bad is null && size == 0 && M.KmallocZeroSizePtr)
        {
            if (got != Result.Ok || addr != ZeroSizePtr)
                return new("limits", $"kmalloc(0) must return ZERO_SIZE_PTR (16); the target answered {got} {PageSpec.Hex(addr)}");
            return NoEvents(events, what, "kmalloc(0) allocates nothing");
        }
        if (bad is not null)
            return Outcome(what, got, bad, false, $"{Reason()}") ?? NoEvents(events, what, why);

        ulong bucket = Bucket(size);
        bool dma = (gfp & GfpBits.Dma) != 0;
        if (bucket == 0)
        {
            // A large kmalloc: straight from the page allocator.
            int order = GetOrder(size);
            bool mayFail = got != Result.Ok && Pages.Decide(order, gfp, false, null, out _).Result == Result.ENOMEM;   // Outcome reads it only then
            if (Outcome(what, got, null, mayFail, $"an order-{order} block can be had") is { } v) return v;
            if (ApplyEvents(events, gfp, what, AllocKind.LargeKmalloc) is { } ve) return ve;
            if (got != Result.Ok) return NetZero(events, what);
            var a = addr % PageSize == 0 ? Pages.AllocationAt((long)(addr >> M.PageShift)) : null;
            if (a is not { Kind: AllocKind.LargeKmalloc } la || la.Order != order)
                return new("ownership", $"{what} returned {PageSpec.Hex(addr)}, which is not the start of an order-{order} page block taken for it");
            return AddObject(what, new Obj(addr, size, ObjKind.Large, 0));
        }
        int slabOrder = GetOrder(bucket);
        if (slabOrder > Pages.LargestOrder)
            return Outcome(what, got, Result.EINVAL, false, $"its {bucket}-byte cache needs order-{slabOrder} slabs, above the largest order {Pages.LargestOrder}")
                ?? NoEvents(events, what, "it is refused");
        bool fail = got != Result.Ok && Pages.Decide(slabOrder, gfp, false, null, out _).Result == Result.ENOMEM;
        if (Outcome(what, got, null, fail, $"a slab page of order {slabOrder} can be had") is { } v2) return v2;
        if (ApplyEvents(events, gfp, what, AllocKind.Slab) is { } ve2) return ve2;
        if (got != Result.Ok) return NetZero(events, what);
        ulong extent = M.Slab == SlabFlavour.Blocks20 ? Math.Max(size, 1) : bucket;
        ulong align = M.Slab != SlabFlavour.Blocks20 && PowerOfTwo(bucket) ? bucket : 8;
        return CheckSlabObject(what, addr, extent, align, bucket, null, dma) ?? AddObject(what, new Obj(addr, extent, ObjKind.Kmalloc, 0));
    }

    public Violation? Kfree(ulong addr, Result got, IReadOnlyList<ModelEvent> events)
    {
        var what = new Call("kfree({3})", addr);
        if (addr == 0 || (M.KmallocZeroSizePtr && addr == ZeroSizePtr))
            return Outcome(what, got, Result.Ok, false, "kfree of NULL or ZERO_SIZE_PTR is a no-op") ?? NoEvents(events, what, "it is a no-op");
        if (!objects.TryGetValue(addr, out var o))
            return Outcome(what, got, Result.BUG, false, $"{PageSpec.Hex(addr)} is not the start of a live kmalloc or slab object ({Pages.Describe((long)(addr >> M.PageShift))})")
                ?? NoEvents(events, what, "it is misuse");
        if (got != Result.Ok) return Outcome(what, got, Result.Ok, false, "it frees a live object");
        RemoveObject(o);
        if (ApplyEvents(events, GfpBits.Kernel, what, o.Kind == ObjKind.Large ? AllocKind.LargeKmalloc : AllocKind.Slab) is { } v) return v;
        if (o.Kind == ObjKind.Large && Pages.AllocationAt((long)(addr >> M.PageShift)) is { Kind: AllocKind.LargeKmalloc } left)
            return new("ownership", $"{what} freed a large kmalloc but its order-{left.Order} block is still allocated");
        return null;
    }

    public Violation? KmemCacheCreate(ulong size, ulong align, bool atomic, Result got, ulong handle, IReadOnlyList<ModelEvent> events)
    {
        var what = new Call("kmem_cache_create({0}, align={1})", size, align);
        // The first rule broken (0: none), and its reason, written only for a message.
        Result? bad = null;
        int rule = 0;
        if (!M.HasKmemCache) (bad, rule) = (Result.EINVAL, 1);
        else if (atomic) (bad, rule) = (Result.BUG, 2);
        else if (M.SlabObjectLimitIsBug && (size < 4 || size > (M.SlabObjectLimit ?? ulong.MaxValue))) (bad, rule) = (Result.BUG, 3);
        else if (!M.SlabObjectLimitIsBug && (size < 8 || size > KmallocMaxSize)) (bad, rule) = (Result.EINVAL, 4);
        else if (align != 0 && !PowerOfTwo(align)) (bad, rule) = (Result.EINVAL, 5);
        else if (GetOrder(Math.Max(size, align)) > Pages.LargestOrder) (bad, rule) = (Result.EINVAL, 6);
        string Reason() => rule switch
        {
            1 => "this kernel has no kmem_cache API",
            2 => "kmem_cache_create may sleep; in atomic context",
            3 => $"object size {size} is outside 4..{M.SlabObjectLimit} (2.6.18 kmem_cache_create BUG()s)",
            4 => $"object size {size} is outside 8..KMALLOC_MAX_SIZE {KmallocMaxSize}",
            5 => $"alignment {align} is not a power of two",
            6 => $"objects of {size} bytes need slabs above the largest order {Pages.LargestOrder}",
            _ => "it is within every limit",   // the reason when it fails anyway
        };
        if (Outcome(what, got, bad, false, $"{Reason()}") is { } v) return v;
        if (bad is not null) return events.Count == 0 ? null : NoEvents(events, what, Reason());   // the guard keeps Reason() unwritten
        if (ApplyEvents(events, GfpBits.Kernel, what, AllocKind.Slab) is { } ve) return ve;
        if (handle == 0 || caches.TryGetValue(handle, out var old) && old.Live)
            return new("ownership", $"{what} returned handle {PageSpec.Hex(handle)}, which is 0 or a live cache");
        ulong a = Math.Max(align, 8);
        caches[handle] = new Cache(handle, size, a, (size + a - 1) / a * a);
        return null;
    }

    public Violation? KmemCacheAlloc(ulong cache, GfpBits gfp, bool atomic, Result got, ulong addr, IReadOnlyList<ModelEvent> events)
    {
        var what = new Call("kmem_cache_alloc({3}, {2})", cache, Gfp: gfp);
        if (!caches.TryGetValue(cache, out var c) || !c.Live)
            return Outcome(what, got, Result.BUG, false, "not a live cache") ?? NoEvents(events, what, "it is misuse");
        var (bad, why) = GfpRules(gfp, atomic);
        if (bad is not null) return Outcome(what, got, bad, false, why) ?? NoEvents(events, what, why);
        int slabOrder = GetOrder(c.ObjectSize);
        bool fail = got != Result.Ok && Pages.Decide(slabOrder, gfp, false, null, out _).Result == Result.ENOMEM;
        if (Outcome(what, got, null, fail, $"a slab page of order {slabOrder} can be had") is { } v) return v;
        if (ApplyEvents(events, gfp, what, AllocKind.Slab) is { } ve) return ve;
        if (got != Result.Ok) return NetZero(events, what);
        if (CheckSlabObject(what, addr, c.ObjectSize, c.Align, c.ObjectSize, c.Handle, false) is { } vo) return vo;
        caches[cache] = c with { LiveObjects = c.LiveObjects + 1 };
        return AddObject(what, new Obj(addr, c.ObjectSize, ObjKind.CacheObject, c.Handle));
    }

    public Violation? KmemCacheFree(ulong cache, ulong addr, Result got, IReadOnlyList<ModelEvent> events)
    {
        var what = new Call("kmem_cache_free({3}, {4})", cache, addr);
        if (!caches.TryGetValue(cache, out var c) || !c.Live)
            return Outcome(what, got, Result.BUG, false, "not a live cache") ?? NoEvents(events, what, "it is misuse");
        if (!objects.TryGetValue(addr, out var o) || o.Kind != ObjKind.CacheObject || o.Cache != cache)
            return Outcome(what, got, Result.BUG, false, $"{PageSpec.Hex(addr)} is not the start of a live object of this cache")
                ?? NoEvents(events, what, "it is misuse");
        if (got != Result.Ok) return Outcome(what, got, Result.Ok, false, "it frees a live object of the cache");
        RemoveObject(o);
        return ApplyEvents(events, GfpBits.Kernel, what, AllocKind.Slab);
    }

    public Violation? KmemCacheDestroy(ulong cache, bool atomic, Result got, IReadOnlyList<ModelEvent> events)
    {
        var what = new Call("kmem_cache_destroy({3})", cache);
        bool known = caches.TryGetValue(cache, out var c);
        Result? bad = atomic || !known || !c.Live || c.LiveObjects > 0 ? Result.BUG : null;
        // Written only for a message: the count of objects was a string on every refused destroy.
        string Why() => atomic ? "kmem_cache_destroy may sleep; in atomic context"
            : !known || !c.Live ? "not a live cache"
            : c.LiveObjects > 0 ? $"{c.LiveObjects} objects remain (\"Slab cache still has objects\")"
            : "it destroys a live cache with no objects";   // the reason when it fails anyway
        if (Outcome(what, got, bad, false, $"{Why()}") is { } v) return v;
        if (bad is not null) return events.Count == 0 ? null : NoEvents(events, what, Why());   // the guard keeps Why() unwritten
        caches[cache] = c with { Live = false };
        if (ApplyEvents(events, GfpBits.Kernel, what, AllocKind.Slab) is { } ve) return ve;
        if (Pages.PagesOwnedBy(AllocKind.Slab, cache) == 0) return null;
        var left = Pages.OwnedBy(AllocKind.Slab, cache).ToList();
        return new("ownership", $"{what} left {left.Count} slab pages of the cache allocated (first at {PageSpec.Hex((ulong)left[0].FirstPfn << M.PageShift)})");
    }

    private Violation? CheckSlabObject(Call what, ulong addr, ulong extent, ulong align, ulong objectSize, ulong? cache, bool dma)
    {
        long pfn = (long)(addr >> M.PageShift);
        if (Pages.OwnerOf(pfn) is not { Kind: AllocKind.Slab } page)
            return new("slab", $"{what} returned {PageSpec.Hex(addr)}, which is not inside a slab page ({Pages.Describe(pfn)})");
        bool rightCache = cache is { } hc ? page.Owner == hc : page.ObjectSize == objectSize && !caches.ContainsKey(page.Owner);
        if (!rightCache)
            return new("slab", $"{what} returned {PageSpec.Hex(addr)} from a slab page of another cache (objects of {page.ObjectSize} bytes, owner {PageSpec.Hex(page.Owner)}); it must come from {(cache is { } h ? $"cache {PageSpec.Hex(h)}" : $"a kmalloc-{objectSize} cache")}");
        ulong pageEnd = (ulong)(page.FirstPfn + page.Pages) << M.PageShift;
        if (addr + extent > pageEnd)
            return new("slab", $"{what}: the object {PageSpec.Hex(addr)}..{PageSpec.Hex(addr + extent)} runs past its slab page's end {PageSpec.Hex(pageEnd)}");
        if (addr % align != 0)
            return new("alignment", $"{what} returned {PageSpec.Hex(addr)}, not aligned to {align}");
        if (dma && Pages.Layout.ZoneOf(pfn) != MZone.DMA)
            return new("limits", $"{what} with GFP_DMA returned {PageSpec.Hex(addr)}, outside ZONE_DMA");
        return null;
    }

    private Violation? AddObject(Call what, Obj o)
    {
        // The last live object starting at or below o.Addr, then the first starting inside o.
        int at = FirstObjectFrom(o.Addr);
        int before = at < objectStarts.Count && objectStarts[at] == o.Addr ? at : at - 1;
        if (before >= 0 && objects[objectStarts[before]] is var p && p.Addr + p.Extent > o.Addr)
            return new("no-double-mapping", $"{what} returned {PageSpec.Hex(o.Addr)}, inside the live object at {PageSpec.Hex(p.Addr)} ({p.Extent} bytes)");
        if (o.Addr + o.Extent > o.Addr && FirstObjectIn(o.Addr, o.Addr + o.Extent - 1, out ulong next))
            return new("no-double-mapping", $"{what} returned {PageSpec.Hex(o.Addr)} ({o.Extent} bytes), overlapping the live object at {PageSpec.Hex(next)}");
        objects[o.Addr] = o;
        objectStarts.Insert(at, o.Addr);
        return null;
    }

    private void RemoveObject(Obj o)
    {
        objects.Remove(o.Addr);
        objectStarts.RemoveAt(objectStarts.BinarySearch(o.Addr));
        if (o.Kind == ObjKind.CacheObject && caches.TryGetValue(o.Cache, out var c)) caches[o.Cache] = c with { LiveObjects = c.LiveObjects - 1 };
    }

    /// <summary>A failed allocation may take pages and give them back, but must end where it began.</summary>
    private static Violation? NetZero(IReadOnlyList<ModelEvent> events, Call what)
    {
        long net = 0;
        for (int i = 0; i < events.Count; i++)
        {
            var e = events[i];
            net += (e.Alloc ? 1 : -1) * (1L << Math.Clamp(e.Order, 0, 40));
        }
        return net == 0 ? null : new("ownership", $"{what} failed but kept {net} pages it took");
    }

    // ------------------------------------------------------------------ vmalloc and ioremap

    /// <summary>The lowest `align`-aligned start where `size` bytes fit between the areas, or null.</summary>
    public ulong? FirstFit(ulong size, ulong align)
    {
        ulong cursor = AlignUp(VmallocStart, align);
        for (int i = 0; i < areas.Count; i++)   // in address order
        {
            var a = areas.GetValueAtIndex(i);
            if (a.Start >= cursor && a.Start - cursor >= size) return cursor;   // no overflow for huge sizes
            cursor = Math.Max(cursor, AlignUp(a.Start + a.Size, align));
        }
        return cursor <= VmallocEnd && VmallocEnd - cursor >= size ? cursor : null;
    }

    private static ulong AlignUp(ulong x, ulong a) => (x + a - 1) / a * a;

    private Violation? AddArea(Call what, Area area)
    {
        if (area.Start < VmallocStart || area.Start + area.Size > VmallocEnd || area.Start + area.Size < area.Start)
            return new("limits", $"{what} placed its area at {PageSpec.Hex(area.Start)}..{PageSpec.Hex(area.Start + area.Size)}, outside the vmalloc area {PageSpec.Hex(VmallocStart)}..{PageSpec.Hex(VmallocEnd)}");
        for (int i = 0; i < areas.Count; i++)   // few areas: plain and obvious
            if (areas.GetValueAtIndex(i) is var a && a.Start < area.Start + area.Size && area.Start < a.Start + a.Size)
                return new("no-double-mapping", $"{what}: the area {PageSpec.Hex(area.Start)}..{PageSpec.Hex(area.Start + area.Size)} (guard page included) overlaps the live {(a.Ioremap ? "ioremap" : "vmalloc")} area {PageSpec.Hex(a.Start)}..{PageSpec.Hex(a.Start + a.Size)}");
        areas[area.Start] = area;
        vmFiguresStale = true;
        return null;
    }

    public Violation? Vmalloc(ulong size, bool atomic, Result got, ulong addr, IReadOnlyList<ModelEvent> events)
    {
        var what = new Call("vmalloc({0})", size);
        ulong pages = PagesFor(size);
        (Result? bad, string why) = atomic ? (Result.EINVAL, "vmalloc may sleep; in atomic context")
            : size == 0 ? (Result.EINVAL, "size 0") : ((Result?)null, "");
        if (bad is not null) return Outcome(what, got, bad, false, why) ?? NoEvents(events, what, why);
        // The area with its guard page; a size that cannot be represented cannot fit either.
        ulong need = pages >= ulong.MaxValue / PageSize ? ulong.MaxValue : pages * PageSize + PageSize;
        if (got != Result.Ok)   // Ok is always allowed here; a failure must be one the state explains
        {
            long managed = Pages.Managed.Sum();
            bool tooBig = pages > (ulong)managed;
            bool noRoom = FirstFit(need, PageSize) is null;
            long obtainable = Pages.ObtainableOrder0(GfpBits.HighUser);
            bool mayFail = tooBig || noRoom || obtainable < (long)pages;
            if (Outcome(what, got, null, mayFail, $"{pages} pages are within MemTotal, a free range of {need} bytes exists and {obtainable} pages can be had") is { } v)
                return v;
        }
        if (ApplyEvents(events, GfpBits.HighUser, what, AllocKind.Vmalloc) is { } ve) return ve;
        if (got != Result.Ok) return NetZero(events, what);
        if (addr % PageSize != 0) return new("alignment", $"{what} returned {PageSpec.Hex(addr)}, not page-aligned");
        if (AddArea(what, new Area(addr, need, false)) is { } va) return va;
        long backing = Pages.PagesOwnedBy(AllocKind.Vmalloc, addr);
        return backing == (long)pages ? null
            : new("ownership", $"{what} at {PageSpec.Hex(addr)} is backed by {backing} pages; it needs {pages}");
    }

    public Violation? Vfree(ulong addr, Result got, IReadOnlyList<ModelEvent> events)
    {
        var what = new Call("vfree({3})", addr);
        if (addr == 0) return Outcome(what, got, Result.Ok, false, "vfree(NULL) is a no-op") ?? NoEvents(events, what, "it is a no-op");
        if (!areas.TryGetValue(addr, out var a) || a.Ioremap)
            return Outcome(what, got, Result.BUG, false, $"{PageSpec.Hex(addr)} is not the start of a live vmalloc area") ?? NoEvents(events, what, "it is misuse");
        if (got != Result.Ok) return Outcome(what, got, Result.Ok, false, "it frees a live vmalloc area");
        areas.Remove(addr);
        vmFiguresStale = true;
        if (ApplyEvents(events, GfpBits.Kernel, what, AllocKind.Vmalloc) is { } v) return v;
        long left = Pages.PagesOwnedBy(AllocKind.Vmalloc, addr);
        return left == 0 ? null : new("ownership", $"{what} left {left} of its backing pages allocated");
    }

    public Violation? Ioremap(ulong start, ulong size, bool atomic, Result got, ulong addr, IReadOnlyList<ModelEvent> events)
    {
        var what = new Call("ioremap({3}, {1})", start, size);
        (Result? bad, string why, long busy) = (null, "", -1);
        if (atomic) (bad, why) = (Result.BUG, "ioremap may sleep; in atomic context");
        else if (size == 0 || start + size < start) (bad, why) = (Result.EINVAL, "size 0 or a range that wraps");
        else
        {
            long first = (long)(start >> M.PageShift), last = (long)((start + size - 1) >> M.PageShift);
            if (Pages.FirstManaged(first, last + 1) is var f && f >= 0) (bad, why, busy) = (Result.EBUSY, "it maps RAM the allocator manages", f);
        }
        // The frame's description only for a message: LazyText calls Reason() only then.
        string Reason() => busy < 0 ? why : $"frame {PageSpec.Hex((ulong)busy << M.PageShift)} is RAM the allocator manages ({Pages.Describe(busy)})";
        if (bad is not null) return Outcome(what, got, bad, false, $"{Reason()}") ?? NoEvents(events, what, why);
        ulong offset = start % PageSize;
        ulong mappedPages = (start + size - 1) / PageSize - start / PageSize + 1;
        ulong mapped = mappedPages >= ulong.MaxValue / PageSize ? ulong.MaxValue - PageSize : mappedPages * PageSize;
        ulong align = IoremapAlign(mapped);
        bool noRoom = got != Result.Ok && FirstFit(mapped + PageSize, align) is null;   // read only then
        if (Outcome(what, got, null, noRoom, $"a free range of {mapped + PageSize} bytes aligned to {align} exists") is { } v) return v;
        if (NoEvents(events, what, "ioremap takes no pages") is { } ve) return ve;
        if (got != Result.Ok) return null;
        ulong areaStart = addr - offset;
        if (addr % PageSize != offset || areaStart % align != 0)
            return new("alignment", $"{what} returned {PageSpec.Hex(addr)}: the area must be aligned to {align} and keep the offset {offset}");
        return AddArea(what, new Area(areaStart, mapped + PageSize, true));
    }

    /// <summary>2^clamp(log2(size), PAGE_SHIFT, 19): fls on 2.x, get_count_order (rounded up) on 4.19/6.8.</summary>
    public ulong IoremapAlign(ulong mapped)
    {
        int log = M.IoremapAlignFls ? 64 - System.Numerics.BitOperations.LeadingZeroCount(mapped)
            : 64 - System.Numerics.BitOperations.LeadingZeroCount(mapped - 1);
        return 1UL << Math.Clamp(log, M.PageShift, 19);
    }

    public Violation? Iounmap(ulong addr, bool atomic, Result got)
    {
        var what = new Call("iounmap({3})", addr);
        if (atomic) return Outcome(what, got, Result.BUG, false, "iounmap may sleep; in atomic context");
        if (addr == 0) return Outcome(what, got, Result.Ok, false, "iounmap(NULL) is a no-op");
        ulong start = addr - addr % PageSize;
        if (!areas.TryGetValue(start, out var a) || !a.Ioremap)
            return Outcome(what, got, Result.BUG, false, $"{PageSpec.Hex(addr)} is not in the first page of a live ioremap area");
        if (got != Result.Ok) return Outcome(what, got, Result.Ok, false, "it unmaps a live ioremap area");
        areas.Remove(start);
        vmFiguresStale = true;
        return null;
    }

    // ------------------------------------------------------------------ the resource tree

    public Violation? RequestMemRegion(ulong start, ulong size, bool atomic, Result got, ulong handle)
    {
        var what = new Call("request_mem_region({3}, {1})", start, size);
        (Result? bad, string why) = (null, "the range is neither System RAM nor claimed");
        (long ram, int claim) = (-1, -1);
        if (atomic) (bad, why) = (Result.BUG, "request_mem_region may sleep; in atomic context");
        else if (size == 0 || start + size < start) (bad, why) = (Result.EINVAL, "size 0 or a range that wraps");
        else
        {
            long first = (long)(start >> M.PageShift), last = (long)((start + size - 1) >> M.PageShift);
            if (Pages.FirstSystemRam(first, last + 1) is var f && f >= 0) (bad, ram) = (Result.EBUSY, f);
            for (int i = 0; bad is null && i < claims.Count; i++)
                if (claims.GetKeyAtIndex(i) < start + size && start < claims.GetKeyAtIndex(i) + claims.GetValueAtIndex(i)) (bad, claim) = (Result.EBUSY, i);
        }
        // The addresses go into the text only for a message: LazyText calls Reason() only then.
        string Reason() => ram >= 0 ? $"it overlaps System RAM at {PageSpec.Hex((ulong)ram << M.PageShift)}"
            : claim >= 0 ? $"it overlaps the claim {PageSpec.Hex(claims.GetKeyAtIndex(claim))}..{PageSpec.Hex(claims.GetKeyAtIndex(claim) + claims.GetValueAtIndex(claim))}"
            : why;
        if (Outcome(what, got, bad, false, $"{Reason()}") is { } v) return v;
        if (bad is not null) return null;
        if (handle != start) return new("ownership", $"{what} returned handle {PageSpec.Hex(handle)}; the handle is the start address");
        claims[start] = size;
        return null;
    }

    public Violation? ReleaseMemRegion(ulong start, bool atomic, Result got)
    {
        var what = new Call("release_mem_region({3})", start);
        if (atomic) return Outcome(what, got, Result.BUG, false, "release_mem_region may sleep; in atomic context");
        if (!claims.ContainsKey(start))
            return Outcome(what, got, Result.BUG, false, "no live claim starts there (\"Trying to free nonexistent resource\")");
        if (got != Result.Ok) return Outcome(what, got, Result.Ok, false, "it releases a live claim");
        claims.Remove(start);
        return null;
    }

    // ------------------------------------------------------------------ DMA

    /// <summary>The mask a 24-bit device's buffer is allocated with: GFP_DMA plus the caller's non-zone bits.</summary>
    public static GfpBits DmaGfp(GfpBits gfp)
    {
        var g = gfp & (GfpBits.Kernel | GfpBits.Atomic | GfpBits.NoWait);
        return GfpBits.Dma | (g == GfpBits.None ? GfpBits.Kernel : g);
    }

    public Violation? DmaAllocCoherent(ulong size, GfpBits gfp, bool atomic, Result got, ulong addr, IReadOnlyList<ModelEvent> events)
    {
        var what = new Call("dma_alloc_coherent({0}, {2})", size, Gfp: gfp);
        var dmaGfp = DmaGfp(gfp);
        int order = size == 0 ? 0 : GetOrder(size);
        (Result? bad, string why) = size == 0 ? (Result.EINVAL, "size 0")
            : order > Pages.LargestOrder ? (Result.EINVAL, "the order is above the largest order")
            : atomic && PageSpec.MayBlock(dmaGfp) ? (Result.BUG, "a GFP mask that may sleep, in atomic context")
            : ((Result?)null, "");
        string Reason() => size != 0 && order > Pages.LargestOrder ? $"order {order} is above the largest order {Pages.LargestOrder}" : why;   // only for a message
        if (bad is not null) return Outcome(what, got, bad, false, $"{Reason()}") ?? NoEvents(events, what, why);
        bool mayFail = got != Result.Ok && Pages.Decide(order, dmaGfp, false, null, out _).Result == Result.ENOMEM;
        if (Outcome(what, got, null, mayFail, $"an order-{order} block in ZONE_DMA can be had") is { } v) return v;
        if (ApplyEvents(events, dmaGfp, what, AllocKind.Dma) is { } ve) return ve;
        if (got != Result.Ok) return NetZero(events, what);
        var a = addr % PageSize == 0 ? Pages.AllocationAt((long)(addr >> M.PageShift)) : null;
        if (a is not { Kind: AllocKind.Dma } da || da.Order != order)
            return new("ownership", $"{what} returned {PageSpec.Hex(addr)}, which is not the start of an order-{order} block taken for it");
        dmaBuffers[addr] = order;
        return null;
    }

    public Violation? DmaFreeCoherent(ulong addr, Result got, IReadOnlyList<ModelEvent> events)
    {
        var what = new Call("dma_free_coherent({3})", addr);
        if (!dmaBuffers.ContainsKey(addr))
            return Outcome(what, got, Result.BUG, false, "not the start of a live DMA buffer") ?? NoEvents(events, what, "it is misuse");
        if (got != Result.Ok) return Outcome(what, got, Result.Ok, false, "it frees a live DMA buffer");
        dmaBuffers.Remove(addr);
        if (ApplyEvents(events, GfpBits.Kernel, what, AllocKind.Dma) is { } v) return v;
        return Pages.OwnerOf((long)(addr >> M.PageShift)) is { Kind: AllocKind.Dma }
            ? new("ownership", $"{what} left the buffer's pages allocated") : null;
    }

    /// <summary>Page events that happen outside any operation (the target must not make any).</summary>
    public Violation? Unexpected(IReadOnlyList<ModelEvent> events, string what) =>
        NoEvents(events, what, "it makes no page-allocator calls on another allocator's behalf");

    // ------------------------------------------------------------------ meminfo

    // VmallocUsed and VmallocChunk change only with the areas: recomputed after a change, not per call.
    private bool vmFiguresStale = true;
    private ulong vmUsed, vmChunk;

    public MeminfoModel Meminfo()
    {
        ulong pg = PageSize;
        if (vmFiguresStale)
        {
            ulong used = 0, chunk = 0, cursor = VmallocStart;
            for (int i = 0; i < areas.Count; i++)
            {
                var a = areas.GetValueAtIndex(i);
                used += a.Size;
                if (a.Start > cursor) chunk = Math.Max(chunk, a.Start - cursor);
                cursor = Math.Max(cursor, a.Start + a.Size);
            }
            if (VmallocEnd > cursor) chunk = Math.Max(chunk, VmallocEnd - cursor);
            (vmUsed, vmChunk, vmFiguresStale) = (used, chunk, false);
        }
        long[] m = Pages.Managed, f = Pages.FreeCount;
        return new MeminfoModel(
            (ulong)(m[0] + m[1] + m[2] + m[3]) * pg, (ulong)(f[0] + f[1] + f[2] + f[3]) * pg,
            VmallocEnd - VmallocStart, vmUsed, vmChunk,
            (ulong)Pages.FreeCount[0] * pg, (ulong)Pages.FreeCount[1] * pg, (ulong)Pages.FreeCount[2] * pg, (ulong)Pages.FreeCount[3] * pg);
    }
}

/// <summary>
/// Values in one list sorted by a 64-bit key, found by binary search: SortedList's few operations the
/// model uses. (SortedList tests each key against null, which boxes it in code the JIT has not yet
/// optimised, and a rarely called operation stays so for a whole run.)
/// </summary>
internal sealed class AddressTable<T>
{
    private readonly List<(ulong Key, T Value)> items = new();

    public int Count => items.Count;
    public ulong GetKeyAtIndex(int i) => items[i].Key;
    public T GetValueAtIndex(int i) => items[i].Value;
    public bool ContainsKey(ulong key) => Find(key) >= 0;

    public bool TryGetValue(ulong key, out T value)
    {
        int i = Find(key);
        value = i >= 0 ? items[i].Value : default!;
        return i >= 0;
    }

    public T this[ulong key]
    {
        set
        {
            int i = Find(key);
            if (i >= 0) items[i] = (key, value);
            else items.Insert(~i, (key, value));
        }
    }

    public bool Remove(ulong key)
    {
        int i = Find(key);
        if (i >= 0) items.RemoveAt(i);
        return i >= 0;
    }

    /// <summary>The index of <paramref name="key"/>, or the complement of where it would go.</summary>
    private int Find(ulong key)
    {
        int lo = 0, hi = items.Count - 1;
        while (lo <= hi)
        {
            int mid = lo + (hi - lo) / 2;
            ulong k = items[mid].Key;
            if (k == key) return mid;
            if (k < key) lo = mid + 1;
            else hi = mid - 1;
        }
        return ~lo;
    }
}
