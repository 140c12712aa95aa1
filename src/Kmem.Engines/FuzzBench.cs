using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Kmem.Engines.Fuzzing;
using Kmem.Runner;
using Kmem.Target;

namespace Kmem.Engines;

/// <summary>One finding of a bench campaign, as its FINDING line (and the file it wrote) says.</summary>
/// <param name="Seconds">The campaign's clock when the finding was on disk (start-up and the seed replay included).</param>
/// <param name="AflSeconds">AFL++'s own clock (the crash file's time: field); null for a finding of the seed replay.</param>
/// <param name="Source">"afl": a crash AFL++ saved; "seed": one of the seeds, replayed before AFL++ starts.</param>
/// <param name="ShrinkSeconds">Triage time: replay, shrink, the differential replay on the reference, write.</param>
/// <param name="OnReference">"ok" (holds there: the target's own bug), the reference's signature, or null when not said.</param>
public sealed record FuzzFinding(
    string Signature, double Seconds, double? AflSeconds, string Source, int OriginalOps, int ShrunkOps, int ShrunkBytes,
    double ShrinkSeconds, string? OnReference, string? Path)
{
    /// <summary>The finding's `.kmem` text (header comments included), read before the campaign folder is removed.</summary>
    public string? Scenario { get; init; }

    public bool HoldsOnReference => OnReference is null or "ok";
}

/// <summary>One campaign of `bench --engine fuzz`: one target, one AFL++ seed, one job, a fixed budget.</summary>
public sealed record FuzzRun(
    string Target, int Run, int AflSeed, double BudgetSeconds, double ElapsedSeconds, FuzzFinding? First,
    IReadOnlyList<FuzzFinding> NotOwn, int? Minimum, long Execs, double ExecsPerSecond, string? Error)
{
    /// <summary>The first finding that holds on the reference, on disk within the budget.</summary>
    public bool Found => First is { } f && f.Seconds <= BudgetSeconds;
    public bool AtMinimum => Found && Minimum is int m && First!.ShrunkOps == m;
    /// <summary>Seeds left out of this run because they already show the target's own bug (see <see cref="FuzzBenchSettings.AllSeeds"/>).</summary>
    public int SeedsLeftOut { get; init; }
}

/// <summary>One target's runs, summed up the way the check engine's <see cref="BenchRow"/> is.</summary>
public sealed record FuzzBenchRow(
    string Target, int Runs, int Found, double MedianSeconds, double MedianAflSeconds, int AtMinimum,
    IReadOnlyList<string> Signatures, IReadOnlyList<int> ShrunkLengths, IReadOnlyList<int?> Minimums, double MedianShrinkSeconds,
    int Errors, IReadOnlyList<FuzzRun> RunResults)
{
    public static FuzzBenchRow Of(string target, IReadOnlyList<FuzzRun> runs)
    {
        var found = runs.Where(r => r.Found).ToList();
        return new FuzzBenchRow(target, runs.Count, found.Count,
            Bench.Median(found.Select(r => r.First!.Seconds).ToList()),
            Bench.Median(found.Where(r => r.First!.AflSeconds is not null).Select(r => r.First!.AflSeconds!.Value).ToList()),
            found.Count(r => r.AtMinimum),
            found.Select(r => r.First!.Signature).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList(),
            found.Select(r => r.First!.ShrunkOps).ToList(),
            found.Select(r => r.Minimum).ToList(),
            Bench.Median(found.Select(r => r.First!.ShrinkSeconds).ToList()),
            runs.Count(r => r.Error is not null), runs);
    }

    /// <summary>Exit code 0 needs every run of every target found, at its recorded minimum, without error.</summary>
    public bool AllAtMinimum => Errors == 0 && Found == Runs && AtMinimum == Found;
}

