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
}

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
        from ops in Ops(profile, boot, o.MaxOps)
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

    /// <summary>An operation before names are given: references are indices into earlier allocations.</summary>
    private sealed record Spec(OpKind Kind, ulong Number = 0, Gfp Gfp = Gfp.None, int Ref = 0, int Variant = 0, ulong Align = 0);

    private static Gen<IReadOnlyList<Op>> Ops(Profile p, IReadOnlyList<BootParam> boot, int maxOps)
    {
        int largest = boot.FirstOrDefault(b => b.Kind == BootParamKind.MaxOrder) is { } mo
            ? (p.MaxOrderInclusive ? (int)mo.Value : (int)mo.Value - 1)
            : (p.MaxOrderInclusive ? p.MaxOrder : p.MaxOrder - 1);
        var order = Gen.Frequency(
            (6, Gen.Constant(0)), (6, Gen.Choose(1, 3)), (4, Gen.Choose(0, Math.Max(0, largest))),
            (2, Gen.Constant(Math.Max(0, largest))), (1, Gen.Constant(largest + 1)), (1, Gen.Choose(largest + 1, largest + 3)));
        var gfp = Gen.Frequency(
            (10, Gen.Constant(Gfp.None)), (3, Gen.Constant(Gfp.Atomic)), (2, Gen.Constant(Gfp.Dma)),
            (2, Gen.Constant(Gfp.Dma32)), (1, Gen.Constant(Gfp.HighUser)), (1, Gen.Constant(Gfp.NoWait)),
            (1, Gen.Constant(Gfp.Atomic | Gfp.Dma)), (1, Gen.Constant(Gfp.Kernel | Gfp.Atomic)),
            (1, Gen.Elements(Gfp.Dma | Gfp.Dma32, Gfp.Dma | Gfp.HighUser)));
        var alloc = from o in order from g in gfp select new Spec(OpKind.AllocPages, (ulong)o, g);
        // Variant: 0 default order, 1 wrong order, 2 wild address inside the block, 3 NULL.
        var free = from r in Gen.Choose(0, 1 << 20)
                   from v in Gen.Frequency((20, Gen.Constant(0)), (1, Gen.Constant(1)), (1, Gen.Constant(2)), (1, Gen.Constant(3)))
                   select new Spec(OpKind.FreePages, Ref: r, Variant: v);
        var context = Gen.Elements(0, 1).Select(a => new Spec(OpKind.Context, Variant: a));
        var main = Gen.Frequency((10, alloc), (8, free), (1, context));

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

    /// <summary>Gives names to allocations and resolves index references; with `drain`, frees every
    /// page allocation at the end in the given order, so coalescing must restore the boot state.</summary>
    private static IReadOnlyList<Op> Name(List<Spec> specs, int[]? drain, ulong pageSize)
    {
        var ops = new List<Op>();
        var pages = new List<(string Name, int Order)>();
        var blocks = new List<string>();
        foreach (var s in specs)
        {
            switch (s.Kind)
            {
                case OpKind.MemblockAlloc:
                {
                    string name = "m" + blocks.Count;
                    blocks.Add(name);
                    ops.Add(new Op { Kind = s.Kind, Bind = name, Number = s.Number, Align = s.Align == 0 ? null : s.Align });
                    break;
                }
                case OpKind.MemblockFree when blocks.Count > 0:
                    ops.Add(new Op { Kind = s.Kind, Ref = Ref.To(blocks[s.Ref % blocks.Count]) });
                    break;
                case OpKind.MemInit:
                    ops.Add(new Op { Kind = OpKind.MemInit });
                    break;
                case OpKind.AllocPages:
                {
                    string name = "p" + pages.Count;
                    pages.Add((name, (int)s.Number));
                    ops.Add(new Op { Kind = s.Kind, Bind = name, Number = s.Number, Gfp = s.Gfp });
                    break;
                }
                case OpKind.FreePages when s.Variant == 3:
                    ops.Add(new Op { Kind = s.Kind, Ref = Ref.At(0) });
                    break;
                case OpKind.FreePages when pages.Count > 0:
                {
                    var (name, order) = pages[s.Ref % pages.Count];
                    ops.Add(s.Variant switch
                    {
                        1 => new Op { Kind = s.Kind, Ref = Ref.To(name), Order = order == 0 ? 1 : order - 1 },
                        2 => new Op { Kind = s.Kind, Ref = Ref.At(((ulong)(s.Ref % 4096) + 1) * pageSize * 256) },
                        _ => new Op { Kind = s.Kind, Ref = Ref.To(name) },
                    });
                    break;
                }
                case OpKind.Context:
                    ops.Add(new Op { Kind = s.Kind, Atomic = s.Variant == 1 });
                    break;
            }
        }
        if (drain is not null)
        {
            ops.Add(new Op { Kind = OpKind.Context, Atomic = false });
            foreach (int i in drain.Where(i => i < pages.Count))
                ops.Add(new Op { Kind = OpKind.FreePages, Ref = Ref.To(pages[i].Name) });
            // Indices beyond the shuffle's range (more allocations than the body length) in order.
            for (int i = drain.Length; i < pages.Count; i++)
                ops.Add(new Op { Kind = OpKind.FreePages, Ref = Ref.To(pages[i].Name) });
        }
        return ops;
    }
}
