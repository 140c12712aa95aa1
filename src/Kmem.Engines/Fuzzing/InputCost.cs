using System.Diagnostics;
using Kmem.Runner;
using Kmem.Scenarios;
using Kmem.Target;

namespace Kmem.Engines.Fuzzing;

/// <summary>What one fuzzing input costs the harness, run in-process and uninstrumented.</summary>
/// <param name="CheckedUs">The fastest of the runs of <see cref="ScenarioHarness.Decode"/> and <see cref="ScenarioRunner.Run"/>, as the harness does it.</param>
/// <param name="AloneUs">The same with <see cref="CheckMode.None"/>: the target alone.</param>
/// <param name="Outcome">"held", the failure signature (crash/EXCEPTION for a checker exception, as triage names it), or "unsupported".</param>
public sealed record InputCost(string Name, int Bytes, int Ops, ulong RamBytes, double CheckedUs, double AloneUs, string Outcome);

/// <summary>
/// Where a campaign's time goes: every input of a folder (an AFL++ queue, a seed folder) timed as
/// the scenario harness runs it. AFL++ reports one exec/s figure for the whole queue; a few inputs
/// that boot a large machine or vmalloc most of memory page by page can take most of it, and this
/// says which. Timings vary with the machine's load: each is the fastest of several runs, and none
/// decides a verdict.
/// </summary>
public static class InputCosts
{
    /// <summary>The regular files of a folder in ordinal order, without AFL++'s dot files (.state, .cur_input...).</summary>
    public static IReadOnlyList<string> Files(string dir) =>
        Directory.GetFiles(dir).Where(f => !Path.GetFileName(f).StartsWith('.')).Order(StringComparer.Ordinal).ToList();

    public static IReadOnlyList<InputCost> Measure(IReadOnlyList<string> files, HarnessOptions o, Func<ITarget> target, int runs)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(runs, 1);
        var inputs = files.Select(f => (Name: Path.GetFileName(f), Bytes: File.ReadAllBytes(f))).ToList();
        var best = new double[inputs.Count, 2];
        var outcome = new string[inputs.Count];
        var scenarios = new Scenario[inputs.Count];
        for (int i = 0; i < inputs.Count; i++) { best[i, 0] = best[i, 1] = double.MaxValue; }
        // Runs in turns over the whole folder (not K runs of one input, then the next), so that the
        // JIT has compiled the hot code for every input's paths by the later turns.
        for (int r = 0; r < runs; r++)
            for (int i = 0; i < inputs.Count; i++)
                for (int m = 0; m < 2; m++)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    var s = ScenarioHarness.Decode(inputs[i].Bytes, o);
                    string result;
                    // Checked: as triage evaluates it (a checker exception is a crash verdict). Alone: only timed.
                    try { result = m == 0 ? ScenarioHarness.Evaluate(s, target) is { Ok: false } v ? v.Signature : "held" : Alone(s, target); }
                    catch (UnsupportedScenarioException) { result = "unsupported"; }
                    double us = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
                    best[i, m] = Math.Min(best[i, m], us);
                    if (m == 0) { outcome[i] = result; scenarios[i] = s; }
                }
        return Enumerable.Range(0, inputs.Count).Select(i => new InputCost(
            inputs[i].Name, inputs[i].Bytes.Length, scenarios[i].Ops.Count, RamOf(scenarios[i]), best[i, 0], best[i, 1], outcome[i])).ToList();
    }

    private static readonly RunOptions AloneOptions = new() { Check = CheckMode.None };

    private static string Alone(Scenario s, Func<ITarget> target)
    {
        try { ScenarioRunner.Run(s, target, AloneOptions); }
        catch (Exception e) when (e is not (OutOfMemoryException or UnsupportedScenarioException)) { }
        return "";
    }

    /// <summary>The slowest <paramref name="top"/> inputs, then the distribution and where the sum goes.</summary>
    public static string Report(IReadOnlyList<InputCost> costs, string folder, string target, int runs, int top)
    {
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        string Us(double us) => us.ToString("#,0", inv) + " us";
        var sb = new System.Text.StringBuilder();
        sb.AppendLine(inv, $"kmem-verify corpus cost: {costs.Count} inputs in {folder}, target {target}, the fastest of {runs} runs each, in-process and uninstrumented");
        var slow = costs.OrderByDescending(c => c.CheckedUs).ThenBy(c => c.Name, StringComparer.Ordinal).ToList();
        double sumChecked = costs.Sum(c => c.CheckedUs), sumAlone = costs.Sum(c => c.AloneUs);
        if (top > 0)
        {
            sb.AppendLine(inv, $"  the slowest {Math.Min(top, costs.Count)}:");
            sb.AppendLine(inv, $"  {"checked",12} {"alone",12} {"ops",4} {"RAM",9}  outcome  input");
            foreach (var c in slow.Take(top))
                sb.AppendLine(inv, $"  {Us(c.CheckedUs),12} {Us(c.AloneUs),12} {c.Ops,4} {Sizes.Format(c.RamBytes),9}  {c.Outcome}  {c.Name}");
        }
        double Pct(IReadOnlyList<double> sorted, double q) => sorted[Math.Min(sorted.Count - 1, (int)(q * sorted.Count))];
        foreach (var (label, pick, sum) in new (string, Func<InputCost, double>, double)[] { ("checked", c => c.CheckedUs, sumChecked), ("alone", c => c.AloneUs, sumAlone) })
        {
            var sorted = costs.Select(pick).Order().ToList();
            sb.AppendLine(inv, $"  {label + ":",-8} median {Us(Pct(sorted, 0.5))}, 90th percentile {Us(Pct(sorted, 0.9))}, max {Us(sorted[^1])}, mean {Us(sum / costs.Count)}");
        }
        if (top > 0 && sumChecked > 0)
            sb.AppendLine(inv, $"  the slowest {Math.Min(top, costs.Count)} take {100 * slow.Take(top).Sum(c => c.CheckedUs) / sumChecked:0}% of the checked sum; checked / alone over the sums {sumChecked / sumAlone:0.00}");
        sb.AppendLine(inv, $"  at the mean, one core runs at most {1e6 * costs.Count / sumChecked:#,0} checked inputs a second, before AFL++'s own share and the instrumentation's");
        return sb.ToString();
    }

    /// <summary>The machine's RAM as booted (the profile's default when the input names none), before mem=.</summary>
    private static ulong RamOf(Scenario s)
    {
        ulong sum = 0;
        foreach (var r in MachineConfig.From(s).Ram) sum += r.Size;
        return sum;
    }
}