/// <summary>Where and how `bench --engine fuzz` runs its campaigns (the checked set-up of `kmem-verify fuzz`).</summary>
public sealed record FuzzBenchSettings
{
    public required string AflFuzz { get; init; }
    public required string Dotnet { get; init; }
    /// <summary>The instrumented Kmem.Fuzz.dll.</summary>
    public required string HarnessDll { get; init; }
    public string? SeedsDir { get; init; }
    public IReadOnlyList<string> ExampleDirs { get; init; } = [];
    public TimeSpan Budget { get; init; } = TimeSpan.FromSeconds(60);
    public int TimeoutMs { get; init; } = 5000;
    /// <summary>Campaign folders go under here, one per target and run (NAME-runK).</summary>
    public required string OutRoot { get; init; }
    /// <summary>False: each campaign folder is removed once its figures are read (finding paths are then null).</summary>
    public bool KeepOut { get; init; }
    public string Tool { get; init; } = "kmem-verify";
    /// <summary>
    /// False (the default): a seed that already shows the target's own bug (fails on it, holds on the
    /// reference) is left out of that target's campaign, so the time measured is AFL++'s, not the
    /// seed corpus's. True: every seed, as `kmem-verify fuzz` uses them.
    /// </summary>
    public bool AllSeeds { get; init; }
}

/// <summary>
/// `kmem-verify bench --engine fuzz`: for each known-buggy target and run, one AFL++ campaign of one
/// job through <see cref="Campaign"/>, exactly as `kmem-verify fuzz --target T --jobs 1 --duration
/// BUDGET --stop-on-finding` in a fresh folder (harness `scenario`, profile `any`, ops `all`,
/// out-of-process), with the AFL++ seed fixed to the run's number (`-s K`). The campaign's own output
/// is not shown; its FINDING lines are parsed for the figures.
/// </summary>
public static class FuzzBench
{
    /// <summary>
    /// The set-up `kmem-verify fuzz` checks, with its messages: afl-fuzz (<paramref name="aflFuzz"/>: a
    /// name on PATH or a path), the instrumented build, dotnet, the seed folder. Null when all is there.
    /// </summary>
    public static string? CheckSetup(string? aflFuzz, string? buildDir, string? dotnet, string? seedsDir)
    {
        if (aflFuzz is null)
            return "afl-fuzz not found. Install AFL++ (Debian/Ubuntu: apt-get install -y afl++) " +
                   "or run fuzz/setup.sh, which installs it and builds the instrumented harness.";
        if (buildDir is null || !File.Exists(Path.Combine(buildDir, "Kmem.Fuzz.dll")) || !File.Exists(Path.Combine(buildDir, ".instrumented")))
            return $"no instrumented harness in {buildDir ?? "fuzz/build"}: run fuzz/setup.sh (it publishes and instruments it)";
        if (dotnet is null)
            return "dotnet not found on PATH (the harness runs as 'dotnet Kmem.Fuzz.dll')";
        if (seedsDir is not null && !Directory.Exists(seedsDir))
            return $"--seeds {seedsDir}: no such folder";
        return null;
    }

    /// <summary>The harness of every bench campaign: what `kmem-verify fuzz --target T` uses by default.</summary>
    public static HarnessOptions Harness(string target) =>
        HarnessOptions.Parse(["scenario", "--target", target, "--profile", "any", "--ops", "all", "--mode", "out-of-process"], _ => null);

    /// <summary>
    /// A wrapper that runs afl-fuzz with `-s SEED` before the campaign's own arguments (Campaign has
    /// no seed option). It `exec`s, so the process the campaign holds and signals is afl-fuzz itself.
    /// </summary>
    public static string SeededAflFuzz(string dir, string aflFuzz, int seed)
    {
        Directory.CreateDirectory(dir);
        string path = System.IO.Path.Combine(dir, "afl-fuzz-seeded");
        File.WriteAllText(path, $"#!/bin/sh\nexec {Quote(aflFuzz)} -s {seed.ToString(CultureInfo.InvariantCulture)} \"$@\"\n");
        if (!OperatingSystem.IsWindows()) // AFL++ runs on Unix only; the check keeps the analyzer content
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
                                       UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        return path;
    }

