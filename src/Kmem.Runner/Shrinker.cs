using Kmem.Scenarios;

namespace Kmem.Runner;

public sealed record ShrinkResult(Scenario Scenario, Verdict Verdict, int Attempts, int Accepted);

/// <summary>
/// The one minimizer every engine uses (generated, fuzzed and hand-written failures alike). It
/// removes and simplifies operations and boot parameters while the failure keeps its signature
/// (invariant + operation). Deterministic: the same input always shrinks to the same output.
/// </summary>
public sealed class Shrinker
{
    private readonly Func<Scenario, Verdict> run;
    private readonly string signature;
    private readonly int maxAttempts;
    private int attempts, accepted;
    private Verdict best;

    public Shrinker(Func<Scenario, Verdict> run, Verdict original, int maxAttempts = 50_000)
    {
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

    public ShrinkResult Minimize(Scenario s)
    {
        s = Close(s);
        bool progress = true;
        while (progress && attempts < maxAttempts)
        {
            progress = false;
            progress |= RemoveChunks(ref s);
            progress |= SimplifyHeader(ref s);
            progress |= SimplifyOps(ref s);
        }
        return new ShrinkResult(s, best, attempts, accepted);
    }

    private bool Try(Scenario candidate, ref Scenario current)
    {
        if (attempts >= maxAttempts) return false;
        // Only strictly simpler candidates, so shrinking always ends (no move can undo another).
        if (Complexity(candidate).CompareTo(Complexity(current)) >= 0) return false;
        attempts++;
        Verdict v;
        try { v = run(candidate); }
        catch (UnsupportedScenarioException) { return false; }
        if (v.Ok || v.Signature != signature) return false;
        current = candidate;
        best = v;
        accepted++;
        return true;
    }

    /// <summary>Delta debugging over operations: remove chunks, halving the chunk size down to one.</summary>
    private bool RemoveChunks(ref Scenario s)
    {
        bool any = false;
        for (int chunk = Math.Max(1, s.Ops.Count / 2); chunk >= 1; chunk /= 2)
        {
            for (int start = 0; start < s.Ops.Count;)
            {
                var ops = s.Ops.Where((_, i) => i < start || i >= start + chunk).ToList();
                if (ops.Count < s.Ops.Count && Try(Close(s with { Ops = ops }), ref s)) any = true;
                else start += chunk;
            }
        }
        return any;
    }

    private bool SimplifyHeader(ref Scenario s)
    {
        bool any = false;
        // Drop boot parameters one at a time, then single memmap entries.
        for (int i = 0; i < s.Header.Boot.Count; i++)
        {
            var boot = s.Header.Boot.Where((_, j) => j != i).ToList();
            if (Try(s with { Header = s.Header with { Boot = boot } }, ref s)) { any = true; i--; }
        }
        for (int i = 0; i < s.Header.Boot.Count; i++)
        {
            var p = s.Header.Boot[i];
            if (p.Kind == BootParamKind.Memmap && p.Entries.Count > 1)
                for (int e = 0; e < p.Entries.Count && p.Entries.Count > 1; e++)
                {
                    var entries = p.Entries.Where((_, j) => j != e).ToList();
                    if (Try(WithBoot(s, i, p with { Entries = entries }), ref s)) { any = true; p = s.Header.Boot[i]; e--; }
                }
            // Round numbers: the coarsest alignment that keeps the failure.
            p = s.Header.Boot[i];
            if (p.Kind is BootParamKind.Mem or BootParamKind.Vmalloc)
                foreach (ulong c in RoundCandidates(p.Value))
                    if (Try(WithBoot(s, i, p with { Value = c }), ref s)) { any = true; break; }
            if (p.Kind == BootParamKind.Memmap)
                for (int e = 0; e < p.Entries.Count; e++)
                {
                    var en = s.Header.Boot[i].Entries[e];
                    foreach (ulong c in RoundCandidates(en.Start))
                        if (Try(WithEntry(s, i, e, en with { Start = c }), ref s)) { any = true; en = s.Header.Boot[i].Entries[e]; break; }
                    foreach (ulong c in RoundCandidates(en.Size))
                        if (c > 0 && Try(WithEntry(s, i, e, en with { Size = c }), ref s)) { any = true; break; }
                }
        }
        // Fewer holes, fewer banks, smaller banks.
        for (int i = 0; i < s.Header.Holes.Count; i++)
            if (Try(s with { Header = s.Header with { Holes = s.Header.Holes.Where((_, j) => j != i).ToList() } }, ref s)) { any = true; i--; }
        if (s.Header.Ram.Count > 1)
            for (int i = 0; i < s.Header.Ram.Count && s.Header.Ram.Count > 1; i++)
                if (Try(s with { Header = s.Header with { Ram = s.Header.Ram.Where((_, j) => j != i).ToList() } }, ref s)) { any = true; i--; }
        for (int i = 0; i < s.Header.Ram.Count; i++)
        {
            var bank = s.Header.Ram[i];
            foreach (ulong c in RoundCandidates(bank.Size).Where(c => c < bank.Size && c >= 1UL << 20))
                if (Try(s with { Header = s.Header with { Ram = s.Header.Ram.Select((r, j) => j == i ? r with { Size = c } : r).ToList() } }, ref s))
                { any = true; break; }
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
                if (Try(s with { Ops = ops }, ref s)) { any = true; break; }
            }
        }
        return any;
    }

