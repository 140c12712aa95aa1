using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Kmem.Engines;
using Kmem.Report;
using Kmem.Runner;
using Kmem.Scenarios;
using Spectre.Console;
using Recorder = Kmem.Report.Recorder;

namespace Kmem.Cli.Commands;

public static class CheckCommand
{
    // ------------------------------------------------------------------ check

    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var profile = new Option<string?>("--profile") { Description = $"kernel profile (default {Profiles.DefaultName}, or the era a known-buggy target's bug belongs to); 'any' mixes all" };
        var seed = new Option<ulong?>("--seed") { Description = "seed of the run (printed; a printed seed reproduces the run exactly)" };
        var cases = new Option<int>("--cases") { Description = "number of generated scenarios", DefaultValueFactory = _ => CheckOptions.DefaultCases };
        var maxOps = new Option<int>("--max-ops") { Description = "largest number of operations in a scenario", DefaultValueFactory = _ => 60 };
        var ram = new Option<string?>("--ram") { Description = "fix the RAM of generated machines (e.g. 64M, 16G)" };
        var target = new Option<string>("--target") { Description = "what to check (see 'kmem-verify targets')", DefaultValueFactory = _ => "reference" };
        var outDir = new Option<string>("--out") { Description = "where the shrunk counterexample is written, under a stable name from its signature (never overwriting a different one)", DefaultValueFactory = _ => "findings" };
        var check = new Option<string>("--check")
        {
            Description = "incremental (default): invariants around what each operation changed; full: the slow, obvious twin over all memory after every operation; none: the target alone, outcomes against the scenario only (measures the cost of checking)",
            DefaultValueFactory = _ => "incremental",
        };
        check.AcceptOnlyFromAmong("incremental", "full", "none");
        var quiet = new Option<bool>("--quiet") { Description = "no progress (a live line on a terminal, periodic lines otherwise)" };
        var json = new Option<bool>("--json") { Description = "print the verdict as one JSON object (docs/json.md); progress goes to stderr" };
        var cmd = new Command("check", "generate scenarios with FsCheck, check each against the model, shrink the first failure to a .kmem file")
            { profile, seed, cases, maxOps, ram, target, outDir, check, quiet, json };
        cmd.SetAction(r =>
        {
            if (!Cli.TryTarget(r.GetValue(target)!, stderr, out var info)) return ExitCodes.BadInput;
            string p = r.GetValue(profile) ?? info.Profile;
            if (p != "any" && Profiles.Get(p) is null)
            {
                stderr.WriteLine($"kmem-verify: unknown profile '{p}'; known: {string.Join(", ", Profiles.All.Select(x => x.Name))}, any");
                return ExitCodes.BadInput;
            }
            ulong? ramBytes = null;
            if (r.GetValue(ram) is { } ramText)
            {
                if (!Sizes.TryParse(ramText, out ulong rb) || rb < (1UL << 20) || rb > Sizes.MaxRamBytes)
                {
                    stderr.WriteLine($"kmem-verify: --ram {ramText}: expected a size from 1M to {Sizes.Format(Sizes.MaxRamBytes)}");
                    return ExitCodes.BadInput;
                }
                ramBytes = rb;
            }
            int n = r.GetValue(cases), m = r.GetValue(maxOps);
            if (n < 1 || m < 1)
            {
                stderr.WriteLine("kmem-verify: --cases and --max-ops must be at least 1");
                return ExitCodes.BadInput;
            }
            ulong s = r.GetValue(seed) ?? (ulong)Random.Shared.NextInt64(1, long.MaxValue);
            bool asJson = r.GetValue(json);
            var o = new CheckOptions
            {
                Profile = p == "any" ? null : p, Seed = s, Cases = n, MaxOps = m, Ram = ramBytes, TargetName = info.Name,
                Check = r.GetValue(check) switch { "full" => Kmem.Runner.CheckMode.Full, "none" => Kmem.Runner.CheckMode.None, _ => Kmem.Runner.CheckMode.Incremental },
            };
            if (!asJson) stdout.WriteLine($"kmem-verify check: profile {p}, target {info.Name}, seed {s}, {n} cases of up to {m} operations");

            var report = RunWithProgress(o, info.Create, r.GetValue(quiet), asJson ? stderr : stdout, n);
            string rate = $"{report.Cases} cases, {report.Operations} operations in {report.Elapsed.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture)} s: " +
                          $"{report.CasesPerSecond.ToString("0", CultureInfo.InvariantCulture)} cases/s, {report.OpsPerSecond.ToString("0", CultureInfo.InvariantCulture)} ops/s";

            string? path = null, text = null;
            Recording? rec = null;
            if (report.Failure is { } f)
            {
                var minimal = CheckEngine.Annotate(f.Shrunk.Scenario, o, f, $"kmem-verify {Cli.ToolVersion}");
                text = ScenarioPrinter.Print(minimal);
                // On disk, complete, before it is reported.
                path = Cli.WriteFinding(r.GetValue(outDir)!, f.Shrunk.Verdict.Signature, info.Name, text);
                rec = Recorder.Record(minimal, info.Create, info.Name);
            }
            if (asJson)
            {
                var verdict = report.Failure?.Shrunk.Verdict ?? Verdict.Pass(0);
                stdout.WriteLine(new VerdictJson
                {
                    Command = "check", ToolVersion = Cli.ToolVersion, Verdict = verdict, Target = info.Name, Profile = p, Seed = s,
                    File = path, ScenarioText = text, Explanation = rec?.Explanation ?? [],
                    Extra = w =>
                    {
                        w.WriteStartObject("check");
                        w.WriteNumber("cases", report.Cases);
                        w.WriteNumber("casesRequested", n);
                        w.WriteNumber("maxOps", m);
                        w.WriteNumber("operations", report.Operations);
                        w.WriteNumber("seconds", Math.Round(report.Elapsed.TotalSeconds, 4));
                        w.WriteNumber("opsPerSecond", Math.Round(report.OpsPerSecond));
                        w.WriteNumber("failures", report.Failure is null ? 0 : 1);
                        if (report.Failure is { } ff)
                        {
                            w.WriteNumber("foundAtCase", ff.Case);
                            w.WriteString("originalSignature", ff.OriginalVerdict.Signature);
                            VerdictJson.Size(w, "original", ScenarioSize.Of(ff.Original));
                            VerdictJson.Size(w, "shrunk", ScenarioSize.Of(ff.Shrunk.Scenario));
                            w.WriteNumber("shrinkSeconds", Math.Round(ff.TimeToShrink.TotalSeconds, 4));
                            w.WriteNumber("shrinkRuns", ff.Shrunk.Attempts);
                        }
                        w.WriteEndObject();
                    },
                }.ToJson());
                return report.Failure is null ? ExitCodes.Ok : ExitCodes.Violation;
            }
            if (report.Failure is not { } fail)
            {
                stdout.WriteLine($"passed: {rate}");
                stdout.WriteLine($"seed {s}");
                return ExitCodes.Ok;
            }
            stdout.WriteLine($"FAILED after {rate}");
            stdout.WriteLine($"  found at case {fail.Case} after {fail.TimeToFind.TotalSeconds.ToString("0.000", CultureInfo.InvariantCulture)} s; " +
                             $"shrunk from {fail.Original.Ops.Count} to {fail.Shrunk.Scenario.Ops.Count} operations in {fail.TimeToShrink.TotalSeconds.ToString("0.000", CultureInfo.InvariantCulture)} s ({fail.Shrunk.Attempts} attempts)");
            stdout.WriteLine($"  {fail.Shrunk.Verdict}");
            if (rec is not null) TraceText.WriteExplanation(rec, stdout);
            stdout.WriteLine($"  written to {path}; replay with: kmem-verify replay {path} --target {info.Name} --trace");
            stdout.WriteLine();
            stdout.Write(text);
            stdout.WriteLine($"seed {s}");
            return ExitCodes.Violation;
        });
        return cmd;
    }

    /// <summary>
    /// Runs the check with progress: a live line (cases, ops/s, elapsed, failures) when the output is a
    /// terminal, a plain line every two seconds when it is not, nothing with --quiet.
    /// </summary>
    private static CheckReport RunWithProgress(CheckOptions o, Func<Kmem.Target.ITarget> create, bool quiet, TextWriter output, int total)
    {
        if (quiet) return CheckEngine.Run(o, create);
        var clock = Stopwatch.StartNew();
        string Line(int c, long ops) =>
            $"  ... {c}/{total} cases, {ops} operations, {(ops / Math.Max(clock.Elapsed.TotalSeconds, 1e-9)).ToString("0", CultureInfo.InvariantCulture)} ops/s, " +
            $"{clock.Elapsed.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s, 0 failures";
        if (Cli.IsTerminal(output))
        {
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output) });
            CheckReport report = null!;
            var last = TimeSpan.Zero;
            console.Live(new Text(Line(0, 0))).AutoClear(true).Start(ctx =>
            {
                report = CheckEngine.Run(o with
                {
                    Progress = (c, ops) =>
                    {
                        if (clock.Elapsed - last < TimeSpan.FromMilliseconds(100)) return;
                        last = clock.Elapsed;
                        ctx.UpdateTarget(new Text(Line(c, ops)));
                        ctx.Refresh();
                    },
                }, create);
            });
            return report;
        }
        var lastLine = TimeSpan.Zero;
        return CheckEngine.Run(o with
        {
            Progress = (c, ops) =>
            {
                if (clock.Elapsed - lastLine < TimeSpan.FromSeconds(2)) return;
                lastLine = clock.Elapsed;
                output.WriteLine(Line(c, ops));
            },
        }, create);
    }
}
