using System.Numerics;
using Kmem.Scenarios;

namespace Kmem.Runner;

/// <summary>What shrinking did: the minimal scenario, its verdict, and how much work it took.</summary>
/// <param name="Attempts">Candidate runs (each one a full run of the candidate against target and model).</param>
/// <param name="Accepted">Candidates that kept the failure and replaced the current scenario.</param>
public sealed record ShrinkResult(Scenario Scenario, Verdict Verdict, int Attempts, int Accepted)
{
    /// <summary>Operations executed by all candidate runs together (what the time goes into).</summary>
    public long StepsRun { get; init; }
    /// <summary>Accepted moves by kind (truncate, slice, boundary, gfp, chunk, merge, absorb, retarget, header, value, pairs), for reports.</summary>
    public IReadOnlyDictionary<string, int> AcceptedBy { get; init; } = new Dictionary<string, int>();
}

/// <summary>
/// The one minimizer every engine uses (generated, fuzzed and hand-written failures alike). It
/// removes and simplifies operations and boot parameters while the failure keeps its signature
/// (invariant + operation), and accepts a candidate only when it is strictly simpler by
/// <see cref="Complexity"/>, so it always ends. Deterministic: the same input always shrinks to the
/// same output.
/// <para>Moves, cheapest and most effective first:</para>
/// <list type="number">
/// <item>truncate: operations after the failing step never run, so they go without a run;</item>
/// <item>slice: the failing operation with only the operations it refers to (one run);</item>
/// <item>boundary: the failing operation alone at a boundary value the model computes: a vmalloc that
/// fills the vmalloc area, or an allocation on a machine sized to leave its zone at a watermark
/// (<see cref="TryWatermarkBoundary"/>);</item>
/// <item>gfp: the failing allocation alone with each of a few GFP masks (a mask can stand in for the
/// context an operation needed: <see cref="TryGfpAlone"/>);</item>
/// <item>chunks: delta debugging, removing big chunks first, halving down to single operations;</item>
/// <item>merge: two allocations replaced by one larger (their frees merge with them), two memblock
/// allocations by one of the summed size;</item>
/// <item>absorb: allocations never freed dropped, and the machine made smaller by what they took;</item>
/// <item>retarget: a free of one allocation made to free another of the same kind, so the first can
/// go (<see cref="Retarget"/>);</item>
/// <item>header: boot parameters, memmap entries, holes and banks dropped; banks, holes, then boot
/// parameters moved to round values (fewer set bits, within a factor of two);</item>
/// <item>values: expectations and flags dropped, orders and sizes lowered and rounded;</item>
/// <item>pairs: one header change together with one operation removed (out of a local minimum of the
/// moves above), only when nothing else moves.</item>
/// </list>
/// Every accepted run also truncates the scenario after its own failing step, so runs get shorter
/// as shrinking goes on (the run function must stop at the first violation and report its step, as
/// <see cref="ScenarioRunner.Run"/> does). Short candidates already rejected are not run twice.
/// </summary>
public sealed class Shrinker
{
    private readonly Func<Scenario, Verdict> run;
    private readonly string signature;
    private readonly int maxAttempts;
    private int attempts, accepted;
    private long stepsRun;
    private Verdict best;
    private readonly Dictionary<string, int> acceptedBy = new();
    /// <summary>Short candidates already run and rejected (runs are deterministic: a second run would reject them again).</summary>
    private readonly HashSet<string> rejected = new(StringComparer.Ordinal);
    /// <summary>Machines (header and failing operation) the watermark boundary move has already been tried on.</summary>
    private readonly HashSet<string> boundaryTried = new(StringComparer.Ordinal);
    private const int MemoMaxOps = 200;

    public Shrinker(Func<Scenario, Verdict> run, Verdict original, int maxAttempts = 50_000)
    {
        if (original.Ok) throw new ArgumentException("the verdict is not a failure; nothing to shrink", nameof(original));
        this.run = run;
        signature = original.Signature;
        best = original;
        this.maxAttempts = maxAttempts;
    }

    public static ShrinkResult Shrink(Scenario s, Func<Scenario, Verdict> run, int maxAttempts = 50_000)
    {
        var v = run(s);
        if (v.Ok) throw new ArgumentException("the scenario does not fail; nothing to shrink");
        return new Shrinker(run, v, maxAttempts).Minimize(s);
    }

    /// <summary>Shrinks <paramref name="s"/>, which must fail with the verdict given to the constructor.</summary>
    public ShrinkResult Minimize(Scenario s)
    {
        var closed = Close(s);
        if (!ReferenceEquals(closed, s))
        {
            // Close dropped dangling operations; make sure the failure did not depend on them.
            var v = Run(closed);
            if (v is { Ok: false } && v.Signature == signature) { s = closed; best = v; }
        }
        s = Truncate(s, best, "truncate");
        TrySlice(ref s);
        TryBoundary(ref s);
        TryWatermarkBoundary(ref s);
        TryGfpAlone(ref s);
        bool progress = true;
        while (progress && attempts < maxAttempts)
        {
            progress = RemoveChunks(ref s);
            progress |= MergeOps(ref s);
            progress |= Absorb(ref s);
            progress |= TryWatermarkBoundary(ref s);
            progress |= TryGfpAlone(ref s);
            progress |= Retarget(ref s);
            progress |= SimplifyHeader(ref s);
            progress |= SimplifyOps(ref s);
            if (!progress) progress = RemovePairs(ref s);
        }
        return new ShrinkResult(s, best, attempts, accepted) { StepsRun = stepsRun, AcceptedBy = new Dictionary<string, int>(acceptedBy) };
    }

