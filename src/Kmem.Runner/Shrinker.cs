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
    /// <summary>Accepted moves by kind (truncate, slice, chunk, merge, header, value), for reports.</summary>
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
/// <item>chunks: delta debugging, removing big chunks first, halving down to single operations;</item>
/// <item>merge: two allocations replaced by one larger (their frees merge with them), two memblock
/// allocations by one of the summed size;</item>
/// <item>header: boot parameters, memmap entries, holes and banks dropped; numbers moved to round values;</item>
/// <item>values: expectations and flags dropped, orders and sizes lowered;</item>
/// <item>pairs: a header item dropped together with one operation (a local minimum of the moves above).</item>
/// </list>
/// Every accepted run also truncates the scenario after its own failing step, so runs get shorter
/// as shrinking goes on; a run stops at its first violation anyway.
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
        bool progress = true;
        while (progress && attempts < maxAttempts)
        {
            progress = RemoveChunks(ref s);
            progress |= MergeOps(ref s);
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

    private bool Try(Scenario candidate, ref Scenario current, string move, bool validate = false)
    {
        if (attempts >= maxAttempts) return false;
        // Only strictly simpler candidates, so shrinking always ends (no move can undo another).
        if (Complexity(candidate).CompareTo(Complexity(current)) >= 0) return false;
        // Header and value moves can leave the language (a bank that overlaps another, an order the
        // parser refuses): the result is written as .kmem, so it must parse back. Nor may they grow
        // the physical address space: a bank moved up to a round 1 TiB makes every run scan 2^28 frames.
        if (validate && (Top(candidate) > Top(current) || !Parses(candidate))) return false;
        var v = Run(candidate);
        if (v is null || v.Ok || v.Signature != signature) return false;
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
            // tried first, and a removal never shifts the chunks still to be tried.
            for (int end = s.Ops.Count; end > 0;)
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

    private bool SimplifyHeader(ref Scenario s)
    {
        bool any = false;
        // Drop boot parameters one at a time, then single memmap entries.
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
            // Round numbers: the coarsest alignment that keeps the failure.
            p = s.Header.Boot[i];
            if (p.Kind is BootParamKind.Mem or BootParamKind.Vmalloc)
                foreach (ulong c in RoundCandidates(p.Value))
                    if (Try(WithBoot(s, i, p with { Value = c }), ref s, "header", validate: true)) { any = true; break; }
            // max_order= is only dropped (back to the profile's): a "rounder" MAX_ORDER means nothing, and a
            // small one makes every run on a large machine slow (hundreds of thousands of order-0 blocks).
            if (p.Kind == BootParamKind.Memmap)
                for (int e = 0; e < s.Header.Boot[i].Entries.Count; e++)
                {
                    var en = s.Header.Boot[i].Entries[e];
                    foreach (ulong c in RoundCandidates(en.Start))
                        if (Try(WithEntry(s, i, e, en with { Start = c }), ref s, "header", validate: true)) { any = true; en = s.Header.Boot[i].Entries[e]; break; }
                    foreach (ulong c in RoundCandidates(en.Size))
                        if (c > 0 && Try(WithEntry(s, i, e, en with { Size = c }), ref s, "header", validate: true)) { any = true; break; }
                }
        }
        // Fewer holes, fewer banks, rounder holes, smaller and rounder banks.
        for (int i = 0; i < s.Header.Holes.Count; i++)
            if (Try(s with { Header = s.Header with { Holes = s.Header.Holes.Where((_, j) => j != i).ToList() } }, ref s, "header", validate: true)) { any = true; i--; }
        for (int i = 0; i < s.Header.Holes.Count; i++)
        {
            var h = s.Header.Holes[i];
            foreach (ulong c in RoundCandidates(h.Start))
                if (Try(WithRange(s, holes: true, i, h with { Start = c }), ref s, "header", validate: true)) { any = true; h = s.Header.Holes[i]; break; }
            foreach (ulong c in RoundCandidates(h.Size))
                if (Try(WithRange(s, holes: true, i, h with { Size = c }), ref s, "header", validate: true)) { any = true; break; }
        }
        if (s.Header.Ram.Count > 1)
            for (int i = 0; i < s.Header.Ram.Count && s.Header.Ram.Count > 1; i++)
                if (Try(s with { Header = s.Header with { Ram = s.Header.Ram.Where((_, j) => j != i).ToList() } }, ref s, "header", validate: true)) { any = true; i--; }
        for (int i = 0; i < s.Header.Ram.Count; i++)
        {
            var bank = s.Header.Ram[i];
            foreach (ulong c in RoundCandidates(bank.Start))
                if (Try(WithRange(s, holes: false, i, bank with { Start = c }), ref s, "header", validate: true)) { any = true; bank = s.Header.Ram[i]; break; }
            foreach (ulong c in RoundCandidates(bank.Size).Where(c => c < bank.Size && c >= 1UL << 20))
                if (Try(WithRange(s, holes: false, i, bank with { Size = c }), ref s, "header", validate: true)) { any = true; break; }
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
                foreach (ulong c in RoundCandidates(p.Value)) yield return WithBoot(s, i, p with { Value = c });
            for (int e = 0; e < p.Entries.Count; e++)
            {
                var en = p.Entries[e];
                if (p.Entries.Count > 1) yield return WithBoot(s, i, p with { Entries = p.Entries.Where((_, j) => j != e).ToList() });
                foreach (ulong c in RoundCandidates(en.Start)) yield return WithEntry(s, i, e, en with { Start = c });
                foreach (ulong c in RoundCandidates(en.Size)) yield return WithEntry(s, i, e, en with { Size = c });
            }
        }
        for (int i = 0; i < h.Holes.Count; i++)
        {
            yield return s with { Header = h with { Holes = h.Holes.Where((_, j) => j != i).ToList() } };
            foreach (ulong c in RoundCandidates(h.Holes[i].Start)) yield return WithRange(s, true, i, h.Holes[i] with { Start = c });
            foreach (ulong c in RoundCandidates(h.Holes[i].Size)) yield return WithRange(s, true, i, h.Holes[i] with { Size = c });
        }
        for (int i = 0; i < h.Ram.Count; i++)
        {
            if (h.Ram.Count > 1) yield return s with { Header = h with { Ram = h.Ram.Where((_, j) => j != i).ToList() } };
            foreach (ulong c in RoundCandidates(h.Ram[i].Start)) yield return WithRange(s, false, i, h.Ram[i] with { Start = c });
            foreach (ulong c in RoundCandidates(h.Ram[i].Size).Where(c => c >= 1UL << 20)) yield return WithRange(s, false, i, h.Ram[i] with { Size = c });
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
                foreach (ulong c in RoundCandidates(op.Number).Where(c => c < op.Number && c > 0)) yield return op with { Number = c };
                break;
            case OpKind.RequestMemRegion or OpKind.Ioremap:
                foreach (ulong c in RoundCandidates(op.Number)) yield return op with { Number = c };
                foreach (ulong c in RoundCandidates(op.Number2).Where(c => c < op.Number2 && c > 0)) yield return op with { Number2 = c };
                break;
        }
        if (op.Ref is { IsName: false } r && r.Address != 0)
            foreach (ulong c in RoundCandidates(r.Address)) yield return op with { Ref = Ref.At(c) };
    }

    /// <summary>
    /// Rounder versions of a number (fewer set bits): multiples of 1 TiB, 256 GiB, … 4 KiB just below
    /// and just above it; roundest first, and among equally round ones the nearest first, so that
    /// mem=0x1234567 becomes 32M before anyone tries 1T.
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
                if (c != 0 && c >= down && seen.Add(c) && BitOperations.PopCount(c) < BitOperations.PopCount(x)) all.Add(c);
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