    private static IEnumerable<Op> Simpler(Op op)
    {
        if (op.Expected is not null) yield return op with { Expected = null };
        if (op.Gfp != Gfp.None) yield return op with { Gfp = Gfp.None };
        if (op.Align is not null) yield return op with { Align = null };
        if (op.Order is not null) yield return op with { Order = null };
        switch (op.Kind)
        {
            case OpKind.AllocPages when op.Number > 0:
                yield return op with { Number = 0 };
                yield return op with { Number = op.Number - 1 };
                break;
            case OpKind.MemblockAlloc or OpKind.Kmalloc or OpKind.Vmalloc or OpKind.DmaAllocCoherent or OpKind.KmemCacheCreate:
                foreach (ulong c in RoundCandidates(op.Number).Where(c => c < op.Number && c > 0)) yield return op with { Number = c };
                break;
        }
    }

    /// <summary>Rounder versions of a number, roundest first: 0, then multiples of 1 GiB, 64 MiB, … 4 KiB.</summary>
    private static IEnumerable<ulong> RoundCandidates(ulong x)
    {
        var seen = new HashSet<ulong> { x };
        for (int shift = 40; shift >= 12; shift -= 2)
        {
            ulong unit = 1UL << shift;
            foreach (ulong c in new[] { x / unit * unit, (x / unit + 1) * unit })
                if (c != 0 && seen.Add(c)) yield return c;
        }
    }

    private static Scenario WithBoot(Scenario s, int i, BootParam p) =>
        s with { Header = s.Header with { Boot = s.Header.Boot.Select((q, j) => j == i ? p : q).ToList() } };

    private static Scenario WithEntry(Scenario s, int i, int e, MemmapEntry en) =>
        WithBoot(s, i, s.Header.Boot[i] with { Entries = s.Header.Boot[i].Entries.Select((q, j) => j == e ? en : q).ToList() });

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
            bits += System.Numerics.BitOperations.PopCount(b.Value);
            foreach (var e in b.Entries) bits += System.Numerics.BitOperations.PopCount(e.Start) + System.Numerics.BitOperations.PopCount(e.Size);
        }
        foreach (var r in s.Header.Ram.Concat(s.Header.Holes))
            bits += System.Numerics.BitOperations.PopCount(r.Start) + System.Numerics.BitOperations.PopCount(r.Size);
        foreach (var op in s.Ops)
        {
            bits += System.Numerics.BitOperations.PopCount(op.Number) + System.Numerics.BitOperations.PopCount(op.Number2);
            extras += System.Numerics.BitOperations.PopCount((uint)op.Gfp) + (op.Expected is null ? 0 : 1)
                + (op.Align is null ? 0 : 1) + (op.Order is null ? 0 : 1) + (int)Math.Min(op.Number, 64) * (op.Kind == OpKind.AllocPages ? 1 : 0);
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