    private Verdict? Run(Scenario candidate)
    {
        attempts++;
        try
        {
            var v = run(candidate);
            stepsRun += v.Ok ? candidate.Ops.Count : Math.Min(v.Step, candidate.Ops.Count);
            return v;
        }
        // A candidate the runner cannot run (an operation this build lacks, a machine the target
        // refuses) is simply not simpler: the original ran, so rejecting it is always safe.
        catch (Exception e) when (e is UnsupportedScenarioException or ArgumentException or InvalidOperationException
                                      or ScenarioException or OverflowException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    private bool Try(Scenario candidate, ref Scenario current, string move, bool validate = false, ulong grow = 0)
    {
        if (attempts >= maxAttempts) return false;
        // Only strictly simpler candidates, so shrinking always ends (no move can undo another).
        if (Complexity(candidate).CompareTo(Complexity(current)) >= 0) return false;
        // Header and value moves can leave the language (a bank that overlaps another, an order the
        // parser refuses): the result is written as .kmem, so it must parse back. Nor may they grow
        // the physical address space: a bank moved up to a round 1 TiB makes every run scan 2^28 frames.
        if (validate && (Top(candidate) > Sat(Top(current), grow) || !Parses(candidate))) return false;
        string? key = candidate.Ops.Count <= MemoMaxOps ? ScenarioPrinter.Print(candidate) : null;
        if (key is not null && rejected.Contains(key)) return false;
        var v = Run(candidate);
        if (v is null || v.Ok || v.Signature != signature)
        {
            if (key is not null) rejected.Add(key);
            return false;
        }
        best = v;
        accepted++;
        acceptedBy[move] = acceptedBy.GetValueOrDefault(move) + 1;
        current = Truncate(candidate, v, null);
        return true;
    }

    /// <summary>The highest physical address the header mentions: the end of RAM, a hole or a memmap= range.</summary>
    private static ulong Top(Scenario s)
    {
        var h = s.Header;
        ulong top = h.Ram.Count == 0 ? Profiles.Get(s.ProfileName)?.DefaultRam ?? 0 : 0;
        foreach (var r in h.Ram.Concat(h.Holes)) top = Math.Max(top, Sat(r.Start, r.Size));
        foreach (var b in h.Boot)
            foreach (var e in b.Entries)
                top = Math.Max(top, e.Kind == MemmapKind.MemLimit ? 0 : Sat(e.Start, e.Size));
        return top;
    }

    private static ulong Sat(ulong a, ulong b) => a + b < a ? ulong.MaxValue : a + b;

    private static bool Parses(Scenario s)
    {
        try
        {
            ScenarioParser.Parse(ScenarioPrinter.Print(s));
            return true;
        }
        catch (ScenarioException) { return false; }
        catch (ArgumentException) { return false; }
    }

    /// <summary>
    /// The operations after the failing step never ran: the same scenario without them fails the same
    /// way at the same step (the runner is deterministic and stops at the first violation).
    /// </summary>
    private Scenario Truncate(Scenario s, Verdict v, string? move)
    {
        int keep = v.Step <= 0 ? 0 : v.Step;
        if (keep >= s.Ops.Count) return s;
        if (move is not null) acceptedBy[move] = acceptedBy.GetValueOrDefault(move) + 1;
        return s with { Ops = s.Ops.Take(keep).ToList() };
    }

    /// <summary>The failing operation and, transitively, the operations that bind the names it uses.</summary>
    private void TrySlice(ref Scenario s)
    {
        if (s.Ops.Count <= 1 || best.Step < 1 || best.Step > s.Ops.Count) return;
        var deps = Dependencies(s.Ops);
        var keep = new SortedSet<int>();
        var todo = new Stack<int>();
        todo.Push(best.Step - 1);
        while (todo.Count > 0)
        {
            int i = todo.Pop();
            if (!keep.Add(i)) continue;
            foreach (int d in deps[i]) todo.Push(d);
        }
        var all = s.Ops;
        if (keep.Count < all.Count)
            Try(s with { Ops = keep.Select(i => all[i]).ToList() }, ref s, "slice");
    }

    /// <summary>Masks the GFP move tries on a failing allocation alone (each a separate rule of the model).</summary>
    private static readonly Gfp[] GfpCandidates =
        [Gfp.None, Gfp.Atomic, Gfp.NoWait, Gfp.Dma, Gfp.Dma32, Gfp.HighUser, Gfp.Dma | Gfp.Dma32, Gfp.Dma32 | Gfp.Atomic, Gfp.HighUser | Gfp.Atomic];

    /// <summary>Failing operations the GFP move has already been tried on.</summary>
    private readonly HashSet<string> gfpTried = new(StringComparer.Ordinal);

    /// <summary>
    /// The failing allocation alone, with each of a few GFP masks: a failure that needs context
    /// (`context atomic` before a GFP_KERNEL kmalloc) often fails the same way with a mask alone
    /// (a zone modifier the allocator must refuse). At most <see cref="GfpCandidates"/> runs per
    /// failing operation.
    /// </summary>
    private bool TryGfpAlone(ref Scenario s)
    {
        if (s.Ops.Count <= 1 || best.Step < 1 || best.Step > s.Ops.Count) return false;
        var op = s.Ops[best.Step - 1];
        if (op.Kind is not (OpKind.AllocPages or OpKind.Kmalloc or OpKind.DmaAllocCoherent) || op.Ref is not null) return false;
        if (!gfpTried.Add(ScenarioPrinter.Print(s with { Ops = [op] }))) return false;
        foreach (var g in GfpCandidates)
            if (Try(s with { Ops = [op with { Gfp = g, Expected = null }] }, ref s, "gfp")) return true;
        return false;
    }

    /// <summary>
    /// A failing vmalloc alone, sized to fill the whole (fresh) vmalloc area with its guard page, give or
    /// take a page: the boundary value where gap arithmetic goes wrong, reached by a long input only
    /// through a fragmented area. The area's size comes from the model of the scenario's machine.
    /// </summary>
    private void TryBoundary(ref Scenario s)
    {
        if (best.Step < 1 || best.Step > s.Ops.Count || s.Ops[best.Step - 1] is not { Kind: OpKind.Vmalloc } op) return;
        ulong area, page;
        try
        {
            var machine = Target.MachineConfig.From(s);
            var spec = new Model.KernelSpec(Bridge.ToModel(machine));
            area = spec.VmallocEnd - spec.VmallocStart;
            page = machine.Profile.PageSize;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or OverflowException or OutOfMemoryException)
        {
            return;
        }
        if (area <= 4 * page || area > 1UL << 40) return;
        foreach (ulong guard in new ulong[] { 1, 2, 0, 3 })
            if (Try(s with { Ops = [op with { Number = area - guard * page }] }, ref s, "boundary")) return;
    }

    /// <summary>
    /// A watermark failure (signature <c>watermarks/…</c> or <c>zone/…</c>) needs a zone whose free pages
    /// sit right at a watermark; a long input gets there by filling memory one allocation at a time, and
    /// no removal or absorption keeps such a narrow window reliably. Here: the failing allocation alone,
    /// as one larger block, on the same machine with its top of memory moved (banks, else mem=) to end
    /// inside one zone of the allocation's zone list, sized so that the block leaves that zone exactly at
    /// its min or low watermark, or halfway into GFP_ATOMIC's reserves below it: the boundary where
    /// watermark arithmetic goes wrong. A zone choice (<c>zone/…</c>) needs a lower zone to fall back on,
    /// so the first zone of the list is tried first; a watermark verdict (the allocation must fail) needs
    /// none, so the last. Orders from the largest down (the larger the block, the wider the window). The
    /// sizes come from the model's own arithmetic (managed pages, watermarks and lowmem reserves after
    /// mem_init), a few fixed-point steps per candidate since the watermarks move with the zone's size:
    /// model boots, no runs. Tried once per machine, with at most <see cref="BoundaryCandidates"/> runs
    /// per machine and <see cref="BoundaryMaxRuns"/> runs and <see cref="BoundaryMaxBoots"/> boots in all.
    /// </summary>
    private bool TryWatermarkBoundary(ref Scenario s)
    {
        if (boundaryRuns >= BoundaryMaxRuns || boundaryBoots >= BoundaryMaxBoots || s.Ops.Count < 1) return false;
        bool fallBack = signature.StartsWith("zone/", StringComparison.Ordinal);
        if (!fallBack && !signature.StartsWith("watermarks/", StringComparison.Ordinal)) return false;
        if (best.Step < 1 || best.Step > s.Ops.Count || s.Ops[best.Step - 1] is not { Kind: OpKind.AllocPages or OpKind.Kmalloc } op) return false;
        var profile = Profiles.Get(s.ProfileName);
        if (profile is null || !profile.Watermarks) return false;
        // The header as the machine sees it: default RAM made explicit, so that its top can move.
        var h = s.Header.Ram.Count > 0 ? s.Header
            : s.Header with { Ram = [new Scenarios.Range(0, profile.DefaultRam)], Holes = s.Header.Holes.Count > 0 ? s.Header.Holes : profile.DefaultHoles };
        var bare = s with { Header = h, Ops = [] };
        if (!boundaryTried.Add(ScenarioPrinter.Print(bare) + "\n" + ScenarioPrinter.Print(op))) return false;
        if (BootForSizes(bare) is not { } spec0) return false;
        var pages0 = spec0.Pages;
        var list = pages0.ZoneList(Bridge.ToModel(op.EffectiveGfp));
        if (list.Length == 0) return false;
        var classZone = list[0];
        ulong page = profile.PageSize;
        int shift = pages0.Layout.PageShift;
        int k0 = op.Kind == OpKind.AllocPages ? (int)Math.Min(op.Number, 63) : spec0.Bucket(op.Number) == 0 ? spec0.GetOrder(op.Number) : 0;
        int tried = 0;
        // The machine as it is, then a plain one (one bank from 0, no holes, no memmap=), for when a hole or
        // a reservation leaves the zone no aligned run of the order.
        var plain = bare with { Header = h with { Ram = [new Scenarios.Range(0, Top(bare))], Holes = [], Boot = h.Boot.Where(b => b.Kind is not (BootParamKind.Mem or BootParamKind.Memmap)).ToList() } };
        var machines = ScenarioPrinter.Print(plain) == ScenarioPrinter.Print(bare) ? [bare] : new[] { bare, plain };
        foreach (var zone in fallBack ? list : list.Reverse())
        foreach (var machine in machines)
        {
            int z = (int)zone;
            if (pages0.Managed[z] == 0) continue;
            for (int k = pages0.LargestOrder; k >= Math.Max(k0, 1); k--)
            {
                Op grown;
                if (op.Kind == OpKind.AllocPages) grown = op with { Number = (ulong)k, Expected = null };
                else
                {
                    ulong size = page << k;
                    if (size > spec0.KmallocMaxSize || spec0.Bucket(size) != 0) continue;
                    grown = op with { Number = size, Expected = null };
                }
                // Where the zone's free pages, less the block, should land: at the mark (the pass must
                // skip the zone, with nothing to spare), or halfway down into the atomic reserves.
                foreach (var (min, halfway) in new[] { (true, false), (false, false), (true, true), (false, true) })
                {
                    long Target(Model.PageSpec p)
                    {
                        long mark = min ? p.WmarkMin[z] : p.WmarkLow[z];
                        long at = halfway ? (mark + Model.PageSpec.ReducedMark(mark, Model.GfpBits.Atomic)) / 2 : mark;
                        return at + p.LowmemReserve[z, (int)classZone];
                    }
                    // First guess: the zone's start plus the pages it needs; then correct by what the model says.
                    ulong top = Math.Max((ulong)pages0.Layout.Zones[z].Start << shift, profile.LowReserved);
                    long need = Target(pages0) + (1L << k) - 1;
                    Model.PageSpec? p = null;
                    Scenario? c = null;
                    bool ok = false;
                    for (int step = 0; step < 5 && boundaryBoots < BoundaryMaxBoots; step++)
                    {
                        long delta = p is null ? need : Target(p) + (1L << k) - 1 - p.FreeCount[z];
                        if (p is not null && delta == 0) { ok = true; break; }
                        if (delta < 0 && (ulong)(-delta) * page > top) break;
                        top = (ulong)((long)top + delta * (long)page);
                        boundaryBoots++;
                        if (SetTop(machine, top) is not { } moved || BootForSizes(moved) is not { } spec) break;
                        (c, p) = (moved, spec.Pages);
                    }
                    if (!ok || c is null || p is null || !p.HasRunInZone(zone, k) || Enumerable.Range(z + 1, 3 - z).Any(j => p.Managed[j] > 0)) continue;
                    if (tried++ >= BoundaryCandidates || boundaryRuns >= BoundaryMaxRuns) return false;
                    int before = attempts;
                    bool accepted = Try(c with { Ops = [grown] }, ref s, "boundary", validate: true, grow: page << pages0.LargestOrder);
                    boundaryRuns += attempts - before;
                    if (accepted) return true;
                }
            }
        }
        return false;
    }

    /// <summary>Runs of <see cref="TryWatermarkBoundary"/> per machine and in all, and model boots in all.</summary>
    private const int BoundaryCandidates = 6, BoundaryMaxRuns = 24, BoundaryMaxBoots = 400;
    private int boundaryRuns, boundaryBoots;

    /// <summary>The model of a machine after mem_init (for sizes only: no operation runs), or null when the machine is refused or too large to boot cheaply.</summary>
    private static Model.KernelSpec? BootForSizes(Scenario s)
    {
        try
        {
            var machine = Target.MachineConfig.From(s);
            if (Top(s) > (1UL << 34)) return null;
            var spec = new Model.KernelSpec(Bridge.ToModel(machine));
            return spec.Pages.MemInit(Model.Result.Ok) is null ? spec : null;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or OverflowException or OutOfMemoryException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>
    /// The machine with its RAM ending at <paramref name="top"/>: banks (and holes) above it dropped, the
    /// one across it shortened, or the highest bank lengthened; mem= only where banks cannot say it (RAM
    /// that memmap= adds above the top). Any mem= of the input goes.
    /// </summary>
    private static Scenario? SetTop(Scenario s, ulong top)
    {
        var h = s.Header;
        if (top <= 1UL << 20 || h.Ram.Count == 0) return null;
        var boot = h.Boot.Where(b => b.Kind != BootParamKind.Mem).ToList();
        bool usableAbove = boot.Any(b => b.Entries.Any(e => e.Kind == MemmapKind.Usable && Sat(e.Start, e.Size) > top));
        var ram = h.Ram.Where(r => r.Start < top).Select(r => r.End > top ? r with { Size = top - r.Start } : r).ToList();
        var holes = h.Holes.Where(r => r.Start < top).Select(r => r.End > top ? r with { Size = top - r.Start } : r).ToList();
        if (ram.Count == 0) return null;
        int t = Enumerable.Range(0, ram.Count).MaxBy(i => ram[i].End);
        if (ram[t].End < top)
        {
            if (usableAbove || boot.Any(b => b.Entries.Any(e => e.Kind == MemmapKind.Usable && e.Start >= ram[t].End))) return null;
            ram[t] = ram[t] with { Size = top - ram[t].Start };
        }
        if (usableAbove) boot.Add(new BootParam { Kind = BootParamKind.Mem, Value = top });
        return s with { Header = h with { Ram = ram, Holes = holes, Boot = boot } };
    }

    /// <summary>For each operation, the indices of the operations that bound the names it refers to.</summary>
    private static List<int>[] Dependencies(IReadOnlyList<Op> ops)
    {
        var latest = new Dictionary<string, int>();
        var deps = new List<int>[ops.Count];
        for (int i = 0; i < ops.Count; i++)
        {
            var op = ops[i];
            deps[i] = [];
            if (op.Ref is { IsName: true } r && latest.TryGetValue(r.Name!, out int a)) deps[i].Add(a);
            if (op.Ref2 is { IsName: true } r2 && latest.TryGetValue(r2.Name!, out int b)) deps[i].Add(b);
            if (op.Bind is not null) latest[op.Bind] = i;
        }
        return deps;
    }

    /// <summary>Delta debugging over operations: remove chunks, halving the chunk size down to one.</summary>
    private bool RemoveChunks(ref Scenario s)
    {
        bool any = false;
        for (int chunk = Math.Max(1, s.Ops.Count / 2); chunk >= 1; chunk /= 2)
        {
            // From the end backwards: the failing operation is last, so the chunks right before it are
            // tried first, and a removal never shifts the chunks still to be tried. Chunks of more than
            // one operation leave the failing operation in place (without it a candidate hardly ever
            // fails the same way, and costs a whole run to find out).
            for (int end = chunk > 1 ? s.Ops.Count - 1 : s.Ops.Count; end > 0;)
            {
                int start = Math.Max(0, end - chunk);
                if (start >= s.Ops.Count) { end = s.Ops.Count; continue; }
                var ops = new List<Op>(s.Ops.Count - (end - start));
                for (int i = 0; i < s.Ops.Count; i++)
                    if (i < start || i >= end) ops.Add(s.Ops[i]);
                if (Try(Close(s with { Ops = ops }), ref s, "chunk")) any = true;
                end = Math.Min(start, s.Ops.Count);
            }
        }
        return any;
    }

    /// <summary>
    /// Two allocations become one larger one: alloc_pages of orders a and b become one of order
    /// max(a, b) + 1 (or max(a, b)), memblock_alloc of sizes a and b one of a + b. The operations that
    /// used the dropped allocation's name (its free) go with it, so two frees merge into one.
    /// </summary>
    private bool MergeOps(ref Scenario s)
    {
        bool any = false;
        foreach (var kind in new[] { OpKind.AllocPages, OpKind.MemblockAlloc, OpKind.Kmalloc, OpKind.Vmalloc })
        {
            for (int i = 0; i < s.Ops.Count; i++)
            {
                if (s.Ops[i].Kind != kind) continue;
                for (int j = i + 1; j < s.Ops.Count; j++)
                {
                    if (s.Ops[j].Kind != kind) continue;
                    bool merged = false;
                    foreach (var op in Merged(s.Ops[i], s.Ops[j]))
                    {
                        var ops = s.Ops.ToList();
                        ops[i] = op;
                        ops.RemoveAt(j);
                        // References to the dropped name go too, unless the name was bound again before.
                        if (Try(Close(DropName(s with { Ops = ops }, s.Ops[j].Bind, j)), ref s, "merge", validate: true))
                        { any = merged = true; break; }
                    }
                    if (merged) { j = i; continue; }
                    break; // only neighbours of the same kind: pairs further apart rarely merge, and cost O(n^2)
                }
            }
        }
        return any;
    }

    /// <summary>
    /// A free that refers to one allocation made to refer to another of the same kind (with the first
    /// one's order, so it frees what it freed before), so that the first allocation and its other uses
    /// can go: `a = alloc; free a; b = alloc 1; free a` (a double free that lands on b) becomes
    /// `b = alloc 1; free b order=0`. Short scenarios only (it tries pairs of names).
    /// </summary>
    private bool Retarget(ref Scenario s)
    {
        if (s.Ops.Count > 16) return false;
        for (int i = s.Ops.Count - 1; i >= 0; i--)
        {
            if (i >= s.Ops.Count || s.Ops[i].Ref is not { IsName: true } r) continue;
            var ops = s.Ops;
            int bx = LastIndex(ops, i, o => o.Bind == r.Name);
            if (bx < 0) continue;
            for (int by = i - 1; by >= 0; by--)
            {
                var y = ops[by];
                if (by == bx || y.Bind is null || y.Bind == r.Name || y.Kind != ops[bx].Kind) continue;
                var op = ops[i] with { Ref = Ref.To(y.Bind) };
                if (op.Kind == OpKind.FreePages && op.Order is null && ops[bx].Kind == OpKind.AllocPages)
                    op = op with { Order = (int)Math.Min(ops[bx].Number, ScenarioParser.MaxOrderNumber) };
                var candidate = new List<Op>(ops.Count);
                for (int j = 0; j < ops.Count; j++)
                {
                    if (j == i) { candidate.Add(op); continue; }
                    if (j == bx) continue;
                    if (j > bx && (ops[j].Ref is { IsName: true } a && a.Name == r.Name || ops[j].Ref2 is { IsName: true } b && b.Name == r.Name)) continue;
                    candidate.Add(ops[j]);
                }
                if (Try(Close(s with { Ops = candidate }), ref s, "retarget", validate: true)) return true;
            }
        }
        return false;
    }

    private static int LastIndex(IReadOnlyList<Op> ops, int before, Func<Op, bool> p)
    {
        for (int j = before - 1; j >= 0; j--) if (p(ops[j])) return j;
        return -1;
    }

    /// <summary>
    /// Allocations that are never freed, replaced by less memory: they are dropped and the machine
    /// shrinks by the pages they took (mem= when there is one, else the highest RAM bank). A failure
    /// that needs memory to be nearly full (a watermark, ENOMEM) then needs no operation to fill it.
    /// First all of them at once, then one at a time from the last.
    /// </summary>
    private bool Absorb(ref Scenario s)
    {
        var profile = Profiles.Get(s.ProfileName);
        if (profile is null || s.Ops.Count < 2 || (s.Header.Ram.Count == 0 && !s.Header.Boot.Any(b => b.Kind == BootParamKind.Mem))) return false;
        var used = new HashSet<string>();
        foreach (var op in s.Ops)
        {
            if (op.Ref is { IsName: true } r) used.Add(r.Name!);
            if (op.Ref2 is { IsName: true } r2) used.Add(r2.Name!);
        }
        // Never the failing operation (the last one), nor anything something else refers to.
        var ops0 = s.Ops;
        var absorbable = Enumerable.Range(0, ops0.Count - 1)
            .Where(i => ops0[i].Bind is { } name && !used.Contains(name) && PagesTaken(ops0[i], profile.PageSize) > 0)
            .ToList();
        if (absorbable.Count == 0) return false;
        // The watermarks move with the managed pages, so the exact amount may miss a narrow window by
        // a few pages: nearby amounts too.
        bool TryAbsorb(IReadOnlyList<int> drop, ref Scenario cur)
        {
            foreach (long delta in drop.Count > 1 ? AbsorbDeltas : AbsorbDeltasOne)
                if (Shrunk(cur, drop, profile, delta) is { } c && Try(c, ref cur, "absorb", validate: true)) return true;
            return false;
        }
        if (absorbable.Count > 1 && TryAbsorb(absorbable, ref s)) return true;
        bool any = false;
        for (int k = absorbable.Count - 1; k >= 0; k--)
            if (absorbable[k] < s.Ops.Count - 1 && TryAbsorb([absorbable[k]], ref s)) any = true;
        return any;
    }

    private static readonly long[] AbsorbDeltas = [0, -1, 1, -2, 2, -3, 3, -4, 4, -6, 6, -8, 8, -12, 12, -16, 16, -24, 24, -32, 32, -48, 48, -64, 64, -96, 96, -128, 128];
    private static readonly long[] AbsorbDeltasOne = [0, -1, 1, -2, 2, -4, 4, -8, 8];

    /// <summary>
    /// The scenario without operations <paramref name="drop"/>, on a machine smaller by the pages they
    /// took (plus <paramref name="deltaPages"/>): what came from ZONE_DMA becomes a hole at the top of
    /// ZONE_DMA, the rest comes off the top of memory (mem= when there is one, else the highest bank).
    /// </summary>
    private static Scenario? Shrunk(Scenario s, IReadOnlyList<int> drop, Profile profile, long deltaPages)
    {
        ulong pageSize = profile.PageSize;
        ulong dmaPages = 0, topPages = 0;
        foreach (int i in drop)
        {
            if (FromDma(s.Ops[i])) dmaPages += PagesTaken(s.Ops[i], pageSize);
            else topPages += PagesTaken(s.Ops[i], pageSize);
        }
        // The offset goes where most of the memory came from.
        ref ulong adjust = ref (topPages >= dmaPages ? ref topPages : ref dmaPages);
        if (deltaPages < 0 && (ulong)-deltaPages >= adjust) return null;
        adjust = (ulong)((long)adjust + deltaPages);
        var result = s with { Ops = s.Ops.Where((_, j) => !drop.Contains(j)).ToList() };

        if (dmaPages > 0)
        {
            // A hole as high in ZONE_DMA as it fits: inside a bank, clear of other holes and of the low reservation.
            ulong bytes = dmaPages * pageSize, low = Math.Max(profile.LowReserved, 1UL << 20);
            if (result.Header.Ram.Count == 0) return null;
            Scenarios.Range? hole = null;
            foreach (var b in result.Header.Ram.OrderByDescending(r => r.Start))
            {
                ulong end = Math.Min(b.End, profile.DmaZoneEnd), start = Math.Max(b.Start, low);
                while (hole is null && end > start && end - start >= bytes)
                {
                    var c = new Scenarios.Range(end - bytes, bytes);
                    var clash = result.Header.Holes.Where(x => x.Start < c.End && c.Start < x.End).OrderBy(x => x.Start).FirstOrDefault();
                    if (clash.Size == 0) hole = c;
                    else end = clash.Start;
                }
                if (hole is not null) break;
            }
            if (hole is not { } found) return null;
            result = result with { Header = result.Header with { Holes = [.. result.Header.Holes, found] } };
        }
        if (topPages == 0) return result;
        ulong take = topPages * pageSize;
        var h = result.Header;
        int mem = -1;
        for (int i = 0; i < h.Boot.Count; i++) if (h.Boot[i].Kind == BootParamKind.Mem) mem = i;
        if (mem >= 0)
        {
            ulong limit = h.Boot[mem].Value;
            if (limit <= take + (1UL << 20)) return null;
            return WithBoot(result, mem, h.Boot[mem] with { Value = limit - take });
        }
        if (h.Ram.Count == 0) return null;
        int top = Enumerable.Range(0, h.Ram.Count).MaxBy(i => h.Ram[i].End);
        var bank = h.Ram[top];
        if (bank.Size <= take + (1UL << 20)) return null;
        return WithRange(result, holes: false, top, bank with { Size = bank.Size - take });
    }

    /// <summary>Whether an allocation's pages come from ZONE_DMA (GFP_DMA, or a coherent DMA buffer: the device's mask is 24-bit).</summary>
    private static bool FromDma(Op op) => op.Kind == OpKind.DmaAllocCoherent || (op.Gfp & Gfp.Dma) != 0;

    /// <summary>Pages an allocation takes from the page allocator, as near as the scenario tells (0: none, or not known).</summary>
    private static ulong PagesTaken(Op op, ulong pageSize)
    {
        ulong Pages(ulong bytes) => bytes == 0 ? 0 : (bytes - 1) / pageSize + 1;
        ulong Pow2(ulong n) => n <= 1 ? n : 1UL << (64 - BitOperations.LeadingZeroCount(n - 1));
        return op.Kind switch
        {
            OpKind.AllocPages when op.Number < 30 => 1UL << (int)op.Number,
            OpKind.Vmalloc when op.Number < (1UL << 40) => Pages(op.Number),
            // A small kmalloc takes a slab page (whose order is the target's choice: the offsets cover it).
            OpKind.Kmalloc or OpKind.DmaAllocCoherent when op.Number < (1UL << 40) => Math.Max(1, Pow2(Pages(op.Number))),
            OpKind.MemblockAlloc when op.Number < (1UL << 40) => Pages(op.Number),
            _ => 0,
        };
    }

    private static IEnumerable<Op> Merged(Op a, Op b)
    {
        switch (a.Kind)
        {
            case OpKind.AllocPages:
            {
                ulong hi = Math.Max(a.Number, b.Number);
                if (hi < ScenarioParser.MaxOrderNumber) yield return a with { Number = hi + 1 };
                yield return a with { Number = hi };
                break;
            }
            default:
                if (a.Number + b.Number >= a.Number) yield return a with { Number = a.Number + b.Number, Align = Max(a.Align, b.Align) };
                break;
        }
    }

    private static ulong? Max(ulong? a, ulong? b) => a is null ? b : b is null ? a : Math.Max(a.Value, b.Value);

    /// <summary>Drops the operations from index <paramref name="from"/> on that use <paramref name="name"/>, until it is bound again.</summary>
    private static Scenario DropName(Scenario s, string? name, int from)
    {
        if (name is null) return s;
        var ops = new List<Op>(s.Ops.Count);
        bool dead = true;
        for (int i = 0; i < s.Ops.Count; i++)
        {
            var op = s.Ops[i];
            if (i >= from && dead && (op.Ref is { IsName: true } r && r.Name == name || op.Ref2 is { IsName: true } r2 && r2.Name == name))
                continue;
            ops.Add(op);
            if (i >= from && op.Bind == name) dead = false;
        }
        return s with { Ops = ops };
    }

    /// <summary>
    /// The header, in the order that keeps runs cheap: first fewer items (boot parameters, memmap
    /// entries, holes, banks), then smaller and rounder banks and holes (a smaller machine makes every
    /// later run cheaper), then rounder boot parameters.
    /// </summary>
    private bool SimplifyHeader(ref Scenario s)
    {
        bool any = false;
        for (int i = 0; i < s.Header.Boot.Count; i++)
        {
            var boot = s.Header.Boot.Where((_, j) => j != i).ToList();
            if (Try(s with { Header = s.Header with { Boot = boot } }, ref s, "header", validate: true)) { any = true; i--; }
        }
        for (int i = 0; i < s.Header.Boot.Count; i++)
        {
            var p = s.Header.Boot[i];
            if (p.Kind == BootParamKind.Memmap && p.Entries.Count > 1)
                for (int e = 0; e < p.Entries.Count && p.Entries.Count > 1; e++)
                {
                    var entries = p.Entries.Where((_, j) => j != e).ToList();
                    if (Try(WithBoot(s, i, p with { Entries = entries }), ref s, "header", validate: true)) { any = true; p = s.Header.Boot[i]; e--; }
                }
        }
        for (int i = 0; i < s.Header.Holes.Count; i++)
            if (Try(s with { Header = s.Header with { Holes = s.Header.Holes.Where((_, j) => j != i).ToList() } }, ref s, "header", validate: true)) { any = true; i--; }
        if (s.Header.Ram.Count > 1)
            for (int i = 0; i < s.Header.Ram.Count && s.Header.Ram.Count > 1; i++)
                if (Try(s with { Header = s.Header with { Ram = s.Header.Ram.Where((_, j) => j != i).ToList() } }, ref s, "header", validate: true)) { any = true; i--; }

        for (int i = 0; i < s.Header.Ram.Count; i++)
        {
            var bank = s.Header.Ram[i];
            foreach (ulong c in RoundCandidates(bank.Start).Take(HeaderValueCandidates))
                if (Try(WithRange(s, holes: false, i, bank with { Start = c }), ref s, "header", validate: true)) { any = true; bank = s.Header.Ram[i]; break; }
            foreach (ulong c in RoundCandidates(bank.Size).Where(c => c < bank.Size && c >= 1UL << 20).Take(HeaderValueCandidates))
                if (Try(WithRange(s, holes: false, i, bank with { Size = c }), ref s, "header", validate: true)) { any = true; break; }
        }
        for (int i = 0; i < s.Header.Holes.Count; i++)
        {
            var h = s.Header.Holes[i];
            foreach (ulong c in RoundCandidates(h.Start).Take(HeaderValueCandidates))
                if (Try(WithRange(s, holes: true, i, h with { Start = c }), ref s, "header", validate: true)) { any = true; h = s.Header.Holes[i]; break; }
            foreach (ulong c in RoundCandidates(h.Size).Take(HeaderValueCandidates))
                if (Try(WithRange(s, holes: true, i, h with { Size = c }), ref s, "header", validate: true)) { any = true; break; }
        }

        for (int i = 0; i < s.Header.Boot.Count; i++)
        {
            // Round numbers: the coarsest that keeps the failure. max_order= is only dropped (above): a
            // "rounder" MAX_ORDER means nothing, and a small one makes every run on a large machine slow.
            var p = s.Header.Boot[i];
            if (p.Kind is BootParamKind.Mem or BootParamKind.Vmalloc)
                foreach (ulong c in RoundCandidates(p.Value).Take(HeaderValueCandidates))
                    if (Try(WithBoot(s, i, p with { Value = c }), ref s, "header", validate: true)) { any = true; break; }
            if (p.Kind == BootParamKind.Memmap)
                for (int e = 0; e < s.Header.Boot[i].Entries.Count; e++)
                {
                    var en = s.Header.Boot[i].Entries[e];
                    foreach (ulong c in RoundCandidates(en.Start).Take(HeaderValueCandidates))
                        if (Try(WithEntry(s, i, e, en with { Start = c }), ref s, "header", validate: true)) { any = true; en = s.Header.Boot[i].Entries[e]; break; }
                    foreach (ulong c in RoundCandidates(en.Size).Take(HeaderValueCandidates))
                        if (c > 0 && Try(WithEntry(s, i, e, en with { Size = c }), ref s, "header", validate: true)) { any = true; break; }
                }
        }
        return any;
    }

    /// <summary>Per operation: drop expectations and GFP flags, lower orders and sizes, drop options.</summary>
    private bool SimplifyOps(ref Scenario s)
    {
        bool any = false;
        for (int i = 0; i < s.Ops.Count; i++)
        {
            foreach (var c in Simpler(s.Ops[i]))
            {
                var ops = s.Ops.ToList();
                ops[i] = c;
                if (Try(s with { Ops = ops }, ref s, "value", validate: true)) { any = true; break; }
            }
        }
        return any;
    }

    /// <summary>
    /// A header change and an operation removal together: when the header forces an extra operation
    /// (RAM whose last chunk is exactly the size asked for, so a first allocation is needed to make the
    /// second one split a block), neither move alone keeps the failure, both together do. Only tried
    /// when nothing else moves, on short scenarios.
    /// </summary>
    private bool RemovePairs(ref Scenario s)
    {
        if (s.Ops.Count == 0 || s.Ops.Count > 16) return false;
        foreach (var variant in HeaderVariants(s).ToList())
            for (int i = 0; i < s.Ops.Count; i++)
            {
                var ops = s.Ops.Where((_, j) => j != i).ToList();
                if (Try(Close(variant with { Ops = ops }), ref s, "pairs", validate: true)) return true;
            }
        return false;
    }

    /// <summary>Every single header change: an item dropped, or one number moved to a rounder value.</summary>
    private static IEnumerable<Scenario> HeaderVariants(Scenario s)
    {
        var h = s.Header;
        for (int i = 0; i < h.Boot.Count; i++)
        {
            yield return s with { Header = h with { Boot = h.Boot.Where((_, j) => j != i).ToList() } };
            var p = h.Boot[i];
            if (p.Kind is BootParamKind.Mem or BootParamKind.Vmalloc)
                foreach (ulong c in RoundCandidates(p.Value).Take(HeaderValueCandidates)) yield return WithBoot(s, i, p with { Value = c });
            for (int e = 0; e < p.Entries.Count; e++)
            {
                var en = p.Entries[e];
                if (p.Entries.Count > 1) yield return WithBoot(s, i, p with { Entries = p.Entries.Where((_, j) => j != e).ToList() });
                foreach (ulong c in RoundCandidates(en.Start).Take(HeaderValueCandidates)) yield return WithEntry(s, i, e, en with { Start = c });
                foreach (ulong c in RoundCandidates(en.Size).Take(HeaderValueCandidates)) yield return WithEntry(s, i, e, en with { Size = c });
            }
        }
        for (int i = 0; i < h.Holes.Count; i++)
        {
            yield return s with { Header = h with { Holes = h.Holes.Where((_, j) => j != i).ToList() } };
            foreach (ulong c in RoundCandidates(h.Holes[i].Start).Take(HeaderValueCandidates)) yield return WithRange(s, true, i, h.Holes[i] with { Start = c });
            foreach (ulong c in RoundCandidates(h.Holes[i].Size).Take(HeaderValueCandidates)) yield return WithRange(s, true, i, h.Holes[i] with { Size = c });
        }
        for (int i = 0; i < h.Ram.Count; i++)
        {
            if (h.Ram.Count > 1) yield return s with { Header = h with { Ram = h.Ram.Where((_, j) => j != i).ToList() } };
            foreach (ulong c in RoundCandidates(h.Ram[i].Start).Take(HeaderValueCandidates)) yield return WithRange(s, false, i, h.Ram[i] with { Start = c });
            foreach (ulong c in RoundCandidates(h.Ram[i].Size).Where(c => c >= 1UL << 20).Take(HeaderValueCandidates)) yield return WithRange(s, false, i, h.Ram[i] with { Size = c });
        }
    }

    private static IEnumerable<Op> Simpler(Op op)
    {
        if (op.Expected is not null) yield return op with { Expected = null };
        if (op.Gfp != Gfp.None) yield return op with { Gfp = Gfp.None };
        if (op.Gfp != Gfp.None && BitOperations.PopCount((uint)op.Gfp) > 1)
            foreach (Gfp flag in Enum.GetValues<Gfp>())
                if (flag != Gfp.None && (op.Gfp & flag) != 0) yield return op with { Gfp = op.Gfp & ~flag };
        if (op.Align is not null) yield return op with { Align = null };
        if (op.Order is not null) yield return op with { Order = null };
        if (op.Text is not null) yield return op with { Text = null };
        switch (op.Kind)
        {
            case OpKind.AllocPages when op.Number > 0:
                yield return op with { Number = 0 };
                yield return op with { Number = op.Number - 1 };
                break;
            case OpKind.MemblockAlloc or OpKind.Kmalloc or OpKind.Vmalloc or OpKind.DmaAllocCoherent or OpKind.KmemCacheCreate:
                foreach (ulong c in RoundCandidates(op.Number).Where(c => c < op.Number && c > 0).Take(OpValueCandidates)) yield return op with { Number = c };
                break;
            case OpKind.RequestMemRegion or OpKind.Ioremap:
                foreach (ulong c in RoundCandidates(op.Number).Take(OpValueCandidates)) yield return op with { Number = c };
                foreach (ulong c in RoundCandidates(op.Number2).Where(c => c < op.Number2 && c > 0).Take(OpValueCandidates)) yield return op with { Number2 = c };
                break;
        }
        if (op.Ref is { IsName: false } r && r.Address != 0)
            foreach (ulong c in RoundCandidates(r.Address).Take(OpValueCandidates)) yield return op with { Ref = Ref.At(c) };
    }

    /// <summary>
    /// How many rounder values are tried for one number of an operation, and of the header. Values are
    /// cosmetic (the operation count is what matters), and a candidate that no longer fails costs a
    /// whole run: a vmalloc just below the size that fails maps tens of thousands of pages.
    /// </summary>
    private const int OpValueCandidates = 3, HeaderValueCandidates = 8;

    /// <summary>
    /// Rounder versions of a number (fewer set bits): multiples of 1 TiB, 256 GiB, … 4 KiB just below
    /// and just above it, within a factor of two of it; roundest first, and among equally round ones
    /// the nearest first, so that mem=0x1234567 becomes 16M or 32M, never 1T.
    /// </summary>
    private static IEnumerable<ulong> RoundCandidates(ulong x)
    {
        var seen = new HashSet<ulong> { x };
        var all = new List<ulong>();
        for (int shift = 40; shift >= 12; shift -= 2)
        {
            ulong unit = 1UL << shift;
            ulong down = x / unit * unit;
            foreach (ulong c in new[] { down, down + unit })
                if (c != 0 && c >= down && c >= x / 2 && c / 2 <= x && seen.Add(c) && BitOperations.PopCount(c) < BitOperations.PopCount(x)) all.Add(c);
        }
        return all.OrderBy(BitOperations.PopCount).ThenBy(c => c > x ? c - x : x - c);
    }

    private static Scenario WithBoot(Scenario s, int i, BootParam p) =>
        s with { Header = s.Header with { Boot = s.Header.Boot.Select((q, j) => j == i ? p : q).ToList() } };

    private static Scenario WithEntry(Scenario s, int i, int e, MemmapEntry en) =>
        WithBoot(s, i, s.Header.Boot[i] with { Entries = s.Header.Boot[i].Entries.Select((q, j) => j == e ? en : q).ToList() });

    private static Scenario WithRange(Scenario s, bool holes, int i, Scenarios.Range r) => holes
        ? s with { Header = s.Header with { Holes = s.Header.Holes.Select((q, j) => j == i ? r : q).ToList() } }
        : s with { Header = s.Header with { Ram = s.Header.Ram.Select((q, j) => j == i ? r : q).ToList() } };

    /// <summary>
    /// How complicated a scenario is, compared lexicographically: operations first, then header items
    /// (boot parameters, memmap entries, holes, banks), then the set bits of every number (a rounder
    /// number has fewer), then flags and options.
    /// </summary>
    public static (int Ops, int Header, int Bits, int Extras) Complexity(Scenario s)
    {
        int header = s.Header.Boot.Count + s.Header.Boot.Sum(b => b.Entries.Count) + s.Header.Holes.Count + s.Header.Ram.Count;
        int bits = 0, extras = 0;
        foreach (var b in s.Header.Boot)
        {
            bits += BitOperations.PopCount(b.Value);
            foreach (var e in b.Entries) bits += BitOperations.PopCount(e.Start) + BitOperations.PopCount(e.Size);
        }
        foreach (var r in s.Header.Ram.Concat(s.Header.Holes))
            bits += BitOperations.PopCount(r.Start) + BitOperations.PopCount(r.Size);
        foreach (var op in s.Ops)
        {
            bits += BitOperations.PopCount(op.Number) + BitOperations.PopCount(op.Number2)
                + (op.Ref is { IsName: false } r ? BitOperations.PopCount(r.Address) : 0);
            extras += BitOperations.PopCount((uint)op.Gfp) + (op.Expected is null ? 0 : 1)
                + (op.Align is null ? 0 : 1) + (op.Order is null ? 0 : 1) + (op.Text is null ? 0 : 1)
                + (int)Math.Min(op.Number, 64) * (op.Kind == OpKind.AllocPages ? 1 : 0);
        }
        return (s.Ops.Count, header, bits, extras);
    }

    /// <summary>Drops every operation that refers to a name no longer bound before it, so any subset stays valid.</summary>
    public static Scenario Close(Scenario s)
    {
        var bound = new HashSet<string>();
        var ops = new List<Op>(s.Ops.Count);
        foreach (var op in s.Ops)
        {
            if (op.Ref is { IsName: true } r && !bound.Contains(r.Name!)) continue;
            if (op.Ref2 is { IsName: true } r2 && !bound.Contains(r2.Name!)) continue;
            ops.Add(op);
            if (op.Bind is not null) bound.Add(op.Bind);
        }
        return ops.Count == s.Ops.Count ? s : s with { Ops = ops };
    }
}
