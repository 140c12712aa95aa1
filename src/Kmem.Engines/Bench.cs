using Kmem.Target;

namespace Kmem.Engines;

/// <summary>One known-buggy target's figures over several seeds.</summary>
public sealed record BenchRow(
    string Target, int Runs, int Detected, double MedianCases, double MedianSeconds,
    int AtMinimum, IReadOnlyList<string> Signatures, IReadOnlyList<int> ShrunkLengths, double MedianShrinkSeconds);

/// <summary>
/// `kmem-verify bench --engine check`: how fast and how well the check engine catches each planted
/// bug. For each target and seed 1..K: a check run with the default case count; detection, cases and
/// seconds to the first failure, the shrunk length against the recorded minimum for its signature.
/// </summary>
public static class Bench
{
    public sealed record BugTarget(string Name, string Profile, Func<ITarget> Create, Func<string, int?> MinimumFor);

    public static BenchRow Run(BugTarget t, int runs, int cases = CheckOptions.DefaultCases)
    {
        var cs = new List<double>();
        var secs = new List<double>();
        var shrink = new List<double>();
        var lengths = new List<int>();
        var sigs = new SortedSet<string>(StringComparer.Ordinal);
        int detected = 0, atMin = 0;
        for (int seed = 1; seed <= runs; seed++)
        {
            var r = CheckEngine.Run(new CheckOptions { Profile = t.Profile, Seed = (ulong)seed, Cases = cases, TargetName = t.Name }, t.Create);
            if (r.Failure is not { } f) continue;
            detected++;
            cs.Add(f.Case + 1);
            secs.Add(f.TimeToFind.TotalSeconds);
            shrink.Add(f.TimeToShrink.TotalSeconds);
            int len = f.Shrunk.Scenario.Ops.Count;
            lengths.Add(len);
            sigs.Add(f.Shrunk.Verdict.Signature);
            if (t.MinimumFor(f.Shrunk.Verdict.Signature) == len) atMin++;
        }
        return new BenchRow(t.Name, runs, detected, Median(cs), Median(secs), atMin, sigs.ToList(), lengths, Median(shrink));
    }

    public static double Median(List<double> xs)
    {
        if (xs.Count == 0) return double.NaN;
        xs.Sort();
        return xs.Count % 2 == 1 ? xs[xs.Count / 2] : (xs[xs.Count / 2 - 1] + xs[xs.Count / 2]) / 2;
    }
}
