using System.CommandLine;
using Kmem.Report;
using Kmem.Runner;
using Kmem.Scenarios;

namespace Kmem.Cli.Commands;

public static class ReplayCommand
{
    // ------------------------------------------------------------------ replay

    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var file = new Argument<string>("FILE") { Description = "a .kmem scenario" };
        var trace = new Option<bool>("--trace") { Description = "print every step with its outcome, what the model decided, and what changed (blocks split and merged, pages allocated and freed)" };
        var target = new Option<string>("--target") { Description = "what to check (see 'kmem-verify targets')", DefaultValueFactory = _ => "reference" };
        var map = new Option<bool>("--map") { Description = "print a map of the physical frames around the failure (zones, holes, reserved, free blocks by order, owners)" };
        var html = new Option<string?>("--html") { Description = "write a self-contained HTML report (maps at every step on a timeline, the scenario beside it) to this file" };
        var json = new Option<bool>("--json") { Description = "print the verdict as one JSON object (docs/json.md); --trace and --map add members to it" };
        var color = new Option<string>("--color") { Description = "colour for --map: auto (on a terminal, unless NO_COLOR is set), always, never", DefaultValueFactory = _ => "auto" };
        color.AcceptOnlyFromAmong("auto", "always", "never");
        var cmd = new Command("replay", "run a .kmem scenario against a target and the model; exit 0 if it holds, 1 on a violation, 2 on a malformed file")
            { file, trace, target, map, html, json, color };
        cmd.SetAction(r =>
        {
            string path = r.GetValue(file)!;
            if (!Cli.TryLoad(path, stderr, out var scenario)) return ExitCodes.BadInput;
            if (!Cli.TryTarget(r.GetValue(target)!, stderr, out var info)) return ExitCodes.BadInput;
            bool wantTrace = r.GetValue(trace), wantMap = r.GetValue(map), wantJson = r.GetValue(json);
            string? htmlPath = r.GetValue(html);
            Recording rec;
            try
            {
                rec = Recorder.Record(scenario, info.Create, info.Name, new RecordOptions { Maps = wantMap || htmlPath is not null });
            }
            catch (UnsupportedScenarioException e)
            {
                stderr.WriteLine($"{path}:{e.Line}:1: {e.Message}");
                return ExitCodes.BadInput;
            }
            var v = rec.Verdict;
            int code = v.Ok ? ExitCodes.Ok : ExitCodes.Violation;

            if (htmlPath is not null)
            {
                try
                {
                    string page = HtmlReport.Render(rec, $"kmem-verify replay {Path.GetFileName(path)} --target {info.Name}", Cli.ToolVersion);
                    string? dir = Path.GetDirectoryName(Path.GetFullPath(htmlPath));
                    if (dir is not null) Directory.CreateDirectory(dir);
                    File.WriteAllText(htmlPath, page);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
                {
                    stderr.WriteLine($"kmem-verify: --html {htmlPath}: cannot write: {e.Message}");
                    return ExitCodes.BadInput;
                }
            }

            if (wantJson)
            {
                var doc = new VerdictJson
                {
                    Command = "replay", ToolVersion = Cli.ToolVersion, Verdict = v, Target = info.Name, Profile = scenario.ProfileName,
                    ScenarioText = ScenarioPrinter.Print(scenario), File = path, Explanation = rec.Explanation,
                    Extra = w =>
                    {
                        VerdictJson.Str(w, "html", htmlPath);
                        if (wantTrace) VerdictJson.Trace(w, rec);
                        if (wantMap)
                        {
                            var sw = new StringWriter();
                            TerminalMap.Write(rec, sw, colour: false);
                            w.WriteString("map", sw.ToString());
                        }
                    },
                };
                stdout.WriteLine(doc.ToJson());
                return code;
            }

            stdout.WriteLine($"{path}: profile {scenario.ProfileName}, target {info.Name}");
            if (wantTrace) TraceText.Write(rec, stdout);
            if (v.Ok) stdout.WriteLine($"ok: {v.Executed} operations, every expectation held and no invariant broke");
            else
            {
                stdout.WriteLine($"VIOLATION [{v.Invariant}] at step {v.Step}{(v.Line > 0 ? $", {path}:{v.Line}" : "")}: {v.Operation}");
                stdout.WriteLine($"  {v.Message}");
                TraceText.WriteExplanation(rec, stdout);
            }
            if (wantMap)
            {
                stdout.WriteLine();
                TerminalMap.Write(rec, stdout, Cli.UseColour(r.GetValue(color), stdout));
            }
            if (htmlPath is not null) stdout.WriteLine($"report written to {htmlPath}");
            return code;
        });
        return cmd;
    }
}