    private static string Quote(string s) => "'" + s.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    /// <summary>
    /// One campaign. Throws nothing for a campaign that finds nothing; a campaign that cannot start
    /// comes back with <see cref="FuzzRun.Error"/> and <paramref name="setupError"/> true.
    /// </summary>
    /// <param name="writeFinding">(dir, signature, text) -> path, as for `kmem-verify fuzz`.</param>
    public static FuzzRun Run(FuzzBenchSettings s, string target, Func<ITarget> create, Func<ITarget>? reference,
        Func<string, string, string, string> writeFinding, int run, Func<string, int?> minimumFor, CancellationToken cancel, out bool setupError)
    {
        string outDir = System.IO.Path.Combine(s.OutRoot, $"{target.Replace("buggy:", "", StringComparison.Ordinal)}-run{run.ToString(CultureInfo.InvariantCulture)}");
        var parser = new FindingLog();
        var harness = Harness(target);
        string? seedsDir = s.SeedsDir;
        int leftOut = 0;
        if (!s.AllSeeds && seedsDir is not null && reference is not null)
            (seedsDir, leftOut) = SeedsWithoutTheBug(seedsDir, System.IO.Path.Combine(outDir, "seeds-without-the-bug"), harness, create, reference);
        var options = new CampaignOptions
        {
            Harness = harness, OutDir = outDir, HarnessDll = s.HarnessDll, Jobs = 1, Duration = s.Budget, Resume = false,
            TimeoutMs = s.TimeoutMs, SeedsDir = seedsDir, ExampleDirs = s.ExampleDirs,
            AflFuzz = SeededAflFuzz(outDir, s.AflFuzz, run), Dotnet = s.Dotnet, StopOnFinding = true,
        };
        var campaign = new Campaign(options, create, writeFinding, parser.Writer, s.Tool, reference);
        var result = campaign.Run(cancel);
        var own = parser.Findings.FirstOrDefault(f => f.HoldsOnReference);
        // When the seed replay (before AFL++ starts) already finds the target's own bug, the campaign
        // stops afl-fuzz before it has run an input, and then reports "afl-fuzz stopped without
        // running the harness" as a set-up error (Campaign.Run's check of zero execs). The finding
        // was made and written: not a set-up error here.
        setupError = result.SetupError is not null && own is null;
        // The campaign's exact clock for the first own finding (the FINDING line rounds it).
        if (own is not null && result.FirstOwnFinding is { } t) own = own with { Seconds = t.TotalSeconds };
        string? error = setupError ? result.SetupError : own is null ? result.EarlyExit : null;
        FuzzFinding Keep(FuzzFinding f)
        {
            string? text = f.Path is { } p && File.Exists(p) ? File.ReadAllText(p) : null;
            return f with { Scenario = text, Path = s.KeepOut ? f.Path : null };
        }
        own = own is null ? null : Keep(own);
        var notOwn = parser.Findings.Where(f => !f.HoldsOnReference).Select(Keep).ToList();
        if (!s.KeepOut && !setupError)
        {
            try { Directory.Delete(outDir, recursive: true); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return new FuzzRun(target, run, run, s.Budget.TotalSeconds, result.Elapsed.TotalSeconds, own,
            notOwn, own is null ? null : minimumFor(own.Signature),
            result.Instances.Sum(i => i.ExecsDone), result.Instances.Sum(i => i.ExecsPerSec), error) { SeedsLeftOut = leftOut };
    }

    /// <summary>
    /// Copies the seeds that do not show the target's own bug (replayed in-process as the campaign's
    /// triage does: failing on the target and holding on the reference) into <paramref name="into"/>;
    /// returns that folder and how many were left out.
    /// </summary>
    public static (string Dir, int LeftOut) SeedsWithoutTheBug(string seeds, string into, HarnessOptions harness, Func<ITarget> create, Func<ITarget> reference)
    {
        Directory.CreateDirectory(into);
        int leftOut = 0;
        foreach (string f in Directory.GetFiles(seeds).Order(StringComparer.Ordinal))
        {
            byte[] bytes = File.ReadAllBytes(f);
            bool showsBug;
            try
            {
                var scenario = ScenarioHarness.Decode(bytes, harness);
                showsBug = !ScenarioHarness.Evaluate(scenario, create).Ok && ScenarioHarness.Evaluate(scenario, reference).Ok;
            }
            catch (UnsupportedScenarioException) { showsBug = false; }
            if (showsBug) leftOut++;
            else File.Copy(f, System.IO.Path.Combine(into, System.IO.Path.GetFileName(f)));
        }
        return (into, leftOut);
    }

    /// <summary>The plain progress line printed after each campaign.</summary>
    public static string ProgressLine(FuzzRun r, int runs)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"  {r.Target} run {r.Run}/{runs} (AFL++ -s {r.AflSeed}): ");
        if (r.Error is { } e) sb.Append("error: ").Append(e.Split('\n')[0]);
        else if (r.First is not { } f) sb.Append(CultureInfo.InvariantCulture, $"not found in {r.BudgetSeconds:0} s");
        else
        {
            sb.Append(CultureInfo.InvariantCulture, $"{(r.Found ? "found" : "found after the budget:")} {f.Signature} at {f.Seconds:0.0} s");
            sb.Append(f.AflSeconds is double a ? string.Create(CultureInfo.InvariantCulture, $" (AFL++ {a:0.0} s)") : " (seed replay)");
            sb.Append(CultureInfo.InvariantCulture, $", shrunk to {f.ShrunkOps} ops (minimum {(r.Minimum is int m ? m.ToString(CultureInfo.InvariantCulture) : "not recorded")}) in {f.ShrinkSeconds:0.0} s");
        }
        if (r.NotOwn.Count > 0) sb.Append("; not the target's own: ").Append(string.Join(", ", r.NotOwn.Select(n => n.Signature)));
        if (r.SeedsLeftOut > 0) sb.Append(CultureInfo.InvariantCulture, $" [{r.SeedsLeftOut} seed(s) that already show the bug left out]");
        return sb.ToString();
    }
}

