using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Kmem.Report;
using Kmem.Runner;
using Kmem.Scenarios;

namespace Kmem.Cli.Commands;

public static class ShrinkCommand
{
    // ------------------------------------------------------------------ shrink

    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var file = new Argument<string>("FILE") { Description = "a failing input: a .kmem scenario, or a raw fuzzer input (the binary encoding)" };
        var outFile = new Option<string?>("--out") { Description = "where the minimal .kmem goes (default: next to FILE, named NAME.min.kmem)" };
        var target = new Option<string?>("--target") { Description = "what to check (default: the file's '# target:' line, else reference)" };
        var json = new Option<bool>("--json") { Description = "print the result as one JSON object (docs/json.md)" };
        var format = new Option<string>("--format") { Description = "how to read FILE: auto (.kmem text when it is UTF-8 that parses or is named *.kmem, else binary), kmem, binary", DefaultValueFactory = _ => "auto" };
        format.AcceptOnlyFromAmong("auto", "kmem", "binary");
        var cmd = new Command("shrink", "shrink a failing input to a minimal .kmem scenario with the same failure signature; exit 1 when it fails (and was shrunk), 0 when it holds, 2 on bad input")
            { file, outFile, target, json, format };
        cmd.SetAction(r =>
        {
            string path = r.GetValue(file)!;
            if (!TryRead(path, r.GetValue(format)!, stderr, out var scenario, out string kind)) return ExitCodes.BadInput;
            string targetName = r.GetValue(target) ?? HeaderValue(scenario, "target") ?? "reference";
            if (!Cli.TryTarget(targetName, stderr, out var info)) return ExitCodes.BadInput;

            Verdict Run(Scenario s) => ScenarioRunner.Run(s, info.Create);
            Verdict original;
            try { original = Run(scenario); }
            catch (UnsupportedScenarioException e)
            {
                stderr.WriteLine($"{path}:{e.Line}:1: {e.Message}");
                return ExitCodes.BadInput;
            }
            bool asJson = r.GetValue(json);
            var before = ScenarioSize.Of(scenario);
            if (original.Ok)
            {
                if (asJson)
                    stdout.WriteLine(new VerdictJson
                    {
                        Command = "shrink", ToolVersion = Cli.ToolVersion, Verdict = original, Target = info.Name, Profile = scenario.ProfileName,
                        File = path, ScenarioText = ScenarioPrinter.Print(scenario),
                        Extra = w => { w.WriteStartObject("shrink"); w.WriteString("input", kind); VerdictJson.Size(w, "before", before); w.WriteEndObject(); },
                    }.ToJson());
                else
                {
                    stdout.WriteLine($"{path}: {kind}, profile {scenario.ProfileName}, target {info.Name}");
                    stdout.WriteLine($"holds: {original.Executed} operations, no violation; nothing to shrink");
                }
                return ExitCodes.Ok;
            }

            var clock = Stopwatch.StartNew();
            var result = new Shrinker(Run, original).Minimize(scenario);
            clock.Stop();
            var after = ScenarioSize.Of(result.Scenario);
            string outPath = r.GetValue(outFile) ?? DefaultOut(path);
            Scenario Annotated(string verdictLine) => result.Scenario with
            {
                Header = result.Scenario.Header with
                {
                    Comments =
                    [
                        $"shrunk by: kmem-verify shrink {Path.GetFileName(path)} --target {info.Name}",
                        $"target: {info.Name}",
                        $"signature: {result.Verdict.Signature}",
                        $"verdict: {verdictLine}",
                        $"shrunk from {before.Ops} to {after.Ops} operations ({before.BootParams} to {after.BootParams} boot parameters) by kmem-verify {Cli.ToolVersion}",
                    ],
                },
            };
            // What is written must replay: the same failure from the text itself. Its verdict (with the
            // lines of the written file, not of the input) is the one reported.
            var replayed = Run(ScenarioParser.Parse(ScenarioPrinter.Print(Annotated("-")), outPath));
            if (replayed.Signature != result.Verdict.Signature)
            {
                stderr.WriteLine($"kmem-verify: internal error: the shrunk scenario replays as {replayed.Signature}, not {result.Verdict.Signature}; keeping the input");
                return ExitCodes.BadInput;
            }
            var minimal = Annotated(replayed.ToString());
            string text = ScenarioPrinter.Print(minimal);
            try
            {
                string? dir = Path.GetDirectoryName(Path.GetFullPath(outPath));
                if (dir is not null) Directory.CreateDirectory(dir);
                string tmp = outPath + $".{Environment.ProcessId}.tmp";
                File.WriteAllText(tmp, text);
                File.Move(tmp, outPath, overwrite: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
            {
                stderr.WriteLine($"kmem-verify: --out {outPath}: cannot write: {e.Message}");
                return ExitCodes.BadInput;
            }

            double seconds = clock.Elapsed.TotalSeconds;
            if (asJson)
            {
                var rec = Recorder.Record(minimal, info.Create, info.Name);
                stdout.WriteLine(new VerdictJson
                {
                    Command = "shrink", ToolVersion = Cli.ToolVersion, Verdict = replayed, Target = info.Name, Profile = minimal.ProfileName,
                    File = path, ScenarioText = text, Explanation = rec.Explanation,
                    Extra = w =>
                    {
                        w.WriteStartObject("shrink");
                        w.WriteString("input", kind);
                        w.WriteString("originalSignature", original.Signature);
                        VerdictJson.Size(w, "before", before);
                        VerdictJson.Size(w, "after", after);
                        w.WriteNumber("seconds", Math.Round(seconds, 4));
                        w.WriteNumber("runs", result.Attempts);
                        w.WriteNumber("accepted", result.Accepted);
                        w.WriteString("written", outPath);
                        w.WriteEndObject();
                    },
                }.ToJson());
                return ExitCodes.Violation;
            }
            stdout.WriteLine($"{path}: {kind}, profile {scenario.ProfileName}, target {info.Name}");
            stdout.WriteLine($"  signature: {result.Verdict.Signature}");
            stdout.WriteLine($"  before:    {Size(before)}");
            stdout.WriteLine($"  after:     {Size(after)}");
            stdout.WriteLine($"  time:      {seconds.ToString("0.000", CultureInfo.InvariantCulture)} s ({result.Attempts} runs, {result.Accepted} accepted, {result.StepsRun} operations run)");
            stdout.WriteLine($"  {replayed}");
            stdout.WriteLine($"  written to {outPath}; replay with: kmem-verify replay {outPath} --target {info.Name} --trace");
            stdout.WriteLine();
            stdout.Write(text);
            return ExitCodes.Violation;
        });
        return cmd;
    }

    private static string Size(ScenarioSize s) =>
        $"{s.Ops} operation{(s.Ops == 1 ? "" : "s")}, {s.BootParams} boot parameter{(s.BootParams == 1 ? "" : "s")} ({s.HeaderItems} header items)";

    private static string DefaultOut(string path)
    {
        string dir = Path.GetDirectoryName(path) ?? "";
        string name = Path.GetFileName(path);
        if (name.EndsWith(".kmem", StringComparison.OrdinalIgnoreCase)) name = name[..^5];
        return Path.Combine(dir, name + ".min.kmem");
    }

    private static string? HeaderValue(Scenario s, string key) =>
        s.Header.Comments.Select(c => c.Trim()).FirstOrDefault(c => c.StartsWith(key + ":", StringComparison.Ordinal))?[(key.Length + 1)..].Trim();

    /// <summary>
    /// Reads FILE as `.kmem` text or as a raw fuzzer input. Auto: a file named *.kmem is text (and a
    /// syntax error is reported as such); any other file is text when it is valid UTF-8 that parses,
    /// else the binary encoding (whose decoder is total: every byte string is a scenario).
    /// </summary>
    private static bool TryRead(string path, string format, TextWriter stderr, out Scenario scenario, out string kind)
    {
        scenario = null!;
        kind = "";
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            stderr.WriteLine($"{path}: cannot read: {e.Message}");
            return false;
        }
        bool named = path.EndsWith(".kmem", StringComparison.OrdinalIgnoreCase);
        if (format == "kmem" || format == "auto")
        {
            string? text = null;
            try { text = new UTF8Encoding(false, true).GetString(bytes); }
            catch (DecoderFallbackException) when (format == "auto" && !named) { }
            catch (DecoderFallbackException e)
            {
                stderr.WriteLine($"{path}:1:1: not UTF-8 text ({e.Message}); a raw fuzzer input is read with --format binary");
                return false;
            }
            if (text is not null)
            {
                try
                {
                    scenario = ScenarioParser.Parse(text.TrimStart('\uFEFF'), path);
                    kind = ".kmem text";
                    return true;
                }
                catch (ScenarioException e) when (format == "kmem" || named)
                {
                    stderr.WriteLine(e.Message);
                    return false;
                }
                catch (ScenarioException) { }
            }
        }
        scenario = BinaryCodec.Decode(bytes);
        kind = $"binary fuzzer input ({bytes.Length} bytes)";
        return true;
    }
}
