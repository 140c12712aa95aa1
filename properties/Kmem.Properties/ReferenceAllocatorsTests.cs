using System.Numerics;
using Kmem.Reference;
using Kmem.Scenarios;
using Kmem.Target;
using Xunit;
using MemRange = Kmem.Scenarios.Range;

namespace Kmem.Properties;

/// <summary>
/// The allocators the reference builds on its page allocator (slab and kmalloc, vmalloc, the resource
/// tree and ioremap, DMA), driven directly through ITarget, against docs/semantics.md and hand-computed
/// figures. Every page event is checked against a shadow ledger of who owns which frames.
/// </summary>
public class ReferenceAllocatorsTests
{
    private const ulong KiB = 1UL << 10, MiB = 1UL << 20, GiB = 1UL << 30;
    private const ulong Page = 4096;
    private const string P68 = "linux-6.8-x86_64", P419 = "linux-4.19-x86_64", P2618 = "linux-2.6.18-i386", P20 = "linux-2.0-i386";
    private const ulong VmStart64 = 0xffffc90000000000;
    private const ulong DmaFrames = 16 * MiB / Page;

    private static MachineConfig Machine(string profile, ulong ram, ulong? mem = null, ulong? vmalloc = null,
        int? maxOrder = null, IReadOnlyList<MemRange>? holes = null, IReadOnlyList<MemmapEntry>? memmap = null) => new()
    {
        Profile = Profiles.Get(profile)!,
        Ram = [new MemRange(0, ram)],
        Holes = holes ?? [],
        MemLimit = mem,
        Vmalloc = vmalloc,
        MaxOrderParam = maxOrder,
        Memmap = memmap ?? [],
    };

    private static ReferenceAllocator Boot(MachineConfig m, bool memInit = true)
    {
        var a = new ReferenceAllocator();
        a.Boot(m);
        if (memInit) Assert.Equal(Outcome.Ok, a.MemInit().Outcome);
        return a;
    }

    private static List<FreeBlock> Shape(ReferenceAllocator a) => a.FreeBlocks().OrderBy(b => b.Pfn).ToList();

    private static List<PageEvent> Drain(ReferenceAllocator a)
    {
        var list = new List<PageEvent>();
        a.DrainPageEvents(list);
        return list;
    }

    private static ulong Ok(TargetResult r)
    {
        Assert.Equal(Outcome.Ok, r.Outcome);
        return r.Address;
    }

    /// <summary>
    /// A shadow of the page events: which frames another allocator owns. Every alloc event must be an
    /// aligned block of frames nobody owns and that are not on the free lists, inside ZONE_DMA for a
    /// GFP_DMA mask; every free event must give back exactly a block the ledger holds, with the same
    /// use and owner. The free page count must drop and rise with the events.
    /// </summary>
    private sealed class Ledger
    {
        private readonly ReferenceAllocator _a;
        private readonly Dictionary<ulong, PageEvent> _live = [];
        private readonly Dictionary<ulong, ulong> _owner = []; // frame -> head
        private long _free;

        public Ledger(ReferenceAllocator a)
        {
            _a = a;
            _free = a.TotalFreePages;
        }

        public int LiveBlocks => _live.Count;
        public IEnumerable<PageEvent> Live => _live.Values;
        public int Events { get; private set; }

        /// <summary>Applies the events since the last call; <paramref name="otherPages"/> is the net
        /// page change from plain alloc_pages/free_pages made by the test meanwhile.</summary>
        public List<PageEvent> Sync(long otherPages = 0)
        {
            var events = Drain(_a);
            foreach (var e in events)
            {
                Events++;
                ulong n = 1UL << e.Order;
                if (e.Alloc)
                {
                    Assert.Equal(0UL, e.Pfn % n);
                    Assert.False(_live.ContainsKey(e.Pfn), $"{e}: head already owned");
                    for (ulong f = e.Pfn; f < e.Pfn + n; f++)
                    {
                        Assert.False(_owner.ContainsKey(f), $"{e}: frame {f} already owned");
                        _owner[f] = e.Pfn;
                    }
                    if ((e.Gfp & Gfp.Dma) != 0) Assert.True(e.Pfn + n <= DmaFrames, $"{e}: GFP_DMA outside ZONE_DMA");
                    if (e.Use == PageUse.Slab) Assert.True(e.ObjectSize > 0 && e.Owner != 0, $"{e}: slab without cache");
                    else Assert.Equal(0UL, e.ObjectSize);
                    if (e.Use is PageUse.Vmalloc) Assert.Equal(0, e.Order);
                    Assert.NotEqual(Gfp.None, e.Gfp);
                    _live[e.Pfn] = e;
                    _free -= (long)n;
                }
                else
                {
                    Assert.True(_live.TryGetValue(e.Pfn, out var had), $"{e}: freeing a block nobody owns");
                    Assert.Equal(had.Order, e.Order);
                    Assert.Equal(had.Use, e.Use);
                    Assert.Equal(had.Owner, e.Owner);
                    Assert.Equal(had.ObjectSize, e.ObjectSize);
                    _live.Remove(e.Pfn);
                    for (ulong f = e.Pfn; f < e.Pfn + n; f++) _owner.Remove(f);
                    _free += (long)n;
                }
            }
            _free += otherPages;
            Assert.Equal(_free, _a.TotalFreePages);
            return events;
        }

        /// <summary>No owned frame is on the free lists.</summary>
        public void AssertDisjointFromFreeLists()
        {
            foreach (var b in _a.FreeBlocks())
                for (ulong f = b.Pfn; f < b.Pfn + (1UL << b.Order); f++)
                    Assert.False(_owner.ContainsKey(f), $"free block {b} holds owned frame {f}");
        }

        public PageEvent OwnerOf(ulong address)
        {
            Assert.True(_owner.TryGetValue(address / Page, out var head), $"{address:x} is in no page event block");
            return _live[head];
        }
    }

    private static void AssertInside(PageEvent e, ulong address, ulong bytes)
    {
        ulong start = e.Pfn * Page, end = (e.Pfn + (1UL << e.Order)) * Page;
        Assert.True(address >= start && address + bytes <= end, $"[{address:x}, +{bytes}) not inside {e}");
    }

    // ------------------------------------------------------------------ kmalloc limits

    [Theory]
    [InlineData(P2618, null, 131072UL)]       // SLAB: the 131072 general cache is the last
    [InlineData(P68, null, 4 * MiB)]          // SLUB: KMALLOC_MAX_SIZE = PAGE_SIZE << MAX_PAGE_ORDER
    [InlineData(P419, null, 4 * MiB)]         // 1 << (MAX_ORDER + PAGE_SHIFT - 1)
    [InlineData(P68, 8, MiB)]                 // max_order=8 (inclusive): 1 MiB
    [InlineData(P419, 9, MiB)]                // max_order=9 (exclusive): orders 0..8, 1 MiB
    [InlineData(P68, 0, 4096UL)]              // max_order=0: one page; no 8192 cache either
    [InlineData(P68, 15, 128 * MiB)]          // the section cap
    [InlineData(P20, null, 131048UL)]         // 131072 - 16-byte page descriptor - 8-byte header
    [InlineData(P2618, 5, 65536UL)]           // orders 0..4: the 131072 bucket cannot get its order-5 slab
    public void Kmalloc_LargestSize_PerEra(string profile, int? maxOrder, ulong largest)
    {
        var a = Boot(Machine(profile, profile == P68 && maxOrder == 15 ? 512 * MiB : 64 * MiB, maxOrder: maxOrder));
        var l = new Ledger(a);
        long free = a.TotalFreePages;
        Assert.Equal(Outcome.EINVAL, a.Kmalloc(largest + 1, Gfp.Kernel, false).Outcome);
        Assert.Equal(Outcome.EINVAL, a.Kmalloc(ulong.MaxValue, Gfp.Kernel, false).Outcome);
        Assert.Empty(l.Sync());
        Assert.Equal(free, a.TotalFreePages);
        ulong x = Ok(a.Kmalloc(largest, Gfp.Kernel, false));
        var ev = Assert.Single(l.Sync());
        AssertInside(ev, x, largest);
        Assert.Equal(Outcome.Ok, a.Kfree(x).Outcome);
        l.Sync();
        Assert.Equal(free, a.TotalFreePages);
    }

