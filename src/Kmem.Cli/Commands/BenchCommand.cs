using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Kmem.Engines;
using Kmem.Engines.Fuzzing;
using Kmem.Zoo;
using Spectre.Console;

namespace Kmem.Cli.Commands;

/// <summary>`kmem-verify bench`: detection figures for every known-buggy target, by the check engine or by AFL++.</summary>
public static class BenchCommand
{
    public const int DefaultCheckRuns = 10, DefaultFuzzRuns = 1;
    public static readonly TimeSpan DefaultBudget = TimeSpan.FromSeconds(60);

    /// <summary>Validated command line (before any set-up check).</summary>
    public sealed record Args(string Engine, int Runs, TimeSpan Budget, IReadOnlyList<TargetInfo> Targets, string? Build, string? Out, bool Json)
    {
        public string? Seeds { get; init; }
        public bool AllSeeds { get; init; }
    }

    /// <summary>Usage checks of `bench`: null and <paramref name="args"/> when fine, else the message (exit code 2).</summary>
    public static string? Validate(string? engine, int? runs, string? budget, string? build, string? outDir, string? target, bool json, out Args args,
        string? seeds = null)
    {
        args = null!;
        engine ??= "check";
        if (engine is not ("check" or "fuzz")) return $"--engine {engine}: expected check or fuzz";
        int k = runs ?? (engine == "check" ? DefaultCheckRuns : DefaultFuzzRuns);
        if (k < 1) return "--runs must be at least 1";
        var span = DefaultBudget;
        if (engine == "check")
        {
            if (budget is not null || build is not null || outDir is not null || seeds is not null)
                return "--budget, --build, --seeds and --out are for --engine fuzz (the check engine runs a fixed number of cases)";
        }
        else if (budget is not null && !Campaign.TryParseDuration(budget, out span))
            return $"--budget {budget}: expected e.g. 60, 60s, 2m";
        var targets = KnownBugs.All.Where(t => target is null || t.Name == target).ToList();
        if (targets.Count == 0) return $"unknown known-buggy target '{target}' (see 'kmem-verify targets')";
        args = new Args(engine, k, span, targets, build, outDir, json) { Seeds = seeds };
        return null;
    }

    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var engine = new Option<string>("--engine") { Description = "check (FsCheck generation, seeds 1..K) or fuzz (an AFL++ campaign of one job per target and run, AFL++ seeds 1..K; needs 'kmem-verify fuzz' set up)", DefaultValueFactory = _ => "check" };
        var runs = new Option<int?>("--runs") { Description = $"runs (seeds) per target (default {DefaultCheckRuns} for check, {DefaultFuzzRuns} for fuzz)" };
        var json = new Option<bool>("--json") { Description = "one JSON document instead of the table (docs/json.md, 'bench')" };
        var only = new Option<string?>("--target") { Description = "only this known-buggy target" };
        var budget = new Option<string?>("--budget") { Description = "fuzz: time per campaign, e.g. 60s, 2m (default 60s)" };
        var build = new Option<string?>("--build") { Description = "fuzz: the instrumented harness folder (default: $KMEM_FUZZ_BUILD or fuzz/build, made by fuzz/setup.sh)" };
        var seeds = new Option<string?>("--seeds") { Description = "fuzz: the seed folder (default: corpus/seeds of the clone, as 'kmem-verify fuzz'; some of its seeds already show some targets' bugs)" };
        var outDir = new Option<string?>("--out") { Description = "fuzz: keep each campaign folder under DIR/NAME-runK (default: a temporary folder, removed)" };
        var allSeeds = new Option<bool>("--all-seeds") { Description = "fuzz: keep the seeds that already show a target's bug (by default they are left out of that target's campaign, so the time is AFL++'s own)" };
        var cmd = new Command("bench", "for every known-buggy target: detection over K runs, median time (and cases) to the first failure, shrunk length against the recorded minimum, shrink time")
            { engine, runs, json, only, budget, build, seeds, outDir, allSeeds };
        cmd.SetAction(r =>
        {
            if (Validate(r.GetValue(engine), r.GetValue(runs), r.GetValue(budget), r.GetValue(build), r.GetValue(outDir), r.GetValue(only),
                    r.GetValue(json), out var a, r.GetValue(seeds)) is { } usage)
            {
                stderr.WriteLine($"kmem-verify bench: {usage}");
                return ExitCodes.BadInput;
            }
            if (r.GetValue(allSeeds))
            {
                if (a.Engine != "fuzz")
                {
                    stderr.WriteLine("kmem-verify bench: --all-seeds is an option of --engine fuzz");
                    return ExitCodes.BadInput;
                }
                a = a with { AllSeeds = true };
            }
            return a.Engine == "check" ? RunCheck(a, stdout) : RunFuzz(a, stdout, stderr);
        });
        return cmd;
    }

    // ------------------------------------------------------------------ check engine

    private static int RunCheck(Args a, TextWriter stdout)
    {
        var rows = new List<BenchRow>();
        foreach (var t in a.Targets)
        {
            var row = Bench.Run(new Bench.BugTarget(t.Name, t.Profile, t.Create, MinimumFor(t)), a.Runs);
            rows.Add(row);
            if (!a.Json) stdout.WriteLine($"  {t.Name}: {row.Detected}/{row.Runs} detected");
        }
        bool ok = rows.All(x => x.Detected == x.Runs && x.AtMinimum == x.Detected);
        if (a.Json) stdout.WriteLine(CheckJson(rows, a.Runs, ok));
        else WriteCheckTable(rows, stdout);
        return ok ? ExitCodes.Ok : ExitCodes.Violation;
    }

    private static Func<string, int?> MinimumFor(TargetInfo t) => sig => t.Minimal.FirstOrDefault(m => m.Signature == sig)?.Ops;

    public static string CheckJson(IReadOnlyList<BenchRow> rows, int runs, bool ok) =>
        JsonSerializer.Serialize(new { schema = "kmem-verify/bench", schemaVersion = 1, tool = "kmem-verify", toolVersion = Cli.ToolVersion, command = "bench",
            engine = "check", runs, ok, targets = rows }, JsonOptions);

    public static void WriteCheckTable(IReadOnlyList<BenchRow> rows, TextWriter stdout)
    {
        var table = new Table().Border(TableBorder.Rounded);
        foreach (var c in new[] { "target", "detected", "median cases", "median s to find", "at minimum", "shrunk lengths", "median s to shrink", "signatures" })
            table.AddColumn(c);
        foreach (var row in rows)
            table.AddRow(Markup.Escape(row.Target), $"{row.Detected}/{row.Runs}", F(row.MedianCases, "0"), F(row.MedianSeconds, "0.000"),
                $"{row.AtMinimum}/{row.Detected}", string.Join(" ", row.ShrunkLengths), F(row.MedianShrinkSeconds, "0.000"), Markup.Escape(string.Join(", ", row.Signatures)));
        MakeConsole(stdout).Write(table);
    }

    // ------------------------------------------------------------------ fuzz engine

    private static int RunFuzz(Args a, TextWriter stdout, TextWriter stderr)
    {
        // The set-up `kmem-verify fuzz` checks, with its messages.
        string? afl = FuzzPaths.Which(Environment.GetEnvironmentVariable("AFL_FUZZ") is { Length: > 0 } e ? e : "afl-fuzz");
        string? buildDir = a.Build ?? FuzzPaths.BuildDir();
        string? dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } hp && File.Exists(hp) ? hp : FuzzPaths.Which("dotnet");
        string? seeds = a.Seeds ?? FuzzPaths.CorpusDir("seeds");
        if (FuzzBench.CheckSetup(afl, buildDir, dotnet, seeds) is { } setup)
        {
            stderr.WriteLine($"kmem-verify: {setup}");
            return ExitCodes.BadInput;
        }
        bool temp = a.Out is null;
        string root = a.Out is { } o ? Path.GetFullPath(o) : Directory.CreateTempSubdirectory("kmem-bench-fuzz-").FullName;
        var settings = new FuzzBenchSettings
        {
            AflFuzz = afl!, Dotnet = dotnet!, HarnessDll = Path.GetFullPath(Path.Combine(buildDir!, "Kmem.Fuzz.dll")),
            SeedsDir = seeds is null ? null : Path.GetFullPath(seeds),
            ExampleDirs = new[] { FuzzPaths.CorpusDir("examples"), FuzzPaths.CorpusDir("regressions") }.OfType<string>().ToList(),
            Budget = a.Budget, OutRoot = root, KeepOut = !temp, Tool = $"kmem-verify {Cli.ToolVersion}", AllSeeds = a.AllSeeds,
        };
        var progress = a.Json ? stderr : stdout;
        progress.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"bench --engine fuzz: {a.Targets.Count} target(s) x {a.Runs} run(s), {a.Budget.TotalSeconds:0} s each, 1 job, AFL++ seeds 1..{a.Runs}, build {buildDir}"));

        using var stop = new StopSignals();
        var cts = stop.Source;

        var reference = TargetRegistry.Get("reference")?.Create;
        var rows = new List<FuzzBenchRow>();
        bool setupFailed = false;
        foreach (var t in a.Targets)
        {
            var runs = new List<FuzzRun>();
            for (int k = 1; k <= a.Runs && !cts.IsCancellationRequested && !setupFailed; k++)
            {
                var run = FuzzBench.Run(settings, t.Name, t.Create, reference, (dir, sig, text) => Cli.WriteFinding(dir, sig, t.Name, text),
                    k, MinimumFor(t), cts.Token, out setupFailed);
                runs.Add(run);
                progress.WriteLine(FuzzBench.ProgressLine(run, a.Runs));
            }
            if (runs.Count > 0) rows.Add(FuzzBenchRow.Of(t.Name, runs));
            if (cts.IsCancellationRequested || setupFailed) break;
        }
        if (setupFailed)
        {
            // As `kmem-verify fuzz`: the campaign could not start; its folder (and logs) are kept.
            stderr.WriteLine($"kmem-verify: {rows[^1].RunResults[^1].Error}");
            return ExitCodes.BadInput;
        }
        if (temp)
        {
            try { Directory.Delete(root, recursive: true); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        bool ok = !cts.IsCancellationRequested && rows.Count == a.Targets.Count && rows.All(x => x.AllAtMinimum);
        if (a.Json) stdout.WriteLine(FuzzJson(rows, a.Runs, a.Budget, buildDir!, ok));
        else WriteFuzzTable(rows, stdout);
        if (cts.IsCancellationRequested) stderr.WriteLine("kmem-verify bench: interrupted; the figures above cover the campaigns that ran");
        if (rows.Any(x => x.Errors > 0))
        {
            stderr.WriteLine("kmem-verify bench: some campaigns ended early (afl-fuzz stopped on its own):");
            foreach (var run in rows.SelectMany(x => x.RunResults).Where(x => x.Error is not null))
                stderr.WriteLine($"  {run.Target} run {run.Run}: {run.Error}");
        }
        return ok ? ExitCodes.Ok : ExitCodes.Violation;
    }

    public static string FuzzJson(IReadOnlyList<FuzzBenchRow> rows, int runs, TimeSpan budget, string build, bool ok) =>
        JsonSerializer.Serialize(new { schema = "kmem-verify/bench", schemaVersion = 1, tool = "kmem-verify", toolVersion = Cli.ToolVersion, command = "bench",
            engine = "fuzz", runs, budgetSeconds = budget.TotalSeconds, jobs = 1, build, ok, targets = rows }, JsonOptions);

    public static void WriteFuzzTable(IReadOnlyList<FuzzBenchRow> rows, TextWriter stdout)
    {
        var table = new Table().Border(TableBorder.Rounded);
        foreach (var c in new[] { "target", "found", "median s to find", "median AFL++ s", "at minimum", "shrunk/minimum", "median s to shrink", "signatures", "from", "not the target's own" })
            table.AddColumn(c);
        foreach (var row in rows)
        {
            var found = row.RunResults.Where(x => x.Found).ToList();
            string foundCell = $"{row.Found}/{row.Runs}" + (row.Errors > 0 ? $" ({row.Errors} error{(row.Errors > 1 ? "s" : "")})" : "");
            string lengths = string.Join(" ", found.Select(x => $"{x.First!.ShrunkOps}/{(x.Minimum is int m ? m.ToString(CultureInfo.InvariantCulture) : "?")}"));
            string from = string.Join(", ", found.GroupBy(x => x.First!.Source).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => row.Runs > 1 ? $"{g.Key} {g.Count()}" : g.Key));
            string notOwn = string.Join(", ", row.RunResults.SelectMany(x => x.NotOwn).Select(x => x.Signature).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal));
            table.AddRow(Markup.Escape(row.Target), foundCell, F(row.MedianSeconds, "0.0"), F(row.MedianAflSeconds, "0.0"), $"{row.AtMinimum}/{row.Found}",
                lengths, F(row.MedianShrinkSeconds, "0.00"), Markup.Escape(string.Join(", ", row.Signatures)), from, Markup.Escape(notOwn));
        }
        MakeConsole(stdout).Write(table);
    }

    // ------------------------------------------------------------------ common

    private static IAnsiConsole MakeConsole(TextWriter stdout)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(stdout), Ansi = AnsiSupport.No });
        console.Profile.Width = 200;
        return console;
    }

    /// <summary>camelCase members; a median of nothing (NaN) is null.</summary>
    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new NaNAsNull() },
    };

    private sealed class NaNAsNull : JsonConverter<double>
    {
        public override double Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.TokenType == JsonTokenType.Null ? double.NaN : reader.GetDouble();

        public override void Write(Utf8JsonWriter writer, double value, JsonSerializerOptions options)
        {
            if (double.IsNaN(value) || double.IsInfinity(value)) writer.WriteNullValue();
            else writer.WriteNumberValue(value);
        }
    }

    private static string F(double x, string fmt) => double.IsNaN(x) ? "-" : x.ToString(fmt, CultureInfo.InvariantCulture);
}
