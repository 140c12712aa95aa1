using FsCheck;
using FsCheck.Fluent;
using Kmem.Scenarios;
using ScRange = Kmem.Scenarios.Range;

namespace Kmem.Engines;

public sealed record GenOptions
{
    /// <summary>Profile of every generated machine; null: any profile.</summary>
    public string? Profile { get; init; }
    /// <summary>Largest number of operations in a scenario.</summary>
    public int MaxOps { get; init; } = 60;
    /// <summary>Fixed RAM size (one bank from 0); null: the generators choose layouts.</summary>
    public ulong? Ram { get; init; }
    /// <summary>Which operations to generate: all of them, or the page allocator only.</summary>
    public OpMix Kinds { get; init; } = OpMix.All;
}

public enum OpMix { All, PagesOnly }

/// <summary>
/// FsCheck generators of scenarios, aimed at the hard cases: zone boundaries and holes that are not
/// aligned to the largest block, mem= and memmap= near block edges, orders at and just above the
/// maximum, and free patterns that must coalesce back to the boot state.
/// </summary>
public static class ScenarioGen
{
    private const ulong K = 1024, M = K * K, G = M * K, Page = 4096;

    public static Gen<Scenario> Scenario(GenOptions o) =>
        from profile in o.Profile is { } p ? Gen.Constant(Profiles.Get(p)!) : Gen.Elements(Profiles.All.ToArray())
        from machine in o.Ram is { } r ? Gen.Constant((Ram: (IReadOnlyList<ScRange>)[new ScRange(0, r)], Holes: (IReadOnlyList<ScRange>)[])) : Layout(profile)
        from boot in Boot(profile, machine.Ram)
        from ops in Ops(profile, boot, o.MaxOps, machine.Ram.Count == 0 ? profile.DefaultRam : machine.Ram.Max(r => r.End), o.Kinds)
        select new Scenario(new Header
        {
            Profile = profile.Name,
            Ram = machine.Ram,
            Holes = machine.Holes,
            Boot = boot,
        }, ops);

    // ---------------------------------------------------------------- machines

    private static Gen<ulong> Frames(int lo, int hi) => Gen.Choose(lo, hi).Select(n => (ulong)n * Page);

    private static Gen<(IReadOnlyList<ScRange> Ram, IReadOnlyList<ScRange> Holes)> Layout(Profile p)
    {
        var small = Gen.Elements(4 * M, 6 * M, 8 * M, 12 * M, 16 * M, 20 * M, 24 * M, 32 * M, 48 * M, 64 * M);
        var oneBank =
            from size in small
            from extra in Gen.Frequency((3, Gen.Constant(0UL)), (1, Frames(1, 1023)))
            select ((IReadOnlyList<ScRange>)[new ScRange(0, size + extra)], (IReadOnlyList<ScRange>)[]);
        var defaultMachine = Gen.Constant(((IReadOnlyList<ScRange>)[], (IReadOnlyList<ScRange>)[]));
        var twoBanks =
            from a in small
            from gap in Frames(1, 4096)
            from b in small
            select ((IReadOnlyList<ScRange>)[new ScRange(0, a), new ScRange(a + gap, b)], (IReadOnlyList<ScRange>)[]);
        var holes =
            from size in small
            from n in Gen.Choose(1, 3)
            from hs in Gen.ListOf(
                from start in Gen.Choose(1, (int)(size / Page) - 2)
                from len in Gen.Frequency((3, Gen.Choose(1, 16)), (1, Gen.Choose(17, 2048)))
                select new ScRange((ulong)start * Page, (ulong)len * Page), n)
            select ((IReadOnlyList<ScRange>)[new ScRange(0, size)], (IReadOnlyList<ScRange>)hs.ToList());
        var choices = new List<(int, Gen<(IReadOnlyList<ScRange>, IReadOnlyList<ScRange>)>)>
        {
            (6, oneBank), (1, defaultMachine), (2, twoBanks), (3, holes),
        };
        if (p.Dma32ZoneEnd is { } d32)
        {
            // A small machine whose second bank straddles the 4 GiB DMA32/Normal boundary.
            var straddle =
                from below in Frames(1, 4096)
                from above in Frames(1, 4096)
                select ((IReadOnlyList<ScRange>)[new ScRange(0, 16 * M), new ScRange(d32 - below, below + above)], (IReadOnlyList<ScRange>)[]);
            choices.Add((2, straddle));
        }
        if (p.HasHighMem)
        {
            // Around 1 GiB, so the lowmem limit (moved by vmalloc=) falls inside RAM.
            var big = from extra in Frames(0, 32768)
                      select ((IReadOnlyList<ScRange>)[new ScRange(0, 880 * M + extra)], (IReadOnlyList<ScRange>)[]);
            choices.Add((3, big));
        }
        return Gen.Frequency(choices.ToArray());
    }