    [Fact]
    public void Kmalloc_Large_IsAPageBlock_OfGetOrder()
    {
        var a = Boot(Machine(P68, 64 * MiB));
        var l = new Ledger(a);
        ulong x = Ok(a.Kmalloc(8193, Gfp.Kernel, false)); // above the 8192 cache: get_order = 2
        var e = Assert.Single(l.Sync());
        Assert.Equal(new PageEvent(true, x / Page, 2, Gfp.Kernel, PageUse.LargeKmalloc, 0), e);
        Assert.Equal(Outcome.BUG, a.FreePages(x, 2).Outcome);  // not an alloc_pages block
        Assert.Equal(Outcome.BUG, a.Kfree(x + 8).Outcome);      // interior
        Assert.Empty(l.Sync());
        ulong y = Ok(a.Kmalloc(8192, Gfp.Kernel, false));       // the 8192 cache: a slab
        Assert.Equal(PageUse.Slab, Assert.Single(l.Sync()).Use);
        Assert.Equal(Outcome.Ok, a.Kfree(x).Outcome);
        Assert.Equal(new PageEvent(false, x / Page, 2, Gfp.None, PageUse.LargeKmalloc, 0), Assert.Single(l.Sync()));
        Assert.Equal(Outcome.BUG, a.Kfree(x).Outcome);
        Assert.Equal(Outcome.Ok, a.Kfree(y).Outcome);
        l.Sync();
        Assert.Equal(0, l.LiveBlocks);
    }

    // ------------------------------------------------------------------ buckets and alignment

    [Theory]
    [InlineData(P68, 1UL, 8UL)]
    [InlineData(P68, 8UL, 8UL)]
    [InlineData(P68, 9UL, 16UL)]
    [InlineData(P68, 33UL, 64UL)]
    [InlineData(P68, 65UL, 96UL)]
    [InlineData(P68, 97UL, 128UL)]
    [InlineData(P68, 129UL, 192UL)]
    [InlineData(P68, 193UL, 256UL)]
    [InlineData(P68, 4097UL, 8192UL)]
    [InlineData(P419, 100UL, 128UL)]
    [InlineData(P2618, 1UL, 32UL)]
    [InlineData(P2618, 33UL, 64UL)]
    [InlineData(P2618, 65UL, 96UL)]
    [InlineData(P2618, 129UL, 192UL)]
    [InlineData(P2618, 8193UL, 16384UL)]
    [InlineData(P2618, 65537UL, 131072UL)]
    [InlineData(P20, 24UL, 32UL)]       // 24 + 8-byte header fits 32
    [InlineData(P20, 25UL, 64UL)]
    [InlineData(P20, 120UL, 128UL)]
    [InlineData(P20, 121UL, 256UL)]
    [InlineData(P20, 65529UL, 131072UL)]
    public void Kmalloc_RoundsToItsBucket_AndAligns(string profile, ulong size, ulong bucket)
    {
        var a = Boot(Machine(profile, 64 * MiB));
        var l = new Ledger(a);
        ulong header = profile == P20 ? 8UL : 0UL;
        var objects = new List<ulong>();
        PageEvent? slab = null;
        int slabEvents = 0;
        // Enough objects to fill the first slab and start a second one (so that "one cache" compares two slabs).
        for (int i = 0; i < 40 || (slabEvents < 2 && i < 5000); i++)
        {
            ulong x = Ok(a.Kmalloc(size, Gfp.Kernel, false));
            foreach (var e in l.Sync())
            {
                Assert.Equal(PageUse.Slab, e.Use);
                Assert.Equal(bucket, e.ObjectSize);
                slabEvents++;
                slab ??= e;
                Assert.Equal(slab.Value.Owner, e.Owner); // one cache
            }
            var owner = l.OwnerOf(x);
            AssertInside(owner, x - header, bucket);
            ulong align = profile == P20 ? 8 : BitOperations.IsPow2(bucket) ? bucket : 8;
            Assert.Equal(0UL, x % align);
            Assert.Equal(0UL, (x - header - owner.Pfn * Page) % bucket); // blocks tile the slab; 2.0: header first
            objects.Add(x);
        }
        Assert.NotNull(slab);
        Assert.True(slabEvents >= 2, $"only {slabEvents} slab page(s) for {objects.Count} objects");
        var sorted = objects.Order().ToList();
        for (int i = 1; i < sorted.Count; i++) Assert.True(sorted[i] - sorted[i - 1] >= bucket, "objects overlap");
        l.AssertDisjointFromFreeLists();
        foreach (var x in objects) Assert.Equal(Outcome.Ok, a.Kfree(x).Outcome);
        l.Sync();
        Assert.Equal(0, l.LiveBlocks); // empty slabs went back at once
    }

    [Fact]
    public void Kmalloc_Zero_PerEra()
    {
        var a = Boot(Machine(P68, 64 * MiB));
        Assert.Equal(new TargetResult(Outcome.Ok, 16), a.Kmalloc(0, Gfp.Kernel, false));
        Assert.Equal(new TargetResult(Outcome.Ok, 16), a.Kmalloc(0, Gfp.Atomic, true));
        Assert.Equal(Outcome.BUG, a.Kmalloc(0, Gfp.Kernel, true).Outcome);     // the GFP rules come first
        Assert.Equal(Outcome.BUG, a.Kmalloc(0, Gfp.HighUser, false).Outcome);
        Assert.Empty(Drain(a));
        Assert.Equal(Outcome.Ok, a.Kfree(16).Outcome);
        Assert.Equal(Outcome.Ok, a.Kfree(0).Outcome);

        foreach (var (profile, bucket) in new[] { (P2618, 32UL), (P20, 32UL) })
        {
            var b = Boot(Machine(profile, 64 * MiB));
            Assert.Equal(Outcome.BUG, b.Kfree(16).Outcome); // no ZERO_SIZE_PTR before 2.6.22: a wild pointer
            ulong x = Ok(b.Kmalloc(0, Gfp.Kernel, false));
            Assert.NotEqual(16UL, x);
            var e = Assert.Single(Drain(b));
            Assert.Equal(bucket, e.ObjectSize);
            Assert.Equal(Outcome.Ok, b.Kfree(x).Outcome);
            Assert.False(Assert.Single(Drain(b)).Alloc);
        }
    }

    [Fact]
    public void Kfree_Misuse_IsBug_AndChangesNothing()
    {
        var a = Boot(Machine(P68, 64 * MiB));
        var l = new Ledger(a);
        ulong x = Ok(a.Kmalloc(100, Gfp.Kernel, false));
        ulong y = Ok(a.Kmalloc(100, Gfp.Kernel, false));
        ulong page = Ok(a.AllocPages(0, Gfp.Kernel, false));
        ulong c = Ok(a.KmemCacheCreate(40, 0, "c", false));
        ulong o = Ok(a.KmemCacheAlloc(c, Gfp.Kernel, false));
        l.Sync(-1);
        var shape = Shape(a);
        void Bug(ulong address)
        {
            Assert.Equal(Outcome.BUG, a.Kfree(address).Outcome);
            Assert.Equal(shape, Shape(a));
            Assert.Empty(l.Sync());
        }
        Bug(x + 8);                    // interior pointer
        Bug(y + 128);                  // a free slot of the same slab
        Bug(page);                     // a page from alloc_pages
        Bug(8);                        // low memory, no slab
        Bug(200 * MiB);                // beyond RAM
        Bug(ulong.MaxValue);
        Assert.Equal(Outcome.BUG, a.FreePages(x & ~(Page - 1), 0).Outcome); // a slab page is not alloc_pages'
        Assert.Equal(Outcome.Ok, a.Kfree(x).Outcome);
        Assert.Empty(l.Sync());        // y keeps the slab
        shape = Shape(a);
        Bug(x);                        // double free
        Assert.Equal(Outcome.Ok, a.Kfree(o).Outcome); // kfree of a kmem_cache object is fine
        Assert.Single(l.Sync());
        Assert.Equal(Outcome.Ok, a.Kfree(y).Outcome);
        Assert.Single(l.Sync());
        Assert.Equal(Outcome.Ok, a.KmemCacheDestroy(c, false).Outcome);
        Assert.Equal(Outcome.Ok, a.FreePages(page, 0).Outcome);
        l.Sync(1);
        Assert.Equal(0, l.LiveBlocks);
    }

    // ------------------------------------------------------------------ GFP, DMA caches, context