/// <summary>
/// Reads a campaign's console output (its log writer) and keeps its findings: each
/// `FINDING [SIG] at T[, AFL++ found it A s into INST's run]: shrunk from N to M operations (B bytes) in S s`
/// with the lines under it (`holds on the reference...`, `fails on the reference too (SIG)...`,
/// `written to PATH; ...`). Everything else is dropped.
/// </summary>
public sealed class FindingLog
{
    private static readonly Regex Finding = new(
        @"^FINDING \[(?<sig>[^\]]+)\] at (?<at>[0-9hms.]+)(?:, AFL\+\+ found it (?<afl>[0-9.]+) s into [^:]*)?: shrunk from (?<from>\d+) to (?<to>\d+) \w+ \((?<bytes>\d+) bytes\) in (?<shrink>[0-9.]+) s",
        RegexOptions.CultureInvariant);
    private static readonly Regex FailsToo = new(@"^\s+fails on the reference too \((?<sig>[^)]*)\)", RegexOptions.CultureInvariant);
    private static readonly Regex Written = new(@"^\s+written to (?<path>.+?); replay with", RegexOptions.CultureInvariant);

    private readonly List<FuzzFinding> findings = [];

    public FindingLog() => Writer = new LineWriter(Feed);

    /// <summary>Give this to the campaign as its log.</summary>
    public TextWriter Writer { get; }

    public IReadOnlyList<FuzzFinding> Findings => findings;

    public void Feed(string line)
    {
        if (Finding.Match(line) is { Success: true } m)
        {
            findings.Add(new FuzzFinding(m.Groups["sig"].Value, ParseSpan(m.Groups["at"].Value),
                m.Groups["afl"].Success ? D(m.Groups["afl"].Value) : null, m.Groups["afl"].Success ? "afl" : "seed",
                int.Parse(m.Groups["from"].Value, CultureInfo.InvariantCulture), int.Parse(m.Groups["to"].Value, CultureInfo.InvariantCulture),
                int.Parse(m.Groups["bytes"].Value, CultureInfo.InvariantCulture), D(m.Groups["shrink"].Value), null, null));
            return;
        }
        if (findings.Count == 0) return;
        var last = findings[^1];
        if (line.StartsWith("  holds on the reference", StringComparison.Ordinal)) findings[^1] = last with { OnReference = "ok" };
        else if (FailsToo.Match(line) is { Success: true } f) findings[^1] = last with { OnReference = f.Groups["sig"].Value };
        else if (Written.Match(line) is { Success: true } w) findings[^1] = last with { Path = w.Groups["path"].Value };
    }

    private static double D(string s) => double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture);

    /// <summary>The inverse of <see cref="Campaign.FormatSpan"/>: 12.9s, 1m02s, 1h00m02s.</summary>
    public static double ParseSpan(string s) =>
        Campaign.TryParseDuration(s, out var t) ? t.TotalSeconds : s.Trim() is "0s" or "0.0s" ? 0 : double.NaN;

    private sealed class LineWriter(Action<string> onLine) : TextWriter
    {
        private readonly StringBuilder pending = new();
        public override Encoding Encoding => Encoding.UTF8;

        public override void Write(char value)
        {
            if (value == '\n')
            {
                onLine(pending.ToString().TrimEnd('\r'));
                pending.Clear();
            }
            else pending.Append(value);
        }

        public override void Write(string? value)
        {
            if (value is null) return;
            foreach (char c in value) Write(c);
        }

        public override void WriteLine(string? value)
        {
            Write(value);
            Write('\n');
        }
    }
}