    // ---------------------------------------------------------------- boot line

    private static Gen<IReadOnlyList<BootParam>> Boot(Profile p, IReadOnlyList<ScRange> ram)
    {
        ulong top = ram.Count == 0 ? p.DefaultRam : ram.Max(r => r.End);
        // An address near a block edge: a multiple of 2^k frames, nudged by a frame, or a few bytes.
        var nearEdge =
            from k in Gen.Choose(0, 14)
            from frac in Gen.Choose(1, 255)
            from nudge in Gen.Frequency((4, Gen.Constant(0L)), (2, Gen.Elements(-1L, 1L).Select(x => x * (long)Page)), (1, Gen.Choose(-100, 100).Select(x => (long)x)))
            let unit = Page << k
            let baseAddr = Math.Max(unit, top * (ulong)frac / 256 / unit * unit)
            select (ulong)Math.Max((long)Page, (long)baseAddr + nudge);
        var mem = nearEdge.Select(a => new BootParam { Kind = BootParamKind.Mem, Value = a });
        var memmapEntry =
            from kind in Gen.Frequency((4, Gen.Constant(MemmapKind.Reserved)), (1, Gen.Constant(MemmapKind.Acpi)),
                                       (1, Gen.Constant(MemmapKind.Persistent)), (2, Gen.Constant(MemmapKind.Usable)))
            from start in nearEdge
            from size in Gen.Frequency((3, Frames(1, 64)), (1, Frames(65, 4096)), (1, Gen.Choose(1, 8191).Select(x => (ulong)x)))
            select new MemmapEntry(kind, size, Math.Min(start, top));
        var memmap = Gen.Choose(1, 2).SelectMany(n => Gen.ListOf(memmapEntry, n))
            .Select(es => new BootParam { Kind = BootParamKind.Memmap, Entries = es.ToList() });
        var (lo, hi) = p.MaxOrderParamRange;
        var maxOrder = Gen.Frequency((3, Gen.Choose(lo, lo + 3)), (3, Gen.Choose(Math.Min(p.MaxOrder - 1, hi), hi)), (1, Gen.Choose(lo, hi)))
            .Select(n => new BootParam { Kind = BootParamKind.MaxOrder, Value = (ulong)n });
        var vmalloc = Gen.Frequency(
                (2, Gen.Choose(-64, 64).Select(d => (ulong)((long)(128 * M) + d * (long)Page))),
                (2, Gen.Choose(16, 400).Select(mb => (ulong)mb * M)),
                (1, Gen.Choose(-16, 16).Select(d => (ulong)((long)(128 * M) + d * 2 * (long)M))))
            .Select(v => new BootParam { Kind = BootParamKind.Vmalloc, Value = v });

        Gen<BootParam?> Maybe(Gen<BootParam> g, int yes, int no) =>
            Gen.Frequency((no, Gen.Constant<BootParam?>(null)), (yes, g.Select(x => (BootParam?)x)));
        return from a in Maybe(mem, 2, 3)
               from b in Maybe(memmap, 1, 3)
               from c in Maybe(maxOrder, 2, 3)
               from d in Maybe(vmalloc, p.VmallocParamHonoured ? 3 : 1, 3)
               select (IReadOnlyList<BootParam>)new[] { a, b, c, d }.Where(x => x is not null).Select(x => x!).ToList();
    }

