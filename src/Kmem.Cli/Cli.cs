using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
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
        root.Subcommands.Add(Commands.ShrinkCommand.Create(stdout, stderr));
        root.Subcommands.Add(Commands.ListCommands.CreateProfiles(stdout));
        root.Subcommands.Add(Commands.ListCommands.CreateTargets(stdout));
        root.Subcommands.Add(Commands.FuzzCommand.Create(stdout, stderr));
        root.Subcommands.Add(Commands.CorpusCommand.Create(stdout, stderr));
        root.Subcommands.Add(Commands.BenchCommand.Create(stdout, stderr));

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

    /// <summary>
    /// Writes a finding under a stable name from its target and signature (`no-upper-coalesce-coalescing-free_pages.kmem`),
    /// never overwriting a different counterexample: the same scenario found again (comments aside, which
    /// carry the seed and the date of the run) is the file already there; a different one gets `-2`, `-3`, ...
    /// The file is complete on disk before its path is returned.
    /// </summary>
    public static string WriteFinding(string dir, string signature, string target, string text)
    {
        Directory.CreateDirectory(dir);
        string stem = Sanitize($"{target.Replace("buggy:", "")}-{signature}");
        string body = Body(text);
        for (int i = 1; ; i++)
        {
            string path = Path.Combine(dir, i == 1 ? stem + ".kmem" : $"{stem}-{i}.kmem");
            if (File.Exists(path))
            {
                if (Body(File.ReadAllText(path)) == body) return path;
                continue;
            }
            string tmp = path + $".{Environment.ProcessId}.tmp";
            File.WriteAllText(tmp, text);
            try { File.Move(tmp, path, overwrite: false); }
            catch (IOException) when (File.Exists(path))
            {
                File.Delete(tmp); // another run took the name meanwhile: compare with it
                i--;
                continue;
            }
            return path;
        }
    }

    /// <summary>A scenario's text without its comment lines and blank lines.</summary>
    public static string Body(string text) =>
        string.Join('\n', text.Replace("\r", "").Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')));

    /// <summary>Whether the writer is the process's stdout and that is a terminal (not a pipe or a file).</summary>
    public static bool IsTerminal(TextWriter w)
    {
        try { return ReferenceEquals(w, Console.Out) && !Console.IsOutputRedirected; }
        catch (IOException) { return false; }
    }

    /// <summary>`--color auto|always|never`: auto is colour on a terminal unless NO_COLOR is set.</summary>
    public static bool UseColour(string? mode, TextWriter w) => mode switch
    {
        "always" => true,
        "never" => false,
        _ => IsTerminal(w) && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NO_COLOR")),
    };

    private static string Sanitize(string s) =>
        new(s.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '-').ToArray());
}

/// <summary>
/// SIGINT and SIGTERM cancel <see cref="Source"/> instead of ending the process, so a long job (a fuzz
/// campaign) stops its children and writes what it found. A background job started by a script
/// has SIGINT ignored (POSIX, no job control): send it SIGTERM.
/// </summary>
public sealed class StopSignals : IDisposable
{
    private readonly PosixSignalRegistration sigint, sigterm;
    public CancellationTokenSource Source { get; } = new();

    public StopSignals()
    {
        sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
    }

    private void OnSignal(PosixSignalContext c)
    {
        c.Cancel = true;
        Source.Cancel();
    }

    public void Dispose()
    {
        sigint.Dispose();
        sigterm.Dispose();
        Source.Dispose();
    }
}