    [Theory]
    [InlineData(P68)]
    [InlineData(P419)]
    [InlineData(P2618)]
    [InlineData(P20)]
    public void DmaCaches_TakeTheirSlabsFromZoneDma(string profile)
    {
        var a = Boot(Machine(profile, 256 * MiB));
        var l = new Ledger(a);
        ulong d = Ok(a.Kmalloc(100, Gfp.Dma, false));
        var de = Assert.Single(l.Sync());
        ulong n = Ok(a.Kmalloc(100, Gfp.Kernel, false));
        var ne = Assert.Single(l.Sync());
        Assert.True(d < 16 * MiB, $"GFP_DMA object at {d:x}");
        Assert.True(n >= 16 * MiB, $"GFP_KERNEL object at {n:x} (Normal/DMA32 first)");
        Assert.NotEqual(de.Owner, ne.Owner);
        Assert.Equal(de.ObjectSize, ne.ObjectSize);
        Assert.True((de.Gfp & Gfp.Dma) != 0);
        // Every further GFP_DMA object until the DMA zone runs out stays there.
        var live = new List<ulong> { d };
        TargetResult r;
        while ((r = a.Kmalloc(2048, Gfp.Dma | Gfp.Atomic, false)).Outcome == Outcome.Ok)
        {
            Assert.True(r.Address < 16 * MiB);
            live.Add(r.Address);
        }
        Assert.True(live.Count > 1, "the loop above checked no second GFP_DMA object");
        Assert.Equal(Outcome.ENOMEM, r.Outcome);
        l.Sync();
        Assert.All(l.Live.Where(e => e.Owner == de.Owner || (e.Gfp & Gfp.Dma) != 0), e => Assert.True(e.Pfn < DmaFrames));
        // The normal cache still works.
        Assert.Equal(Outcome.Ok, a.Kmalloc(2048, Gfp.Kernel, false).Outcome);
        if (profile is P68 or P419)
        {
            ulong big = Ok(a.Kmalloc(16 * KiB, Gfp.Kernel, false));
            Assert.True(big >= 16 * MiB);
        }
        l.Sync();
        l.AssertDisjointFromFreeLists();
    }

    [Fact]
    public void SlabGfpRules_AndContext()
    {
        var a = Boot(Machine(P68, 64 * MiB));
        ulong c = Ok(a.KmemCacheCreate(64, 0, null, false));
        long free = a.TotalFreePages;
        foreach (var gfp in new[] { Gfp.Dma32, Gfp.HighUser, Gfp.Dma | Gfp.Dma32, Gfp.Atomic | Gfp.HighUser })
        {
            Assert.Equal(Outcome.BUG, a.Kmalloc(100, gfp, false).Outcome);
            Assert.Equal(Outcome.BUG, a.Kmalloc(100 * KiB, gfp, false).Outcome);
            Assert.Equal(Outcome.BUG, a.KmemCacheAlloc(c, gfp, false).Outcome);
        }
        foreach (var gfp in new[] { Gfp.Kernel, Gfp.None, Gfp.Dma, Gfp.Kernel | Gfp.Atomic })
        {
            Assert.Equal(Outcome.BUG, a.Kmalloc(100, gfp, true).Outcome);
            Assert.Equal(Outcome.BUG, a.Kmalloc(100 * KiB, gfp, true).Outcome);
            Assert.Equal(Outcome.BUG, a.KmemCacheAlloc(c, gfp, true).Outcome);
        }
        Assert.Equal(Outcome.BUG, a.Kmalloc(8 * MiB, Gfp.Kernel, true).Outcome);   // the GFP rules before the limit
        Assert.Equal(Outcome.BUG, a.Kmalloc(8 * MiB, Gfp.HighUser, false).Outcome);
        Assert.Equal(Outcome.EINVAL, a.Kmalloc(8 * MiB, Gfp.Atomic, true).Outcome);
        Assert.Empty(Drain(a));
        Assert.Equal(free, a.TotalFreePages);
        ulong x = Ok(a.Kmalloc(100, Gfp.Atomic, true));
        ulong y = Ok(a.Kmalloc(100, Gfp.Dma | Gfp.Atomic, true));
        ulong z = Ok(a.KmemCacheAlloc(c, Gfp.NoWait, true));
        ulong w = Ok(a.Kmalloc(100 * KiB, Gfp.Atomic, true));
        var events = Drain(a);
        Assert.Equal(new[] { Gfp.Atomic, Gfp.Dma | Gfp.Atomic, Gfp.NoWait, Gfp.Atomic }, events.Select(e => e.Gfp));
        Assert.True(y < 16 * MiB);
        // Frees are allowed in atomic context (they take no context at all); creation and destruction are not.
        Assert.Equal(Outcome.BUG, a.KmemCacheCreate(64, 0, null, true).Outcome);
        Assert.Equal(Outcome.BUG, a.KmemCacheDestroy(c, true).Outcome);
        foreach (var p in new[] { x, y, w }) Assert.Equal(Outcome.Ok, a.Kfree(p).Outcome);
        Assert.Equal(Outcome.Ok, a.KmemCacheFree(c, z).Outcome);
        Assert.Equal(Outcome.Ok, a.KmemCacheDestroy(c, false).Outcome);
        Assert.Equal(free, a.TotalFreePages);
    }

    [Fact]
    public void SlabGrowth_FallsBackToTheSmallestOrder_BeforeEnomem()
    {
        // 2.6.18 (no watermarks), 16 MiB: take every page, then give back exactly one order-1 pair.
        var a = Boot(Machine(P2618, 16 * MiB));
        var pages = new List<ulong>();
        TargetResult r;
        while ((r = a.AllocPages(0, Gfp.Kernel, false)).Outcome == Outcome.Ok) pages.Add(r.Address);
        var taken = pages.ToHashSet();
        var pair = pages.Select(p => p / Page).First(p => p % 2 == 0 && taken.Contains((p + 1) * Page));
        Assert.Equal(Outcome.Ok, a.FreePages(pair * Page, 0).Outcome);
        Assert.Equal(Outcome.Ok, a.FreePages((pair + 1) * Page, 0).Outcome);
        Assert.Contains(new FreeBlock(pair, 1, Zone.DMA), a.FreeBlocks());
        // kmalloc(8192): its slabs prefer order 3 (4 objects) but an order-1 block holds one.
        var l = new Ledger(a);
        ulong x = Ok(a.Kmalloc(8192, Gfp.Kernel, false));
        var e = Assert.Single(l.Sync());
        Assert.Equal(new PageEvent(true, pair, 1, Gfp.Kernel, PageUse.Slab, e.Owner, 8192), e);
        Assert.Equal(pair * Page, x);
        Assert.Equal(Outcome.ENOMEM, a.Kmalloc(8192, Gfp.Kernel, false).Outcome); // alloc_pages(1) fails now
        Assert.Equal(Outcome.ENOMEM, a.DmaAllocCoherent(Page, Gfp.Kernel, false).Outcome);
        Assert.Equal(Outcome.Ok, a.Kfree(x).Outcome);
        l.Sync();
        // With plenty of memory the preferred order is used: 4 objects per order-3 slab.
        var b = Boot(Machine(P2618, 64 * MiB));
        var lb = new Ledger(b);
        var xs = Enumerable.Range(0, 5).Select(_ => Ok(b.Kmalloc(8192, Gfp.Kernel, false))).ToList();
        var evs = lb.Sync();
        Assert.Equal(new[] { 3, 3 }, evs.Select(v => v.Order));
        Assert.All(xs.Take(4), p => AssertInside(evs[0], p, 8192));
        // An object in the last page of an order-3 slab is found from its address.
        Assert.Equal(Outcome.BUG, b.Kfree(xs[3] + Page).Outcome);
        Assert.Equal(Outcome.Ok, b.Kfree(xs[3]).Outcome);
        Assert.Equal(Outcome.Ok, b.Kfree(xs[3 - 1]).Outcome);
        Assert.Empty(lb.Sync());
    }

    // ------------------------------------------------------------------ kmem_cache