    // ---------------------------------------------------------------- operations

    /// <summary>An operation before names are given: references are indices into earlier results of the right kind.</summary>
    private sealed record Spec(OpKind Kind, ulong Number = 0, Gfp Gfp = Gfp.None, int Ref = 0, int Variant = 0, ulong Align = 0, ulong Number2 = 0, int Ref2 = 0);

    private static Gen<ulong> Sizes(params (int Weight, Gen<ulong> Gen)[] choices) => Gen.Frequency(choices);

    private static Gen<IReadOnlyList<Op>> Ops(Profile p, IReadOnlyList<BootParam> boot, int maxOps, ulong ramTop, OpMix mix)
    {
        int largest = boot.FirstOrDefault(b => b.Kind == BootParamKind.MaxOrder) is { } mo
            ? (p.MaxOrderInclusive ? (int)mo.Value : (int)mo.Value - 1)
            : (p.MaxOrderInclusive ? p.MaxOrder : p.MaxOrder - 1);
        ulong block = p.PageSize << Math.Max(0, largest);
        ulong kmallocMax = p.KmallocMaxFixed ?? block;
        ulong memLimit = boot.LastOrDefault(b => b.Kind == BootParamKind.Mem)?.Value ?? ramTop;
        var order = Gen.Frequency(
            (6, Gen.Constant(0)), (6, Gen.Choose(1, 3)), (4, Gen.Choose(0, Math.Max(0, largest))),
            (2, Gen.Constant(Math.Max(0, largest))), (1, Gen.Constant(largest + 1)), (1, Gen.Choose(largest + 1, largest + 3)));
        var gfp = Gen.Frequency(
            (10, Gen.Constant(Gfp.None)), (3, Gen.Constant(Gfp.Atomic)), (2, Gen.Constant(Gfp.Dma)),
            (2, Gen.Constant(Gfp.Dma32)), (1, Gen.Constant(Gfp.HighUser)), (1, Gen.Constant(Gfp.NoWait)),
            (1, Gen.Constant(Gfp.Atomic | Gfp.Dma)), (1, Gen.Constant(Gfp.Kernel | Gfp.Atomic)),
            (1, Gen.Elements(Gfp.Dma | Gfp.Dma32, Gfp.Dma | Gfp.HighUser)));
        var slabGfp = Gen.Frequency((12, Gen.Constant(Gfp.None)), (3, Gen.Constant(Gfp.Atomic)), (3, Gen.Constant(Gfp.Dma)),
            (1, Gen.Constant(Gfp.Atomic | Gfp.Dma)), (1, Gen.Elements(Gfp.Dma32, Gfp.HighUser)));
        var anyRef = Gen.Choose(0, 1 << 20);
        var alloc = from o in order from g in gfp select new Spec(OpKind.AllocPages, (ulong)o, g);
        // Variant for frees: 0 valid, 1 wrong order / wrong cache, 2 wild address, 3 NULL.
        var freeVariant = Gen.Frequency((20, Gen.Constant(0)), (1, Gen.Constant(1)), (1, Gen.Constant(2)), (1, Gen.Constant(3)));
        Gen<Spec> Free(OpKind k) => from r in anyRef from v in freeVariant select new Spec(k, Ref: r, Variant: v);
        var context = Gen.Elements(0, 1).Select(a => new Spec(OpKind.Context, Variant: a));

        // Sizes at the edges: bucket boundaries +-1, KMALLOC_MAX_SIZE +-1 and +-a page, 0, small.
        var bucketEdge = from b in Gen.Elements(p.KmallocBuckets.ToArray()) from d in Gen.Elements(-1L, 0L, 1L)
                         select (ulong)Math.Max(0, (long)b + d);
        var kmallocSize = Sizes(
            (6, Gen.Choose(1, 512).Select(x => (ulong)x)), (5, bucketEdge), (1, Gen.Constant(0UL)),
            (2, Gen.Elements(kmallocMax - p.PageSize, kmallocMax - 1, kmallocMax, kmallocMax + 1, kmallocMax + p.PageSize)),
            (2, Gen.Choose(8193, 200_000).Select(x => (ulong)x)),
            (1, Gen.Choose(0, 4095).Select(x => ulong.MaxValue - (ulong)x)));   // sizes whose rounding overflows
        var kmalloc = from z in kmallocSize from g in slabGfp select new Spec(OpKind.Kmalloc, z, g);
        var cacheSize = Sizes((6, Gen.Choose(8, 4096).Select(x => (ulong)x)), (2, Gen.Elements(3UL, 4UL, 7UL, 8UL)),
            (2, Gen.Elements(128UL << 10, (128UL << 10) + 1, kmallocMax, kmallocMax + 1)));
        var cacheAlign = Gen.Frequency((5, Gen.Constant(0UL)), (3, Gen.Elements(8UL, 16UL, 64UL, 4096UL)), (1, Gen.Elements(3UL, 24UL)));
        var cacheCreate = from z in cacheSize from a in cacheAlign select new Spec(OpKind.KmemCacheCreate, z, Align: a);
        var cacheAlloc = from r in anyRef from g in slabGfp select new Spec(OpKind.KmemCacheAlloc, Ref: r, Gfp: g);
        var cacheFree = from r in anyRef from v in freeVariant select new Spec(OpKind.KmemCacheFree, Ref: r, Variant: v);
        var cacheDestroy = anyRef.Select(r => new Spec(OpKind.KmemCacheDestroy, Ref: r));
        // vmalloc: small, a good part of RAM (near what physically fits), 0.
        var vmallocSize = Sizes((6, Gen.Choose(1, 64).Select(x => (ulong)x * p.PageSize)), (2, Gen.Choose(1, 100_000).Select(x => (ulong)x)),
            (2, Gen.Choose(10, 110).Select(pc => ramTop / 100 * (ulong)pc)), (1, Gen.Constant(0UL)));
        // 32-bit: a vmalloc that exactly fills the whole area (with its guard page), and one page either side.
        if (VmallocArea32(p, boot, ramTop) is { } area)
            vmallocSize = Gen.Frequency((3, vmallocSize), (2, Gen.Elements(area - 2 * p.PageSize, area - p.PageSize, area)));
        var vmalloc = vmallocSize.Select(z => new Spec(OpKind.Vmalloc, z));
        // Physical ranges for claims and ioremap: touching mem=, above RAM, inside RAM, unaligned.
        var physStart = Gen.Frequency(
            (4, Gen.Choose(-8, 8).Select(d => (ulong)Math.Max(0, (long)memLimit + d * (long)p.PageSize))),
            (2, Gen.Choose(0, 64).Select(d => ramTop + (ulong)d * p.PageSize)),
            (2, Gen.Elements(0xFED00000UL, 0xFEE00000UL, 0xE0000000UL)),
            (2, Gen.Choose(1, 4095).Select(x => (ulong)x * p.PageSize)),
            (1, Gen.Choose(-4, 4).Select(d => (ulong)Math.Max(0, (long)memLimit + d * 100))));
        var physSize = Sizes((4, Gen.Choose(1, 16).Select(x => (ulong)x * p.PageSize)), (2, Gen.Choose(1, 9000).Select(x => (ulong)x)),
            (1, Gen.Constant(0UL)), (1, Gen.Choose(1, 64).Select(x => (ulong)x << 20)));
        var claim = from a in physStart from z in physSize select new Spec(OpKind.RequestMemRegion, a, Number2: z);
        var ioremap = from a in physStart from z in physSize select new Spec(OpKind.Ioremap, a, Number2: z);
        var dmaSize = Sizes((4, Gen.Choose(1, 64).Select(x => (ulong)x * 512)), (2, Gen.Elements(block - 1, block, block + 1)), (1, Gen.Constant(0UL)),
            (2, Gen.Choose(1, 1024).Select(x => (ulong)x * p.PageSize)));
        var dma = from z in dmaSize from g in Gen.Frequency((5, Gen.Constant(Gfp.None)), (2, Gen.Constant(Gfp.Atomic)), (1, Gen.Constant(Gfp.Dma32)))
                  select new Spec(OpKind.DmaAllocCoherent, z, g);
        var meminfo = Gen.Constant(new Spec(OpKind.Meminfo));

        // memblock_free after mem_init: must be refused; a wild address keeps the minimal case short.
        var lateMemblockFree = anyRef.Select(r => new Spec(OpKind.MemblockFree, Ref: r, Variant: 2));
        var main = mix == OpMix.PagesOnly
            ? Gen.Frequency((10, alloc), (8, Free(OpKind.FreePages)), (1, context), (1, lateMemblockFree))
            : Gen.Frequency(
                (8, alloc), (6, Free(OpKind.FreePages)), (1, context),
                (8, kmalloc), (6, Free(OpKind.Kfree)),
                (2, cacheCreate), (5, cacheAlloc), (4, cacheFree), (1, cacheDestroy),
                (3, vmalloc), (2, Free(OpKind.Vfree)),
                (2, claim), (1, Free(OpKind.ReleaseMemRegion)), (2, ioremap), (1, Free(OpKind.Iounmap)),
                (2, dma), (2, Free(OpKind.DmaFreeCoherent)), (1, meminfo), (1, lateMemblockFree));

        var memblockAlloc =
            from size in Gen.Frequency((3, Frames(1, 64)), (1, Gen.Choose(1, 100_000).Select(x => (ulong)x)), (1, Frames(65, 1024)))
            from al in Gen.Frequency((4, Gen.Constant(0UL)), (2, Gen.Choose(12, 22).Select(s => 1UL << s)), (1, Gen.Elements(0UL, 3UL, 6000UL)))
            select new Spec(OpKind.MemblockAlloc, size, Align: al);
        var memblockFree = Gen.Choose(0, 1 << 20).Select(r => new Spec(OpKind.MemblockFree, Ref: r));
        var prefix =
            from n in Gen.Frequency((3, Gen.Constant(0)), (2, Gen.Choose(1, 4)))
            from specs in Gen.ListOf(Gen.Frequency((3, memblockAlloc), (1, memblockFree)), n)
            from explicitInit in Gen.Elements(true, false)
            select specs.Concat(n > 0 && explicitInit ? [new Spec(OpKind.MemInit)] : []).ToList();

        return Gen.Sized(size =>
            from pre in prefix
            from n in Gen.Choose(0, Math.Max(1, Math.Min(maxOps, size + 5)))
            from body in Gen.ListOf(main, n)
            from drain in Gen.Frequency((2, Gen.Constant(false)), (1, Gen.Constant(true)))
            from shuffle in Gen.Shuffle(Enumerable.Range(0, Math.Max(1, n)).ToArray())
            select Name(pre.Concat(body).ToList(), drain ? shuffle : null, p.PageSize));
    }

