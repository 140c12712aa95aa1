using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Kmem.Engines;
using Kmem.Zoo;
using Spectre.Console;

namespace Kmem.Cli.Commands;

/// <summary>`kmem-verify bench`: detection figures for every known-buggy target.</summary>
public static class BenchCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var engine = new Option<string>("--engine") { Description = "check (FsCheck generation); fuzz needs 'kmem-verify fuzz' set up", DefaultValueFactory = _ => "check" };
        var runs = new Option<int>("--runs") { Description = "seeds per target (1..K)", DefaultValueFactory = _ => 10 };
        var json = new Option<bool>("--json") { Description = "one JSON document instead of the table" };
        var only = new Option<string?>("--target") { Description = "only this known-buggy target" };
        var cmd = new Command("bench", "for every known-buggy target: detection rate over K seeds, median cases and seconds to the first failure, shrunk length against the recorded minimum")
            { engine, runs, json, only };
        cmd.SetAction(r =>
        {
            if (r.GetValue(engine) != "check")
            {
                stderr.WriteLine("kmem-verify bench: --engine fuzz is run by 'kmem-verify fuzz --bench' (see README, Fuzzing); this command runs the check engine");
                return ExitCodes.BadInput;
            }
            int k = r.GetValue(runs);
            if (k < 1) { stderr.WriteLine("kmem-verify bench: --runs must be at least 1"); return ExitCodes.BadInput; }
            var targets = KnownBugs.All.Where(t => r.GetValue(only) is not { } o || t.Name == o).ToList();
            if (targets.Count == 0) { stderr.WriteLine($"kmem-verify bench: unknown known-buggy target '{r.GetValue(only)}'"); return ExitCodes.BadInput; }
            var rows = new List<BenchRow>();
            foreach (var t in targets)
            {
                var row = Bench.Run(new Bench.BugTarget(t.Name, t.Profile, t.Create,
                    sig => t.Minimal.FirstOrDefault(m => m.Signature == sig)?.Ops), k);
                rows.Add(row);
                if (!r.GetValue(json)) stdout.WriteLine($"  {t.Name}: {row.Detected}/{row.Runs} detected");
            }
            if (r.GetValue(json))
            {
                stdout.WriteLine(JsonSerializer.Serialize(new { engine = "check", runs = k, tool = Cli.ToolVersion, targets = rows },
                    new JsonSerializerOptions { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals }));
            }
            else
            {
                var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(stdout), Ansi = AnsiSupport.No });
                console.Profile.Width = 200;
                var table = new Table().Border(TableBorder.Rounded);
                foreach (var c in new[] { "target", "detected", "median cases", "median s to find", "at minimum", "shrunk lengths", "median s to shrink", "signatures" })
                    table.AddColumn(c);
                foreach (var row in rows)
                    table.AddRow(Markup.Escape(row.Target), $"{row.Detected}/{row.Runs}", F(row.MedianCases, "0"), F(row.MedianSeconds, "0.000"),
                        $"{row.AtMinimum}/{row.Detected}", string.Join(" ", row.ShrunkLengths), F(row.MedianShrinkSeconds, "0.000"), Markup.Escape(string.Join(", ", row.Signatures)));
                console.Write(table);
            }
            bool allFound = rows.All(x => x.Detected == x.Runs && x.AtMinimum == x.Detected);
            return allFound ? ExitCodes.Ok : ExitCodes.Violation;
        });
        return cmd;
    }

    private static string F(double x, string fmt) => double.IsNaN(x) ? "-" : x.ToString(fmt, CultureInfo.InvariantCulture);
}