    [Fact]
    public void KmemCache_Lifecycle_AndMisuse()
    {
        var a = Boot(Machine(P68, 64 * MiB));
        var l = new Ledger(a);
        long free0 = a.TotalFreePages;
        ulong c = Ok(a.KmemCacheCreate(100, 64, "c", false));
        ulong d = Ok(a.KmemCacheCreate(100, 0, "d", false));
        Assert.NotEqual(0UL, c);
        Assert.NotEqual(c, d);
        var objs = new List<ulong>();
        for (int i = 0; i < 200; i++) objs.Add(Ok(a.KmemCacheAlloc(c, Gfp.Kernel, false)));
        Assert.All(objs, o => Assert.Equal(0UL, o % 64));
        Assert.Equal(200, objs.Distinct().Count());
        var evs = l.Sync();
        Assert.All(evs, e => Assert.Equal((c, 128UL, PageUse.Slab), (e.Owner, e.ObjectSize, e.Use)));
        Assert.True(evs.Count >= 2);
        foreach (var o in objs) AssertInside(l.OwnerOf(o), o, 100);
        ulong od = Ok(a.KmemCacheAlloc(d, Gfp.Kernel, false));
        Assert.Equal(0UL, od % 8);
        l.Sync();

        var shape = Shape(a);
        void Bug(Func<TargetResult> op)
        {
            Assert.Equal(Outcome.BUG, op().Outcome);
            Assert.Equal(shape, Shape(a));
            Assert.Empty(l.Sync());
        }
        Bug(() => a.KmemCacheFree(d, objs[0]));        // wrong cache
        Bug(() => a.KmemCacheFree(c, od));
        Bug(() => a.KmemCacheFree(c, objs[0] + 8));    // interior
        Bug(() => a.KmemCacheFree(c, 0));              // NULL
        Bug(() => a.KmemCacheFree(999, objs[0]));      // unknown cache
        Bug(() => a.KmemCacheAlloc(999, Gfp.Kernel, false));
        Bug(() => a.KmemCacheDestroy(c, false));       // live objects: the cache stays
        Assert.Equal(Outcome.Ok, a.KmemCacheFree(c, objs[0]).Outcome);
        shape = Shape(a);
        Bug(() => a.KmemCacheFree(c, objs[0]));        // double free
        Bug(() => a.Kfree(objs[0]));
        Assert.Equal(Outcome.Ok, a.KmemCacheAlloc(c, Gfp.Kernel, false).Outcome); // still alive after the refused destroy
        foreach (var o in objs.Skip(1)) Assert.Equal(Outcome.Ok, a.KmemCacheFree(c, o).Outcome);
        Assert.Equal(Outcome.BUG, a.KmemCacheDestroy(c, false).Outcome); // one left
        l.Sync();
        var last = l.Live.Where(e => e.Owner == c).ToList();
        Assert.Single(last);
        ulong remaining = last[0].Pfn * Page;
        // Find it: the first 64-aligned object in that slab that kmem_cache_free accepts.
        bool freed = false;
        for (ulong p = remaining; p < remaining + (Page << last[0].Order) && !freed; p += 128)
            freed = a.KmemCacheFree(c, p).Outcome == Outcome.Ok;
        Assert.True(freed);
        Assert.Equal(Outcome.Ok, a.KmemCacheDestroy(c, false).Outcome);
        Assert.Equal(Outcome.BUG, a.KmemCacheDestroy(c, false).Outcome);  // dead
        Assert.Equal(Outcome.BUG, a.KmemCacheAlloc(c, Gfp.Kernel, false).Outcome);
        Assert.Equal(Outcome.Ok, a.KmemCacheFree(d, od).Outcome);
        Assert.Equal(Outcome.Ok, a.KmemCacheDestroy(d, false).Outcome);
        l.Sync();
        Assert.Equal(0, l.LiveBlocks);
        Assert.Equal(free0, a.TotalFreePages);
    }

    [Theory]
    [InlineData(P68, 7UL, 0UL, Outcome.EINVAL)]
    [InlineData(P68, 8UL, 0UL, Outcome.Ok)]
    [InlineData(P68, 4 * MiB, 0UL, Outcome.Ok)]
    [InlineData(P68, 4 * MiB + 1, 0UL, Outcome.EINVAL)]
    [InlineData(P68, 64UL, 3UL, Outcome.EINVAL)]       // align not a power of two
    [InlineData(P68, 64UL, 4096UL, Outcome.Ok)]
    [InlineData(P68, 64UL, 8 * MiB, Outcome.EINVAL)]   // objects larger than the largest block
    [InlineData(P419, 7UL, 0UL, Outcome.EINVAL)]
    [InlineData(P2618, 3UL, 0UL, Outcome.BUG)]
    [InlineData(P2618, 4UL, 0UL, Outcome.Ok)]
    [InlineData(P2618, 128 * KiB, 0UL, Outcome.Ok)]
    [InlineData(P2618, 128 * KiB + 1, 0UL, Outcome.BUG)]
    [InlineData(P2618, 128 * KiB + 1, 3UL, Outcome.BUG)] // the size BUG() comes before the alignment
    [InlineData(P68, 4 * MiB + 1, 3UL, Outcome.EINVAL)]
    [InlineData(P2618, 64UL, 3UL, Outcome.EINVAL)]
    [InlineData(P20, 64UL, 0UL, Outcome.EINVAL)]       // no kmem_cache API
    public void KmemCacheCreate_Limits(string profile, ulong size, ulong align, Outcome expected)
    {
        var a = Boot(Machine(profile, 64 * MiB));
        var r = a.KmemCacheCreate(size, align, null, false);
        Assert.Equal(expected, r.Outcome);
        if (expected != Outcome.Ok) return;
        var l = new Ledger(a);
        ulong o = Ok(a.KmemCacheAlloc(r.Address, Gfp.Kernel, false));
        Assert.Equal(0UL, o % Math.Max(align, 8));
        AssertInside(Assert.Single(l.Sync()), o, size);
        Assert.Equal(Outcome.Ok, a.KmemCacheFree(r.Address, o).Outcome);
        Assert.Equal(Outcome.Ok, a.KmemCacheDestroy(r.Address, false).Outcome);
        l.Sync();
        Assert.Equal(0, l.LiveBlocks);
    }

    // ------------------------------------------------------------------ vmalloc

    [Fact]
    public void Vmalloc_FirstFit_WithGuardPages()
    {
        var a = Boot(Machine(P68, 64 * MiB));
        var l = new Ledger(a);
        ulong x = Ok(a.Vmalloc(1, false));              // 1 page + guard
        ulong y = Ok(a.Vmalloc(2 * Page, false));       // 2 pages + guard
        ulong z = Ok(a.Vmalloc(Page + 1, false));       // 2 pages + guard
        Assert.Equal(VmStart64, x);
        Assert.Equal(VmStart64 + 2 * Page, y);
        Assert.Equal(VmStart64 + 5 * Page, z);
        var evs = l.Sync();
        Assert.Equal(5, evs.Count);
        Assert.All(evs, e => Assert.Equal((true, 0, Gfp.Kernel | Gfp.HighUser, PageUse.Vmalloc), (e.Alloc, e.Order, e.Gfp, e.Use)));
        Assert.Equal(new[] { x, y, y, z, z }, evs.Select(e => e.Owner));
        Assert.Equal(8 * Page, a.Meminfo().VmallocUsed);
        Assert.Equal(Outcome.Ok, a.Vfree(y).Outcome);
        var freed = l.Sync();
        Assert.Equal(2, freed.Count);
        Assert.All(freed, e => Assert.Equal((false, y, PageUse.Vmalloc), (e.Alloc, e.Owner, e.Use)));
        // The 3-page hole takes a 1-page area (2 with its guard) at its start; the next does not fit
        // in the page left and goes after z.
        Assert.Equal(y, Ok(a.Vmalloc(Page, false)));
        Assert.Equal(VmStart64 + 8 * Page, Ok(a.Vmalloc(Page, false)));
        // A 2-page area does not fit the 1-page hole either.
        Assert.Equal(VmStart64 + 10 * Page, Ok(a.Vmalloc(2 * Page, false)));
        var mi = a.Meminfo();
        Assert.Equal(32UL << 40, mi.VmallocTotal);
        Assert.Equal(12 * Page, mi.VmallocUsed);
        Assert.Equal((32UL << 40) - 13 * Page, mi.VmallocChunk);
        l.Sync();
        l.AssertDisjointFromFreeLists();
    }

