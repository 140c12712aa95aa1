using Kmem.Model;
using Kmem.Scenarios;
using Kmem.Target;

namespace Kmem.Runner;

public enum CheckMode
{
    /// <summary>Outcomes against the model, and every structural invariant over the whole free lists after every operation.</summary>
    Full,
    /// <summary>Outcomes only: the target alone against the model's allowed outcomes, no structural scan.</summary>
    OutcomesOnly,
}

public sealed record RunOptions
{
    public CheckMode Check { get; init; } = CheckMode.Full;
    /// <summary>Called after every step that ran, for traces.</summary>
    public Action<TraceStep>? Trace { get; init; }
}

/// <summary>
/// One executed step, for traces, maps and reports. <see cref="Model"/> and <see cref="Target"/> are
/// the live objects after the step: read them during the callback (they change afterwards).
/// </summary>
public sealed record TraceStep(int Step, int Line, string Operation, Outcome Outcome, ulong Address, string Note)
{
    public Op? Op { get; init; }
    public PageSpec Model { get; init; } = null!;
    public ITarget Target { get; init; } = null!;
}

/// <summary>
/// Executes a scenario against a target and the model in lockstep: each outcome is compared with
/// the model's allowed set, the model advances with the actual outcome, and the invariants are
/// checked. Deterministic: the same scenario and target give the same verdict every time.
/// </summary>
public static class ScenarioRunner
{
    private readonly record struct Binding(ulong Address, int Order, bool Ok);

    public static Verdict Run(Scenario scenario, Func<ITarget> targetFactory, RunOptions? options = null)
    {
        options ??= new RunOptions();
        var machine = MachineConfig.From(scenario);
        var target = targetFactory();
        target.Boot(machine);
        var spec = new PageSpec(Bridge.ToModel(machine));
        var introspect = options.Check == CheckMode.Full ? target as IBuddyIntrospection : null;
        var names = new Dictionary<string, Binding>();
        bool atomic = false;
        int executed = 0;

        Verdict Fail(int step, Op? op, string operation, Violation v) => new()
        {
            Step = step, Line = op?.Line ?? 0, Operation = operation,
            Invariant = v.Invariant, Message = v.Message, Executed = executed,
        };

        Violation? Structure() => introspect is null ? null
            : spec.CheckFreeBlocks(introspect.FreeBlocks().Select(b => ((long)b.Pfn, b.Order)));

        if (Structure() is { } bootBad) return Fail(0, null, "boot", bootBad);

        for (int i = 0; i < scenario.Ops.Count; i++)
        {
            var op = scenario.Ops[i];
            int step = i + 1;
            // scenario-format.md: mem_init is implicit before the first operation that is not memblock_*.
            if (!spec.InitDone && op.Kind is not (OpKind.MemblockAlloc or OpKind.MemblockFree or OpKind.MemInit))
            {
                var r0 = target.MemInit();
                executed++;
                var v0 = spec.MemInit(Bridge.ToModel(r0.Outcome)) ?? Structure();
                options.Trace?.Invoke(new TraceStep(step, op.Line, "mem_init (implicit)", r0.Outcome, 0, Summary(spec)) { Model = spec, Target = target });
                if (v0 is { } bad0) return Fail(step, op, "mem_init", bad0);
            }

            TargetResult r;
            Violation? v;
            string note = "";
            switch (op.Kind)
            {
                case OpKind.MemblockAlloc:
                {
                    ulong align = op.Align ?? 0;
                    r = target.MemblockAlloc(op.Number, align);
                    v = spec.MemblockAlloc(op.Number, align, Bridge.ToModel(r.Outcome), r.Address);
                    Bind(op, r, -1);
                    break;
                }
                case OpKind.MemblockFree:
                {
                    ulong addr = Resolve(op.Ref!.Value).Address;
                    r = target.MemblockFree(addr);
                    v = spec.MemblockFree(addr, Bridge.ToModel(r.Outcome));
                    break;
                }
                case OpKind.MemInit:
                    r = target.MemInit();
                    v = spec.MemInit(Bridge.ToModel(r.Outcome));
                    note = Summary(spec);
                    break;
                case OpKind.AllocPages:
                {
                    int order = op.Number > int.MaxValue ? int.MaxValue : (int)op.Number;
                    var gfp = Bridge.ToModel(op.EffectiveGfp);
                    r = target.AllocPages(order, op.EffectiveGfp, atomic);
                    if (options.Trace is not null)
                        note = spec.DecideAllocPages(order, gfp, atomic).Why;
                    v = spec.AllocPages(order, gfp, atomic, Bridge.ToModel(r.Outcome), r.Address);
                    Bind(op, r, order);
                    break;
                }
                case OpKind.FreePages:
                {
                    var b = Resolve(op.Ref!.Value);
                    int order = op.Order ?? b.Order;
                    r = target.FreePages(b.Address, order);
                    v = spec.FreePages(b.Address, order, Bridge.ToModel(r.Outcome));
                    break;
                }
                case OpKind.Context:
                    atomic = op.Atomic;
                    continue;
                case OpKind.Meminfo:
                    options.Trace?.Invoke(new TraceStep(step, op.Line, "meminfo", Outcome.Ok, 0, Meminfo(spec)) { Op = op, Model = spec, Target = target });
                    continue;
                case OpKind.Expect:
                {
                    long actual = Field(spec, op);
                    if (!Compare(actual, op.Cmp, (long)op.Number))
                        return Fail(step, op, "expect", new Violation("expectation",
                            $"expect {op.Field} {CmpText(op.Cmp)} {op.Number}: the figure is {actual}"));
                    continue;
                }
                default:
                    throw new UnsupportedScenarioException(op.Line,
                        $"'{op.Kind.Keyword()}' is not supported by this build yet (the buddy allocator and memblock are)");
            }
            executed++;
            options.Trace?.Invoke(new TraceStep(step, op.Line, op.Kind.Keyword(), r.Outcome, r.Address, note) { Op = op, Model = spec, Target = target });
            v ??= Structure();
            if (v is { } bad) return Fail(step, op, op.Kind.Keyword(), bad);
            if (op.Expected is { } want && want != r.Outcome)
                return Fail(step, op, op.Kind.Keyword(), new Violation("expectation",
                    $"the scenario expects {want}; the outcome was {r.Outcome}"));
        }
        // A scenario with no operation still boots: check mem_init too.
        if (!spec.InitDone)
        {
            var r = target.MemInit();
            executed++;
            var v = spec.MemInit(Bridge.ToModel(r.Outcome)) ?? Structure();
            if (v is { } badEnd) return Fail(scenario.Ops.Count + 1, null, "mem_init", badEnd);
        }
        return Verdict.Pass(executed);

        Binding Resolve(Ref re) => re.IsName
            ? names.TryGetValue(re.Name!, out var b) ? b with { Address = b.Ok ? b.Address : 0 } : new Binding(0, 0, false)
            : new Binding(re.Address, 0, true);

        void Bind(Op op, TargetResult r, int order)
        {
            if (op.Bind is not null) names[op.Bind] = new Binding(r.Address, order, r.Outcome == Outcome.Ok);
        }
    }

