using System.CommandLine;
using System.Globalization;
using Kmem.Engines;
using Kmem.Runner;
using Kmem.Scenarios;
using Kmem.Zoo;

namespace Kmem.Cli;

/// <summary>Exit codes: 0 ok, 1 a violation or finding, 2 bad input or usage.</summary>
public static class ExitCodes
{
    public const int Ok = 0, Violation = 1, BadInput = 2;
}

public static class Cli
{
    public static string ToolVersion =>
        typeof(Cli).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var root = new RootCommand("kmem-verify: checks Linux-style kernel memory allocators against a formal model");
        root.Subcommands.Add(ReplayCommand(stdout, stderr));
        root.Subcommands.Add(CheckCommand(stdout, stderr));
        root.Subcommands.Add(ProfilesCommand(stdout));
        root.Subcommands.Add(TargetsCommand(stdout));

        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var e in parsed.Errors) stderr.WriteLine($"kmem-verify: {e.Message}");
            stderr.WriteLine("Run 'kmem-verify --help' for usage.");
            return ExitCodes.BadInput;
        }
        var config = new InvocationConfiguration { Output = stdout, Error = stderr };
        return parsed.Invoke(config);
    }

    // ------------------------------------------------------------------ replay

    private static Command ReplayCommand(TextWriter stdout, TextWriter stderr)
    {
        var file = new Argument<string>("FILE") { Description = "a .kmem scenario" };
        var trace = new Option<bool>("--trace") { Description = "print every step with its outcome and what the model decided" };
        var target = new Option<string>("--target") { Description = "what to check (see 'kmem-verify targets')", DefaultValueFactory = _ => "reference" };
        var cmd = new Command("replay", "run a .kmem scenario against a target and the model; exit 0 if it holds, 1 on a violation, 2 on a malformed file") { file, trace, target };
        cmd.SetAction(r =>
        {
            string path = r.GetValue(file)!;
            if (!TryLoad(path, stderr, out var scenario)) return ExitCodes.BadInput;
            if (!TryTarget(r.GetValue(target)!, stderr, out var info)) return ExitCodes.BadInput;
            var options = new RunOptions
            {
                Trace = r.GetValue(trace)
                    ? s => stdout.WriteLine($"  step {s.Step,4}{(s.Line > 0 ? $" line {s.Line,4}" : "          ")}  {s.Operation,-22} => {s.Outcome}{(s.Outcome == Outcome.Ok && s.Address != 0 ? $" @0x{s.Address:x}" : "")}{(s.Note.Length > 0 ? $"   ({s.Note})" : "")}")
                    : null,
            };
            Verdict v;
            try { v = ScenarioRunner.Run(scenario, info.Create, options); }
            catch (UnsupportedScenarioException e)
            {
                stderr.WriteLine($"{path}:{e.Line}:1: {e.Message}");
                return ExitCodes.BadInput;
            }
            stdout.WriteLine($"{path}: profile {scenario.ProfileName}, target {info.Name}");
            if (v.Ok)
            {
                stdout.WriteLine($"ok: {v.Executed} operations, every expectation held and no invariant broke");
                return ExitCodes.Ok;
            }
            stdout.WriteLine($"VIOLATION [{v.Invariant}] at step {v.Step}{(v.Line > 0 ? $", {path}:{v.Line}" : "")}: {v.Operation}");
            stdout.WriteLine($"  {v.Message}");
            return ExitCodes.Violation;
        });
        return cmd;
    }

    // ------------------------------------------------------------------ check

    private static Command CheckCommand(TextWriter stdout, TextWriter stderr)
    {
        var profile = new Option<string?>("--profile") { Description = $"kernel profile (default {Profiles.DefaultName}, or the era a known-buggy target's bug belongs to); 'any' mixes all" };
        var seed = new Option<ulong?>("--seed") { Description = "seed of the run (printed; a printed seed reproduces the run exactly)" };
        var cases = new Option<int>("--cases") { Description = "number of generated scenarios", DefaultValueFactory = _ => CheckOptions.DefaultCases };
        var maxOps = new Option<int>("--max-ops") { Description = "largest number of operations in a scenario", DefaultValueFactory = _ => 60 };
        var ram = new Option<string?>("--ram") { Description = "fix the RAM of generated machines (e.g. 64M, 16G)" };
        var target = new Option<string>("--target") { Description = "what to check (see 'kmem-verify targets')", DefaultValueFactory = _ => "reference" };
        var outDir = new Option<string>("--out") { Description = "where the shrunk counterexample is written", DefaultValueFactory = _ => "findings" };
        var quiet = new Option<bool>("--quiet") { Description = "no progress lines" };
        var cmd = new Command("check", "generate scenarios with FsCheck, check each against the model, shrink the first failure to a .kmem file")
            { profile, seed, cases, maxOps, ram, target, outDir, quiet };
        cmd.SetAction(r =>
        {
            if (!TryTarget(r.GetValue(target)!, stderr, out var info)) return ExitCodes.BadInput;
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
            bool q = r.GetValue(quiet);
            var o = new CheckOptions
            {
                Profile = p == "any" ? null : p, Seed = s, Cases = n, MaxOps = m, Ram = ramBytes, TargetName = info.Name,
                Progress = q ? null : (c, ops) => { if (c % 1024 == 0) stdout.WriteLine($"  ... {c} cases, {ops} operations"); },
            };
            stdout.WriteLine($"kmem-verify check: profile {p}, target {info.Name}, seed {s}, {n} cases of up to {m} operations");
            var report = CheckEngine.Run(o, info.Create);
            string rate = $"{report.Cases} cases, {report.Operations} operations in {report.Elapsed.TotalSeconds:0.00} s: " +
                          $"{report.CasesPerSecond.ToString("0", CultureInfo.InvariantCulture)} cases/s, {report.OpsPerSecond.ToString("0", CultureInfo.InvariantCulture)} ops/s";
            if (report.Failure is not { } f)
            {
                stdout.WriteLine($"passed: {rate}");
                stdout.WriteLine($"seed {s}");
                return ExitCodes.Ok;
            }
            var minimal = CheckEngine.Annotate(f.Shrunk.Scenario, o, f, $"kmem-verify {ToolVersion}");
            string text = ScenarioPrinter.Print(minimal);
            string path = WriteFinding(r.GetValue(outDir)!, f.Shrunk.Verdict.Signature, info.Name, text);
            stdout.WriteLine($"FAILED after {rate}");
            stdout.WriteLine($"  found at case {f.Case} after {f.TimeToFind.TotalSeconds:0.000} s; shrunk from {f.Original.Ops.Count} to {f.Shrunk.Scenario.Ops.Count} operations in {f.TimeToShrink.TotalSeconds:0.000} s ({f.Shrunk.Attempts} attempts)");
            stdout.WriteLine($"  {f.Shrunk.Verdict}");
            stdout.WriteLine($"  written to {path}; replay with: kmem-verify replay {path} --target {info.Name}");
            stdout.WriteLine();
            stdout.Write(text);
            stdout.WriteLine($"seed {s}");
            return ExitCodes.Violation;
        });
        return cmd;
    }

    /// <summary>Writes a finding under a stable name from its signature, never overwriting a different one.</summary>
    public static string WriteFinding(string dir, string signature, string target, string text)
    {
        Directory.CreateDirectory(dir);
        string stem = Sanitize($"{target.Replace("buggy:", "")}-{signature}");
        for (int i = 1; ; i++)
        {
            string path = Path.Combine(dir, i == 1 ? stem + ".kmem" : $"{stem}-{i}.kmem");
            if (File.Exists(path))
            {
                if (File.ReadAllText(path) == text) return path;
                continue;
            }
            // Written completely before it is reported.
            string tmp = path + ".tmp";
            File.WriteAllText(tmp, text);
            File.Move(tmp, path);
            return path;
        }
    }

    private static string Sanitize(string s) =>
        new(s.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '-').ToArray());

    // ------------------------------------------------------------------ listings

    private static Command ProfilesCommand(TextWriter stdout)
    {
        var cmd = new Command("profiles", "list the kernel profiles and their limits");
        cmd.SetAction(_ =>
        {
            ProfileTable.Write(stdout);
            return ExitCodes.Ok;
        });
        return cmd;
    }

    private static Command TargetsCommand(TextWriter stdout)
    {
        var cmd = new Command("targets", "list every target; known-buggy ones are named buggy:NAME with the bug they carry");
        cmd.SetAction(_ =>
        {
            foreach (var t in TargetRegistry.All)
                stdout.WriteLine(t.Bug is null ? $"{t.Name}\tthe reference allocator (no planted bug)" : $"{t.Name}\t{t.Bug} [{t.Source}]");
            return ExitCodes.Ok;
        });
        return cmd;
    }

    // ------------------------------------------------------------------ helpers

    public static bool TryLoad(string path, TextWriter stderr, out Scenario scenario)
    {
        scenario = null!;
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            stderr.WriteLine($"{path}: cannot read: {e.Message}");
            return false;
        }
        try { scenario = ScenarioParser.Parse(text, path); }
        catch (ScenarioException e)
        {
            stderr.WriteLine(e.Message);
            return false;
        }
        return true;
    }

    private static bool TryTarget(string name, TextWriter stderr, out TargetInfo info)
    {
        info = TargetRegistry.Get(name)!;
        if (info is not null) return true;
        stderr.WriteLine($"kmem-verify: unknown target '{name}'; see 'kmem-verify targets'");
        return false;
    }
}