    [Fact]
    public void Vmalloc_SeedArticle_2618_384MiB()
    {
        var m = Machine(P2618, 384 * MiB, holes: [new MemRange(0xA0000, 0x60000)]);
        var a = Boot(m);
        var mi = a.Meminfo();
        Assert.Equal(638968 * KiB, mi.VmallocTotal);
        Assert.Equal(638968 * KiB, mi.VmallocChunk);
        Assert.Equal(0UL, mi.VmallocUsed);
        var l = new Ledger(a);
        ulong free0 = mi.MemFree;
        Assert.Equal(Outcome.ENOMEM, a.Vmalloc(400 * MiB, false).Outcome); // more than MemTotal
        Assert.Equal(Outcome.ENOMEM, a.Vmalloc(500 * MiB, false).Outcome);
        Assert.Empty(l.Sync());
        ulong v = Ok(a.Vmalloc(300 * MiB, false));
        Assert.Equal(0xD8800000UL, v);
        var evs = l.Sync();
        Assert.Equal(300 * 256, evs.Count);
        Assert.Equal(free0 - 300 * MiB, a.Meminfo().MemFree);
        Assert.Equal(300 * MiB + Page, a.Meminfo().VmallocUsed);
        // Another 90 MiB: the address space has room, the pages do not (about 83.6 MiB are left).
        Assert.Equal(Outcome.ENOMEM, a.Vmalloc(90 * MiB, false).Outcome);
        Assert.Equal(Outcome.Ok, a.Vfree(Ok(a.Vmalloc(80 * MiB, false))).Outcome);
        Assert.Equal(2 * 80 * 256, l.Sync().Count);
        Assert.Empty(l.Sync());
        Assert.Equal(Outcome.Ok, a.Vfree(v).Outcome);
        Assert.Equal(300 * 256, l.Sync().Count);
        Assert.Equal(free0, a.Meminfo().MemFree);
        Assert.Equal(Boot(m).FreeBlocks().OrderBy(b => b.Pfn), Shape(a));
    }

    [Theory]
    [InlineData(384UL, null, 638968UL)]
    [InlineData(376UL, null, 647160UL)]
    [InlineData(1024UL, null, 114680UL)]          // lowmem 896 MiB: 0xF8800000..0xFF7FE000
    [InlineData(1024UL, 256UL, 245752UL)]         // vmalloc=256M: lowmem 768 MiB, start 0xF0800000
    [InlineData(1024UL, 130UL, 114680UL)]         // lowmem 894 MiB: 902 MiB rounded up to 904 MiB = 0xF8800000
    [InlineData(100UL, null, 925688UL)]           // 100 MiB: 0xC6C00000 rounded up to 0xC7000000
    [InlineData(1004UL, 16UL, 0UL)]               // VMALLOC_START 0xFF800000 is past VMALLOC_END: an empty area
    public void VmallocTotal_2618(ulong ramMiB, ulong? vmallocMiB, ulong totalKb)
    {
        var a = Boot(Machine(P2618, ramMiB * MiB, vmalloc: vmallocMiB * MiB));
        Assert.Equal(totalKb * KiB, a.Meminfo().VmallocTotal);
        Assert.Equal(totalKb * KiB, a.Meminfo().VmallocChunk);
        if (totalKb == 0) Assert.Equal(Outcome.ENOMEM, a.Vmalloc(Page, false).Outcome);
    }

    [Fact]
    public void VmallocParam_EnlargesTheArea_On2618()
    {
        var plain = Boot(Machine(P2618, GiB));
        Assert.Equal(Outcome.ENOMEM, plain.Vmalloc(200 * MiB, false).Outcome); // no room: the area is ~115 MiB
        Assert.Equal(Outcome.Ok, plain.Vmalloc(100 * MiB, false).Outcome);
        var big = Boot(Machine(P2618, GiB, vmalloc: 256 * MiB));
        var l = new Ledger(big);
        ulong v = Ok(big.Vmalloc(200 * MiB, false));
        Assert.Equal(0xF0800000UL, v);
        var evs = l.Sync();
        Assert.Equal(200 * 256, evs.Count);
        // GFP_KERNEL|__GFP_HIGHMEM: HighMem (768 MiB..1 GiB) first.
        Assert.All(evs, e => Assert.True(e.Pfn >= 768 * MiB / Page, $"{e} not from HighMem"));
        Assert.Equal((256 - 200) * MiB, big.Meminfo().FreeHighMem);
        // 64-bit profiles ignore vmalloc=.
        Assert.Equal(32UL << 40, Boot(Machine(P68, 64 * MiB, vmalloc: 256 * MiB)).Meminfo().VmallocTotal);
    }

    [Fact]
    public void Vmalloc_Exactness_WithWatermarks()
    {
        // 6.8, 64 MiB: DMA32 can give pages down to its min (192), DMA down to min + reserve (60 + 48).
        var a = Boot(Machine(P68, 64 * MiB));
        long avail = (a.FreePageCount(Zone.DMA32) - 192) + (a.FreePageCount(Zone.DMA) - 108);
        Assert.Equal(Outcome.ENOMEM, a.Vmalloc((ulong)(avail + 1) * Page, false).Outcome);
        Assert.Empty(Drain(a));
        ulong v = Ok(a.Vmalloc((ulong)avail * Page, false));
        Assert.Equal(192, a.FreePageCount(Zone.DMA32));
        Assert.Equal(108, a.FreePageCount(Zone.DMA));
        Assert.Equal(Outcome.ENOMEM, a.Vmalloc(Page, false).Outcome);
        Assert.Equal(Outcome.ENOMEM, a.AllocPages(0, Gfp.Kernel, false).Outcome); // agrees with the page allocator
        Assert.Equal(Outcome.Ok, a.Vfree(v).Outcome);
    }

    [Fact]
    public void Vmalloc_Misuse()
    {
        var a = Boot(Machine(P68, 64 * MiB));
        Assert.Equal(Outcome.EINVAL, a.Vmalloc(0, false).Outcome);
        Assert.Equal(Outcome.EINVAL, a.Vmalloc(Page, true).Outcome);
        Assert.Equal(Outcome.ENOMEM, a.Vmalloc(64 * MiB, false).Outcome);        // more than MemTotal
        Assert.Equal(Outcome.ENOMEM, a.Vmalloc(ulong.MaxValue, false).Outcome);
        Assert.Empty(Drain(a));
        long free = a.TotalFreePages;
        ulong v = Ok(a.Vmalloc(3 * Page, false));
        ulong io = Ok(a.Ioremap(0x1000, Page, false)); // low-reserved RAM is not managed
        Drain(a);
        var shape = Shape(a);
        foreach (var bad in new[] { v + Page, v + 1, v - Page, io, 12345UL, v ^ (1UL << 40) })
        {
            Assert.Equal(Outcome.BUG, a.Vfree(bad).Outcome);
            Assert.Equal(shape, Shape(a));
        }
        Assert.Equal(Outcome.Ok, a.Vfree(0).Outcome);
        Assert.Equal(Outcome.Ok, a.Vfree(v).Outcome);
        Assert.Equal(Outcome.BUG, a.Vfree(v).Outcome);
        Assert.Equal(3, Drain(a).Count);
        Assert.Equal(free, a.TotalFreePages);
        Assert.Equal(Outcome.BUG, a.FreePages(v, 0).Outcome);
        Assert.Equal(Outcome.Ok, a.Iounmap(io, false).Outcome);
        Assert.Equal(0UL, a.Meminfo().VmallocUsed);
    }

    // ------------------------------------------------------------------ request_mem_region, ioremap