    private static string Summary(PageSpec spec) =>
        string.Join(", ", Enumerable.Range(0, 4).Where(z => spec.Layout.ZoneExists[z] && spec.Managed[z] > 0)
            .Select(z => $"{(MZone)z} {spec.Managed[z]} pages"));

    public static string Meminfo(PageSpec spec)
    {
        long kb = (long)(spec.Layout.PageSize / 1024);
        var parts = new List<string>
        {
            $"MemTotal: {spec.Managed.Sum() * kb} kB",
            $"MemFree: {spec.FreeCount.Sum() * kb} kB",
        };
        for (int z = 0; z < 4; z++)
            if (spec.Layout.ZoneExists[z]) parts.Add($"Free.{(MZone)z}: {spec.FreeCount[z] * kb} kB");
        return string.Join("; ", parts);
    }

    private static long Field(PageSpec spec, Op op)
    {
        long pg = (long)spec.Layout.PageSize;
        return op.Field switch
        {
            "MemTotal" => spec.Managed.Sum() * pg,
            "MemFree" => spec.FreeCount.Sum() * pg,
            "Free.DMA" => spec.FreeCount[0] * pg,
            "Free.DMA32" => spec.FreeCount[1] * pg,
            "Free.Normal" => spec.FreeCount[2] * pg,
            "Free.HighMem" => spec.FreeCount[3] * pg,
            _ => throw new UnsupportedScenarioException(op.Line, $"meminfo field '{op.Field}' is not supported by this build yet"),
        };
    }

    private static bool Compare(long a, Cmp c, long b) => c switch
    {
        Cmp.Eq => a == b, Cmp.Ne => a != b, Cmp.Lt => a < b, Cmp.Le => a <= b, Cmp.Gt => a > b, _ => a >= b,
    };

    public static string CmpText(Cmp c) => c switch
    {
        Cmp.Eq => "==", Cmp.Ne => "!=", Cmp.Lt => "<", Cmp.Le => "<=", Cmp.Gt => ">", _ => ">=",
    };
}
