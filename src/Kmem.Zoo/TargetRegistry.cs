using Kmem.Reference;
using Kmem.Scenarios;
using Kmem.Target;

namespace Kmem.Zoo;

/// <summary>A target that `--target NAME` can select.</summary>
/// <param name="Name">`reference`, or `buggy:NAME` for a known-buggy variant.</param>
/// <param name="Bug">The bug it carries (null for the reference).</param>
/// <param name="Source">Where the bug comes from: a kernel commit or bug class.</param>
/// <param name="Minimal">For each failure signature the bug can show, the fewest scenario operations
/// (the implicit mem_init not counted) of any scenario with that signature, and why.</param>
/// <param name="Profile">The profile `check --target` uses unless --profile is given: the era in which the bug can show.</param>
public sealed record TargetInfo(string Name, string? Bug, string? Source, IReadOnlyList<Minimum> Minimal, Func<ITarget> Create, string Profile = Profiles.DefaultName);

/// <summary>The fewest operations of a scenario whose failure has <paramref name="Signature"/>, with the reasoning.</summary>
public sealed record Minimum(string Signature, int Ops, string Why);

public static class TargetRegistry
{
    public static readonly IReadOnlyList<TargetInfo> All =
    [
        new("reference", null, null, [], () => new ReferenceAllocator()),
        .. KnownBugs.All,
    ];

    public static TargetInfo? Get(string name) => All.FirstOrDefault(t => t.Name == name);
}
