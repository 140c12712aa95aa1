using System.CommandLine;
using System.Globalization;
using Kmem.Engines;
using Kmem.Runner;
using Kmem.Scenarios;
using Kmem.Zoo;

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
        var outDir = new Option<string>("--out") { Description = "where the shrunk counterexample is written", DefaultValueFactory = _ => "findings" };
        var quiet = new Option<bool>("--quiet") { Description = "no progress lines" };
        var cmd = new Command("check", "generate scenarios with FsCheck, check each against the model, shrink the first failure to a .kmem file")
            { profile, seed, cases, maxOps, ram, target, outDir, quiet };
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
            var minimal = CheckEngine.Annotate(f.Shrunk.Scenario, o, f, $"kmem-verify {Cli.ToolVersion}");
            string text = ScenarioPrinter.Print(minimal);
            string path = Cli.WriteFinding(r.GetValue(outDir)!, f.Shrunk.Verdict.Signature, info.Name, text);
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

}