    [Fact]
    public void RequestMemRegion_BusyOverRamAndClaims()
    {
        // 1 GiB of RAM, mem=512M, a firmware hole at 900 MiB and a memmap-reserved range at 100 MiB.
        var m = Machine(P68, GiB, mem: 512 * MiB, holes: [new MemRange(900 * MiB, 4 * MiB)],
            memmap: [new MemmapEntry(MemmapKind.Reserved, MiB, 100 * MiB)]);
        var a = Boot(m);
        Assert.Equal(new TargetResult(Outcome.Ok, 512 * MiB), a.RequestMemRegion(512 * MiB, 64 * MiB, false));
        Assert.Equal(Outcome.EBUSY, a.RequestMemRegion(540 * MiB, Page, false).Outcome);     // inside the claim
        Assert.Equal(Outcome.EBUSY, a.RequestMemRegion(500 * MiB, 13 * MiB, false).Outcome); // RAM and claim
        Assert.Equal(Outcome.EBUSY, a.RequestMemRegion(576 * MiB - 1, 2, false).Outcome);    // last byte
        Assert.Equal(Outcome.Ok, a.RequestMemRegion(576 * MiB, Page, false).Outcome);        // adjacent
        Assert.Equal(Outcome.EBUSY, a.RequestMemRegion(256 * MiB, Page, false).Outcome);     // System RAM
        Assert.Equal(Outcome.EBUSY, a.RequestMemRegion(0x1000, 8, false).Outcome);           // low reservation is System RAM
        Assert.Equal(Outcome.EBUSY, a.RequestMemRegion(512 * MiB - 1, 1, false).Outcome);    // last RAM byte below mem=
        Assert.Equal(Outcome.Ok, a.RequestMemRegion(100 * MiB, MiB, false).Outcome);         // memmap reserved
        Assert.Equal(Outcome.EBUSY, a.RequestMemRegion(101 * MiB - 1, 2, false).Outcome);
        Assert.Equal(Outcome.Ok, a.RequestMemRegion(900 * MiB, 4 * MiB, false).Outcome);     // a hole
        Assert.Equal(Outcome.Ok, a.RequestMemRegion(64 * GiB, GiB, false).Outcome);          // nothing there at all
        Assert.Equal(Outcome.Ok, a.RequestMemRegion(ulong.MaxValue - 1, 1, false).Outcome);  // ends right below 2^64
        Assert.Equal(Outcome.EINVAL, a.RequestMemRegion(ulong.MaxValue, 1, false).Outcome);  // start + size wraps to 0
        Assert.Equal(Outcome.EINVAL, a.RequestMemRegion(ulong.MaxValue - 1, 2, false).Outcome);
        Assert.Equal(Outcome.EINVAL, a.RequestMemRegion(600 * MiB, 0, false).Outcome);
        Assert.Equal(Outcome.BUG, a.RequestMemRegion(700 * MiB, Page, true).Outcome);
        Assert.Equal(Outcome.BUG, a.ReleaseMemRegion(512 * MiB, true).Outcome);
        Assert.Equal(Outcome.BUG, a.ReleaseMemRegion(512 * MiB + Page, false).Outcome);      // not a start
        Assert.Equal(Outcome.BUG, a.ReleaseMemRegion(700 * MiB, false).Outcome);
        Assert.Equal(Outcome.Ok, a.ReleaseMemRegion(512 * MiB, false).Outcome);
        Assert.Equal(Outcome.BUG, a.ReleaseMemRegion(512 * MiB, false).Outcome);
        Assert.Equal(Outcome.Ok, a.RequestMemRegion(540 * MiB, Page, false).Outcome);        // free again
        Assert.Equal(Outcome.Ok, a.ReleaseMemRegion(ulong.MaxValue - 1, false).Outcome);
        Assert.Empty(Drain(a));
    }

    [Fact]
    public void MemLimit_RequestMemRegion_Ioremap_SeedArticle()
    {
        var a = Boot(Machine(P68, GiB, mem: 512 * MiB));
        ulong claim = Ok(a.RequestMemRegion(512 * MiB, 64 * MiB, false));
        ulong io = Ok(a.Ioremap(claim, 64 * MiB, false));
        Assert.Equal(VmStart64, io);                                    // 64 MiB is 2^26: aligned to 2^19 anyway
        var mi = a.Meminfo();
        Assert.Equal(64 * MiB + Page, mi.VmallocUsed);
        Assert.Equal(Outcome.EBUSY, a.Ioremap(256 * MiB, Page, false).Outcome);       // managed RAM
        Assert.Equal(Outcome.EBUSY, a.Ioremap(512 * MiB - 8, 16, false).Outcome);     // one managed frame
        ulong low = Ok(a.Ioremap(0x1000 + 0x123, 0x10, false));                       // reserved low RAM: fine
        Assert.Equal(0x123UL, low & (Page - 1));
        // The second area: after the first one and its guard, aligned to 2^12 (one page).
        Assert.Equal(VmStart64 + 64 * MiB + Page, low - 0x123);
        Assert.Equal(Outcome.EINVAL, a.Ioremap(600 * MiB, 0, false).Outcome);
        Assert.Equal(Outcome.EINVAL, a.Ioremap(ulong.MaxValue - 10, 12, false).Outcome);
        Assert.Equal(Outcome.BUG, a.Ioremap(600 * MiB, Page, true).Outcome);
        Assert.Equal(Outcome.BUG, a.Iounmap(io + Page, false).Outcome);               // not the first page
        Assert.Equal(Outcome.BUG, a.Iounmap(io, true).Outcome);
        Assert.Equal(Outcome.BUG, a.Vfree(io).Outcome);
        Assert.Equal(Outcome.Ok, a.Iounmap(io + 100, false).Outcome);
        Assert.Equal(Outcome.BUG, a.Iounmap(io, false).Outcome);
        Assert.Equal(Outcome.Ok, a.Iounmap(0, false).Outcome);                        // iounmap(NULL): no-op
        Assert.Equal(Outcome.BUG, a.Iounmap(Page, false).Outcome);
        Assert.Equal(Outcome.Ok, a.Iounmap(low, false).Outcome);
        Assert.Equal(0UL, a.Meminfo().VmallocUsed);
        Assert.Equal(32UL << 40, a.Meminfo().VmallocChunk);
        Assert.Empty(Drain(a));
    }

    [Fact]
    public void Ioremap_OfMemblockAndAboveMem_IsAllowed_ManagedIsNot()
    {
        var a = Boot(Machine(P2618, 64 * MiB, mem: 48 * MiB), memInit: false);
        ulong mb = Ok(a.MemblockAlloc(MiB, 0));
        Assert.Equal(Outcome.Ok, a.MemInit().Outcome);
        Assert.Equal(Outcome.Ok, a.Ioremap(mb, MiB, false).Outcome);         // memblock: not managed
        Assert.Equal(Outcome.EBUSY, a.Ioremap(mb - Page, Page, false).Outcome);
        Assert.Equal(Outcome.Ok, a.Ioremap(48 * MiB, 16 * MiB, false).Outcome);
        Assert.Equal(Outcome.EBUSY, a.RequestMemRegion(mb, Page, false).Outcome); // memblock is System RAM
        Assert.Equal(Outcome.Ok, a.RequestMemRegion(48 * MiB, 16 * MiB, false).Outcome);
    }

    [Theory]
    // 6.8: get_count_order. After a 2-page vmalloc (3 pages with its guard) the free space starts at
    // VMALLOC_START + 3 pages.
    [InlineData(P68, 1UL, 3UL)]    // 2^12
    [InlineData(P68, 3UL, 4UL)]    // 12 KiB: 2^14, 16 KiB boundary
    [InlineData(P68, 4UL, 4UL)]    // 16 KiB: 2^14
    [InlineData(P68, 5UL, 8UL)]    // 20 KiB: 2^15
    [InlineData(P68, 200UL, 128UL)] // clamped at 2^19 = 128 pages
    // 2.6.18: fls(size): one more bit for powers of two.
    [InlineData(P2618, 1UL, 4UL)]  // fls(4 KiB) = 13: 8 KiB
    [InlineData(P2618, 3UL, 4UL)]  // fls(12 KiB) = 14
    [InlineData(P2618, 4UL, 8UL)]  // fls(16 KiB) = 15: 32 KiB
    [InlineData(P2618, 200UL, 128UL)]
    public void Ioremap_Alignment_PerEra(string profile, ulong frames, ulong expectPagesFromStart)
    {
        var a = Boot(Machine(profile, 64 * MiB, mem: 32 * MiB));
        ulong v = Ok(a.Vmalloc(2 * Page, false));
        ulong io = Ok(a.Ioremap(32 * MiB, frames * Page, false));
        Assert.Equal(v + expectPagesFromStart * Page, io);
        Assert.Equal(3 * Page + (frames + 1) * Page, a.Meminfo().VmallocUsed);
    }

    // ------------------------------------------------------------------ DMA