    /// <summary>
    /// 32-bit profiles: the size of the vmalloc area (VMALLOC_END - VMALLOC_START) for a single bank
    /// from 0, so the generator can aim at requests that exactly fill it. Null on 64-bit.
    /// </summary>
    private static ulong? VmallocArea32(Profile p, IReadOnlyList<BootParam> boot, ulong ramTop)
    {
        if (p.LowmemLimit is not { } limit || p.VmallocEnd32 == 0) return null;
        if (p.VmallocParamHonoured && boot.LastOrDefault(b => b.Kind == BootParamKind.Vmalloc) is { } v) limit = (1UL << 30) - v.Value;
        ulong mem = boot.LastOrDefault(b => b.Kind == BootParamKind.Mem)?.Value ?? ulong.MaxValue;
        ulong lowEnd = Math.Min(Math.Min(ramTop, mem), limit) / p.PageSize * p.PageSize;
        ulong off = p.VmallocOffset32, start = (p.PageOffset32 + lowEnd + off + off - 1) / off * off;
        return start < p.VmallocEnd32 ? p.VmallocEnd32 - start - p.PageSize : null;
    }

    /// <summary>
    /// Gives names to results and resolves index references into the pool of the right kind; with
    /// `drain`, frees everything still named at the end in the given order, so coalescing must
    /// restore the boot state.
    /// </summary>
    private static IReadOnlyList<Op> Name(List<Spec> specs, int[]? drain, ulong pageSize)
    {
        var ops = new List<Op>();
        var pools = new Dictionary<OpKind, List<(string Name, int Order)>>();
        var cacheObjects = new List<(string Name, int Cache)>();
        List<(string Name, int Order)> Pool(OpKind k) => pools.TryGetValue(k, out var l) ? l : pools[k] = [];
        string NewName(string prefix, OpKind k, int order = 0)
        {
            var pool = Pool(k);
            string name = prefix + pool.Count;
            pool.Add((name, order));
            return name;
        }
        Ref Wild(Spec s) => Ref.At(((ulong)(s.Ref % 4096) + 1) * pageSize * 256 + (ulong)(s.Ref % 3) * 8);

        // A free of the pool's element, or NULL / a wild address by variant.
        void Free(Spec s, OpKind pool, OpKind kind)
        {
            var list = Pool(pool);
            if (s.Variant == 3) { ops.Add(new Op { Kind = kind, Ref = Ref.At(0) }); return; }
            if (s.Variant == 2 || list.Count == 0) { if (s.Variant == 2) ops.Add(new Op { Kind = kind, Ref = Wild(s) }); return; }
            ops.Add(new Op { Kind = kind, Ref = Ref.To(list[s.Ref % list.Count].Name) });
        }

        foreach (var s in specs)
        {
            switch (s.Kind)
            {
                case OpKind.MemblockAlloc:
                    ops.Add(new Op { Kind = s.Kind, Bind = NewName("m", s.Kind), Number = s.Number, Align = s.Align == 0 ? null : s.Align });
                    break;
                case OpKind.MemblockFree when s.Variant == 2:
                    ops.Add(new Op { Kind = s.Kind, Ref = Wild(s) });
                    break;
                case OpKind.MemblockFree when Pool(OpKind.MemblockAlloc).Count > 0:
                    ops.Add(new Op { Kind = s.Kind, Ref = Ref.To(Pool(OpKind.MemblockAlloc)[s.Ref % Pool(OpKind.MemblockAlloc).Count].Name) });
                    break;
                case OpKind.MemInit:
                    ops.Add(new Op { Kind = OpKind.MemInit });
                    break;
                case OpKind.AllocPages:
                    ops.Add(new Op { Kind = s.Kind, Bind = NewName("p", s.Kind, (int)s.Number), Number = s.Number, Gfp = s.Gfp });
                    break;
                case OpKind.FreePages when s.Variant == 1 && Pool(OpKind.AllocPages).Count > 0:
                {
                    var (name, order) = Pool(OpKind.AllocPages)[s.Ref % Pool(OpKind.AllocPages).Count];
                    ops.Add(new Op { Kind = s.Kind, Ref = Ref.To(name), Order = order == 0 ? 1 : order - 1 });
                    break;
                }
                case OpKind.FreePages: Free(s, OpKind.AllocPages, OpKind.FreePages); break;
                case OpKind.Kmalloc:
                    ops.Add(new Op { Kind = s.Kind, Bind = NewName("k", s.Kind), Number = s.Number, Gfp = s.Gfp });
                    break;
                case OpKind.Kfree: Free(s, OpKind.Kmalloc, OpKind.Kfree); break;
                case OpKind.KmemCacheCreate:
                    ops.Add(new Op { Kind = s.Kind, Bind = NewName("c", s.Kind), Number = s.Number, Align = s.Align == 0 ? null : s.Align });
                    break;
                case OpKind.KmemCacheAlloc when Pool(OpKind.KmemCacheCreate).Count > 0:
                {
                    int c = s.Ref % Pool(OpKind.KmemCacheCreate).Count;
                    string name = "o" + cacheObjects.Count;
                    cacheObjects.Add((name, c));
                    ops.Add(new Op { Kind = s.Kind, Bind = name, Ref = Ref.To(Pool(OpKind.KmemCacheCreate)[c].Name), Gfp = s.Gfp });
                    break;
                }
                case OpKind.KmemCacheFree when cacheObjects.Count > 0:
                {
                    var (name, c) = cacheObjects[s.Ref % cacheObjects.Count];
                    var caches = Pool(OpKind.KmemCacheCreate);
                    int cache = s.Variant == 1 ? (c + 1) % caches.Count : c;   // variant 1: the wrong cache
                    ops.Add(new Op { Kind = s.Kind, Ref = Ref.To(caches[cache].Name), Ref2 = s.Variant == 2 ? Wild(s) : Ref.To(name) });
                    break;
                }
                case OpKind.KmemCacheDestroy when Pool(OpKind.KmemCacheCreate).Count > 0:
                    ops.Add(new Op { Kind = s.Kind, Ref = Ref.To(Pool(OpKind.KmemCacheCreate)[s.Ref % Pool(OpKind.KmemCacheCreate).Count].Name) });
                    break;
                case OpKind.Vmalloc:
                    ops.Add(new Op { Kind = s.Kind, Bind = NewName("v", s.Kind), Number = s.Number });
                    break;
                case OpKind.Vfree: Free(s, OpKind.Vmalloc, OpKind.Vfree); break;
                case OpKind.RequestMemRegion:
                    ops.Add(new Op { Kind = s.Kind, Bind = NewName("r", s.Kind), Number = s.Number, Number2 = s.Number2 });
                    break;
                case OpKind.ReleaseMemRegion: Free(s, OpKind.RequestMemRegion, OpKind.ReleaseMemRegion); break;
                case OpKind.Ioremap:
                    ops.Add(new Op { Kind = s.Kind, Bind = NewName("io", s.Kind), Number = s.Number, Number2 = s.Number2 });
                    break;
                case OpKind.Iounmap: Free(s, OpKind.Ioremap, OpKind.Iounmap); break;
                case OpKind.DmaAllocCoherent:
                    ops.Add(new Op { Kind = s.Kind, Bind = NewName("d", s.Kind), Number = s.Number, Gfp = s.Gfp });
                    break;
                case OpKind.DmaFreeCoherent: Free(s, OpKind.DmaAllocCoherent, OpKind.DmaFreeCoherent); break;
                case OpKind.Context:
                    ops.Add(new Op { Kind = s.Kind, Atomic = s.Variant == 1 });
                    break;
                case OpKind.Meminfo:
                    ops.Add(new Op { Kind = s.Kind });
                    break;
            }
        }
        if (drain is not null)
        {
            // Free what is named, in a shuffled order for pages (coalescing), then the rest.
            ops.Add(new Op { Kind = OpKind.Context, Atomic = false });
            var pages = Pool(OpKind.AllocPages);
            foreach (int i in drain.Where(i => i < pages.Count)) ops.Add(new Op { Kind = OpKind.FreePages, Ref = Ref.To(pages[i].Name) });
            for (int i = drain.Length; i < pages.Count; i++) ops.Add(new Op { Kind = OpKind.FreePages, Ref = Ref.To(pages[i].Name) });
            var caches = Pool(OpKind.KmemCacheCreate);
            foreach (var (name, c) in cacheObjects) ops.Add(new Op { Kind = OpKind.KmemCacheFree, Ref = Ref.To(caches[c].Name), Ref2 = Ref.To(name) });
            foreach (var (pool, kind) in new[] { (OpKind.Kmalloc, OpKind.Kfree), (OpKind.Vmalloc, OpKind.Vfree), (OpKind.DmaAllocCoherent, OpKind.DmaFreeCoherent),
                         (OpKind.Ioremap, OpKind.Iounmap), (OpKind.RequestMemRegion, OpKind.ReleaseMemRegion), (OpKind.KmemCacheCreate, OpKind.KmemCacheDestroy) })
                foreach (var (name, _) in Pool(pool)) ops.Add(new Op { Kind = kind, Ref = Ref.To(name) });
        }
        return ops;
    }
}
