using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Kmem.Engines.Fuzzing;
using Kmem.Report;
using Kmem.Runner;
using Kmem.Scenarios;
using Kmem.Target;
using Kmem.Zoo;

namespace Kmem.Cli.Commands;

/// <summary>`kmem-verify fuzz`: an AFL++ campaign with live status and triage of every crash.</summary>
public static class FuzzCommand
{
    public const string DefaultOut = "afl-out";

    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var target = new Option<string?>("--target") { Description = "what to fuzz (see 'kmem-verify targets'; default reference)" };
        var profile = new Option<string?>("--profile") { Description = "force every input onto this profile; default 'any': each input chooses" };
        var ops = new Option<string?>("--ops") { Description = "all (default) or buddy: keep only memblock/buddy operations of each decoded input" };
        var harness = new Option<string?>("--harness") { Description = "scenario (default: bytes -> scenario -> runner) or parser (bytes -> .kmem parser)" };
        var duration = new Option<string?>("--duration") { Description = "how long, e.g. 90s, 10m, 2h (default: until Ctrl-C)" };
        var jobs = new Option<int>("--jobs") { Description = "afl-fuzz instances: one main (-M) and N-1 secondaries (-S) on one sync folder; a lone instance runs as -S", DefaultValueFactory = _ => 1 };
        var outDir = new Option<string>("--out") { Description = "campaign folder: afl/, findings/, hangs/, logs/", DefaultValueFactory = _ => DefaultOut };
        var resume = new Option<bool>("--resume") { Description = "continue the campaign in --out (its queue, its findings)" };
        var mode = new Option<string>("--mode") { Description = "out-of-process (default: survives inputs that overflow the stack or outlive --timeout) or persistent (less overhead; the campaign restarts an instance such an input kills)", DefaultValueFactory = _ => "out-of-process" };
        var timeout = new Option<int>("--timeout") { Description = "afl-fuzz -t: milliseconds per input before it counts as a hang", DefaultValueFactory = _ => 5000 };
        var seeds = new Option<string?>("--seeds") { Description = "seed folder (default: corpus/seeds of the clone, else generated)" };
        var build = new Option<string?>("--build") { Description = "the instrumented harness folder (default: $KMEM_FUZZ_BUILD or fuzz/build, made by fuzz/setup.sh)" };
        var status = new Option<int>("--status-interval") { Description = "seconds between status lines", DefaultValueFactory = _ => 10 };
        var stopOnFinding = new Option<bool>("--stop-on-finding") { Description = "stop at the first new finding (of a known-buggy target: the first that holds on the reference); benchmarks" };
        var json = new Option<bool>("--json") { Description = "JSON lines on stdout: one verdict object per finding as it is written, then a summary object (docs/json.md); the status lines go to stderr" };
        var cmd = new Command("fuzz", "run an AFL++ campaign (SharpFuzz harness): live status, every crash replayed, deduplicated by signature, shrunk to findings/SIGNATURE.kmem")
            { target, profile, ops, harness, duration, jobs, outDir, resume, mode, timeout, seeds, build, status, stopOnFinding, json };
        cmd.SetAction(r =>
        {
            string outPath = r.GetValue(outDir)!;
            bool isResume = r.GetValue(resume);
            // On --resume, what was not given comes from the campaign itself.
            HarnessOptions? stored = null;
            string argsFile = Campaign.HarnessArgsFile(outPath);
            if (isResume && File.Exists(argsFile))
            {
                try { stored = HarnessOptions.Parse(File.ReadAllLines(argsFile).Where(l => l.Length > 0).ToList(), _ => null); }
                catch (ArgumentException) { stored = null; }
            }
            string[] harnessArgs =
            [
                r.GetValue(harness) ?? (stored?.Kind == HarnessKind.Parser ? "parser" : "scenario"),
                "--target", r.GetValue(target) ?? stored?.Target ?? "reference",
                "--profile", r.GetValue(profile) ?? (stored is null ? "any" : stored.Profile ?? "any"),
                "--ops", r.GetValue(ops) ?? (stored is null ? "all" : HarnessOptions.OpsName(stored.Ops)),
                "--mode", r.GetValue(mode)!,
            ];
            HarnessOptions h;
            try { h = HarnessOptions.Parse(harnessArgs, _ => null); }
            catch (ArgumentException e)
            {
                stderr.WriteLine($"kmem-verify: {e.Message.Split('\n')[0]}");
                return ExitCodes.BadInput;
            }
            if (h.Mode == HarnessMode.LibFuzzer)
            {
                stderr.WriteLine("kmem-verify: --mode must be persistent or out-of-process (libfuzzer is for OSS-Fuzz builds, see fuzz/oss-fuzz)");
                return ExitCodes.BadInput;
            }
            if (!Cli.TryTarget(h.Target, stderr, out var info)) return ExitCodes.BadInput;
            TimeSpan? d = null;
            if (r.GetValue(duration) is { } dt)
            {
                if (!Campaign.TryParseDuration(dt, out var span))
                {
                    stderr.WriteLine($"kmem-verify: --duration {dt}: expected e.g. 90, 90s, 10m, 2h");
                    return ExitCodes.BadInput;
                }
                d = span;
            }
            int j = r.GetValue(jobs), t = r.GetValue(timeout), si = r.GetValue(status);
            if (j < 1 || t < 1 || si < 1)
            {
                stderr.WriteLine("kmem-verify: --jobs, --timeout and --status-interval must be at least 1");
                return ExitCodes.BadInput;
            }

            // Set-up checks: AFL++ and the instrumented harness.
            string? afl = FuzzPaths.Which(Environment.GetEnvironmentVariable("AFL_FUZZ") is { Length: > 0 } a ? a : "afl-fuzz");
            if (afl is null)
            {
                stderr.WriteLine("kmem-verify: afl-fuzz not found. Install AFL++ (Debian/Ubuntu: apt-get install -y afl++) " +
                                 "or run fuzz/setup.sh, which installs it and builds the instrumented harness.");
                return ExitCodes.BadInput;
            }
            string? buildDir = r.GetValue(build) ?? FuzzPaths.BuildDir();
            string? dll = buildDir is null ? null : Path.GetFullPath(Path.Combine(buildDir, "Kmem.Fuzz.dll"));
            if (dll is null || !File.Exists(dll) || !File.Exists(Path.Combine(buildDir!, ".instrumented")))
            {
                stderr.WriteLine($"kmem-verify: no instrumented harness in {buildDir ?? "fuzz/build"}: run fuzz/setup.sh (it publishes and instruments it)");
                return ExitCodes.BadInput;
            }
            string? dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } hp && File.Exists(hp) ? hp : FuzzPaths.Which("dotnet");
            if (dotnet is null)
            {
                stderr.WriteLine("kmem-verify: dotnet not found on PATH (the harness runs as 'dotnet Kmem.Fuzz.dll')");
                return ExitCodes.BadInput;
            }
            string? seedDir = r.GetValue(seeds) ?? (h.Kind == HarnessKind.Scenario ? FuzzPaths.CorpusDir("seeds") : null);
            if (seedDir is not null && !Directory.Exists(seedDir))
            {
                stderr.WriteLine($"kmem-verify: --seeds {seedDir}: no such folder");
                return ExitCodes.BadInput;
            }
            var exampleDirs = new[] { FuzzPaths.CorpusDir("examples"), FuzzPaths.CorpusDir("regressions") }.OfType<string>().ToList();

            var options = new CampaignOptions
            {
                Harness = h, OutDir = Path.GetFullPath(outPath), HarnessDll = dll, Jobs = j, Duration = d, Resume = isResume,
                TimeoutMs = t, SeedsDir = seedDir is null ? null : Path.GetFullPath(seedDir), ExampleDirs = exampleDirs,
                AflFuzz = afl, Dotnet = dotnet, StatusInterval = TimeSpan.FromSeconds(si), StopOnFinding = r.GetValue(stopOnFinding),
            };
            string findingTarget = h.Kind == HarnessKind.Parser ? "parser" : info.Name;
            bool asJson = r.GetValue(json);
            // With --json, stdout carries only JSON lines; the campaign's own lines go to stderr.
            var log = asJson ? stderr : stdout;
            string WriteFinding(string dir, string sig, string text)
            {
                string path = Cli.WriteFinding(dir, sig, findingTarget, text);
                if (asJson) stdout.WriteLine(FindingJson(findingTarget, h.Kind, sig, path, text, info.Create));
                return path;
            }
            var campaign = new Campaign(options, info.Create, WriteFinding, log,
                $"kmem-verify {Cli.ToolVersion}", TargetRegistry.Get("reference")?.Create);

            using var stop = new StopSignals();
            var cts = stop.Source;

            var result = campaign.Run(cts.Token);
            if (result.SetupError is { } err)
            {
                stderr.WriteLine($"kmem-verify: {err}");
                return ExitCodes.BadInput;
            }
            log.WriteLine($"campaign {(cts.IsCancellationRequested ? "interrupted" : "ended")} after {Campaign.FormatSpan(result.Elapsed)}: " +
                             $"{result.NewFindings} new finding(s) this run, {result.Signatures.Count} in {Path.Combine(outPath, "findings")}" +
                             (result.Signatures.Count > 0 ? $" [{string.Join(", ", result.Signatures)}]" : "") +
                             $"; {result.Duplicates} duplicate crash(es), {result.Unreproduced} unreproduced, {result.Hangs} hang(s)");
            if (result.FirstFinding is { } ff)
                log.WriteLine($"first new finding after {ff.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s" +
                    (h.Target != "reference" && result.FirstOwnFinding is { } own ? $"; the first that holds on the reference after {own.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s" : ""));
            foreach (var s in result.Instances)
                log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  {s.Name}: {s.ExecsDone:N0} execs, {s.ExecsPerSec:0} exec/s, corpus {s.Corpus}, stability {(s.Stability is double st ? st.ToString("0.00", CultureInfo.InvariantCulture) + "%" : "n/a")}, crashes {s.Crashes}, hangs {s.Hangs}"));
            log.WriteLine($"resume with: kmem-verify fuzz --out {outPath} --resume");
            if (asJson) stdout.WriteLine(SummaryJson(result, h, findingTarget, outPath, cts.IsCancellationRequested));
            if (result.EarlyExit is { } early)
                stderr.WriteLine($"kmem-verify: the campaign ended early: {early}");
            if (result.Signatures.Count > 0) return ExitCodes.Violation;
            return result.EarlyExit is null ? ExitCodes.Ok : ExitCodes.BadInput;
        });
        return cmd;
    }

    /// <summary>
    /// One finding as a `kmem-verify/verdict` object (command "fuzz"): the written scenario replayed
    /// on the target for the scenario harness; for the parser harness, the signature and the file.
    /// </summary>
    public static string FindingJson(string target, HarnessKind kind, string signature, string path, string text, Func<ITarget> create)
    {
        Verdict verdict;
        string profile = "any";
        IReadOnlyList<string> explanation = [];
        if (kind == HarnessKind.Scenario)
        {
            var scenario = ScenarioParser.Parse(text, path);
            profile = scenario.ProfileName;
            var rec = Recorder.Record(scenario, create, target);
            verdict = rec.Verdict;
            explanation = rec.Explanation;
        }
        else
        {
            int slash = signature.IndexOf('/', StringComparison.Ordinal);
            verdict = new Verdict
            {
                Invariant = slash < 0 ? signature : signature[..slash], Operation = slash < 0 ? "parse" : signature[(slash + 1)..],
                Message = "the parser harness fails on this input (see the file's header)", Step = 0,
            };
        }
        return new VerdictJson
        {
            Command = "fuzz", ToolVersion = Cli.ToolVersion, Verdict = verdict, Target = target, Profile = profile,
            File = path, ScenarioText = text, Explanation = explanation,
            Extra = w =>
            {
                w.WriteStartObject("fuzz");
                w.WriteString("harness", kind == HarnessKind.Parser ? "parser" : "scenario");
                w.WriteString("findingSignature", signature);
                w.WriteEndObject();
            },
        }.ToJson();
    }

    /// <summary>The campaign's end as one `kmem-verify/fuzz-summary` object.</summary>
    public static string SummaryJson(CampaignResult result, HarnessOptions h, string target, string outDir, bool interrupted)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteString("schema", "kmem-verify/fuzz-summary");
            w.WriteNumber("schemaVersion", 1);
            w.WriteString("tool", "kmem-verify");
            w.WriteString("toolVersion", Cli.ToolVersion);
            w.WriteString("command", "fuzz");
            w.WriteString("target", target);
            w.WriteString("harness", string.Join(' ', h.ToArgs()));
            w.WriteString("out", outDir);
            w.WriteBoolean("interrupted", interrupted);
            w.WriteNumber("elapsedSeconds", Math.Round(result.Elapsed.TotalSeconds, 3));
            w.WriteNumber("newFindings", result.NewFindings);
            w.WriteStartArray("signatures");
            foreach (var sig in result.Signatures) w.WriteStringValue(sig);
            w.WriteEndArray();
            w.WriteNumber("duplicates", result.Duplicates);
            w.WriteNumber("unreproduced", result.Unreproduced);
            w.WriteNumber("hangs", result.Hangs);
            if (result.FirstFinding is { } ff) w.WriteNumber("firstFindingSeconds", Math.Round(ff.TotalSeconds, 3)); else w.WriteNull("firstFindingSeconds");
            if (result.FirstOwnFinding is { } fo) w.WriteNumber("firstOwnFindingSeconds", Math.Round(fo.TotalSeconds, 3)); else w.WriteNull("firstOwnFindingSeconds");
            w.WriteStartArray("instances");
            foreach (var i in result.Instances)
            {
                w.WriteStartObject();
                w.WriteString("name", i.Name);
                w.WriteNumber("execs", i.ExecsDone);
                w.WriteNumber("execsPerSecond", Math.Round(i.ExecsPerSec, 2));
                w.WriteNumber("corpus", i.Corpus);
                if (i.Stability is double st) w.WriteNumber("stability", st); else w.WriteNull("stability");
                w.WriteNumber("crashes", i.Crashes);
                w.WriteNumber("hangs", i.Hangs);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteString("earlyExit", result.EarlyExit);
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(ms.ToArray());
    }
}