    [Theory]
    [InlineData(P68)]
    [InlineData(P419)]
    [InlineData(P2618)]
    public void DmaAllocCoherent_FromZoneDma_UpToTheLargestBlock(string profile)
    {
        var a = Boot(Machine(profile, 256 * MiB));
        var l = new Ledger(a);
        Assert.Equal(Outcome.EINVAL, a.DmaAllocCoherent(0, Gfp.Kernel, false).Outcome);
        Assert.Equal(Outcome.EINVAL, a.DmaAllocCoherent(4 * MiB + 1, Gfp.Kernel, false).Outcome);
        Assert.Equal(Outcome.EINVAL, a.DmaAllocCoherent(ulong.MaxValue, Gfp.Atomic, false).Outcome);
        Assert.Equal(Outcome.BUG, a.DmaAllocCoherent(Page, Gfp.Kernel, true).Outcome);
        Assert.Equal(Outcome.BUG, a.DmaAllocCoherent(Page, Gfp.HighUser, true).Outcome);
        Assert.Empty(l.Sync());
        ulong big = Ok(a.DmaAllocCoherent(4 * MiB, Gfp.Kernel, false));
        Assert.Equal(PageUse.Dma, Assert.Single(l.Sync()).Use);
        Assert.True(big + 4 * MiB <= 16 * MiB);
        Assert.Equal(0UL, big % (4 * MiB));
        ulong hu = Ok(a.DmaAllocCoherent(3 * Page, Gfp.HighUser, false));    // zone modifiers cleared: no BUG
        ulong d32 = Ok(a.DmaAllocCoherent(Page, Gfp.Dma32 | Gfp.Atomic, true));
        var evs = l.Sync();
        Assert.Equal(new[] { 2, 0 }, evs.Select(e => e.Order));
        Assert.All(evs, e => Assert.True((e.Gfp & Gfp.Dma) != 0 && (e.Gfp & (Gfp.Dma32 | Gfp.HighUser)) == 0));
        Assert.True(hu < 16 * MiB && d32 < 16 * MiB);
        var shape = Shape(a);
        foreach (var bad in new[] { big + Page, big + 1, 0UL, 20 * MiB, hu + 2 * Page })
            Assert.Equal(Outcome.BUG, a.DmaFreeCoherent(bad).Outcome);
        Assert.Equal(Outcome.BUG, a.Kfree(big).Outcome);
        Assert.Equal(Outcome.BUG, a.FreePages(big, 10).Outcome);
        Assert.Equal(shape, Shape(a));
        Assert.Equal(Outcome.Ok, a.DmaFreeCoherent(big).Outcome);
        Assert.Equal(Outcome.BUG, a.DmaFreeCoherent(big).Outcome);
        Assert.Equal(Outcome.Ok, a.DmaFreeCoherent(hu).Outcome);
        Assert.Equal(Outcome.Ok, a.DmaFreeCoherent(d32).Outcome);
        l.Sync();
        Assert.Equal(0, l.LiveBlocks);
        // A page from the page allocator is not a DMA buffer.
        ulong p = Ok(a.AllocPages(0, Gfp.Dma, false));
        Assert.Equal(Outcome.BUG, a.DmaFreeCoherent(p).Outcome);
        // vmalloc pages neither.
        var b = Boot(Machine(P2618, 8 * MiB));
        ulong v = Ok(b.Vmalloc(Page, false));
        var vp = Assert.Single(Drain(b));
        Assert.Equal(Outcome.BUG, b.DmaFreeCoherent(vp.Pfn * Page).Outcome);
        Assert.Equal(Outcome.BUG, b.Kfree(vp.Pfn * Page).Outcome);
        Assert.Equal(Outcome.Ok, b.Vfree(v).Outcome);
    }

    [Fact]
    public void DmaAllocCoherent_FollowsMaxOrder()
    {
        var a = Boot(Machine(P68, 64 * MiB, maxOrder: 8));
        Assert.Equal(Outcome.Ok, a.DmaAllocCoherent(MiB, Gfp.Kernel, false).Outcome);
        Assert.Equal(Outcome.EINVAL, a.DmaAllocCoherent(MiB + 1, Gfp.Kernel, false).Outcome);
    }

    // ------------------------------------------------------------------ page events and free lists

    /// <summary>A seed from the profile's name that does not depend on string hash randomisation.</summary>
    private static int StableSeed(string s)
    {
        int h = 17;
        foreach (char c in s) h = unchecked(h * 31 + c);
        return h & int.MaxValue;
    }

