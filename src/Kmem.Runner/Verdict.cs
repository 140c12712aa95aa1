using Kmem.Scenarios;

namespace Kmem.Runner;

/// <summary>
/// The result of running a scenario: ok, or the first step where the target broke a rule.
/// <see cref="Signature"/> (invariant + operation) is what the shrinker keeps stable.
/// </summary>
public sealed record Verdict
{
    public bool Ok => Invariant is null;
    /// <summary>1-based index of the failing operation in the scenario, 0 for boot.</summary>
    public int Step { get; init; }
    /// <summary>Source line of the failing operation (0 when it has none).</summary>
    public int Line { get; init; }
    /// <summary>Keyword of the failing operation ("mem_init" also for the implicit one, "boot" at boot).</summary>
    public string Operation { get; init; } = "";
    public string? Invariant { get; init; }
    public string Message { get; init; } = "";
    /// <summary>Operations executed (including an implicit mem_init).</summary>
    public int Executed { get; init; }

    public string Signature => Ok ? "ok" : $"{Invariant}/{Operation}";

    public static Verdict Pass(int executed) => new() { Executed = executed };

    public override string ToString() => Ok
        ? $"ok ({Executed} operations)"
        : $"violation of '{Invariant}' at step {Step}{(Line > 0 ? $" (line {Line})" : "")}, {Operation}: {Message}";
}

/// <summary>The scenario uses something this build cannot run yet; reported as bad input (exit 2).</summary>
public sealed class UnsupportedScenarioException(int line, string message) : Exception(message)
{
    public int Line { get; } = line;
}
