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
        // One line per command; each command lives in Commands/.
        root.Subcommands.Add(Commands.ReplayCommand.Create(stdout, stderr));
        root.Subcommands.Add(Commands.CheckCommand.Create(stdout, stderr));
        root.Subcommands.Add(Commands.ListCommands.CreateProfiles(stdout));
        root.Subcommands.Add(Commands.ListCommands.CreateTargets(stdout));

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

    public static bool TryTarget(string name, TextWriter stderr, out TargetInfo info)
    {
        info = TargetRegistry.Get(name)!;
        if (info is not null) return true;
        stderr.WriteLine($"kmem-verify: unknown target '{name}'; see 'kmem-verify targets'");
        return false;
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
}