    [Theory]
    [InlineData(P68)]
    [InlineData(P419)]
    [InlineData(P2618)]
    [InlineData(P20)]
    public void RandomWorkload_EventsStayConsistent_AndEverythingFreesBackToTheBootShape(string profile)
    {
        var m = Machine(profile, 48 * MiB, mem: 40 * MiB);
        var a = Boot(m);
        var boot = Shape(a);
        var mi0 = a.Meminfo();
        var l = new Ledger(a);
        var rng = new Random(StableSeed(profile));   // per profile: 4.19's and 2.6.18's names have the same length
        var kmallocs = new List<ulong>();
        var caches = new List<(ulong Cache, List<ulong> Objs)>();
        var vmallocs = new List<ulong>();
        var ioremaps = new List<ulong>();
        var dmas = new List<ulong>();
        var pages = new List<(ulong Addr, int Order)>();
        var claims = new List<ulong>();
        bool slub = profile is P68 or P419;
        for (int step = 0; step < 4000; step++)
        {
            long other = 0;
            int op = rng.Next(16);
            switch (op)
            {
                case 0 or 1 or 2:
                {
                    ulong size = rng.Next(4) switch
                    {
                        0 => (ulong)rng.Next(1, 64),
                        1 => (ulong)rng.Next(1, 2048),
                        2 => (ulong)rng.Next(1, 9000),
                        _ => (ulong)rng.Next(1, 140000),
                    };
                    var gfp = rng.Next(5) == 0 ? Gfp.Dma : rng.Next(2) == 0 ? Gfp.Atomic : Gfp.Kernel;
                    var r = a.Kmalloc(size, gfp, false);
                    if (r.Outcome == Outcome.Ok) kmallocs.Add(r.Address);
                    else Assert.True(r.Outcome == Outcome.ENOMEM || (r.Outcome == Outcome.EINVAL && size > (profile == P20 ? 131048UL : slub ? 4 * MiB : 131072UL)), $"kmalloc {size}: {r.Outcome}");
                    break;
                }
                case 3 or 4 when kmallocs.Count > 0:
                {
                    int i = rng.Next(kmallocs.Count);
                    Assert.Equal(Outcome.Ok, a.Kfree(kmallocs[i]).Outcome);
                    kmallocs.RemoveAt(i);
                    break;
                }
                case 5 when profile != P20:
                {
                    if (caches.Count < 4)
                    {
                        ulong size = (ulong)rng.Next(8, 3000);
                        ulong align = rng.Next(3) == 0 ? 1UL << rng.Next(3, 9) : 0;
                        caches.Add((Ok(a.KmemCacheCreate(size, align, null, false)), []));
                    }
                    else
                    {
                        int i = rng.Next(caches.Count);
                        var (c, objs) = caches[i];
                        if (objs.Count > 0) Assert.Equal(Outcome.BUG, a.KmemCacheDestroy(c, false).Outcome);
                        foreach (var o in objs) Assert.Equal(Outcome.Ok, a.KmemCacheFree(c, o).Outcome);
                        Assert.Equal(Outcome.Ok, a.KmemCacheDestroy(c, false).Outcome);
                        caches.RemoveAt(i);
                    }
                    break;
                }
                case 6 or 7 when caches.Count > 0:
                {
                    var (c, objs) = caches[rng.Next(caches.Count)];
                    if (objs.Count > 0 && rng.Next(2) == 0)
                    {
                        int i = rng.Next(objs.Count);
                        Assert.Equal(Outcome.Ok, a.KmemCacheFree(c, objs[i]).Outcome);
                        objs.RemoveAt(i);
                    }
                    else
                    {
                        var r = a.KmemCacheAlloc(c, rng.Next(4) == 0 ? Gfp.Dma : Gfp.Kernel, false);
                        if (r.Outcome == Outcome.Ok) objs.Add(r.Address);
                        else Assert.Equal(Outcome.ENOMEM, r.Outcome);
                    }
                    break;
                }
                case 8:
                {
                    var r = a.Vmalloc((ulong)rng.Next(1, 600000), false);
                    if (r.Outcome == Outcome.Ok) vmallocs.Add(r.Address);
                    else Assert.Equal(Outcome.ENOMEM, r.Outcome);
                    break;
                }
                case 9 when vmallocs.Count > 0:
                {
                    int i = rng.Next(vmallocs.Count);
                    Assert.Equal(Outcome.Ok, a.Vfree(vmallocs[i]).Outcome);
                    vmallocs.RemoveAt(i);
                    break;
                }
                case 10:
                {
                    var r = a.DmaAllocCoherent((ulong)rng.Next(1, 70000), rng.Next(2) == 0 ? Gfp.Kernel : Gfp.Atomic, false);
                    if (r.Outcome == Outcome.Ok) dmas.Add(r.Address);
                    else Assert.Equal(Outcome.ENOMEM, r.Outcome);
                    break;
                }
                case 11 when dmas.Count > 0:
                {
                    int i = rng.Next(dmas.Count);
                    Assert.Equal(Outcome.Ok, a.DmaFreeCoherent(dmas[i]).Outcome);
                    dmas.RemoveAt(i);
                    break;
                }
                case 12:
                {
                    int order = rng.Next(4);
                    var r = a.AllocPages(order, Gfp.Kernel, false);
                    if (r.Outcome == Outcome.Ok) { pages.Add((r.Address, order)); other -= 1L << order; }
                    else Assert.Equal(Outcome.ENOMEM, r.Outcome);
                    break;
                }
                case 13 when pages.Count > 0:
                {
                    int i = rng.Next(pages.Count);
                    Assert.Equal(Outcome.Ok, a.FreePages(pages[i].Addr, pages[i].Order).Outcome);
                    other += 1L << pages[i].Order;
                    pages.RemoveAt(i);
                    break;
                }
                case 14:
                {
                    ulong start = 40 * MiB + (ulong)rng.Next(0, 2000) * Page;
                    if (rng.Next(2) == 0)
                    {
                        var r = a.Ioremap(start, (ulong)rng.Next(1, 100000), false);
                        if (r.Outcome == Outcome.Ok) ioremaps.Add(r.Address);
                        else Assert.Contains(r.Outcome, new[] { Outcome.ENOMEM, Outcome.EBUSY });
                    }
                    else
                    {
                        var r = a.RequestMemRegion(start, (ulong)rng.Next(1, 100000), false);
                        if (r.Outcome == Outcome.Ok) claims.Add(r.Address);
                        else Assert.Equal(Outcome.EBUSY, r.Outcome);
                    }
                    break;
                }
                case 15:
                {
                    if (ioremaps.Count > 0 && rng.Next(2) == 0)
                    {
                        int i = rng.Next(ioremaps.Count);
                        Assert.Equal(Outcome.Ok, a.Iounmap(ioremaps[i], false).Outcome);
                        ioremaps.RemoveAt(i);
                    }
                    else if (claims.Count > 0)
                    {
                        int i = rng.Next(claims.Count);
                        Assert.Equal(Outcome.Ok, a.ReleaseMemRegion(claims[i], false).Outcome);
                        claims.RemoveAt(i);
                    }
                    break;
                }
            }
            l.Sync(other);
            if (step % 250 == 0) l.AssertDisjointFromFreeLists();
            // Every live object lies in a slab (or large kmalloc) block of the ledger.
            if (step % 500 == 0)
            {
                foreach (var x in kmallocs) l.OwnerOf(x);
                foreach (var (c, objs) in caches)
                    foreach (var o in objs) Assert.Equal(c, l.OwnerOf(o).Owner);
                var mi = a.Meminfo();
                Assert.Equal((ulong)a.TotalFreePages * Page, mi.MemFree);
                Assert.Equal(mi0.MemTotal, mi.MemTotal);
                Assert.Equal(mi.MemFree, mi.FreeDma + mi.FreeDma32 + mi.FreeNormal + mi.FreeHighMem);
                Assert.True(mi.VmallocChunk <= mi.VmallocTotal - mi.VmallocUsed);
            }
        }
        Assert.True(l.Events > 100, $"only {l.Events} events");
        // Give everything back.
        foreach (var x in kmallocs) Assert.Equal(Outcome.Ok, a.Kfree(x).Outcome);
        foreach (var (c, objs) in caches)
        {
            foreach (var o in objs) Assert.Equal(Outcome.Ok, a.KmemCacheFree(c, o).Outcome);
            Assert.Equal(Outcome.Ok, a.KmemCacheDestroy(c, false).Outcome);
        }
        foreach (var v in vmallocs) Assert.Equal(Outcome.Ok, a.Vfree(v).Outcome);
        foreach (var d in dmas) Assert.Equal(Outcome.Ok, a.DmaFreeCoherent(d).Outcome);
        foreach (var io in ioremaps) Assert.Equal(Outcome.Ok, a.Iounmap(io, false).Outcome);
        foreach (var c in claims) Assert.Equal(Outcome.Ok, a.ReleaseMemRegion(c, false).Outcome);
        long back = 0;
        foreach (var (addr, order) in pages) { Assert.Equal(Outcome.Ok, a.FreePages(addr, order).Outcome); back += 1L << order; }
        l.Sync(back);
        Assert.Equal(0, l.LiveBlocks);
        Assert.Equal(boot, Shape(a));
        Assert.Equal(mi0, a.Meminfo());
    }

    [Fact]
    public void PlainAllocPages_AndMemInit_AreNotEvents()
    {
        var a = Boot(Machine(P68, 64 * MiB), memInit: false);
        Assert.Equal(Outcome.Ok, a.Kmalloc(100, Gfp.Kernel, false).Outcome); // implicit mem_init, one slab event
        Assert.Single(Drain(a));
        ulong p = Ok(a.AllocPages(3, Gfp.Kernel, false));
        Assert.Equal(Outcome.Ok, a.FreePages(p, 3).Outcome);
        Assert.Empty(Drain(a));
    }

    // ------------------------------------------------------------------ meminfo

    [Fact]
    public void Meminfo_Figures()
    {
        var a = Boot(Machine(P68, 64 * MiB, mem: 48 * MiB), memInit: false);
        var before = a.Meminfo();
        Assert.Equal(0UL, before.MemTotal);
        Assert.Equal(0UL, before.MemFree);
        Assert.Equal(32UL << 40, before.VmallocTotal);
        Assert.False(a.MemInitDone); // reading meminfo does not start the buddy allocator
        Assert.Equal(Outcome.Ok, a.MemInit().Outcome);
        var mi = a.Meminfo();
        ulong total = (48 * 256 - 256) * Page;
        Assert.Equal(total, mi.MemTotal);
        Assert.Equal(total, mi.MemFree);
        Assert.Equal((4096 - 256) * Page, mi.FreeDma);
        Assert.Equal((48 * 256 - 4096) * Page, mi.FreeDma32);
        Assert.Equal(0UL, mi.FreeNormal);
        Assert.Equal(0UL, mi.FreeHighMem);
        Assert.Equal(0UL, mi.VmallocUsed);
        Assert.Equal(32UL << 40, mi.VmallocChunk);

        Ok(a.Kmalloc(100, Gfp.Dma, false));                          // one DMA slab page
        ulong v = Ok(a.Vmalloc(10000, false));                        // 3 pages + guard
        Ok(a.Ioremap(50 * MiB, 5 * Page, false));                     // 5 + guard, 2^15-aligned
        Ok(a.DmaAllocCoherent(2 * Page, Gfp.Kernel, false));          // order 1 from DMA
        mi = a.Meminfo();
        Assert.Equal(total, mi.MemTotal);
        Assert.Equal(total - 6 * Page, mi.MemFree);
        Assert.Equal((4096 - 256 - 3) * Page, mi.FreeDma);
        Assert.Equal(10 * Page, mi.VmallocUsed);
        // Areas: [0, 4) vmalloc, [8, 14) ioremap (aligned to 8 pages): the tail is the largest range.
        Assert.Equal((32UL << 40) - 14 * Page, mi.VmallocChunk);
        Assert.Equal(Outcome.Ok, a.Vfree(v).Outcome);
        Assert.Equal(6 * Page, a.Meminfo().VmallocUsed);

        var b = Boot(Machine(P2618, GiB));
        var bi = b.Meminfo();
        Assert.Equal((ulong)(GiB - Page) , bi.MemTotal);              // page 0 reserved
        Assert.Equal(128 * MiB, bi.FreeHighMem);
        Assert.Equal(0UL, bi.FreeDma32);
        Assert.Equal(0xFF7FE000UL - 0xF8800000UL, bi.VmallocTotal);
    }
}
