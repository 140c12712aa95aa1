using FsCheck;
using FsCheck.Fluent;
using Kmem.Engines;
using Kmem.Scenarios;

namespace Kmem.Benchmarks;

/// <summary>Fixed, seeded workloads: one long generated scenario per (mix, RAM size), mem_init first.</summary>
public static class Workloads
{
    public const int Ops = 2000;

    public static Scenario Make(OpMix mix, ulong ram, ulong seed = 7)
    {
        var gen = new GenOptions { Profile = Profiles.DefaultName, MaxOps = Ops, Ram = ram, Kinds = mix };
        // Concatenate generated cases until there are enough operations, renaming so names stay unique.
        var ops = new List<Op> { new() { Kind = OpKind.MemInit } };
        Header? header = null;
        for (int c = 0; ops.Count < Ops; c++)
        {
            var s = ScenarioGen.Scenario(gen).Sample(1, new Rnd(CheckEngine.Mix(seed, (ulong)c)), 200)[0];
            header ??= s.Header with { Boot = [] };
            string p = $"c{c}_";
            foreach (var op in s.Ops)
            {
                if (op.Kind is OpKind.MemblockAlloc or OpKind.MemblockFree or OpKind.MemInit) continue;
                ops.Add(op with
                {
                    Bind = op.Bind is null ? null : p + op.Bind,
                    Ref = op.Ref is { IsName: true } r ? Ref.To(p + r.Name) : op.Ref,
                    Ref2 = op.Ref2 is { IsName: true } r2 ? Ref.To(p + r2.Name) : op.Ref2,
                    Expected = null,
                });
            }
        }
        return new Scenario(header!, ops);
    }

    public static int CountedOps(Scenario s) =>
        s.Ops.Count(o => o.Kind is not (OpKind.Context or OpKind.Meminfo or OpKind.Expect or OpKind.MemInit));
}
