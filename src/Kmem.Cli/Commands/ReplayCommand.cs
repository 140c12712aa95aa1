using System.CommandLine;
using System.Globalization;
using Kmem.Engines;
using Kmem.Runner;
using Kmem.Scenarios;
using Kmem.Zoo;

namespace Kmem.Cli.Commands;

public static class ReplayCommand
{
    // ------------------------------------------------------------------ replay

    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var file = new Argument<string>("FILE") { Description = "a .kmem scenario" };
        var trace = new Option<bool>("--trace") { Description = "print every step with its outcome and what the model decided" };
        var target = new Option<string>("--target") { Description = "what to check (see 'kmem-verify targets')", DefaultValueFactory = _ => "reference" };
        var cmd = new Command("replay", "run a .kmem scenario against a target and the model; exit 0 if it holds, 1 on a violation, 2 on a malformed file") { file, trace, target };
        cmd.SetAction(r =>
        {
            string path = r.GetValue(file)!;
            if (!Cli.TryLoad(path, stderr, out var scenario)) return ExitCodes.BadInput;
            if (!Cli.TryTarget(r.GetValue(target)!, stderr, out var info)) return ExitCodes.BadInput;
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
}
